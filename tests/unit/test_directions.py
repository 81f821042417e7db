"""Several directions in one model: direction names, the tag tokenizer, the data a model sees,
data.reverse, and the default recipe's data left as it was."""

from __future__ import annotations

import hashlib
import json

import pytest
from omegaconf import OmegaConf

from nmt.data.directions import Direction, DirectionError, choose_direction, parse_directions, short_code
from nmt.data.tokenizers import (
    BOS_ID,
    CharTokenizer,
    SentencePieceTokenizer,
    TaggedTokenizer,
    WordTokenizer,
    tokenizer_from_state,
)
from nmt.data.translation_datamodule import TranslationDataModule
from tests.conftest import compose_config, toy_pairs, write_pairs

EN_FR = [Direction("en", "fr"), Direction("fr", "en")]


# --------------------------------------------------------------------------- direction names


def test_directions_use_short_codes_of_the_pair_files_language():
    assert short_code("deu") == "de" and short_code("fra") == "fr"
    assert short_code("tok") == "tok"  # no two-letter code: kept
    assert parse_directions(["en-de", "de-en"], "deu") == [Direction("en", "de"), Direction("de", "en")]
    assert str(Direction("en", "de")) == "en-de"


@pytest.mark.parametrize(
    ("names", "fragment"),
    [(["en-de"], "en-fr and/or fr-en"), (["en-fr", "en-fr"], "listed twice"), ([], "empty"), (["enfr"], "enfr")],
)
def test_bad_directions_are_one_line_errors_naming_the_allowed_ones(names, fragment):
    with pytest.raises(DirectionError, match=fragment) as error:
        parse_directions(names, "fra")
    assert "\n" not in str(error.value)


def test_the_first_direction_is_the_default_and_to_or_direction_pick_another():
    assert choose_direction(EN_FR) == Direction("en", "fr")
    assert choose_direction(EN_FR, to="en") == Direction("fr", "en")
    assert choose_direction(EN_FR, direction="fr-en") == Direction("fr", "en")
    assert choose_direction(None) is None


def test_a_direction_the_model_lacks_and_any_direction_of_a_single_direction_model_are_errors():
    with pytest.raises(
        DirectionError, match="not trained to translate into de: use one of its directions, en-fr, fr-en"
    ):
        choose_direction(EN_FR, to="de")
    with pytest.raises(DirectionError, match="not trained to translate de-en"):
        choose_direction(EN_FR, direction="de-en")
    with pytest.raises(DirectionError, match="one direction only"):
        choose_direction(None, to="fr")


# --------------------------------------------------------------------------- the tag tokenizer

TEXTS = ["the cat sees a dog.", "le chat voit un chien.", "a small red house.", "une petite maison rouge."] * 20


@pytest.mark.parametrize(
    "inner",
    [
        lambda: CharTokenizer.train(TEXTS),
        lambda: WordTokenizer.train(TEXTS),
        lambda: SentencePieceTokenizer.train(TEXTS, vocab_size=40),
    ],
    ids=["char", "word", "sentencepiece"],
)
def test_a_tag_is_the_first_source_token_and_stays_one_piece(inner):
    base = inner()
    tokenizer = TaggedTokenizer(base, ["<2fr>", "<2en>"])
    assert tokenizer.vocab_size == base.vocab_size + 2
    ids = tokenizer.encode("<2en> le chat voit un chien.")
    assert ids[0] == tokenizer.tag_id("<2en>") == base.vocab_size + 1
    assert ids[1:] == base.encode("le chat voit un chien.")
    assert tokenizer.pieces("<2fr> the cat.")[0] == "<2fr>"
    assert tokenizer.id_to_piece(ids)[0] == "<2en>"
    assert tokenizer.decode(ids) == base.decode(base.encode("le chat voit un chien."))  # the tag is not text
    assert tokenizer.encode("the cat.") == base.encode("the cat.")  # no tag: the inner tokenizer's ids
    # The inner tokenizer alone never produces a tag's id, whatever the text.
    assert max(base.encode("<2fr> <2en>"), default=0) < base.vocab_size


