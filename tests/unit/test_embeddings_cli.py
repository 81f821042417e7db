"""``python -m nmt.embeddings`` and ``python -m nmt.embeddings.query`` on tiny corpora the
tests write: every method trains and writes every format; bad configs are one line, exit 2."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from conftest import CONF_DIR, toy_pairs, write_pairs
from nmt.config.checks import ConfigError, validate_embeddings_config
from nmt.embeddings.io import read_vectors

pytest.importorskip("gensim")
pytest.importorskip("sklearn")

WORDS = (
    "king queen man woman prince princess boy girl paris france berlin germany good bad great awful "
    "movie film actor actress"
).split()


def compose_embeddings(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="embeddings", overrides=overrides)


@pytest.fixture(scope="module")
def tiny_texts(tmp_path_factory) -> Path:
    """An SMS-format corpus (label TAB text) of 400 short messages."""
    rng = random.Random(0)
    lines = [
        f"{rng.choice(['ham', 'spam'])}\t{' '.join(rng.choice(WORDS) for _ in range(rng.randint(4, 12)))}"
        for _ in range(400)
    ]
    path = tmp_path_factory.mktemp("emb") / "SMSSpamCollection"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def tiny_overrides(corpus: Path, run_dir: Path, *extra: str) -> list[str]:
    return [
        "data=sms",
        f"data.path={corpus}",
        "method.dim=8",
        "threads=1",
        "device=cpu",
        "tokenizer.min_freq=1",
        "evaluate.plot=pca",
        "evaluate.plot_words=15",
        "evaluate.restrict_vocab=1000",
        f"+run_dir={run_dir}",
        *extra,
    ]


@pytest.mark.parametrize(
    "method",
    [
        ["method=word2vec", "method.architecture=cbow"],
        ["method=word2vec", "method.architecture=skipgram", "method.loss=hierarchical"],
        ["method=fasttext", "method.bucket=1000", "output.formats=[fasttext,fasttext_bin]"],
        ["method=glove", "method.batch_size=256"],
        ["method=sgns", "method.batch_size=256"],
        ["method=lsa"],
    ],
    ids=["cbow", "skipgram-hs", "fasttext", "glove", "sgns", "lsa"],
)
def test_each_method_trains_writes_every_format_and_a_report(tiny_texts, tmp_path, method):
    from nmt.cli.embeddings import run

    epochs = [] if method == ["method=lsa"] else ["method.epochs=2"]  # counting, no epochs
    report = run(compose_embeddings(tiny_overrides(tiny_texts, tmp_path, *method, *epochs)))
    saved = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert saved["vocabulary"] == len(WORDS) and saved["dim"] == 8 and saved["texts"] > 300
    assert saved["train_cpu_seconds"] >= 0 and "analogies" in saved["evaluation"]
    assert (tmp_path / "plot.png").stat().st_size > 1000
    assert "test" not in saved["splits"]
    files = report["files"]
    first = read_vectors(files[next(iter(f for f in files if f != "plot"))])
    assert sorted(first.words) == sorted(WORDS)
    for format, path in files.items():
        if format == "plot":
            continue
        vectors = read_vectors(path)
        assert vectors.dim == 8 and np.isfinite(vectors.vectors).all()
        np.testing.assert_allclose(vectors.subset(first.words).vectors, first.vectors, atol=1e-5)


def test_translation_corpus_sides(tmp_path):
    from nmt.embeddings.corpus import read_texts

    corpus = write_pairs(tmp_path / "fra.txt", toy_pairs(60))
    cfg = compose_embeddings(["data=fra", f"data.path={corpus}", "data.split_cache=null"])
    english = read_texts(cfg.data, ["train", "dev"], "source")
    french = read_texts(cfg.data, ["train", "dev"], "target")
    assert len(english) == len(french) and "chat" not in " ".join(english).lower()
    assert any("chat" in text.lower() or "chien" in text.lower() for text in french)
    with pytest.raises(ValueError, match="corpus.splits"):
        read_texts(cfg.data, ["training"], "source")


@pytest.mark.parametrize(
    "override, message",
    [
        ("method=bert", "Could not find 'method/bert'"),
        ("method.architecture=sg", "method.architecture='sg' is not supported"),
        ("method.dim=0", "method.dim must be a positive integer"),
        ("method.dim=abc", "bad value for method.dim"),
        ("corpus.splits=[train,valid]", "corpus.splits"),
        ("output.formats=[word2vec,npy]", "unknown \\['npy'\\]"),
        ("output.formats=[fasttext_bin]", "only method=fasttext writes it"),
        ("evaluate.plot=umap", "evaluate.plot='umap' is not supported"),
        ("threads=0", "threads must be a positive integer"),
    ],
)
def test_bad_configs_are_one_line_and_exit_2(capsys, override, message):
    from nmt.cli.embeddings import check_overrides

    with pytest.raises(SystemExit) as exit:
        check_overrides([override])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("python -m nmt.embeddings: error:")
    assert __import__("re").search(message, err), err


def test_fasttext_ngram_bounds_are_checked():
    cfg = compose_embeddings(["method=fasttext", "method.min_n=5", "method.max_n=3"])
    with pytest.raises(ConfigError, match="min_n \\(5\\) must not exceed"):
        validate_embeddings_config(cfg)


# -- the query CLI ------------------------------------------------------------------------------
@pytest.fixture
def query_file(tmp_path) -> Path:
    from test_word_vectors import analogy_vectors

    from nmt.embeddings.io import write_vectors

    return write_vectors(analogy_vectors(), tmp_path / "v.w2v.bin", "word2vec_binary")


def test_query_similar_analogy_and_pairs(query_file, capsys):
    from nmt.cli.query_vectors import main

    assert main([str(query_file), "--analogy", "man", "king", "Woman", "--topn", "1", "--similar", "paris"]) == 0
    out = capsys.readouterr().out
    assert "# man : king :: woman : ?\nqueen\t" in out and "# nearest to paris" in out
    assert main([str(query_file), "--pair", "king", "queen", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["pairs"][0][:2] == ["king", "queen"] and answer["dim"] == 5


def test_query_errors_are_one_line(query_file, tmp_path, capsys):
    from nmt.cli.query_vectors import main

    assert main([str(query_file), "--similar", "emperor"]) == 2
    assert "error: 'emperor' is not in the vocabulary of 9 words" in capsys.readouterr().err
    broken = tmp_path / "broken.txt"
    broken.write_text("a 1 2\nb 1\n", encoding="utf-8")
    assert main([str(broken), "--similar", "a"]) == 2
    assert "line 2: 1 values after the word, expected 2" in capsys.readouterr().err
    assert main([str(query_file)]) == 2
    assert "nothing to do" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit:
        main([str(query_file), "--analogy", "a", "b"])
    assert exit.value.code == 2


def test_query_bias_and_debias_writes_vectors(tmp_path, capsys):
    from test_word_vectors import gendered_vectors

    from nmt.cli.query_vectors import main
    from nmt.embeddings.io import write_vectors

    path = write_vectors(gendered_vectors(), tmp_path / "g.txt", "glove")
    out = tmp_path / "debiased.txt"
    assert main([str(path), "--bias", "nurse", "engineer", "--debias", str(out), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert abs(answer["bias"]["nurse"]) > 0.2 and abs(answer["debiased"]["bias_after"]["nurse"]) < 1e-6
    assert read_vectors(out).words == gendered_vectors().words


def test_query_plot_with_hangul_words_never_fails(tmp_path, capsys):
    from nmt.cli.query_vectors import main
    from nmt.embeddings.io import write_vectors
    from nmt.embeddings.vectors import WordVectors

    words = ["영화", "배우", "재미", "최고", "별로", "movie"]
    path = write_vectors(
        WordVectors(words, np.random.default_rng(0).normal(size=(6, 4))), tmp_path / "ko.vec", "fasttext"
    )
    png = tmp_path / "ko.png"
    assert main([str(path), "--plot", str(png), "--projection", "pca"]) == 0
    assert png.stat().st_size > 1000
