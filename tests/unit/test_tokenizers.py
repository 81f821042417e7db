"""Behaviour of nmt.data.tokenizers: special ids, round trips, training, checkpoint state."""

from __future__ import annotations

import io
import random

import pytest
import sentencepiece as spm
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from nmt.data.text import normalize_text
from nmt.data.tokenizers import (
    BOS_ID,
    EOS,
    EOS_ID,
    PAD,
    PAD_ID,
    SPECIAL_TOKENS,
    UNK,
    UNK_ID,
    UNK_SURFACE,
    CharTokenizer,
    SentencePieceTokenizer,
    Tokenizer,
    build_tokenizers,
    tokenizer_from_state,
)

TRICKY_TEXT = "L’été « très » chaud,  naïve café — 🙂 ok"

_WORDS = (
    "le la les un une chat chien maison rouge bleu très grand petit été café naïve "
    "mange court dort « » ’ , . — the cat dog house red blue big small eats runs sleeps"
).split()


def _corpus(n_lines: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 12))) for _ in range(n_lines)]


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return _corpus(400, seed=0)


@pytest.fixture(scope="module")
def char_tokenizer(corpus) -> CharTokenizer:
    return CharTokenizer.train([*corpus, TRICKY_TEXT])


@pytest.fixture(scope="module")
def spm_unigram(corpus) -> SentencePieceTokenizer:
    return SentencePieceTokenizer.train(corpus, vocab_size=120, model_type="unigram")


@pytest.fixture(scope="module")
def spm_bpe(corpus) -> SentencePieceTokenizer:
    return SentencePieceTokenizer.train(corpus, vocab_size=120, model_type="bpe")


@pytest.fixture(params=["spm_unigram", "spm_bpe"])
def spm_tokenizer(request) -> SentencePieceTokenizer:
    return request.getfixturevalue(request.param)


@pytest.fixture(params=["char_tokenizer", "spm_unigram", "spm_bpe"])
def any_tokenizer(request) -> Tokenizer:
    return request.getfixturevalue(request.param)


def _reload_through_torch(tokenizer: Tokenizer) -> Tokenizer:
    buffer = io.BytesIO()
    torch.save({"tokenizer": tokenizer.to_state()}, buffer)
    buffer.seek(0)
    return Tokenizer.from_state(torch.load(buffer, weights_only=True)["tokenizer"])


# --- both kinds -------------------------------------------------------------------------


def test_special_constants_are_consistent():
    assert SPECIAL_TOKENS == ("<pad>", "<unk>", "<bos>", "<eos>")
    assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)


def test_special_ids_map_to_special_pieces(any_tokenizer):
    assert any_tokenizer.id_to_piece([PAD_ID, UNK_ID, BOS_ID, EOS_ID]) == list(SPECIAL_TOKENS)


def test_encode_adds_no_bos_or_eos(any_tokenizer, corpus):
    ids = any_tokenizer.encode(corpus[0])
    assert BOS_ID not in ids and EOS_ID not in ids and PAD_ID not in ids


def test_round_trip_of_training_text_is_exact(any_tokenizer, corpus):
    for text in corpus[:50]:
        assert any_tokenizer.decode(any_tokenizer.encode(text)) == text


def test_encode_batch_equals_encode_per_text(any_tokenizer, corpus):
    assert any_tokenizer.encode_batch(corpus[:20]) == [any_tokenizer.encode(t) for t in corpus[:20]]


def test_decode_drops_pad_and_bos_and_stops_at_first_eos(any_tokenizer, corpus):
    ids = any_tokenizer.encode(corpus[0])
    tail = any_tokenizer.encode(corpus[1])
    assert any_tokenizer.decode([BOS_ID, *ids, EOS_ID, *tail, EOS_ID, PAD_ID]) == corpus[0]
    assert any_tokenizer.decode([BOS_ID, *ids, PAD_ID, PAD_ID]) == corpus[0]


def test_decode_accepts_a_tensor(any_tokenizer, corpus):
    ids = any_tokenizer.encode(corpus[0])
    assert any_tokenizer.decode(torch.tensor([BOS_ID, *ids, EOS_ID])) == corpus[0]


def test_decode_batch_decodes_each_row(any_tokenizer, corpus):
    rows = [[BOS_ID, *any_tokenizer.encode(t), EOS_ID, PAD_ID] for t in corpus[:3]]
    assert any_tokenizer.decode_batch(rows) == corpus[:3]


