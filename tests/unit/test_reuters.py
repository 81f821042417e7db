"""Reuters topics: the Keras npz + word index reader (without allow_pickle) and the ApteMod
reader on tiny files written here, the download registry, and the multi-class path end to
end (softmax training through nmt.train, per-class F1, macro and micro averages, confusion
matrix) in both layouts."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from conftest import FAST_TRAINER, compose_config
from nmt.data.download import DATASETS
from nmt.data.readers.reuters import load_keras_npz, read_reuters_apte, read_reuters_keras
from nmt.evaluation.classification import classification_report

WORDS = {"the": 1, "oil": 2, "wheat": 3, "bank": 4, "rate": 5, "crude": 6, "grain": 7, "cut": 8, "price": 9}
TOPIC_WORDS = [[6, 2, 9], [7, 3], [4, 5, 8]]  # topic 0 oil, 1 grain, 2 rates


def keras_files(directory, n=60, classes=3):
    xs = [[1, *TOPIC_WORDS[i % classes], 1, TOPIC_WORDS[i % classes][0], 100 + i] for i in range(n)]
    ys = [i % classes for i in range(n)]
    x = np.empty(n, dtype=object)
    x[:] = xs  # an object array of lists, as Keras stores it (pickled inside the .npy)
    npz = directory / "reuters.npz"
    np.savez(npz, x=x, y=np.array(ys, dtype=np.int64))
    index = directory / "reuters_word_index.json"
    index.write_text(json.dumps(WORDS), encoding="utf-8")
    return npz, index, xs, ys


def test_keras_npz_is_read_without_allow_pickle_and_split_like_keras(tmp_path):
    npz, index, xs, ys = keras_files(tmp_path)
    assert load_keras_npz(npz) == (xs, ys)
    splits, report, labels = read_reuters_keras(npz, index, num_classes=3)
    assert labels == ["0", "1", "2"] and report.n_ok == 60 and report.n_malformed == 0
    # keras.datasets.reuters.load_data: RandomState(113) shuffle, the last 20% are the test set.
    order = np.arange(60)
    np.random.RandomState(113).shuffle(order)
    assert [y for _, y in splits["train"]] == [ys[i] for i in order[:48]]
    assert [y for _, y in splits["test"]] == [ys[i] for i in order[48:]]
    words = {rank: word for word, rank in WORDS.items()}
    assert splits["train"][0][0] == " ".join(words.get(w, f"#{w}") for w in xs[order[0]])


def test_unknown_ranks_stay_distinct_tokens_and_bad_topics_are_counted(tmp_path):
    npz, _, xs, ys = keras_files(tmp_path, n=10)
    splits, report, _ = read_reuters_keras(npz, None, num_classes=2)
    assert report.n_malformed == sum(y >= 2 for y in ys) and "topic outside 0..1" in report.summary()
    assert all(text.startswith("#1 ") for text, _ in splits["train"] + splits["test"])


class Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


def test_a_pickled_object_other_than_arrays_is_refused(tmp_path):
    x = np.empty(1, dtype=object)
    x[0] = Exploit()
    np.savez(tmp_path / "evil.npz", x=x, y=np.array([0]))
    with pytest.raises(ValueError, match="refusing to load builtins.print"):
        load_keras_npz(tmp_path / "evil.npz")
    (tmp_path / "junk.npz").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(ValueError, match="not a Keras reuters.npz"):
        load_keras_npz(tmp_path / "junk.npz")


def apte_directory(directory, per_topic=20):
    topics = {
        "crude": "oil crude price opec barrel",
        "grain": "wheat grain harvest tonnes",
        "interest": "bank rate cut",
    }
    lines, number = [], 1
    for split in ("training", "test"):
        (directory / split).mkdir(parents=True, exist_ok=True)
        for topic, words in topics.items():
            for k in range(per_topic if split == "training" else per_topic // 4):
                (directory / split / str(number)).write_bytes(
                    f"{topic.upper()} NEWS {k}\n  {words} {k}\n".encode("latin-1")
                )
                lines.append(f"{split}/{number} {topic}")
                number += 1
    (directory / "training" / str(number)).write_bytes(b"both")
    lines.append(f"training/{number} crude grain")  # two topics: skipped
    lines.append(f"test/{number + 1} ship")  # a topic absent from training
    (directory / "test" / str(number + 1)).write_bytes(b"a ship")
    (directory / "cats.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory, sorted(topics)


def test_apte_reader_keeps_the_modapte_split_and_single_topic_documents(tmp_path):
    directory, topics = apte_directory(tmp_path / "reuters21578")
    splits, report, labels = read_reuters_apte(directory)
    assert labels == topics
    assert len(splits["train"]) == 60 and len(splits["test"]) == 15
    assert report.malformed == {"more than one topic (skipped)": 1, "test topic absent from training": 1}
    assert splits["train"][0] == ("CRUDE NEWS 0 oil crude price opec barrel 0", 0)


def test_the_registry_downloads_the_keras_files_with_a_pinned_sha256():
    assert DATASETS["reuters"].sha256 == "d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916"
    assert DATASETS["reuters"].url.endswith("/reuters.npz")
    assert DATASETS["reuters_word_index"].url.endswith("/reuters_word_index.json")


def test_report_has_macro_and_micro_averages():
    confusion = torch.tensor([[5, 1, 0], [0, 3, 1], [2, 0, 8]])
    report = classification_report(confusion, ["a", "b", "c"])
    assert report["micro_f1"] == report["micro_precision"] == report["accuracy"] == pytest.approx(16 / 20)
    per_class = report["per_class"]
    assert report["macro_recall"] == pytest.approx(sum(c["recall"] for c in per_class.values()) / 3)
    assert report["macro_precision"] == pytest.approx((5 / 7 + 3 / 4 + 8 / 9) / 3)


@pytest.mark.parametrize("layout", ["keras", "apte"])
def test_the_multi_class_path_trains_and_evaluates_end_to_end(tmp_path, layout):
    import importlib

    from nmt.cli.train import train

    if layout == "keras":
        npz, index, _, _ = keras_files(tmp_path, n=150)
        data = [f"data.path={npz}", f"data.word_index_path={index}", "data.labels=['0','1','2']"]
    else:
        directory, topics = apte_directory(tmp_path / "apte")
        data = ["data.format=apte", f"data.path={directory}", f"data.labels=[{','.join(topics)}]"]
    run_dir = tmp_path / "run"
    overrides = [
        "experiment=reuters_bilstm_attn",
        *data,
        "data.download=false",
        "model.embed_size=16",
        "model.hidden_size=16",
        "trainer.max_steps=30",
        "optim.lr=0.01",
        *FAST_TRAINER,
        f"+run_dir={run_dir}",
    ]
    metrics = train(compose_config(overrides))
    assert metrics["test/acc"] >= 0.9
    evaluator = importlib.import_module("nmt.cli.evaluate_classifier")
    report = evaluator.evaluate(str(run_dir / "checkpoints" / "best.ckpt"), "test", {}, None)
    assert len(report["confusion_matrix"]) == 3 and len(report["per_class"]) == 3
    assert report["micro_f1"] == report["accuracy"] >= 0.9


def test_apte_labels_that_do_not_match_the_corpus_name_the_right_ones(tmp_path):
    from nmt.data.classification_datamodule import read_corpus

    directory, topics = apte_directory(tmp_path / "apte")
    with pytest.raises(ValueError, match=r"data.labels=\[crude,grain,interest\]"):
        read_corpus({"name": "reuters", "format": "apte", "path": str(directory), "labels": ["a", "b"]})
