"""Divergence: a non-finite loss or gradient skips the step (weights and Adam state
untouched), is counted, and enough of them in a row stop the run; no checkpoint holds NaN.
A finite loss far above a uniform guess's, step after step, stops the run too."""

from __future__ import annotations

import math
import subprocess
import sys

import lightning as L
import pytest
import torch

from conftest import REPO, compose_config, tiny_overrides
from nmt.cli.train import train
from nmt.inference.checkpoint import model_state_dict
from nmt.tasks.translation import TranslationTask
from nmt.training.divergence import ExplodingLoss, TrainingDiverged


def poison_steps(monkeypatch, steps: set[int] | None = None, from_step: int | None = None) -> None:
    """Make the training loss NaN at the given global steps (or from one on)."""
    original = TranslationTask.training_loss

    def poisoned(self, batch):
        loss, size = original(self, batch)
        step = self.trainer.global_step
        if (steps and step in steps) or (from_step is not None and step >= from_step):
            loss = loss * float("nan")
        return loss, size

    monkeypatch.setattr(TranslationTask, "training_loss", poisoned)


class Snapshots(L.Callback):
    """Weights and Adam moments at the start of chosen steps."""

    def __init__(self, steps: set[int]) -> None:
        self.steps, self.taken = steps, {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step in self.steps:
            optimizer = trainer.optimizers[0]
            moments = [optimizer.state[p]["exp_avg"].clone() for p in pl_module.parameters() if p in optimizer.state]
            self.taken[trainer.global_step] = ({k: v.clone() for k, v in pl_module.model.state_dict().items()}, moments)


def with_callback(monkeypatch, callback: L.Callback) -> None:
    import nmt.training.trainer as trainer_module

    build = trainer_module.build_callbacks
    monkeypatch.setattr(trainer_module, "build_callbacks", lambda *a, **k: build(*a, **k) + [callback])


def test_non_finite_steps_are_skipped_without_touching_weights_or_adam_state(tiny_corpus, tmp_path, monkeypatch):
    poison_steps(monkeypatch, steps={5, 6})
    snapshots = Snapshots({5, 7, 8})
    with_callback(monkeypatch, snapshots)
    train(
        compose_config(
            tiny_overrides(
                tiny_corpus,
                tmp_path,
                "trainer.max_steps=15",
                "test_after_training=false",
                "training.nonfinite_patience=3",
            )
        )
    )
    before, after = snapshots.taken[5], snapshots.taken[7]
    for name, tensor in before[0].items():
        assert torch.equal(after[0][name], tensor), name
    assert all(torch.equal(a, b) for a, b in zip(before[1], after[1]))
    later = snapshots.taken[8]
    assert any(not torch.equal(later[0][k], v) for k, v in after[0].items())  # training went on
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["nonfinite_steps"] == {"skipped": 2, "consecutive": 0}
    assert "train/skipped_steps" in (tmp_path / "csv" / "metrics.csv").read_text()


def test_consecutive_non_finite_steps_stop_the_run_and_last_checkpoint_stays_finite(tiny_corpus, tmp_path, monkeypatch):
    poison_steps(monkeypatch, from_step=8)
    snapshots = Snapshots({8})
    with_callback(monkeypatch, snapshots)
    with pytest.raises(TrainingDiverged, match=r"4 consecutive steps .* from step 8 to step 11.*optim\.lr"):
        train(
            compose_config(
                tiny_overrides(
                    tiny_corpus,
                    tmp_path,
                    "trainer.max_steps=40",
                    "test_after_training=false",
                    "training.nonfinite_patience=4",
                )
            )
        )
    for name in ("last.ckpt", "best.ckpt"):
        weights = model_state_dict(torch.load(tmp_path / "checkpoints" / name, weights_only=True))
        assert all(torch.isfinite(w).all() for w in weights.values()), name
    last = model_state_dict(torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True))
    for name, tensor in snapshots.taken[8][0].items():
        assert torch.equal(last[name], tensor), name


