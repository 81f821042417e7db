"""The averaged-word-vector baseline (model.type=mean_vectors): document vectors, the logistic
regression, its checkpoint, nmt.train and the config errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")

from conftest import compose_config  # noqa: E402
from nmt.baselines.mean_vectors import MeanVectorModel, fit_mean_vectors  # noqa: E402
from nmt.config.checks import ConfigError, validate_config  # noqa: E402
from nmt.inference.baseline import baseline_checkpoint  # noqa: E402
from nmt.inference.checkpoint import CheckpointError, atomic_save  # noqa: E402
from nmt.inference.loading import load_model  # noqa: E402
from nmt.tasks.preflight import check_run_config  # noqa: E402

WORDS = ["free", "prize", "call", "home", "lunch", "!"]
TABLE = np.array(
    [[1.0, 0.0], [3.0, 1.0], [0.0, 0.0], [-1.0, 2.0], [-3.0, 1.0], [0.5, 0.5]],
    dtype=np.float32,
)


def table_model(**options) -> MeanVectorModel:
    return MeanVectorModel(WORDS, torch.from_numpy(TABLE), torch.zeros(2, 2), torch.zeros(2), **options)


def test_a_document_is_the_mean_of_its_found_words_vectors_with_repeats():
    documents = table_model().document_vectors(["free prize free", "Free PRIZE"])
    np.testing.assert_allclose(documents[0], (TABLE[0] * 2 + TABLE[1]) / 3)
    np.testing.assert_allclose(documents[1], (TABLE[0] + TABLE[1]) / 2)  # case folded


def test_unknown_words_are_ignored_and_a_text_without_known_words_is_zero():
    documents = table_model().document_vectors(["free zebra quagga", "zebra", ""])
    np.testing.assert_allclose(documents[0], TABLE[0])
    np.testing.assert_array_equal(documents[1:], np.zeros((2, 2)))


def test_words_are_cut_by_the_word_tokenizers_rule():
    split = table_model().document_vectors(["home!"])
    np.testing.assert_allclose(split[0], (TABLE[3] + TABLE[5]) / 2)  # "home" and "!"
    kept = table_model(punctuation="keep", lowercase=False).document_vectors(["home! Home"])
    np.testing.assert_array_equal(kept[0], np.zeros(2))  # "home!" and "Home": neither in the table


SPAM = ["free prize", "call free prize", "prize prize free", "free call"]
HAM = ["home lunch", "lunch call", "home", "call home lunch"]


def fitted(C: float = 10.0) -> MeanVectorModel:
    return fit_mean_vectors(SPAM + HAM, [1] * 4 + [0] * 4, 2, WORDS, TABLE, C)


def test_logistic_regression_separates_its_training_texts_and_scores_are_logits():
    from sklearn.linear_model import LogisticRegression

    model = fitted()
    assert model.predict(SPAM + HAM).tolist() == [1] * 4 + [0] * 4
    documents = model.document_vectors(["free lunch", "prize"])
    reference = LogisticRegression(C=10.0, max_iter=2000).fit(model.document_vectors(SPAM + HAM), [1] * 4 + [0] * 4)
    probabilities = torch.softmax(model.scores(["free lunch", "prize"]), dim=-1)
    np.testing.assert_allclose(probabilities.numpy(), reference.predict_proba(documents), atol=1e-5)


def test_a_saved_model_loads_with_weights_only_and_predicts_the_same(tmp_path):
    model = fitted()
    path = tmp_path / "best.ckpt"
    config = {"model": {"type": "mean_vectors"}}
    atomic_save(baseline_checkpoint(model, config, ["ham", "spam"], {"C": 10.0}), path)
    loaded = load_model(path, task="baseline")
    assert isinstance(loaded.model, MeanVectorModel) and loaded.labels == ["ham", "spam"]
    queries = ["free prize", "see you at home", "", "unknown words only"]
    torch.testing.assert_close(loaded.model.scores(queries), model.scores(queries))
    assert loaded.model.words == WORDS and torch.equal(loaded.model.vectors, torch.from_numpy(TABLE))


def test_a_checkpoint_whose_table_does_not_fit_its_words_is_refused(tmp_path):
    checkpoint = baseline_checkpoint(fitted(), {}, ["ham", "spam"], {"C": 1.0})
    checkpoint["state_dict"]["model.vectors"] = checkpoint["state_dict"]["model.vectors"][:3]
    atomic_save(checkpoint, tmp_path / "cut.ckpt")
    with pytest.raises(CheckpointError, match="do not fit together"):
        load_model(tmp_path / "cut.ckpt", task="baseline")


# -- through nmt.train -------------------------------------------------------------------------------


def write_sms(path: Path) -> Path:
    spam = ["free prize call now {}", "win cash prize text {} now", "urgent claim your free reward {}"]
    ham = ["see you at lunch {}", "are you home yet {}", "ok call me later {}", "running late sorry {}"]
    rows = [("spam", spam[i % 3].format(i)) for i in range(60)] + [("ham", ham[i % 4].format(i)) for i in range(240)]
    path.write_text("".join(f"{label}\t{text}\n" for label, text in rows), encoding="utf-8")
    return path


def write_word2vec(path: Path) -> Path:
    """A word2vec text file in which spam words point one way and ham words the other."""
    rng = np.random.default_rng(0)
    spam = "free prize win cash urgent claim reward text".split()
    ham = "see you lunch home yet ok me later running late sorry".split()
    rows = [(w, np.r_[2.0, rng.normal(size=3)]) for w in spam] + [(w, np.r_[-2.0, rng.normal(size=3)]) for w in ham]
    lines = [f"{len(rows)} 4"] + [f"{w} {' '.join(f'{x:.4f}' for x in v)}" for w, v in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_nmt_train_fits_it_on_the_classifiers_split_and_the_evaluator_agrees(tmp_path):
    import importlib

    from nmt.cli.train import train

    corpus, vectors = write_sms(tmp_path / "SMSSpamCollection"), write_word2vec(tmp_path / "vectors.w2v.txt")
    run_dir = tmp_path / "run"
    overrides = ["experiment=sms_mean_vectors", f"data.path={corpus}", f"model.vectors={vectors}"]
    metrics = train(check_run_config(compose_config([*overrides, f"+run_dir={run_dir}"])))
    assert metrics["test/acc"] == 1.0
    report = json.loads((run_dir / "report_test.json").read_text())
    evaluator = importlib.import_module("nmt.cli.evaluate_classifier")
    vectors.unlink()  # the checkpoint holds the table
    again = evaluator.evaluate(str(run_dir / "checkpoints" / "best.ckpt"), "test", {}, None)
    assert again["confusion_matrix"] == report["confusion_matrix"]


@pytest.mark.parametrize("experiment", ["sms_mean_vectors", "imdb_mean_vectors"])
def test_the_presets_need_a_vector_file(experiment, tmp_path):
    with pytest.raises(ConfigError, match="model.vectors is required by model.type=mean_vectors") as error:
        validate_config(compose_config([f"experiment={experiment}"]))
    assert "\n" not in str(error.value)
    vectors = write_word2vec(tmp_path / "v.txt")
    validate_config(compose_config([f"experiment={experiment}", f"model.vectors={vectors}"]))


@pytest.mark.parametrize(
    "content, message",
    [(None, "model.vectors=.*: no such file"), ("lonely\n", "model.vectors: .*a word without a vector")],
)
def test_a_missing_or_unreadable_vector_file_is_one_line(tmp_path, content, message):
    path = tmp_path / "vectors.txt"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as error:
        check_run_config(compose_config(["experiment=sms_mean_vectors", f"model.vectors={path}"]))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("text", ["free prize ! free", "home lunch call", "nothing known"])
def test_contributions_sum_to_the_labels_margin_word_by_word(text):
    model = fitted()
    scores = model.scores([text])[0].double()
    explained = model.contributions(text, 1)
    assert [word for word, _ in explained] == model.split(text)  # every word, repeats included, in order
    bias = float(model.bias[1] - model.bias[0])
    assert sum(w for _, w in explained) + bias == pytest.approx(float(scores[1] - scores[0]))
    unknown = [w for word, w in explained if word not in model]
    assert all(w == 0.0 for w in unknown)
