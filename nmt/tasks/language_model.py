"""Lightning wrapper around :class:`~nmt.models.language_model.LanguageModel`: loss, dev
perplexity and bits per character, a sample at every validation, checkpoint payload."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import torch

from nmt.data.lm_datamodule import LanguageModelBatch
from nmt.data.tokenizers import PAD_ID, Tokenizer
from nmt.decoding.generation import generate
from nmt.models.language_model import LanguageModel
from nmt.ops.loss import linear_cross_entropy
from nmt.tasks.base import TrainingTask
from nmt.training.distributed import sum_across_ranks

log = logging.getLogger("nmt.train")

MONITOR = "val/ppl"
TOKENIZER_ROLE = "text"
SAMPLE_TOKENS = 200  # length of the sample logged at each validation
SAMPLE_TEMPERATURE = 0.8


class LanguageModelTask(TrainingTask):
    """Trains a :class:`LanguageModel` on windows of texts; validates with per-token loss and
    perplexity and with bits per character (comparable across tokenizers: the summed loss
    in bits over the characters of the split's texts, one per text for its end).

    Under DDP the summed loss, token and character counts are added across ranks, so the
    metrics equal those of a single process.
    """

    task_name = "lm"
    monitor = MONITOR
    monitor_mode = "min"

    def __init__(self, config: Mapping[str, Any], tokenizer: Tokenizer) -> None:
        super().__init__(config)
        self.tokenizer = tokenizer
        self.model = LanguageModel.from_config(config["model"], tokenizer.vocab_size)
        self.label_smoothing = float(config["loss"]["label_smoothing"])
        self._sums = [0.0, 0, 0]  # summed loss (nats), target tokens, characters

    def tokenizers(self) -> dict[str, Tokenizer]:
        return {TOKENIZER_ROLE: self.tokenizer}

    def uniform_loss(self) -> float:
        return math.log(self.tokenizer.vocab_size)

    def forward(self, batch: LanguageModelBatch) -> torch.Tensor:
        return self.model(batch.inputs)

    def summed_loss(self, batch: LanguageModelBatch, label_smoothing: float) -> tuple[torch.Tensor, int]:
        """Summed cross-entropy over real targets (the output layer fused with the loss, on
        real positions only) and their number."""
        states = self.model.hidden_states(batch.inputs)
        real = batch.targets != PAD_ID
        targets = batch.targets[real]
        output = self.model.output_layer
        loss = linear_cross_entropy(
            self.model.output_dropout(states[real]), output.weight, output.bias, targets, label_smoothing
        )
        return loss, int(targets.numel())

    def training_loss(self, batch: LanguageModelBatch) -> tuple[torch.Tensor, int]:
        loss_sum, tokens = self.summed_loss(batch, self.label_smoothing)
        return loss_sum / max(tokens, 1), batch.inputs.size(0)

    # -- evaluation ---------------------------------------------------------------------------
    def _start_eval(self) -> None:
        self._sums = [0.0, 0, 0]

    def _eval_step(self, batch: LanguageModelBatch, dataloader_idx: int = 0) -> None:
        nll, tokens = self.summed_loss(batch, 0.0)
        self._sums[0] += float(nll)
        self._sums[1] += tokens
        self._sums[2] += batch.characters

    def _end_eval(self, stage: str) -> None:
        nll, tokens, characters = sum_across_ranks(self._sums)
        if not tokens:
            return
        loss = nll / tokens
        self.log(f"{stage}/loss", loss)
        self.log(f"{stage}/ppl", math.exp(min(loss, 50.0)), prog_bar=True)
        if characters:
            self.log(f"{stage}/bpc", nll / math.log(2) / characters, prog_bar=True)

    def sample_text(
        self, prompt: str = "", max_tokens: int = SAMPLE_TOKENS, temperature: float = SAMPLE_TEMPERATURE, seed: int = 0
    ) -> str:
        """A continuation of ``prompt`` by the current weights (for the log)."""
        was_training = self.model.training
        self.model.eval()
        try:
            [[hypothesis]] = generate(
                self.model, [self.tokenizer.encode(prompt)], max_tokens=max_tokens, temperature=temperature, seed=seed
            )
        finally:
            self.model.train(was_training)
        return self.tokenizer.decode(hypothesis.tokens)

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if self.trainer.is_global_zero and not self.trainer.sanity_checking:
            log.info("step %d sample (T=%.1f): %s", self.global_step, SAMPLE_TEMPERATURE, self.sample_text())
