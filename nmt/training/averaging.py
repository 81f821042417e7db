"""Averaging the weights of the last validations into one checkpoint.

The weights at the end of a run wander around a minimum; their average over the last few
validations is usually a little better than any one of them (checkpoint averaging, as in
Vaswani et al. 2017 and most NMT toolkits). :class:`WeightAverage` keeps the network's
weights at the last ``training.average_last`` scheduled validations and at the end of
training writes ``checkpoints/average.ckpt``: an inference-only checkpoint (weights,
tokenizers, config) that every tool loads. ``nmt/cli/average.py`` does the same
for checkpoint files.
"""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path

import lightning as L
import torch

from nmt.inference.checkpoint import MODEL_PREFIX, PAYLOAD_KEY, average_weights
from nmt.training.checkpointing import save_checkpoint_file
from nmt.training.validation import is_scheduled_validation

log = logging.getLogger("nmt.train")

AVERAGE_FILE = "average.ckpt"


class WeightAverage(L.Callback):
    """Writes the average of the weights at the last ``last`` scheduled validations.

    :param dirpath: the run's checkpoint directory.
    """

    def __init__(self, dirpath: str | Path, last: int) -> None:
        if last < 2:
            raise ValueError(f"averaging needs at least 2 snapshots, got training.average_last={last}")
        self.dirpath = Path(dirpath)
        self.snapshots: deque[tuple[int, dict[str, torch.Tensor]]] = deque(maxlen=last)

    def on_validation_end(self, trainer, pl_module) -> None:
        if not is_scheduled_validation(trainer):
            return
        step = trainer.global_step
        if self.snapshots and self.snapshots[-1][0] == step:
            return
        weights = {k: v.detach().to("cpu", copy=True) for k, v in pl_module.model.state_dict().items()}
        self.snapshots.append((step, weights))

    def on_train_end(self, trainer, pl_module) -> None:
        if len(self.snapshots) < 2 or not trainer.is_global_zero:
            return
        steps = [step for step, _ in self.snapshots]
        averaged = average_weights([weights for _, weights in self.snapshots])
        checkpoint: dict = {"state_dict": {MODEL_PREFIX + k: v for k, v in averaged.items()}}
        pl_module.on_save_checkpoint(checkpoint)  # the "nmt" payload: config, tokenizers, labels
        payload = checkpoint[PAYLOAD_KEY]
        payload["inference_only"] = True
        payload["averaged_steps"] = steps
        path = self.dirpath / AVERAGE_FILE
        save_checkpoint_file(
            {PAYLOAD_KEY: payload, "state_dict": checkpoint["state_dict"], "global_step": steps[-1]}, path
        )
        log.info("wrote %s: the average of the weights at steps %s", path, ", ".join(map(str, steps)))