def test_decode_renders_unk_and_out_of_range_ids_without_crashing(any_tokenizer):
    ids = [*any_tokenizer.encode("le"), UNK_ID, any_tokenizer.vocab_size + 5, -1]
    text = any_tokenizer.decode(ids)
    assert text.startswith("le") and text.count(UNK_SURFACE) == 3


def test_pieces_has_one_entry_per_id(any_tokenizer, corpus):
    for text in [*corpus[:10], "le chat € zz"]:
        assert len(any_tokenizer.pieces(text)) == len(any_tokenizer.encode(text))


def test_state_has_only_plain_types(any_tokenizer):
    def check(value):
        if isinstance(value, dict):
            assert all(isinstance(k, str) for k in value)
            for v in value.values():
                check(v)
        elif isinstance(value, list):
            for v in value:
                check(v)
        else:
            assert isinstance(value, (str, int, float, bool, bytes))

    state = any_tokenizer.to_state()
    check(state)
    assert state["kind"] == any_tokenizer.kind
    assert isinstance(state["format_version"], int)


def test_state_survives_torch_load_weights_only_with_identical_encodings(any_tokenizer, corpus):
    restored = _reload_through_torch(any_tokenizer)
    assert type(restored) is type(any_tokenizer)
    assert restored.vocab_size == any_tokenizer.vocab_size
    texts = [*corpus[:30], TRICKY_TEXT]
    assert restored.encode_batch(texts) == any_tokenizer.encode_batch(texts)


def test_subclass_from_state_rejects_other_kind(char_tokenizer):
    with pytest.raises(TypeError, match="char"):
        SentencePieceTokenizer.from_state(char_tokenizer.to_state())


def test_state_from_a_newer_format_version_is_rejected(char_tokenizer):
    state = {**char_tokenizer.to_state(), "format_version": 999}
    with pytest.raises(ValueError, match="format_version"):
        tokenizer_from_state(state)


def test_state_of_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="kind"):
        tokenizer_from_state({"kind": "wordpiece", "format_version": 1})


# --- char -------------------------------------------------------------------------------


def test_char_round_trip_is_exact_for_spaces_accents_quotes_and_emoji(char_tokenizer):
    ids = char_tokenizer.encode(TRICKY_TEXT)
    assert len(ids) == len(TRICKY_TEXT)
    assert UNK_ID not in ids
    assert char_tokenizer.decode(ids) == TRICKY_TEXT


def test_char_space_is_an_ordinary_token(char_tokenizer):
    assert char_tokenizer.encode("  ") == [char_tokenizer.encode(" ")[0]] * 2
    assert char_tokenizer.encode(" ")[0] >= len(SPECIAL_TOKENS)


def test_char_unknown_character_encodes_to_unk():
    tokenizer = CharTokenizer.train(["abc"])
    assert tokenizer.encode("axc") == [tokenizer.encode("a")[0], UNK_ID, tokenizer.encode("c")[0]]
    assert tokenizer.decode(tokenizer.encode("axc")) == f"a{UNK_SURFACE}c"
    assert tokenizer.pieces("axc") == ["a", "x", "c"]


def test_char_vocab_is_specials_then_descending_frequency_then_codepoint():
    tokenizer = CharTokenizer.train(["cbba", "dca"])  # a:2 b:2 c:2 d:1
    assert tokenizer.id_to_piece(range(tokenizer.vocab_size)) == [*SPECIAL_TOKENS, "a", "b", "c", "d"]


def test_char_vocab_does_not_depend_on_text_order():
    texts = _corpus(100, seed=1)
    shuffled = random.Random(2).sample(texts, len(texts))
    assert CharTokenizer.train(texts).to_state() == CharTokenizer.train(shuffled).to_state()


def test_char_min_freq_maps_rare_characters_to_unk():
    tokenizer = CharTokenizer.train(["aaab", "aab"], min_freq=3)  # a:5 b:2
    assert tokenizer.vocab_size == len(SPECIAL_TOKENS) + 1
    assert tokenizer.encode("ab") == [len(SPECIAL_TOKENS), UNK_ID]


def test_char_max_size_counts_specials_and_keeps_most_frequent():
    tokenizer = CharTokenizer.train(["aaabbc"], max_size=len(SPECIAL_TOKENS) + 2)
    assert tokenizer.id_to_piece(range(tokenizer.vocab_size))[len(SPECIAL_TOKENS) :] == ["a", "b"]