def test_the_tags_travel_in_the_tokenizer_state():
    tokenizer = TaggedTokenizer(CharTokenizer.train(TEXTS), ["<2fr>", "<2en>"])
    rebuilt = tokenizer_from_state(tokenizer.to_state())
    assert isinstance(rebuilt, TaggedTokenizer) and rebuilt.tags == ["<2fr>", "<2en>"]
    assert rebuilt.encode("<2fr> the cat.") == tokenizer.encode("<2fr> the cat.")
    assert BOS_ID not in rebuilt.encode("<2fr> the cat.")


# --------------------------------------------------------------------------- the data a model sees


def datamodule(corpus, *overrides: str, tokenizer: str = "char") -> TranslationDataModule:
    cfg = compose_config([f"data.path={corpus}", "data.split_cache=null", f"tokenizer={tokenizer}", *overrides])
    data = OmegaConf.to_container(cfg.data, resolve=True)
    return TranslationDataModule(data, OmegaConf.to_container(cfg.tokenizer, resolve=True))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_pairs(tmp_path_factory.mktemp("directions") / "fra.txt", toy_pairs(200, seed=3))


def test_two_directions_see_every_pair_once_each_way_with_the_target_tag_first(corpus):
    single = datamodule(corpus)
    both = datamodule(corpus, "data.directions=[en-fr,fr-en]")
    both.setup()
    source, target = both.build_tokenizers()
    assert isinstance(source, TaggedTokenizer) and source.tags == ["<2fr>", "<2en>"]
    train = single.prepare_corpus()["train"]
    dataset = both.datasets["train"]
    assert len(dataset) == 2 * len(train)
    for i, (en, fr) in enumerate(train):
        assert dataset.src_ids[i] == [source.tag_id("<2fr>"), *source.encode(en)]
        assert dataset.tgt_ids[i] == target.encode(fr)
        j = len(train) + i
        assert dataset.src_ids[j] == [source.tag_id("<2en>"), *source.encode(fr)]
        assert dataset.tgt_ids[j] == target.encode(en)
    # Each side's tokenizer read both languages: no French character is unknown to the source side.
    assert all(1 not in source.encode(fr) for _, fr in train)


def test_reverse_swaps_the_pairs_but_holds_out_the_same_ones(corpus):
    forward = datamodule(corpus).prepare_corpus()
    reverse = datamodule(corpus, "data.reverse=true").prepare_corpus()
    for split in ("train", "dev", "test"):
        assert reverse[split] == [(fr, en) for en, fr in forward[split]]


def test_reverse_and_directions_together_are_refused(corpus):
    with pytest.raises(ValueError, match="data.reverse=true and data.directions"):
        datamodule(corpus, "data.reverse=true", "data.directions=[en-fr]").build_tokenizers()


def test_directions_of_another_language_are_refused_before_training(corpus):
    with pytest.raises(DirectionError, match="en-fr and/or fr-en"):
        datamodule(corpus, "data.directions=[en-de]").build_tokenizers()


# The default recipe's splits and first ids, computed with the code before data.language,
# data.reverse and data.directions existed (commit 185afdc): they must not move.
DEFAULT_SPLITS_SHA256 = "05f75e0792ae1913afdba9a78dd9b54d3dc6c5eeda2da11f1d6e27fc37879432"
DEFAULT_FIRST_IDS = ([[33, 10, 14], [32, 8, 10, 7, 51]], [[52, 7, 14, 8, 10, 4, 47]])


def test_the_default_fra_recipes_data_is_unchanged(tmp_path, monkeypatch):
    monkeypatch.setenv("NMT_DATA_DIR", str(tmp_path))  # no local corpus: the shipped sample
    cfg = compose_config(["data.split_cache=null"])
    data = OmegaConf.to_container(cfg.data, resolve=True)
    assert (data["language"], data["reverse"], data["directions"]) == ("fra", False, None)
    module = TranslationDataModule(data, {"type": "char", "min_freq": 2})
    splits = module.prepare_corpus()
    assert splits["train"][:2] == [("Hi.", "Salut !"), ("Wait!", "Attends !")]
    assert hashlib.sha256(json.dumps(splits, ensure_ascii=False).encode()).hexdigest() == DEFAULT_SPLITS_SHA256
    module.setup()
    train = module.datasets["train"]
    assert (train.src_ids[:2], train.tgt_ids[:1]) == DEFAULT_FIRST_IDS
