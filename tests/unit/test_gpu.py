"""GPU checks: mixed-precision training and decoding on CUDA (skipped without it)."""

from __future__ import annotations

import pytest
import torch

from conftest import compose_config, tiny_overrides
from nmt.decoding.greedy import greedy_decode
from nmt.models.seq2seq import Seq2Seq

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_mixed_precision_training_runs_and_checkpoints(tiny_corpus, tmp_path, precision):
    from nmt.cli.train import train

    metrics = train(
        compose_config(
            tiny_overrides(
                tiny_corpus,
                tmp_path,
                "trainer=gpu",
                f"trainer.precision={precision}",
                "trainer.max_steps=30",
                "trainer.val_check_interval=15",
            )
        )
    )
    assert torch.isfinite(torch.tensor(metrics["val/loss"]))
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


def test_cuda_and_cpu_greedy_decoding_agree():
    torch.manual_seed(0)
    model = Seq2Seq(30, 30, embed_size=16, hidden_size=32, dropout=0.0).eval()
    src = torch.randint(4, 30, (4, 7))
    lengths = torch.tensor([7, 5, 3, 1])
    cpu = greedy_decode(model, src, lengths, max_len=12).tokens
    gpu = greedy_decode(model.cuda(), src.cuda(), lengths.cuda(), max_len=12).tokens
    assert cpu == gpu