def test_char_encode_batch_of_many_texts_gives_one_id_list_per_text(char_tokenizer, corpus):
    """(Speed is measured by scripts/bench_tokenizers.py, not asserted: a shared CPU makes
    any wall-clock bound either flaky or too loose to catch anything.)"""
    texts = corpus * 10
    batch = char_tokenizer.encode_batch(texts)
    assert len(batch) == len(texts) and batch[: len(corpus)] == batch[-len(corpus) :]
    assert [len(ids) for ids in batch] == [len(text) for text in texts]


# --- sentencepiece ----------------------------------------------------------------------


def test_spm_special_ids_match_constants(spm_tokenizer):
    sp = spm.SentencePieceProcessor(model_proto=spm_tokenizer.model_proto)
    assert (sp.pad_id(), sp.unk_id(), sp.bos_id(), sp.eos_id()) == (PAD_ID, UNK_ID, BOS_ID, EOS_ID)
    assert sp.id_to_piece(PAD_ID) == PAD and sp.id_to_piece(EOS_ID) == EOS and sp.id_to_piece(UNK_ID) == UNK


def test_spm_uses_subwords_not_characters(spm_tokenizer, corpus):
    assert len(spm_tokenizer.encode(corpus[0])) < len(corpus[0])


def test_spm_unknown_character_encodes_to_unk(spm_tokenizer):
    assert UNK_ID in spm_tokenizer.encode("chat ✓")


def test_spm_round_trip_keeps_repeated_leading_and_trailing_spaces(spm_tokenizer):
    text = "  le  chat   dort "
    assert spm_tokenizer.decode(spm_tokenizer.encode(text)) == text


def test_spm_does_not_nfkc_normalise_text(corpus):
    tokenizer = SentencePieceTokenizer.train([*corpus, "ﬁn … ½"], vocab_size=120)
    assert tokenizer.decode(tokenizer.encode("ﬁn … ½")) == "ﬁn … ½"


def test_spm_tiny_corpus_with_too_large_vocab_size_does_not_fail():
    tokenizer = SentencePieceTokenizer.train(["a b c", "a b"], vocab_size=5000)
    assert tokenizer.vocab_size < 5000


def test_spm_training_is_deterministic(corpus):
    first = SentencePieceTokenizer.train(corpus, vocab_size=100, max_sentences=200, seed=3)
    second = SentencePieceTokenizer.train(corpus, vocab_size=100, max_sentences=200, seed=3)
    assert first.model_proto == second.model_proto


def test_spm_save_and_load_model_file(spm_tokenizer, corpus, tmp_path):
    path = tmp_path / "spm.model"
    spm_tokenizer.save(path)
    loaded = SentencePieceTokenizer.load(path)
    assert loaded.encode_batch(corpus[:10]) == spm_tokenizer.encode_batch(corpus[:10])


def test_spm_rejects_model_with_other_special_ids(corpus):
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus), model_writer=model, vocab_size=60, minloglevel=2
    )  # SentencePiece defaults: unk=0, bos=1, eos=2, no pad
    with pytest.raises(ValueError, match="special ids"):
        SentencePieceTokenizer(model.getvalue())


def test_spm_train_without_texts_is_a_clear_error():
    with pytest.raises(ValueError, match="no texts"):
        SentencePieceTokenizer.train([], vocab_size=50)


# --- build_tokenizers -------------------------------------------------------------------


def _cfg(**overrides):
    base = {
        "type": "char",
        "joint": False,
        "min_freq": 1,
        "vocab_size": 100,
        "model_type": "unigram",
        "character_coverage": 1.0,
        "max_sentences": None,
    }
    return OmegaConf.create({**base, **overrides})


@pytest.mark.parametrize("kind", ["char", "sentencepiece"])
def test_build_joint_returns_the_same_object_for_both_sides(kind):
    source, target = _corpus(200, seed=4), [t.upper() for t in _corpus(200, seed=5)]
    src_tok, tgt_tok = build_tokenizers(_cfg(type=kind, joint=True), source, target)
    assert src_tok is tgt_tok
    assert src_tok.kind == kind
    assert UNK_ID not in src_tok.encode(source[0] + target[0])


