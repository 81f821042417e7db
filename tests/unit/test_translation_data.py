"""``TranslationDataModule``'s own path: corpus -> grouped split -> tokenizers trained on train only."""

from __future__ import annotations

import random
import re

import pytest
from omegaconf import OmegaConf

from conftest import compose_config, write_pairs
from nmt.data.corpora import read_translation_pairs
from nmt.data.text import fold_for_grouping
from nmt.data.tokenizers import UNK_ID
from nmt.data.translation_datamodule import TranslationDataModule

N_GROUPS = 150


def source_mark(group: int) -> str:
    """A character only this group's sources contain (CJK ideographs)."""
    return chr(0x4E00 + group)


def target_mark(group: int) -> str:
    """A character only this group's targets contain (Hangul syllables)."""
    return chr(0xAC00 + group)


def grouped_corpus(seed: int = 0) -> list[tuple[str, str]]:
    """Tatoeba-like pairs: each source sentence comes in several spellings (case,
    punctuation, spacing) with several translations, all marked with the group's characters."""
    rng = random.Random(seed)
    pairs = []
    for group in range(N_GROUPS):
        sentence = f"the {source_mark(group)} sentence number {group}"
        spellings = [sentence.capitalize() + ".", sentence + "!", sentence.upper() + " ?", f"  {sentence} ."]
        for _ in range(rng.randint(1, 4)):
            target = f"la phrase {target_mark(group)} numéro {group} {rng.choice(['!', '.', ''])}".strip()
            pairs.append((rng.choice(spellings), target))
    rng.shuffle(pairs)
    return pairs


def datamodule_for(corpus_path, tokenizer: list[str]) -> TranslationDataModule:
    cfg = compose_config(
        [
            f"data.path={corpus_path}",
            "data.split_cache=null",
            "data.download=false",
            "data.split.train=0.8",
            "data.split.dev=0.1",
            "data.split.test=0.1",
            *tokenizer,
        ]
    )
    cfg = OmegaConf.to_container(cfg, resolve=True)
    return TranslationDataModule(cfg["data"], cfg["tokenizer"], seed=0)


@pytest.fixture(scope="module")
def corpus_path(tmp_path_factory):
    return write_pairs(tmp_path_factory.mktemp("grouped") / "fra.txt", grouped_corpus())


TOKENIZERS = {
    "char": ["tokenizer=char", "tokenizer.min_freq=1"],  # every training character is known
    "sentencepiece": ["tokenizer=spm", "tokenizer.vocab_size=200"],
}


@pytest.fixture(scope="module", params=list(TOKENIZERS))
def prepared(request, corpus_path) -> TranslationDataModule:
    datamodule = datamodule_for(corpus_path, TOKENIZERS[request.param])
    datamodule.setup("fit")
    return datamodule


def groups_in(rows: list[tuple[str, str]]) -> set[int]:
    return {int(re.search(r"\d+", source).group()) for source, _ in rows}


def test_no_source_nor_a_spelling_variant_of_it_is_in_two_splits(prepared):
    splits = prepared.splits
    assert sum(len(rows) for rows in splits.values()) == len(grouped_corpus())
    folded = {name: {fold_for_grouping(source) for source, _ in rows} for name, rows in splits.items()}
    assert not folded["train"] & folded["dev"]
    assert not folded["train"] & folded["test"]
    assert not folded["dev"] & folded["test"]
    groups = {name: groups_in(rows) for name, rows in splits.items()}
    assert groups["train"] | groups["dev"] | groups["test"] == set(range(N_GROUPS))
    assert all(len(groups[name]) >= 5 for name in ("dev", "test"))  # the check is not vacuous


def test_tokenizers_are_trained_on_the_training_split_only(prepared):
    source_tokenizer, target_tokenizer = prepared.build_tokenizers()
    train_groups = groups_in(prepared.splits["train"])
    held_out = groups_in(prepared.splits["dev"]) | groups_in(prepared.splits["test"])
    for group in train_groups:
        assert source_tokenizer.encode(source_mark(group)) != [UNK_ID]
        assert target_tokenizer.encode(target_mark(group)) != [UNK_ID]
    for group in held_out:  # characters seen only in dev or test never reached the vocabularies
        assert UNK_ID in source_tokenizer.encode(source_mark(group)), group
        assert UNK_ID in target_tokenizer.encode(target_mark(group)), group