def test_a_checkpoint_with_non_finite_weights_is_refused(tiny_translation_checkpoint):
    from nmt.inference.checkpoint import checkpoint_config, checkpoint_tokenizers, load_checkpoint

    checkpoint = load_checkpoint(tiny_translation_checkpoint)
    tokenizers = checkpoint_tokenizers(checkpoint)
    task = TranslationTask(checkpoint_config(checkpoint), tokenizers["source"], tokenizers["target"])
    with torch.no_grad():
        task.model.output_layer.weight[0, 0] = float("nan")
    with pytest.raises(TrainingDiverged, match="output_layer.weight"):
        task.on_save_checkpoint({})


def test_fp16_overflow_with_a_finite_loss_is_left_to_the_loss_scaler(tiny_corpus, tmp_path, monkeypatch):
    from lightning.pytorch.plugins.precision import MixedPrecision

    import nmt.training.trainer as trainer_module

    # A huge initial scale makes the first steps overflow, as fp16 training does at its start.
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**60)
    monkeypatch.setattr(
        trainer_module, "precision_arguments", lambda cfg: {"plugins": [MixedPrecision("16-mixed", "cpu", scaler)]}
    )
    train(
        compose_config(
            tiny_overrides(
                tiny_corpus,
                tmp_path,
                "trainer.max_steps=30",
                "test_after_training=false",
                "training.nonfinite_patience=3",
            )
        )
    )
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["nonfinite_steps"]["skipped"] == 0
    assert scaler.get_scale() < 2.0**50  # the scaler did skip overflowing steps and lowered its scale


def test_cli_exits_1_with_one_line_when_training_diverges(tiny_corpus, tmp_path):
    overrides = [o for o in tiny_overrides(tiny_corpus, tmp_path) if not o.startswith("+run_dir")]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nmt.train",
            *overrides,
            "optim.lr=1e37",
            "training.nonfinite_patience=3",
            "test_after_training=false",
            f"hydra.run.dir={tmp_path}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "training diverged" in errors[0] and "optim.lr" in errors[0]
    assert "Traceback" not in result.stderr


# -- a finite loss that explodes --------------------------------------------------------------------
def test_exploding_loss_counts_only_consecutive_steps_above_the_threshold():
    watch = ExplodingLoss(uniform_loss=math.log(100), factor=10.0, patience=3)
    assert watch.threshold == pytest.approx(10 * math.log(100))
    losses = [1e6, 1e6, 4.0, 1e6, 1e6, 1e6]
    stops = [watch.record(step, loss, watch.above(loss)) for step, loss in enumerate(losses)]
    assert stops == [False, False, False, False, False, True]
    assert watch.first_of_streak == 3
    assert "from step 3 to step 5" in watch.message(5, 1e6, lr=1e6)


def test_exploding_loss_check_can_be_turned_off():
    for watch in (ExplodingLoss(math.log(100), factor=0), ExplodingLoss(math.log(100), patience=0), ExplodingLoss(0.0)):
        assert not watch.above(1e30)


def test_a_healthy_run_with_label_smoothing_never_counts_as_exploded(tiny_corpus, tmp_path):
    # The strictest setting: a single step above 10 x ln(V) would stop the run.
    train(
        compose_config(
            tiny_overrides(
                tiny_corpus,
                tmp_path,
                "trainer.max_steps=40",
                "test_after_training=false",
                "loss.label_smoothing=0.1",
                "training.exploding_loss_patience=1",
            )
        )
    )
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


def test_a_huge_learning_rate_stops_the_run_although_the_loss_stays_finite(tiny_corpus, tmp_path):
    with pytest.raises(TrainingDiverged, match=r"training exploded: .* 5 steps in a row.*optim\.lr \(now 1e\+06\)"):
        train(
            compose_config(
                tiny_overrides(
                    tiny_corpus,
                    tmp_path,
                    "trainer.max_steps=60",
                    "optim.lr=1e6",
                    "test_after_training=false",
                    "training.exploding_loss_patience=5",
                )
            )
        )


def test_cli_exits_1_with_one_line_when_the_loss_explodes(tiny_corpus, tmp_path):
    overrides = [o for o in tiny_overrides(tiny_corpus, tmp_path) if not o.startswith("+run_dir")]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nmt.train",
            *overrides,
            "optim.lr=1e6",
            "training.exploding_loss_patience=5",
            "test_after_training=false",
            f"hydra.run.dir={tmp_path}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "training exploded" in errors[0] and "lower optim.lr" in errors[0]
    assert "Traceback" not in result.stderr
