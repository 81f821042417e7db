"""ClassificationDataModule: reading by data.name, seeded stratified splits, truncation, batches."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import compose_config
from nmt.data.classification_batching import collate_labelled, truncate
from nmt.data.classification_datamodule import ClassificationDataModule, stratified_grouped_split
from nmt.data.text import fold_for_grouping
from nmt.data.tokenizers import PAD_ID


def data_cfg(experiment: str, *overrides: str):
    return compose_config([f"experiment={experiment}", "data.download=false", *overrides])


# -- truncation ----------------------------------------------------------------------------------
def test_short_texts_are_not_truncated():
    assert truncate([1, 2, 3], 3, "head_tail") == [1, 2, 3]
    assert truncate([1, 2, 3], None, "head") == [1, 2, 3]


def test_head_keeps_the_first_tokens():
    assert truncate(list(range(10)), 4, "head") == [0, 1, 2, 3]


def test_head_tail_keeps_a_quarter_from_the_start_and_the_rest_from_the_end():
    assert truncate(list(range(20)), 8, "head_tail") == [0, 1, 14, 15, 16, 17, 18, 19]
    assert truncate(list(range(20)), 8, "head_tail", head_tokens=5) == [0, 1, 2, 3, 4, 17, 18, 19]
    assert truncate(list(range(20)), 8, "head_tail", head_tokens=8) == list(range(8))


def test_unknown_truncation_is_an_error():
    with pytest.raises(ValueError, match="data.truncation"):
        truncate([1, 2, 3], 2, "middle")


# -- splits --------------------------------------------------------------------------------------
def test_split_keeps_label_shares_and_never_separates_duplicates():
    texts = [f"message {i % 150}" + ("!" if i % 3 else "") for i in range(600)]
    labels = [1 if i % 150 < 20 else 0 for i in range(600)]
    splits = stratified_grouped_split(texts, labels, {"train": 0.8, "dev": 0.1, "test": 0.1}, seed=7)
    assert sorted(i for idx in splits.values() for i in idx) == list(range(600))
    keys = {name: {fold_for_grouping(texts[i]) for i in idx} for name, idx in splits.items()}
    assert not keys["train"] & keys["test"] and not keys["train"] & keys["dev"] and not keys["dev"] & keys["test"]
    for idx in splits.values():
        share = sum(labels[i] for i in idx) / len(idx)
        assert abs(share - 20 / 150) < 0.05
    assert splits == stratified_grouped_split(texts, labels, {"train": 0.8, "dev": 0.1, "test": 0.1}, seed=7)


# -- reading each format ---------------------------------------------------------------------------
def write_nsmc(directory: Path) -> tuple[Path, Path]:
    rows = [(i, f"좋은 영화 {i}" if i % 2 else f"별로였다 {i}", i % 2) for i in range(60)]
    rows[5] = (5, "", 1)  # NSMC has empty documents
    paths = []
    for name, part in (("train", rows[:40]), ("test", rows[40:])):
        path = directory / f"ratings_{name}.txt"
        path.write_text("id\tdocument\tlabel\n" + "".join(f"{i}\t{t}\t{y}\n" for i, t, y in part), encoding="utf-8")
        paths.append(path)
    return paths[0], paths[1]


def write_imdb(path: Path) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["text", "label", "split", "rating", "path"])
        for split in ("train", "test"):
            for i in range(40):
                text = ("Great film,<br /><br />loved it " if i % 2 else "Awful, boring film ") * 3
                writer.writerow([text, i % 2, split, 9 if i % 2 else 2, f"{split}/x/{i}_1.txt"])
    return path


def test_nsmc_dev_is_carved_from_train_and_empty_documents_batch(tmp_path):
    train_path, test_path = write_nsmc(tmp_path)
    cfg = data_cfg(
        "nsmc_bilstm_attn",
        f"data.path={train_path}",
        f"data.test_path={test_path}",
        "tokenizer=char",
        "data.split.train=0.75",
        "data.split.dev=0.25",
    )
    datamodule = ClassificationDataModule.from_config(cfg)
    splits = datamodule.prepare_corpus()
    assert (len(splits["train"]) + len(splits["dev"]), len(splits["test"])) == (40, 20)
    assert Counter(y for _, y in splits["dev"]) == {0: 5, 1: 5}
    datamodule.setup("fit")
    batches = list(datamodule.train_dataloader())
    assert sum(len(b.labels) for b in batches) == len(splits["train"])
    assert all(int(b.src_lengths.min()) >= 1 for b in batches)


def test_empty_text_becomes_one_padding_token():
    batch = collate_labelled([([], 1), ([7, 8], 0)])
    assert batch.src.tolist() == [[PAD_ID, PAD_ID], [7, 8]]
    assert batch.src_lengths.tolist() == [1, 2] and batch.labels.tolist() == [1, 0]


def test_imdb_uses_the_official_test_split_and_truncates(tmp_path):
    path = write_imdb(tmp_path / "imdb_reviews.csv")
    cfg = data_cfg(
        "imdb_bilstm_attn",
        f"data.path={path}",
        "tokenizer=char",
        "data.max_tokens=20",
        "data.truncation=head",
        "data.batch_unit=sentences",
        "data.batch_size=8",
        "data.eval_batch_size=8",
    )
    datamodule = ClassificationDataModule.from_config(cfg)
    splits = datamodule.prepare_corpus()
    assert len(splits["test"]) == 40 and len(splits["train"]) + len(splits["dev"]) == 40
    assert not any("<br" in text for rows in splits.values() for text, _ in rows)
    test = datamodule.dataset("test")
    assert max(test.lengths()) == 20
    assert datamodule.build_tokenizers()[0].decode(test.ids[0]) == splits["test"][0][0][:20]


def test_tokenizer_is_trained_on_the_training_split_only(tmp_path):
    path = write_imdb(tmp_path / "imdb_reviews.csv")
    cfg = data_cfg("imdb_bilstm_attn", f"data.path={path}", "tokenizer=char", "tokenizer.min_freq=1")
    datamodule = ClassificationDataModule.from_config(cfg)
    train_chars = {c for text, _ in datamodule.prepare_corpus()["train"] for c in text}
    (tokenizer,) = datamodule.build_tokenizers()
    assert tokenizer.vocab_size == 4 + len(train_chars)


def test_limit_takes_a_seeded_subset_of_both_labels(tmp_path):
    path = write_imdb(tmp_path / "imdb_reviews.csv")
    cfg = data_cfg("imdb_bilstm_attn", f"data.path={path}", "data.limit=10")
    splits = ClassificationDataModule.from_config(cfg).prepare_corpus()
    assert len(splits["test"]) == 10 and set(y for _, y in splits["test"]) == {0, 1}


def test_missing_corpus_without_download_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("NMT_DATA_DIR", str(tmp_path))
    cfg = data_cfg("imdb_bilstm_attn")  # no copy of IMDB ships with nmt
    with pytest.raises(FileNotFoundError, match="data.path"):
        ClassificationDataModule.from_config(cfg).prepare_corpus()
    assert OmegaConf.select(cfg, "data.name") == "imdb"
