"""MorphemeTokenizer: Hangul-only cleaning, stopwords, tags, vocabulary, checkpoint state, config errors.

Tests that analyse text need Kiwi (the korean extra) and skip without it; the cleaning, the stopword
lists, the config checks and the missing-extra error do not.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import sys
from pathlib import Path

import pytest
import torch

from conftest import FAST_TRAINER, compose_config
from nmt.cli.common import EXIT_USER_ERROR
from nmt.config.checks import ConfigError, validate_config
from nmt.data import korean
from nmt.data.classification_datamodule import ClassificationDataModule
from nmt.data.korean import STOPWORD_LISTS, clean_hangul, is_stopword, resolve_stopwords
from nmt.data.tokenizers import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SPECIAL_TOKENS,
    UNK_ID,
    UNK_SURFACE,
    MorphemeTokenizer,
    Tokenizer,
    build_tokenizers,
    tokenizer_from_state,
)
from nmt.inference.checkpoint import PAYLOAD_KEY, checkpoint_tokenizers, load_checkpoint, make_payload

needs_kiwi = pytest.mark.needs("kiwipiepy")

REVIEWS = [
    "재밌었어요 ㅋㅋ!! 10점",
    "이 영화 진짜 추천한다",
    "배우들 연기가 좀 별로였다... 1점도 아깝다",
    "OST가 좋았어요 :)",
    "",
]

POSITIVE = ["재밌었어요 최고", "진짜 좋은 영화 추천", "감동적이다 10점", "배우 연기 최고 재밌다"]
NEGATIVE = ["지루하고 별로였다", "돈 아깝다 1점", "최악의 영화 시간 낭비", "연기 별로 지루함"]


@pytest.fixture(scope="module")
def morphemes() -> MorphemeTokenizer:
    pytest.importorskip("kiwipiepy")
    return MorphemeTokenizer.train(REVIEWS)


# -- cleaning and stopwords (no analyser) ---------------------------------------------------------
def test_hangul_only_keeps_syllables_jamo_digits_and_single_spaces():
    assert clean_hangul("굳 ㅋ!! 10점 :) OST가   최고 ♥") == "굳 ㅋ 10점 가 최고"
    assert clean_hangul("ㅠㅠ...") == "ㅠㅠ"
    assert clean_hangul("!!! ^^ good") == ""


def test_stopwords_are_none_a_named_list_or_the_given_words():
    assert resolve_stopwords(None) == ()
    course = resolve_stopwords("course")
    assert course == STOPWORD_LISTS["course"] and {"의", "가", "으로", "하다"} <= set(course)
    assert resolve_stopwords(["은", "는", "은"]) == ("은", "는")
    with pytest.raises(ValueError, match="tokenizer.stopwords=course"):
        resolve_stopwords("nltk")


def test_a_dictionary_form_stopword_drops_a_predicate_stem_only():
    stop = frozenset(["하다", "이"])
    assert is_stopword("하", "XSV", stop) and is_stopword("하", "VV", stop)
    assert not is_stopword("하", "NNG", stop)  # 하 (a noun: "under") is not the verb 하다
    assert is_stopword("이", "JKS", stop) and is_stopword("가볍", "VA-I", frozenset(["가볍다"]))


# -- analysis ---------------------------------------------------------------------------------------
@needs_kiwi
def test_hangul_only_drops_punctuation_and_latin_before_analysis():
    cleaned = MorphemeTokenizer([], hangul_only=True)
    raw = MorphemeTokenizer([], hangul_only=False)
    assert cleaned.split("재밌었어요 ㅋㅋ!! 10점") == ["재밌", "었", "어요", "ㅋㅋ", "10", "점"]
    assert "!!" in raw.split("재밌었어요 ㅋㅋ!! 10점")
    assert cleaned.split("OST가 좋았어요 :)")[0] == "가" and "OST" in raw.split("OST가 좋았어요 :)")


@needs_kiwi
def test_course_stopwords_drop_particles_and_the_light_verb_but_keep_the_noun():
    plain = MorphemeTokenizer([])
    stopped = MorphemeTokenizer([], stopwords=resolve_stopwords("course"))
    assert plain.split("이 영화 진짜 추천한다") == ["이", "영화", "진짜", "추천", "하", "ᆫ다"]
    assert stopped.split("이 영화 진짜 추천한다") == ["영화", "진짜", "추천", "ᆫ다"]


@needs_kiwi
def test_tags_make_form_slash_tag_tokens():
    tagged = MorphemeTokenizer([], tags=True)
    assert tagged.split("추천한다") == ["추천/NNG", "하/XSV", "ᆫ다/EF"]
    trained = MorphemeTokenizer.train(["추천한다"], tags=True)
    assert trained.id_to_piece(range(4, trained.vocab_size)) == ["ᆫ다/EF", "추천/NNG", "하/XSV"]


@needs_kiwi
def test_empty_and_fully_cleaned_texts_encode_to_no_ids(morphemes):
    assert morphemes.encode("") == [] and morphemes.encode("!!! ^^") == []
    assert morphemes.encode_batch(["", "재밌었어요", ""]) == [[], morphemes.encode("재밌었어요"), []]
    assert morphemes.decode([]) == ""


# -- vocabulary, encode, decode -------------------------------------------------------------------
@needs_kiwi
def test_vocabulary_is_specials_then_frequency_then_code_point(morphemes):
    vocab = morphemes.id_to_piece(range(morphemes.vocab_size))
    assert vocab[:4] == list(SPECIAL_TOKENS)
    counts = {m: sum(morphemes.split(t).count(m) for t in REVIEWS) for m in vocab[4:]}
    assert [(-counts[m], m) for m in vocab[4:]] == sorted((-counts[m], m) for m in vocab[4:])
    assert MorphemeTokenizer.train(REVIEWS).to_state() == morphemes.to_state()  # deterministic


@needs_kiwi
def test_min_freq_and_vocab_size_cap():
    texts = ["영화 영화 영화 배우 배우 감독"]
    assert MorphemeTokenizer.train(texts, min_freq=2).id_to_piece(range(6)) == [*SPECIAL_TOKENS, "영화", "배우"]
    capped = MorphemeTokenizer.train(texts, vocab_size=5)
    assert capped.vocab_size == 5 and capped.encode("영화 배우 감독") == [4, UNK_ID, UNK_ID]
    with pytest.raises(ValueError, match="min_freq"):
        MorphemeTokenizer.train(texts, min_freq=0)
    with pytest.raises(ValueError, match="vocab_size"):
        MorphemeTokenizer.train(texts, vocab_size=3)


@needs_kiwi
def test_encode_batch_equals_encode_and_pieces_align_with_ids(morphemes):
    fresh = MorphemeTokenizer.train(REVIEWS)
    assert fresh.encode_batch(REVIEWS) == [morphemes.encode(t) for t in REVIEWS]  # the training texts' cache
    assert morphemes.encode_batch(REVIEWS) == [morphemes.encode(t) for t in REVIEWS]
    for text in REVIEWS:
        assert len(morphemes.pieces(text)) == len(morphemes.encode(text))


@needs_kiwi
def test_unknown_morphemes_encode_to_unk_and_decode_to_the_unk_mark(morphemes):
    ids = morphemes.encode("영화 뮤지컬")
    assert ids[0] != UNK_ID and ids[-1] == UNK_ID
    assert morphemes.pieces("영화 뮤지컬")[-1] == "뮤지컬"  # the surface, not <unk>
    assert morphemes.decode(ids) == f"영화 {UNK_SURFACE}"


@needs_kiwi
def test_decode_joins_morphemes_and_drops_specials(morphemes):
    ids = morphemes.encode("재밌었어요")
    assert morphemes.decode([BOS_ID, *ids, EOS_ID, 5, PAD_ID]) == "재밌 었 어요"
    assert morphemes.decode(torch.tensor(ids)) == "재밌 었 어요"
    assert morphemes.decode([-1, 10**6]) == f"{UNK_SURFACE} {UNK_SURFACE}"


# -- state and checkpoints --------------------------------------------------------------------------
@needs_kiwi
def test_state_keeps_every_option_and_the_analyser_version_through_torch_load():
    tokenizer = MorphemeTokenizer.train(REVIEWS, stopwords="course", tags=True, hangul_only=False)
    buffer = io.BytesIO()
    torch.save({"tokenizer": tokenizer.to_state()}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)["tokenizer"]
    assert state["analyser"] == "kiwi" and state["analyser_version"] == importlib.import_module("kiwipiepy").__version__
    assert state["stopwords"] == list(STOPWORD_LISTS["course"]) and state["tags"] and not state["hangul_only"]
    restored = Tokenizer.from_state(state)
    assert isinstance(restored, MorphemeTokenizer) and restored.to_state() == tokenizer.to_state()
    assert restored.encode_batch(REVIEWS) == tokenizer.encode_batch(REVIEWS)
    assert restored.split("OST가 좋았어요 :)")[0] == "OST/SL"


@needs_kiwi
def test_another_analyser_version_is_logged_not_refused(morphemes, caplog):
    state = {**morphemes.to_state(), "analyser_version": "0.0.1"}
    with caplog.at_level(logging.WARNING, logger="nmt.data.tokenizers"):
        restored = tokenizer_from_state(state)
    assert restored.encode("재밌었어요") == morphemes.encode("재밌었어요")
    assert "0.0.1" in caplog.text


@needs_kiwi
def test_build_tokenizers_reads_every_morpheme_option():
    cfg = {"type": "morpheme", "vocab_size": 100, "min_freq": 1, "stopwords": "course", "tags": True}
    tokenizer, same = build_tokenizers({**cfg, "joint": True}, REVIEWS, [])
    assert tokenizer is same and isinstance(tokenizer, MorphemeTokenizer)
    assert tokenizer.tags and "하다" in tokenizer.stopwords and "이/JKS" not in tokenizer.id_to_piece(range(100))


def write_nsmc(directory: Path) -> tuple[Path, Path]:
    """A toy NSMC: 48 train rows (one empty document), 16 test rows."""
    rows = [(i, (POSITIVE if i % 2 else NEGATIVE)[i // 2 % 4], i % 2) for i in range(64)]
    rows[6] = (6, "", 0)
    paths = []
    for name, part in (("train", rows[:48]), ("test", rows[48:])):
        path = directory / f"ratings_{name}.txt"
        path.write_text("id\tdocument\tlabel\n" + "".join(f"{i}\t{t}\t{y}\n" for i, t, y in part), encoding="utf-8")
        paths.append(path)
    return paths[0], paths[1]


def nsmc_overrides(train_path: Path, test_path: Path, *extra: str) -> list[str]:
    return [
        "experiment=nsmc_morpheme",
        f"data.path={train_path}",
        f"data.test_path={test_path}",
        "data.batch_size=8",
        "tokenizer.min_freq=1",
        "model.embed_size=16",
        "model.hidden_size=16",
        "data.split.train=0.75",
        "data.split.dev=0.25",
        "trainer.max_time=null",
        *FAST_TRAINER,
        *extra,
    ]


@needs_kiwi
def test_the_empty_document_batches_as_one_padding_token(tmp_path):
    train_path, test_path = write_nsmc(tmp_path)
    cfg = compose_config(nsmc_overrides(train_path, test_path))
    datamodule = ClassificationDataModule.from_config(cfg)
    datamodule.setup("fit")
    (tokenizer,) = datamodule.build_tokenizers()
    assert isinstance(tokenizer, MorphemeTokenizer) and "의" not in tokenizer.id_to_piece(range(tokenizer.vocab_size))
    batches = list(datamodule.train_dataloader()) + list(datamodule.val_dataloader())
    assert sum(len(b.labels) for b in batches) == 48 and all(int(b.src_lengths.min()) >= 1 for b in batches)


@needs_kiwi
def test_training_saves_the_morpheme_tokenizer_in_the_checkpoint(tmp_path):
    from nmt.cli.train import train
    from nmt.inference.classifier import Classifier, load_classifier

    train_path, test_path = write_nsmc(tmp_path)
    run_dir = tmp_path / "run"
    cfg = compose_config(
        nsmc_overrides(train_path, test_path, "trainer.max_steps=6", "test_after_training=false", f"+run_dir={run_dir}")
    )
    train(cfg)
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    (tokenizer,) = checkpoint_tokenizers(load_checkpoint(checkpoint)).values()
    assert isinstance(tokenizer, MorphemeTokenizer)
    assert tokenizer.stopwords == STOPWORD_LISTS["course"] and not tokenizer.tags and tokenizer.hangul_only
    assert tokenizer.encode("재밌었어요 최고") == [
        tokenizer.id_to_piece(range(100)).index(m) for m in ("재밌", "었", "어요", "최고")
    ]
    predictions = Classifier(load_classifier(checkpoint), torch.device("cpu")).predict(["재밌었어요 최고", ""])
    assert [p.label in ("negative", "positive") for p in predictions] == [True, True]
    assert predictions[0].tokens == ["재밌", "었", "어요", "최고"]


def test_a_checkpoint_with_morphemes_without_kiwipiepy_is_a_one_line_error(monkeypatch, tmp_path, capsys):
    from nmt.cli.classify import main
    from nmt.data.tokenizers import CharTokenizer
    from nmt.models.classifier import TextClassifier

    cfg = compose_config(["experiment=nsmc_bilstm_attn", "model.embed_size=8", "model.hidden_size=8"])
    from omegaconf import OmegaConf

    config = OmegaConf.to_container(cfg, resolve=True)
    model = TextClassifier.from_config(config["model"], 6, 2)
    payload = make_payload("classification", config, {"source": CharTokenizer(["영", "화"])})
    payload["tokenizers"]["source"] = {
        "kind": "morpheme",
        "format_version": 1,
        "morphemes": ["영화", "재밌"],
        "analyser": "kiwi",
        "analyser_version": "0.24.1",
        "hangul_only": True,
        "stopwords": [],
        "tags": False,
    }
    payload["labels"] = ["negative", "positive"]
    path = tmp_path / "morpheme.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}, PAYLOAD_KEY: payload}, path)
    monkeypatch.setitem(sys.modules, "kiwipiepy", None)  # "import kiwipiepy" now raises ModuleNotFoundError
    korean.analyser.cache_clear()
    try:
        assert main([str(path), "--input", str(tmp_path / "none.txt")]) == EXIT_USER_ERROR
    finally:
        korean.analyser.cache_clear()
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "kiwipiepy" in err and "pip install 'nmt[korean]'" in err


# -- config -----------------------------------------------------------------------------------------
def test_the_preset_composes_and_validates_when_kiwipiepy_is_there():
    cfg = compose_config(["experiment=nsmc_morpheme"])
    if importlib.util.find_spec("kiwipiepy") is None:
        with pytest.raises(ConfigError, match=r"pip install 'nmt\[korean\]'"):
            validate_config(cfg)
        return
    typed = validate_config(cfg)
    assert typed.tokenizer.type == "morpheme" and typed.tokenizer.stopwords == "course"
    listed = validate_config(compose_config(["experiment=nsmc_morpheme", "tokenizer.stopwords=['의','가']"]))
    assert list(listed.tokenizer.stopwords) == ["의", "가"]
    base = compose_config(["experiment=nsmc_bilstm_attn"])
    assert (cfg.model.embed_size, cfg.model.hidden_size) == (base.model.embed_size, base.model.hidden_size)


def test_morphemes_are_refused_for_translation():
    with pytest.raises(ConfigError, match="tokenizer.type=morpheme is for Korean classification"):
        validate_config(compose_config(["tokenizer=morpheme"]))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("tokenizer.stopwords=nltk", "tokenizer.stopwords='nltk' is not a built-in list"),
        ("tokenizer.stopwords=['의','영 화']", "tokenizer.stopwords must be null"),
        ("tokenizer.analyser=okt", "tokenizer.analyser='okt' is not supported: use tokenizer.analyser=kiwi"),
    ],
)
def test_bad_morpheme_options_are_one_line_config_errors(override, message):
    with pytest.raises(ConfigError, match=message) as error:
        validate_config(compose_config(["experiment=nsmc_morpheme", override]))
    assert "\n" not in str(error.value)


def test_a_missing_kiwipiepy_is_a_config_error_naming_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "kiwipiepy" else real(name, *a))
    with pytest.raises(ConfigError, match=r"needs kiwipiepy, from the 'korean' extra: pip install 'nmt\[korean\]'"):
        validate_config(compose_config(["experiment=nsmc_morpheme"]))
