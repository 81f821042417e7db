"""Lightning wrapper around :class:`~nmt.models.bilm.BidirectionalLanguageModel` (``task: bilm``):
loss = forward NLL + backward NLL, dev perplexity of each direction, checkpoint payload.

It reads the very batches of ``task: lm`` (:mod:`nmt.data.lm_datamodule`: windows of
``BOS text EOS``, split as for classification), so a biLM pretrained on ``data=imdb|sms|nsmc``
never sees a dev or test text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from nmt.data.lm_datamodule import LanguageModelBatch
from nmt.data.tokenizers import PAD_ID, Tokenizer
from nmt.models.bilm import BidirectionalLanguageModel
from nmt.ops.loss import linear_cross_entropy
from nmt.tasks.base import TrainingTask
from nmt.training.distributed import sum_across_ranks

MONITOR = "val/ppl"  # exp of the mean of both directions' losses (the geometric mean perplexity)
TOKENIZER_ROLE = "text"  # as task=lm: the datamodule and the tools find the tokenizer under it


def window_sequences(batch: LanguageModelBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The whole token sequence of each window: its inputs followed by its last target.

    :return: ``ids`` (batch, len + 1) PAD-padded; ``lengths`` (batch,) = targets + 1;
        ``scored`` (batch, len) bool, True at positions i < number of targets: there the
        forward state predicts ``ids[:, i + 1]`` and the backward state at i + 1 predicts
        ``ids[:, i]``.
    """
    targets = (batch.targets != PAD_ID).sum(1)  # (batch,) >= 1: every window scores a token
    rows = torch.arange(batch.inputs.size(0), device=batch.inputs.device)
    ids = torch.cat([batch.inputs, torch.full_like(batch.inputs[:, :1], PAD_ID)], dim=1)
    ids[rows, targets] = batch.targets[rows, (targets - 1).clamp(min=0)]
    scored = torch.arange(batch.inputs.size(1), device=ids.device).unsqueeze(0) < targets.unsqueeze(1)
    return ids, targets + 1, scored


class BidirectionalLanguageModelTask(TrainingTask):
    """Trains a :class:`BidirectionalLanguageModel`; validates with each direction's
    per-token loss and perplexity (both directions score as many tokens: every token of a
    window but its first from the left, every token but its last from the right).

    Under DDP the summed losses and token counts are added across ranks.
    """

    task_name = "bilm"
    monitor = MONITOR
    monitor_mode = "min"

    def __init__(self, config: Mapping[str, Any], tokenizer: Tokenizer) -> None:
        super().__init__(config)
        self.tokenizer = tokenizer
        self.model = BidirectionalLanguageModel.from_config(config["model"], tokenizer.vocab_size)
        self.label_smoothing = float(config["loss"]["label_smoothing"])
        self._sums = [0.0, 0.0, 0]  # summed forward and backward loss (nats), scored tokens

    def tokenizers(self) -> dict[str, Tokenizer]:
        return {TOKENIZER_ROLE: self.tokenizer}

    def uniform_loss(self) -> float:
        return 2 * math.log(self.tokenizer.vocab_size)  # the training loss adds both directions

    def summed_losses(
        self, batch: LanguageModelBatch, label_smoothing: float
    ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Summed cross-entropy of the forward and of the backward direction (the shared
        output layer fused with the loss, on scored positions only) and their token count."""
        ids, lengths, scored = window_sequences(batch)
        states = self.model.directional_states(ids, lengths)
        output = self.model.output_layer

        def nll(top: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            return linear_cross_entropy(
                self.model.dropout(top[scored]), output.weight, output.bias, targets[scored], label_smoothing
            )

        forward = nll(states.forward[-1][:, :-1], ids[:, 1:])
        backward = nll(states.backward[-1][:, 1:], ids[:, :-1])
        return forward, backward, int(scored.sum())

    def training_loss(self, batch: LanguageModelBatch) -> tuple[torch.Tensor, int]:
        forward, backward, tokens = self.summed_losses(batch, self.label_smoothing)
        return (forward + backward) / max(tokens, 1), batch.inputs.size(0)

    # -- evaluation ---------------------------------------------------------------------------
    def _start_eval(self) -> None:
        self._sums = [0.0, 0.0, 0]

    def _eval_step(self, batch: LanguageModelBatch, dataloader_idx: int = 0) -> None:
        forward, backward, tokens = self.summed_losses(batch, 0.0)
        self._sums[0] += float(forward)
        self._sums[1] += float(backward)
        self._sums[2] += tokens

    def _end_eval(self, stage: str) -> None:
        forward, backward, tokens = sum_across_ranks(self._sums)
        if not tokens:
            return
        forward, backward = forward / tokens, backward / tokens
        self.log(f"{stage}/loss", forward + backward)
        self.log(f"{stage}/ppl_forward", math.exp(min(forward, 50.0)), prog_bar=True)
        self.log(f"{stage}/ppl_backward", math.exp(min(backward, 50.0)), prog_bar=True)
        self.log(f"{stage}/ppl", math.exp(min((forward + backward) / 2, 50.0)))
