"""``model.embeddings.pretrained=PATH``: vectors from a file in each format fill the embedding
of a classifier or a translator, with a coverage report and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from test_classification import sms_overrides, toy_messages, write_sms

from conftest import compose_config, toy_pairs, write_pairs
from nmt.config.checks import ConfigError
from nmt.data.tokenizers import PAD_ID, CharTokenizer, WordTokenizer
from nmt.embeddings.io import write_vectors
from nmt.embeddings.pretrained import PretrainedEmbeddingError, load_pretrained
from nmt.embeddings.vectors import WordVectors
from nmt.tasks.preflight import check_run_config

DIM = 6


def file_vectors() -> WordVectors:
    """Vectors for some of the toy SMS words, one of them only in upper case."""
    words = ["call", "free", "Prize", "home", "see", "you", "zebra"]
    return WordVectors(words, np.arange(len(words) * DIM, dtype=np.float32).reshape(-1, DIM) / 10 + 1)


def tokenizer() -> WordTokenizer:
    return WordTokenizer(["call", "prize", "home", "later", "free"])  # ids 4..8


@pytest.mark.parametrize("format", ["word2vec", "word2vec_binary", "glove", "fasttext"])
def test_each_format_fills_the_rows_of_known_words(tmp_path, format):
    path = write_vectors(file_vectors(), tmp_path / f"vectors.{format}", format)
    embedding = torch.nn.Embedding(9, DIM, padding_idx=PAD_ID)
    report = load_pretrained(embedding, tokenizer(), path, unknown="zeros", seed=0)
    weight = embedding.weight.detach().numpy()
    np.testing.assert_allclose(weight[4], file_vectors()["call"])
    np.testing.assert_allclose(weight[5], file_vectors()["Prize"])  # case-folded match
    np.testing.assert_allclose(weight[8], file_vectors()["free"])
    assert not weight[7].any() and not weight[PAD_ID].any()  # "later" is unknown: zeros
    assert (report.exact, report.case_folded, report.subword) == (3, 1, 0)
    assert report.vocabulary == 5 and report.vocabulary_coverage == pytest.approx(0.8)
    assert report.missing == ["later"] and report.format == ("word2vec" if format == "fasttext" else format)
    assert embedding.weight.requires_grad


def test_token_coverage_counts_the_training_tokens(tmp_path):
    path = write_vectors(file_vectors(), tmp_path / "v.txt", "glove")
    report = load_pretrained(torch.nn.Embedding(9, DIM), tokenizer(), path)
    report.add_token_counts([[4, 4, 7, 1], [8, 5, 7]])  # call call later <unk> | free prize later
    assert report.tokens == 7 and report.tokens_found == 4
    assert "57.1% of the 7 training tokens" in report.summary()
    assert json.loads(json.dumps(report.to_dict()))["token_coverage"] == pytest.approx(4 / 7)


@pytest.mark.parametrize("unknown", ["random", "mean", "zeros"])
def test_unknown_rows_follow_the_rule_and_padding_stays_zero(tmp_path, unknown):
    path = write_vectors(file_vectors(), tmp_path / "v.txt", "glove")
    embedding = torch.nn.Embedding(9, DIM, padding_idx=PAD_ID)
    load_pretrained(embedding, tokenizer(), path, unknown=unknown, seed=3, freeze=True)
    weight = embedding.weight.detach()
    found = weight[[4, 5, 6, 8]]
    assert not weight[PAD_ID].any() and not embedding.weight.requires_grad
    if unknown == "zeros":
        assert not weight[7].any()
    elif unknown == "mean":
        torch.testing.assert_close(weight[7], found.mean(0))
    else:
        assert weight[7].std() > 0 and weight[1].abs().sum() > 0  # <unk> too
        again = torch.nn.Embedding(9, DIM)
        load_pretrained(again, tokenizer(), path, unknown=unknown, seed=3)
        torch.testing.assert_close(again.weight.detach(), weight)  # seeded


def test_fasttext_bin_builds_vectors_for_unseen_words(tmp_path):
    pytest.importorskip("gensim")
    from gensim.models import FastText
    from gensim.models.fasttext import save_facebook_model

    model = FastText(
        [["call", "calls", "home", "free"]] * 30,
        vector_size=DIM,
        min_count=1,
        min_n=2,
        max_n=4,
        bucket=500,
        epochs=1,
        workers=1,
        seed=0,
    )
    path = tmp_path / "m.bin"
    save_facebook_model(model, str(path))
    report = load_pretrained(torch.nn.Embedding(9, DIM), tokenizer(), path)
    assert report.exact == 3 and report.subword == 2  # "prize" and "later" from their n-grams
    assert report.format == "fasttext_bin"


def test_dimension_mismatch_and_wrong_tokenizer_are_clear_errors(tmp_path):
    path = write_vectors(file_vectors(), tmp_path / "v.txt", "word2vec")
    with pytest.raises(
        PretrainedEmbeddingError, match="holds 6-dimensional vectors but .* model.embed_size=8: set model.embed_size=6"
    ):
        load_pretrained(torch.nn.Embedding(9, 8), tokenizer(), path)
    chars = CharTokenizer.train(["abc"])
    with pytest.raises(PretrainedEmbeddingError, match="tokenizer is 'char': use tokenizer=word"):
        load_pretrained(torch.nn.Embedding(chars.vocab_size, DIM), chars, path)


def test_malformed_file_is_named(tmp_path):
    from nmt.embeddings.io import VectorFileError

    path = tmp_path / "broken.vec"
    path.write_text("3 6\ncall 1 2 3 4 5 6\nfree 1 2\n", encoding="utf-8")
    with pytest.raises(VectorFileError, match="line 3: 2 values after the word, expected 6"):
        load_pretrained(torch.nn.Embedding(9, DIM), tokenizer(), path)


# -- through the config and the real training tasks --------------------------------------------
@pytest.fixture(scope="module")
def sms_corpus(tmp_path_factory):
    return write_sms(tmp_path_factory.mktemp("sms_pre") / "SMSSpamCollection", toy_messages(200))


def word_sms(corpus, run_dir, vectors, *extra):
    return sms_overrides(
        corpus,
        run_dir,
        "tokenizer=word",
        "tokenizer.min_freq=1",
        f"model.embed_size={DIM}",
        f"model.embeddings.pretrained={vectors}",
        *extra,
    )


def test_config_errors_come_before_any_data(tmp_path, sms_corpus):
    vectors = write_vectors(file_vectors(), tmp_path / "v.vec", "fasttext")
    check_run_config(compose_config(word_sms(sms_corpus, tmp_path, vectors)))
    with pytest.raises(ConfigError, match="holds 6-dimensional .*set on the command line.*set model.embed_size=6"):
        check_run_config(
            compose_config(word_sms(sms_corpus, tmp_path, vectors, "model.embed_size=16")), {"model.embed_size"}
        )
    cases = [
        (word_sms(sms_corpus, tmp_path, tmp_path / "missing.vec"), "missing.vec: no such file"),
        (word_sms(sms_corpus, tmp_path, vectors, "tokenizer=spm"), "tokenizer.type=sentencepiece: use tokenizer=word"),
        (word_sms(sms_corpus, tmp_path, vectors, "model.embeddings.unknown=ones"), "unknown='ones' is not supported"),
        (
            sms_overrides(sms_corpus, tmp_path, "model.embeddings.freeze=true"),
            "freeze=true needs model.embeddings.pretrained",
        ),
        (word_sms(sms_corpus, tmp_path, vectors, "model.embeddings.format=npy"), "format='npy' is not supported"),
    ]
    for overrides, message in cases:
        with pytest.raises(ConfigError, match=message):
            check_run_config(compose_config(overrides))


def test_vectors_set_the_embedding_size_a_preset_chose(tmp_path, sms_corpus, caplog):
    """Keras's weights= decides the size: a preset's embed_size gives way to the vectors' dimension."""
    vectors = write_vectors(file_vectors(), tmp_path / "v.vec", "fasttext")
    with caplog.at_level("INFO", logger="nmt.tasks.preflight"):
        cfg = check_run_config(compose_config(word_sms(sms_corpus, tmp_path, vectors, "model.embed_size=16")))
    assert cfg.model.embed_size == DIM
    assert f"model.embed_size={DIM} (the preset's 16)" in caplog.text
    corpus = write_pairs(tmp_path / "fra.txt", toy_pairs(80))
    english = write_vectors(WordVectors(["cat", "dog"], np.ones((2, 8))), tmp_path / "en.txt", "glove")
    french = write_vectors(WordVectors(["chat", "maison"], np.ones((2, 10))), tmp_path / "fr.vec", "fasttext")
    translation = [f"data.path={corpus}", "tokenizer=word", "model.embed_size=16", "model.tie_embeddings=false"]
    with pytest.raises(ConfigError, match="holds 10-dimensional .*set by model.embeddings.pretrained"):
        check_run_config(
            compose_config(
                [*translation, f"model.embeddings.pretrained={english}", f"model.embeddings.target_pretrained={french}"]
            )
        )


