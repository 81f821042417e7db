"""``TranslationDataModule``'s own path: corpus -> grouped split -> tokenizers trained on train only."""

from __future__ import annotations

import random
import re

import pytest
from omegaconf import OmegaConf

from nmt.data.text import fold_for_grouping
from nmt.data.tokenizers import UNK_ID
from nmt.data.translation_datamodule import TranslationDataModule
from conftest import compose_config, write_pairs

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
    cfg = compose_config([f"data.path={corpus_path}", "data.split_cache=null", "data.download=false",
                          "data.split.train=0.8", "data.split.dev=0.1", "data.split.test=0.1", *tokenizer])
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
