"""The GPU recipes (bf16-mixed, 16-mixed, DDP) with their precision plugins, clipping and
fused Adam, run here on the CPU, so that CI catches what no GPU run would; and the values
that must stay float32 under autocast do."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import lightning as L
import pytest
import torch
import torch.nn.functional as F

from conftest import REPO, compose_config, tiny_overrides
from nmt.cli.train import train
from nmt.inference.checkpoint import load_checkpoint, model_state_dict
from nmt.models.seq2seq import Seq2Seq
from nmt.tasks.translation import sequence_loss


def first_grad_norm(run_dir) -> float:
    with open(run_dir / "csv" / "metrics.csv") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("train/grad_norm")]
    return float(rows[0]["train/grad_norm"])


@pytest.mark.parametrize(
    "overrides",
    [
        ["trainer=gpu", "trainer.accelerator=cpu"],  # bf16-mixed, clip 1.0
        ["trainer=gpu", "trainer.accelerator=cpu", "trainer.precision=16-mixed"],  # fp16 + loss scaling
        ["trainer=gpu", "trainer.accelerator=cpu", "trainer.precision=16-mixed", "optim.fused=false"],
        # the default recipe's tied output layer (target embedding = output weights)
        ["trainer=gpu", "trainer.accelerator=cpu", "model.tie_embeddings=true", "model.embed_size=64"],
        [
            "trainer=gpu",
            "trainer.accelerator=cpu",
            "trainer.precision=16-mixed",
            "model.tie_embeddings=true",
            "model.embed_size=64",
        ],
    ],
    ids=[
        "gpu-bf16-mixed",
        "gpu-16-mixed-fused-adam",
        "gpu-16-mixed-foreach-adam",
        "gpu-bf16-mixed-tied",
        "gpu-16-mixed-tied",
    ],
)
def test_gpu_recipe_trains_on_cpu_with_clipping_and_checkpoints(tiny_corpus, tmp_path, overrides):
    metrics = train(
        compose_config(
            tiny_overrides(
                tiny_corpus,
                tmp_path,
                *overrides,
                "trainer.max_steps=30",
                "trainer.val_check_interval=15",
                "trainer.log_every_n_steps=1",
                "trainer.gradient_clip_val=0.5",
            )
        )
    )
    assert torch.isfinite(torch.tensor(metrics["val/loss"])) and torch.isfinite(torch.tensor(metrics["test/loss"]))
    checkpoint = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert checkpoint["global_step"] == 30
    assert all(torch.isfinite(w).all() and w.dtype == torch.float32 for w in model_state_dict(checkpoint).values())
    if "trainer.precision=16-mixed" in overrides:
        assert checkpoint["MixedPrecision"]["scale"] > 0  # the loss scaler's state is saved for resume


def test_fp16_gradients_are_unscaled_before_clipping(tiny_corpus, tmp_path):
    """The logged norm is the true one (an fp32 run's), not the loss-scaled one (x 65536)."""
    common = ["trainer.max_steps=3", "trainer.log_every_n_steps=1", "test_after_training=false"]
    train(compose_config(tiny_overrides(tiny_corpus, tmp_path / "fp32", *common)))
    train(compose_config(tiny_overrides(tiny_corpus, tmp_path / "fp16", "trainer.precision=16-mixed", *common)))
    assert first_grad_norm(tmp_path / "fp16") == pytest.approx(first_grad_norm(tmp_path / "fp32"), rel=0.05)


def test_clipping_bounds_the_update(tiny_corpus, tmp_path, monkeypatch):
    """With clipping at 1e-3 the gradients the optimiser sees have that norm."""
    seen = []

    class NormSpy(L.Callback):
        def on_train_start(self, trainer, pl_module):
            def after_step(optimizer, args, kwargs):
                grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
                seen.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))

            trainer.optimizers[0].register_step_post_hook(after_step)

    import nmt.training.trainer as trainer_module

    build = trainer_module.build_callbacks
    monkeypatch.setattr(trainer_module, "build_callbacks", lambda *a, **k: build(*a, **k) + [NormSpy()])
    train(
        compose_config(
            tiny_overrides(
                tiny_corpus,
                tmp_path,
                "trainer=gpu",
                "trainer.accelerator=cpu",
                "trainer.max_steps=3",
                "trainer.gradient_clip_val=0.001",
                "test_after_training=false",
            )
        )
    )
    assert seen and all(norm == pytest.approx(0.001, rel=1e-3) for norm in seen)


