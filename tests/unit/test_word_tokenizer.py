"""WordTokenizer: splitting, vocabulary, unknown words, checkpoint state, and use by both tasks."""

from __future__ import annotations

import io

import pytest
import torch

from conftest import compose_config, tiny_overrides
from nmt.cli.train import train
from nmt.config.checks import ConfigError, validate_config
from nmt.data.tokenizers import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SPECIAL_TOKENS,
    UNK,
    UNK_ID,
    UNK_SURFACE,
    Tokenizer,
    WordTokenizer,
    build_tokenizers,
)
from nmt.inference.checkpoint import checkpoint_tokenizers, load_checkpoint

TEXTS = [
    "The film was great, really great!",
    "I didn't like the film (at all).",
    "A well-made film: great acting.",
    "L’été « très » chaud",
]


@pytest.fixture(scope="module")
def words() -> WordTokenizer:
    return WordTokenizer.train(TEXTS)


def test_split_keeps_inner_apostrophes_and_hyphens_and_splits_punctuation(words):
    assert words.split("I didn't like the well-made film (at all).") == [
        "i",
        "didn't",
        "like",
        "the",
        "well-made",
        "film",
        "(",
        "at",
        "all",
        ")",
        ".",
    ]
    assert words.split("L’été « très »") == ["l’été", "«", "très", "»"]


def test_punctuation_modes_strip_and_keep():
    text = "Great film, really!"
    assert WordTokenizer([], punctuation="strip").split(text) == ["great", "film", "really"]
    assert WordTokenizer([], punctuation="keep").split(text) == ["great", "film,", "really!"]
    with pytest.raises(ValueError, match="tokenizer.punctuation=split, strip or keep"):
        WordTokenizer([], punctuation="remove")


def test_lowercase_option():
    cased = WordTokenizer.train(["The the THE"], lowercase=False)
    assert cased.id_to_piece([4, 5, 6]) == ["THE", "The", "the"]
    folded = WordTokenizer.train(["The the THE"])
    assert folded.vocab_size == len(SPECIAL_TOKENS) + 1 and folded.encode("THE tHe") == [4, 4]


def test_vocabulary_is_specials_then_frequency_then_alphabetical(words):
    vocab = words.id_to_piece(range(words.vocab_size))
    assert vocab[:4] == list(SPECIAL_TOKENS)
    assert vocab[4:8] == ["film", "great", ".", "the"]  # 3, 3, 2, 2 times: ties in code-point order


def test_min_freq_and_vocab_size_cap():
    texts = ["a a a b b c"]
    assert WordTokenizer.train(texts, min_freq=2).id_to_piece(range(6)) == [*SPECIAL_TOKENS, "a", "b"]
    capped = WordTokenizer.train(texts, vocab_size=5)
    assert capped.vocab_size == 5 and capped.encode("a b c") == [4, UNK_ID, UNK_ID]
    with pytest.raises(ValueError, match="min_freq"):
        WordTokenizer.train(texts, min_freq=0)
    with pytest.raises(ValueError, match="vocab_size"):
        WordTokenizer.train(texts, vocab_size=2)


def test_special_token_strings_in_text_are_not_special_ids():
    tokenizer = WordTokenizer.train(["<unk> <pad> word"], punctuation="keep")
    assert tokenizer.encode("<pad> <unk>") == [UNK_ID, UNK_ID]
    assert "<pad>" not in tokenizer.id_to_piece(range(4, tokenizer.vocab_size))


def test_unknown_words_encode_to_unk_and_decode_to_the_unk_mark(words):
    ids = words.encode("great zebra")
    assert ids[1] == UNK_ID
    assert words.decode(ids) == f"great {UNK_SURFACE}"
    assert words.pieces("great zebra") == ["great", "zebra"]  # the surface, not <unk>


def test_decode_attaches_punctuation_and_drops_specials(words):
    ids = words.encode("The film was great, really great!")
    assert words.decode([BOS_ID, *ids, EOS_ID, 7, PAD_ID]) == "the film was great, really great!"
    assert words.decode(words.encode("(at all).")) == "(at all)."
    assert words.decode([-5, 10**6]) == f"{UNK_SURFACE} {UNK_SURFACE}"
    assert words.decode(torch.tensor(ids)) == words.decode(ids)


def test_decode_of_encode_is_stable(words):
    for text in TEXTS:
        once = words.decode(words.encode(text))
        assert words.decode(words.encode(once)) == once


def test_encode_batch_equals_encode(words):
    assert words.encode_batch(TEXTS) == [words.encode(t) for t in TEXTS]


def test_korean_words_are_whole_eojeol():
    tokenizer = WordTokenizer.train(["영화 정말 최고다!", "영화 별로"])
    assert tokenizer.split("영화 정말 최고다!") == ["영화", "정말", "최고다", "!"]
    assert tokenizer.id_to_piece([4]) == ["영화"]


def test_state_survives_torch_load_weights_only(words):
    buffer = io.BytesIO()
    torch.save({"tokenizer": words.to_state()}, buffer)
    buffer.seek(0)
    restored = Tokenizer.from_state(torch.load(buffer, weights_only=True)["tokenizer"])
    assert isinstance(restored, WordTokenizer)
    assert restored.to_state() == words.to_state()
    assert restored.encode_batch(TEXTS) == words.encode_batch(TEXTS)
    stripped = WordTokenizer.train(TEXTS, lowercase=False, punctuation="strip")
    again = Tokenizer.from_state(stripped.to_state())
    assert again.split("Great, film!") == ["Great", "film"]


def test_build_tokenizers_trains_word_tokenizers():
    cfg = {"type": "word", "joint": False, "vocab_size": 100, "min_freq": 1, "lowercase": True, "punctuation": "strip"}
    source, target = build_tokenizers(cfg, ["Hello world."], ["Bonjour le monde !"])
    assert source.id_to_piece([4, 5]) == ["hello", "world"]
    assert target.id_to_piece(range(4, target.vocab_size)) == ["bonjour", "le", "monde"]
    shared, same = build_tokenizers({**cfg, "joint": True}, ["Hello world."], ["Bonjour"])
    assert shared is same and shared.vocab_size == 7


def test_config_group_word_validates_and_rejects_a_bad_punctuation_mode():
    cfg = compose_config(["tokenizer=word"])
    validate_config(cfg)
    assert cfg.tokenizer.type == "word" and cfg.tokenizer.lowercase
    with pytest.raises(ConfigError, match="tokenizer.punctuation"):
        validate_config(compose_config(["tokenizer=word", "tokenizer.punctuation=drop"]))


def test_translation_trains_with_word_tokenizers_saved_in_the_checkpoint(tiny_corpus, tmp_path):
    run_dir = tmp_path / "run"
    overrides = tiny_overrides(
        tiny_corpus,
        run_dir,
        "tokenizer=word",
        "tokenizer.min_freq=1",
        "trainer.max_steps=10",
        "trainer.val_check_interval=10",
        "test_after_training=false",
    )
    train(compose_config(overrides))
    tokenizers = checkpoint_tokenizers(load_checkpoint(run_dir / "checkpoints" / "last.ckpt"))
    assert {type(t) for t in tokenizers.values()} == {WordTokenizer}
    assert tokenizers["source"].encode("The cat.") == [
        tokenizers["source"].id_to_piece(range(100)).index(w) for w in ("the", "cat", ".")
    ]
    assert UNK not in tokenizers["target"].id_to_piece(range(4, tokenizers["target"].vocab_size))