def test_an_explicit_size_that_disagrees_with_the_vectors_fails_through_hydra(tmp_path, sms_corpus):
    vectors = write_vectors(file_vectors(), tmp_path / "v.vec", "fasttext")
    overrides = word_sms(sms_corpus, tmp_path, vectors, "model.embed_size=16")
    result = subprocess.run(
        [sys.executable, "-m", "nmt.train", *overrides], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "set on the command line" in result.stderr and "set model.embed_size=6" in result.stderr


def test_classifier_trains_with_frozen_pretrained_vectors_and_reports_coverage(tmp_path, sms_corpus):
    from nmt.cli.train import train

    vectors = write_vectors(file_vectors(), tmp_path / "v.w2v.bin", "word2vec_binary")
    run_dir = tmp_path / "run"
    train(
        compose_config(
            word_sms(
                sms_corpus,
                run_dir,
                vectors,
                "model.embeddings.freeze=true",
                "trainer.max_steps=10",
                "test_after_training=false",
            )
        )
    )
    report = json.loads((run_dir / "pretrained_embeddings.json").read_text(encoding="utf-8"))["source"]
    assert report["exact"] == 5 and report["case_folded"] == 1  # call free home see you + prize
    assert 0 < report["token_coverage"] < 1 and report["freeze"]
    from nmt.inference.checkpoint import checkpoint_tokenizers, load_checkpoint, model_state_dict

    checkpoint = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    weight = model_state_dict(checkpoint)["src_embed.weight"]
    source = checkpoint_tokenizers(checkpoint)["source"]
    np.testing.assert_allclose(weight[source.encode("call")[0]].numpy(), file_vectors()["call"])  # frozen: unchanged


def test_translator_takes_source_and_target_vectors(tmp_path):
    from nmt.tasks import registry

    corpus = write_pairs(tmp_path / "fra.txt", toy_pairs(80))
    english = write_vectors(WordVectors(["cat", "dog"], np.ones((2, 8))), tmp_path / "en.txt", "glove")
    french = write_vectors(WordVectors(["chat", "maison"], np.full((2, 8), 2.0)), tmp_path / "fr.vec", "fasttext")
    cfg = compose_config(
        [
            f"data.path={corpus}",
            "data.split_cache=null",
            "tokenizer=word",
            "tokenizer.min_freq=1",
            "model.embed_size=8",
            "model.hidden_size=8",
            f"model.embeddings.pretrained={english}",
            f"model.embeddings.target_pretrained={french}",
        ]
    )
    check_run_config(cfg)
    spec = registry.get("translation")
    datamodule = spec.datamodule(cfg, None)
    source, target = datamodule.build_tokenizers()
    task = spec.task(OmegaConf.to_container(cfg, resolve=True), (source, target))
    np.testing.assert_allclose(task.model.src_embed.weight[source.encode("cat")[0]].detach().numpy(), 1.0)
    np.testing.assert_allclose(task.model.tgt_embed.weight[target.encode("maison")[0]].detach().numpy(), 2.0)
    assert task.pretrained.reports["source"].exact == 2 and task.pretrained.reports["target"].exact == 2