def test_the_encoded_dev_split_meets_its_unseen_characters_as_unknown(prepared):
    dev = prepared.datasets["dev"]
    assert len(dev) == len(prepared.splits["dev"])  # evaluation splits are kept whole
    assert all(UNK_ID in ids for ids in dev.src_ids)
    train = prepared.datasets["train"]
    assert not any(UNK_ID in ids for ids in train.src_ids)


def test_the_split_is_the_same_for_the_same_seed(corpus_path, prepared):
    again = datamodule_for(corpus_path, TOKENIZERS["char"]).prepare_corpus()
    assert again == prepared.splits


# -- splits given as files (data.train / data.dev / data.test) -------------------------------


def files_datamodule(tmp_path, **files) -> TranslationDataModule:
    overrides = [f"data.{name}={path}" for name, path in files.items()]
    cfg = compose_config(
        [
            "data.path=/nonexistent/fra.txt",
            "data.split_cache=null",
            "data.download=false",
            "data.split.train=0.8",
            "data.split.dev=0.1",
            "data.split.test=0.1",
            "tokenizer=char",
            "tokenizer.min_freq=1",
            *overrides,
        ]
    )
    cfg = OmegaConf.to_container(cfg, resolve=True)
    return TranslationDataModule(cfg["data"], cfg["tokenizer"], seed=0)


def test_given_split_files_are_used_as_they_are(tmp_path):
    corpus = grouped_corpus()
    train, dev, test = corpus[:300], corpus[300:340], corpus[340:]
    paths = {
        name: write_pairs(tmp_path / f"{name}.tsv", rows)
        for name, rows in {"train": train, "dev": dev, "test": test}.items()
    }
    splits = files_datamodule(tmp_path, **paths).prepare_corpus()
    assert splits == {name: read_translation_pairs(path)[0] for name, path in paths.items()}
    assert [len(splits[name]) for name in ("train", "dev", "test")] == [300, 40, len(test)]


def test_splits_not_given_come_from_the_training_file_without_leaks(tmp_path):
    corpus = grouped_corpus()
    train_path = write_pairs(tmp_path / "train.tsv", corpus[:-40])
    test_path = write_pairs(tmp_path / "test.tsv", corpus[-40:])
    splits = files_datamodule(tmp_path, train=train_path, test=test_path).prepare_corpus()
    assert splits["test"] == read_translation_pairs(test_path)[0]
    # dev is carved from the training file (10% of it, with test's 10% going to train), grouped by source
    training_file = read_translation_pairs(train_path)[0]
    assert sorted(splits["train"] + splits["dev"]) == sorted(training_file)
    assert 0.05 < len(splits["dev"]) / len(training_file) < 0.15
    train_groups = {fold_for_grouping(src) for src, _ in splits["train"]}
    assert not any(fold_for_grouping(src) in train_groups for src, _ in splits["dev"])


def test_given_test_file_overlapping_train_is_reported(tmp_path, caplog):
    corpus = grouped_corpus()
    paths = {
        "train": write_pairs(tmp_path / "train.tsv", corpus),
        "dev": write_pairs(tmp_path / "dev.tsv", corpus[:5]),
        "test": write_pairs(tmp_path / "test.tsv", corpus[:7]),
    }
    with caplog.at_level("WARNING", logger="nmt.data"):
        files_datamodule(tmp_path, **paths).prepare_corpus()
    assert "5 of 5 dev sources" in caplog.text and "7 of 7 test sources" in caplog.text


def test_missing_split_file_names_the_setting(tmp_path):
    train = write_pairs(tmp_path / "train.tsv", grouped_corpus())
    with pytest.raises(FileNotFoundError, match=r"data\.dev=.*missing\.tsv does not exist"):
        files_datamodule(tmp_path, train=train, dev=tmp_path / "missing.tsv").prepare_corpus()