@pytest.mark.parametrize(
    "cell,attention", [("lstm", "bahdanau"), ("gru", "dot"), ("lstm", "general"), ("rnn", "bahdanau")]
)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_recurrent_state_attention_and_loss_stay_float32_under_autocast(cell, attention, dtype):
    torch.manual_seed(0)
    model = Seq2Seq(
        30, 40, embed_size=16, hidden_size=32, cell=cell, dropout=0.0, decoder_layers=2, attention=attention
    )
    src = torch.randint(4, 30, (3, 7))
    lengths = torch.tensor([7, 5, 2])
    tgt_in = torch.randint(4, 40, (3, 6))
    with torch.autocast("cpu", dtype=dtype):
        source, state = model.encode(src, lengths)
        assert source.memory.dtype == torch.float32  # the encoder's recurrence runs in float32
        assert state.hidden.dtype == torch.float32 and state.feed.dtype == torch.float32
        logits, state, weights = model.decode_step(torch.full((3,), 2), state, source)
        assert state.hidden.dtype == torch.float32 and weights.dtype == torch.float32
        if state.cell is not None:
            assert state.cell.dtype == torch.float32
        assert logits.dtype == dtype  # the output layer's matrix product is where autocast pays
        full, attention = model(src, lengths, tgt_in)
        loss, _ = sequence_loss(full, tgt_in)
    assert attention.dtype == torch.float32 and loss.dtype == torch.float32
    reference, reference_attention = model(src, lengths, tgt_in)
    assert (full.float() - reference).abs().max() < 0.1  # same model, half-precision rounding only
    # Scores and softmax in float32: the weights differ only through the half-precision inputs.
    assert (attention - reference_attention).abs().max() < 2e-3


def test_decoder_cells_equal_pytorch_cells_in_float32():
    from nmt.modules.decoder import gru_cell, lstm_cell, rnn_cell

    torch.manual_seed(0)
    x, h, c = torch.randn(4, 10), torch.randn(4, 8), torch.randn(4, 8)
    lstm, gru = torch.nn.LSTMCell(10, 8), torch.nn.GRUCell(10, 8)
    expected_h, expected_c = lstm(x, (h, c))
    actual_h, actual_c = lstm_cell(F.linear(x, lstm.weight_ih, lstm.bias_ih), h, c, lstm.weight_hh, lstm.bias_hh)
    torch.testing.assert_close(actual_h, expected_h)
    torch.testing.assert_close(actual_c, expected_c)
    actual = gru_cell(F.linear(x, gru.weight_ih, gru.bias_ih), h, gru.weight_hh, gru.bias_hh)
    torch.testing.assert_close(actual, gru(x, h))
    elman = torch.nn.RNNCell(10, 8)
    actual = rnn_cell(F.linear(x, elman.weight_ih, elman.bias_ih), h, elman.weight_hh, elman.bias_hh)
    torch.testing.assert_close(actual, elman(x, h))


def test_ddp_recipe_runs_on_cpu_with_two_processes_and_matches_single_process_metrics(tiny_corpus, tmp_path):
    """trainer=ddp (bf16-mixed, gloo, 2 processes); each rank evaluates half of the test set,
    and the reduced metrics equal those of one process testing the same checkpoint."""
    run_dir = tmp_path / "ddp"
    overrides = [o for o in tiny_overrides(tiny_corpus, run_dir) if not o.startswith("+run_dir")]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nmt.train",
            *overrides,
            "trainer=ddp",
            "trainer.accelerator=cpu",
            "trainer.devices=2",
            "trainer.max_steps=20",
            "trainer.val_check_interval=10",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    best = run_dir / "checkpoints" / "best.ckpt"
    with open(run_dir / "csv" / "metrics.csv") as handle:
        logged = {k: float(v) for row in csv.DictReader(handle) for k, v in row.items() if k.startswith("test/") and v}
    # One process, the same checkpoint, the same precision.
    cfg = compose_config(tiny_overrides(tiny_corpus, tmp_path / "single", "trainer=gpu", "trainer.accelerator=cpu"))
    from omegaconf import OmegaConf

    from nmt.inference.checkpoint import checkpoint_tokenizers
    from nmt.tasks import registry
    from nmt.training.trainer import precision_arguments

    tokenizers = tuple(checkpoint_tokenizers(load_checkpoint(best)).values())
    spec = registry.get("translation")
    datamodule = spec.datamodule(cfg, tokenizers)
    task = spec.task(OmegaConf.to_container(cfg, resolve=True), tokenizers)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        use_distributed_sampler=False,
        **precision_arguments(cfg.trainer),
    )
    [single, _] = trainer.test(task, datamodule=datamodule, ckpt_path=str(best), verbose=False)
    assert logged["test/loss"] == pytest.approx(single["test/loss"], rel=1e-5)
    assert logged["test/bleu"] == pytest.approx(single["test/bleu"], abs=1e-9)