@pytest.mark.parametrize("kind", ["char", "sentencepiece"])
def test_build_separate_trains_one_tokenizer_per_side(kind):
    source, target = _corpus(200, seed=4), [t.upper() for t in _corpus(200, seed=5)]
    src_tok, tgt_tok = build_tokenizers(_cfg(type=kind, joint=False), source, target)
    assert src_tok is not tgt_tok
    assert src_tok.to_state() != tgt_tok.to_state()
    assert UNK_ID in src_tok.encode(target[0])


def test_build_accepts_spm_as_alias_for_sentencepiece():
    src_tok, _ = build_tokenizers(_cfg(type="spm", joint=True), _corpus(50, 0), _corpus(50, 1))
    assert isinstance(src_tok, SentencePieceTokenizer)


def test_build_unknown_type_names_allowed_values_and_override():
    with pytest.raises(ValueError) as error:
        build_tokenizers(_cfg(type="wordpiece"), ["a"], ["b"])
    message = str(error.value)
    assert "wordpiece" in message and "char" in message and "sentencepiece" in message
    assert "tokenizer=char" in message and "tokenizer=spm" in message


# --- properties (Hypothesis) ---------------------------------------------------------------

PROPERTY_SETTINGS = settings(max_examples=50, deadline=None)

any_text = st.one_of(
    st.text(max_size=60),  # every category: controls, combining marks, emoji, other scripts
    st.lists(st.sampled_from(_WORDS), max_size=12).map(" ".join),  # the training vocabulary
    st.text(st.sampled_from(" \t\u00a0\u202f\u200bab'’«»"), max_size=30),  # spaces and quotes
    st.text(min_size=200, max_size=2000),  # long
)


@pytest.fixture(scope="module", params=["char_tokenizer", "spm_unigram", "spm_bpe"])
def trained_tokenizer(request) -> Tokenizer:
    return request.getfixturevalue(request.param)


@PROPERTY_SETTINGS
@given(text=any_text)
def test_char_round_trip_is_exact_for_any_normalised_text(text):
    text = normalize_text(text)
    tokenizer = CharTokenizer.train([text])
    ids = tokenizer.encode(text)
    assert len(ids) == len(text) and UNK_ID not in ids
    assert tokenizer.decode(ids) == text


@PROPERTY_SETTINGS
@given(text=any_text)
def test_char_unknown_characters_and_only_those_decode_to_the_unk_mark(char_tokenizer, text):
    text = normalize_text(text)
    known = set(char_tokenizer.id_to_piece(range(len(SPECIAL_TOKENS), char_tokenizer.vocab_size)))
    expected = "".join(c if c in known else UNK_SURFACE for c in text)
    assert char_tokenizer.decode(char_tokenizer.encode(text)) == expected


@PROPERTY_SETTINGS
@given(text=any_text)
def test_encode_never_fails_and_ids_stay_in_range(trained_tokenizer, text):
    ids = trained_tokenizer.encode(text)
    assert all(isinstance(i, int) and 0 <= i < trained_tokenizer.vocab_size for i in ids)
    assert not {PAD_ID, BOS_ID, EOS_ID} & set(ids)
    assert trained_tokenizer.encode_batch([text, text]) == [ids, ids]
    assert len(trained_tokenizer.pieces(text)) == len(ids)


@PROPERTY_SETTINGS
@given(text=any_text)
def test_decode_of_encode_is_stable_after_one_round(trained_tokenizer, text):
    """What a tokenizer cannot represent is lost once (to ⁇), then the text is a fixed point."""
    once = trained_tokenizer.decode(trained_tokenizer.encode(normalize_text(text)))
    assert trained_tokenizer.decode(trained_tokenizer.encode(once)) == once


@PROPERTY_SETTINGS
@given(words=st.lists(st.sampled_from(_WORDS), min_size=1, max_size=15))
def test_text_of_known_words_round_trips_exactly(trained_tokenizer, words):
    text = " ".join(words)
    assert trained_tokenizer.decode(trained_tokenizer.encode(text)) == text


@PROPERTY_SETTINGS
@given(ids=st.lists(st.integers(-5, 200), max_size=40))
def test_decode_accepts_any_ids_and_stops_at_the_first_eos(trained_tokenizer, ids):
    text = trained_tokenizer.decode(ids)
    assert isinstance(text, str)
    if EOS_ID in ids:
        assert text == trained_tokenizer.decode(ids[: ids.index(EOS_ID)])
