"""What every training task shares, so that translation and classification do not copy it:
optimiser and schedules, the plateau schedule on the dev metric, gradient clipping with the
non-finite guard, mixed-precision details, and the checkpoint payload."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import lightning as L
import torch

from nmt.data.tokenizers import Tokenizer
from nmt.inference.checkpoint import PAYLOAD_KEY, make_payload
from nmt.tasks.optim import build_optimizer, build_plateau, configure, gradient_norm
from nmt.training.distributed import any_rank_each
from nmt.training.divergence import ExplodingLoss, NonFiniteSteps, TrainingDiverged, first_non_finite
from nmt.training.validation import is_scheduled_validation

log = logging.getLogger("nmt.train")

PLATEAU_KEY = "lr_plateau"
SKIPPED_KEY = "nonfinite_steps"


class TrainingTask(L.LightningModule):
    """Base LightningModule of the tasks.

    Subclasses set :attr:`task_name` and :attr:`monitor` and implement
    :meth:`training_loss`, :meth:`tokenizers`, the evaluation pass shared by validation and
    test (:meth:`_start_eval`, :meth:`_eval_step`, :meth:`_end_eval`) and, if they need more
    than one parameter group, :meth:`parameter_groups`.

    A training step whose loss or gradient norm is not finite changes nothing: its
    gradients are dropped before the optimiser runs, so neither the weights nor Adam's
    moments move. ``training.nonfinite_patience`` such steps in a row stop the run, and so do
    ``training.exploding_loss_patience`` steps in a row whose finite loss is above
    ``training.exploding_loss_factor`` times :meth:`uniform_loss`; the reason is in
    :attr:`divergence` (``nmt.train`` turns it into exit status 1).

    :param config: the resolved run config (plain dict), stored in every checkpoint.
    """

    task_name = "task"
    monitor = "val/loss"
    monitor_mode: Literal["min", "max"] = "max"

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        self.config = dict(config)
        self.plateau: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None
        self._plateau_state: dict | None = None
        training = self.config["training"]
        self.nonfinite = NonFiniteSteps(patience=int(training["nonfinite_patience"]))
        # uniform_loss is set in on_train_start: the subclass builds its tokenizers after this.
        self.exploding = ExplodingLoss(
            uniform_loss=0.0,
            factor=float(training["exploding_loss_factor"]),
            patience=int(training["exploding_loss_patience"]),
        )
        self.divergence: str | None = None
        self._step_loss: torch.Tensor | None = None
        self._checkpoint_lr: float | None = None

    # -- to implement ---------------------------------------------------------------------
    def training_loss(self, batch: Any) -> tuple[torch.Tensor, int]:
        """The mean loss of ``batch`` (a scalar) and the batch size for logging."""
        raise NotImplementedError

    def tokenizers(self) -> dict[str, Tokenizer]:
        """The tokenizers stored in checkpoints, by role."""
        raise NotImplementedError

    def uniform_loss(self) -> float:
        """The training loss of a uniform guess: ``ln`` of the number of outputs of one
        prediction (nats); 0 turns the exploding-loss check off."""
        return 0.0

    def parameter_groups(self) -> Iterable:
        return self.parameters()

    def extra_payload(self) -> dict[str, Any]:
        return {}

    # -- training -------------------------------------------------------------------------
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss, batch_size = self.training_loss(batch)
        self._step_loss = loss.detach()
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        return loss

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        """Clip, and skip the step if the loss or the gradient norm is not finite.

        Called by Lightning after backward, before the optimiser step. With fp16 loss scaling
        and a fused optimiser (which would unscale inside its step) the gradients are
        unscaled here first, so clipping sees their true size.
        """
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        if scaler is not None and getattr(optimizer, "_step_supports_amp_scaling", False):
            scaler.unscale_(optimizer)
        parameters = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        algorithm = getattr(gradient_clip_algorithm, "value", gradient_clip_algorithm) or "norm"
        norm = gradient_norm(parameters, gradient_clip_val, algorithm)
        loss = self._step_loss if self._step_loss is not None else torch.zeros(())
        # One device-to-host copy for both values: the only sync this adds to a step.
        loss_value, norm_value = torch.stack(
            [loss.float().reshape(()), norm.float().to(loss.device).reshape(())]
        ).tolist()
        self.log("train/grad_norm", norm_value, batch_size=1)
        bad = not (math.isfinite(loss_value) and math.isfinite(norm_value))
        if scaler is not None and math.isfinite(loss_value) and scaler.get_scale() >= 1.0:
            # An fp16 overflow with a finite loss is routine: the scaler skips the step and
            # lowers its scale. Only a scale that has collapsed below 1 means divergence.
            bad = False
        # Both decisions in one collective, so that every rank stops at the same step.
        bad, exploded = any_rank_each([bad, self.exploding.above(loss_value)], self.device)
        if not bad:
            self.nonfinite.record_good()
            step, lr = self.trainer.global_step, optimizer.param_groups[0]["lr"]
            if self.exploding.record(step, loss_value, above=exploded):
                self.divergence = self.exploding.message(step, loss_value, lr)
                self.trainer.should_stop = True
            return
        for parameter in parameters:
            parameter.grad = None  # the optimiser skips parameters without a gradient
        if self.nonfinite.record(self.trainer.global_step, loss_value, norm_value):
            self.divergence = self.nonfinite.message(self.trainer.global_step, optimizer.param_groups[0]["lr"])
            self.trainer.should_stop = True
        self.log("train/skipped_steps", float(self.nonfinite.skipped), batch_size=1)

    # -- optimisation ---------------------------------------------------------------------
    def configure_optimizers(self):
        cfg = self.config["optim"]
        optimizer = build_optimizer(self.parameter_groups(), cfg)
        # The plateau schedule is stepped by after_validation, not by Lightning, whose step
        # counter restarts every epoch while validation runs every N global steps.
        self.plateau = build_plateau(optimizer, cfg, mode=self.monitor_mode)
        if self.plateau is not None and self._plateau_state is not None:
            self.plateau.load_state_dict(self._plateau_state)
        # _trainer, not trainer: the property raises when no Trainer is attached (tests, tools).
        return configure(optimizer, cfg, self._trainer.max_steps if self._trainer else None)

    def on_train_start(self) -> None:
        """On resume with another ``optim.lr`` (e.g. after a divergence), scale the restored
        rates of every group, and the schedules' base rates, by new / old."""
        self.exploding.uniform_loss = self.uniform_loss()
        old, new = self._checkpoint_lr, float(self.config["optim"]["lr"])
        self._checkpoint_lr = None
        if not old or float(old) == new:
            return
        ratio = new / float(old)
        for optimizer in self.trainer.optimizers:
            for group in optimizer.param_groups:
                group["lr"] *= ratio
                if "initial_lr" in group:
                    group["initial_lr"] *= ratio
        for config in self.trainer.lr_scheduler_configs:
            config.scheduler.base_lrs = [lr * ratio for lr in config.scheduler.base_lrs]
        log.info("optim.lr changed from %g to %g on resume: learning rates scaled by %g", float(old), new, ratio)

    def after_validation(self) -> None:
        """Step the plateau schedule on the dev metric after a scheduled validation that
        follows the warm-up (an extra validation when a run stops early does not count, so
        that a resumed run takes the same steps as an uninterrupted one)."""
        trainer = self._trainer
        if self.plateau is None or trainer is None or not is_scheduled_validation(trainer):
            return
        score = trainer.callback_metrics.get(self.monitor)
        warmup = int(self.config["optim"]["warmup_steps"])
        if score is not None and trainer.global_step >= warmup:
            self.plateau.step(float(score))

    # -- evaluation: validation and test run the same pass -------------------------------
    def _start_eval(self) -> None:
        """Reset the sums of a validation or test pass."""
        raise NotImplementedError

    def _eval_step(self, batch: Any, dataloader_idx: int = 0) -> None:
        """Add one batch to the sums."""
        raise NotImplementedError

    def _end_eval(self, stage: str) -> None:
        """Log the pass's metrics as ``<stage>/...`` (``val`` or ``test``), reduced across ranks."""
        raise NotImplementedError

    def on_validation_epoch_start(self) -> None:
        self._start_eval()

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(batch, dataloader_idx)

    def on_validation_epoch_end(self) -> None:
        self._end_eval("val")
        self.after_validation()

    def on_test_epoch_start(self) -> None:
        self._start_eval()

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(batch, dataloader_idx)

    def on_test_epoch_end(self) -> None:
        self._end_eval("test")

    # -- checkpoints ----------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        broken = first_non_finite(self.named_parameters())
        if broken is not None:
            raise TrainingDiverged(
                f"refusing to save a checkpoint at step {self.global_step}: parameter {broken} is not "
                "finite; lower optim.lr or raise optim.warmup_steps and resume from the last checkpoint"
            )
        payload = make_payload(self.task_name, self.config, self.tokenizers())
        payload.update(self.extra_payload())
        checkpoint[PAYLOAD_KEY] = payload
        checkpoint[SKIPPED_KEY] = {"skipped": self.nonfinite.skipped, "consecutive": self.nonfinite.consecutive}
        if self.plateau is not None:
            checkpoint[PLATEAU_KEY] = self.plateau.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._plateau_state = checkpoint.get(PLATEAU_KEY)
        saved_optim = ((checkpoint.get(PAYLOAD_KEY) or {}).get("config") or {}).get("optim") or {}
        self._checkpoint_lr = saved_optim.get("lr")
        skipped = checkpoint.get(SKIPPED_KEY) or {}
        self.nonfinite.skipped = int(skipped.get("skipped", 0))
        self.nonfinite.consecutive = int(skipped.get("consecutive", 0))
