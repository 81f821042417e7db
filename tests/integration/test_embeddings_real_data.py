"""Word embeddings on the real corpora in ../shared/data (slow; skipped when absent)."""

from __future__ import annotations

import json

import pytest
from hydra import compose, initialize_config_dir

from conftest import CONF_DIR, SHARED_DATA

pytestmark = pytest.mark.slow
pytest.importorskip("gensim")
pytest.importorskip("sklearn")


def need(name: str):
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"{path} is not here")
    return path


def embeddings_config(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="embeddings", overrides=list(overrides))


def test_word2vec_on_sms_then_a_classifier_uses_it(tmp_path):
    from nmt.cli.embeddings import run

    corpus = need("SMSSpamCollection.gz")
    report = run(
        embeddings_config(
            "data=sms",
            f"data.path={corpus}",
            "method.dim=32",
            "method.epochs=3",
            "threads=1",
            "evaluate.plot=null",
            f"+run_dir={tmp_path / 'vectors'}",
        )
    )
    assert report["texts"] > 4400 and report["vocabulary"] > 3000  # train + dev of 5,574 messages
    assert report["evaluation"]["wordsim353"]["pairs"] > 50
    neighbours = dict(report["evaluation"]["neighbours"])
    assert "good" in neighbours

    from conftest import compose_config
    from nmt.cli.train import train

    run_dir = tmp_path / "classifier"
    train(
        compose_config(
            [
                "experiment=sms_bilstm_attn",
                f"data.path={corpus}",
                "tokenizer=word",
                "model.embed_size=32",
                "model.hidden_size=32",
                f"model.embeddings.pretrained={report['files']['word2vec_binary']}",
                "trainer.max_steps=30",
                "trainer.max_time=null",
                "trainer.val_check_interval=30",
                "test_after_training=false",
                "threads=1",
                f"+run_dir={run_dir}",
            ]
        )
    )
    coverage = json.loads((run_dir / "pretrained_embeddings.json").read_text(encoding="utf-8"))["source"]
    # the classifier's vocabulary (train split, min_freq 2) lies inside the vectors' (train + dev)
    assert coverage["vocabulary_coverage"] > 0.99 and coverage["token_coverage"] > 0.9


def test_korean_vectors_and_their_picture(tmp_path):
    from nmt.cli.embeddings import run

    need("nsmc_ratings_train.txt.xz")
    need("nsmc_ratings_test.txt.xz")
    report = run(
        embeddings_config(
            "data=nsmc",
            f"data.path={SHARED_DATA / 'nsmc_ratings_train.txt.xz'}",
            f"data.test_path={SHARED_DATA / 'nsmc_ratings_test.txt.xz'}",
            "data.limit=20000",
            "method=fasttext",
            "method.dim=32",
            "method.epochs=1",
            "method.bucket=100000",
            "threads=1",
            "evaluate.plot=pca",
            "evaluate.plot_words=100",
            "evaluate.neighbours=['영화','재미']",
            f"+run_dir={tmp_path}",
        )
    )
    assert (tmp_path / "plot.png").stat().st_size > 10000
    assert "영화" in report["evaluation"]["neighbours"]
