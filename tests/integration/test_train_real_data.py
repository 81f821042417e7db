"""A few hundred training steps on the real Tatoeba corpus (slow; needs ../shared/data)."""

from __future__ import annotations

import csv

import pytest
import torch

from conftest import compose_config

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("experiment", ["spm_bahdanau", "char_dot"])
def test_a_few_hundred_steps_on_fra_txt_reduce_dev_loss(shared_data, tmp_path, experiment):
    from nmt.cli.train import train

    corpus = shared_data / "fra.txt.xz"
    if not corpus.is_file():
        pytest.skip(f"{corpus} not found")
    cfg = compose_config(
        [
            f"experiment={experiment}",
            f"data.path={corpus}",
            f"data.split_cache={tmp_path / 'splits'}",
            "data.bleu_sentences=200",
            "model.hidden_size=128",
            "model.embed_size=128",
            "trainer.max_steps=300",
            "trainer.val_check_interval=150",
            "trainer.num_sanity_val_steps=0",
            "trainer.enable_progress_bar=false",
            "trainer.limit_val_batches=5",
            "test_after_training=false",
            f"+run_dir={tmp_path / 'run'}",
        ]
        + (["tokenizer.max_sentences=50000"] if experiment.startswith("spm") else [])
    )
    torch.manual_seed(0)
    train(cfg)
    with open(tmp_path / "run" / "csv" / "metrics.csv") as metrics:
        rows = list(csv.DictReader(metrics))
    dev_losses = [float(r["val/loss"]) for r in rows if r.get("val/loss")]
    assert len(dev_losses) == 2 and dev_losses[1] < dev_losses[0]
    assert dev_losses[1] < (4.5 if experiment.startswith("spm") else 2.0)
    assert (tmp_path / "run" / "checkpoints" / "best.ckpt").is_file()
