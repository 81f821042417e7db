"""Lightning wrapper around :class:`~nmt.modules.seq2seq.Seq2Seq`: loss, metrics, optimiser."""

from __future__ import annotations

import math
from typing import Any, Mapping

import lightning as L
import sacrebleu
import torch

from nmt.checkpoint import PAYLOAD_KEY, make_payload
from nmt.data.batching import TranslationBatch
from nmt.data.tokenizers import PAD_ID, Tokenizer
from nmt.decoding.greedy import greedy_decode
from nmt.modules.seq2seq import Seq2Seq
from nmt.tasks.loss import smoothed_cross_entropy
from nmt.tasks.optim import build_optimizer, build_plateau, configure

LOSS_LOADER, BLEU_LOADER = 0, 1
PLATEAU_KEY = "lr_plateau"


def sequence_loss(
    logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0
) -> tuple[torch.Tensor, int]:
    """Summed cross-entropy over real target tokens, computed in float32.

    :param logits: (..., vocab). :param targets: (...), PAD_ID where there is no token.
    :return: the summed loss and the number of real tokens.
    """
    logits, targets = logits.reshape(-1, logits.size(-1)), targets.reshape(-1)
    real = targets != PAD_ID
    if not bool(real.all()):
        logits, targets = logits[real], targets[real]
    return smoothed_cross_entropy(logits, targets, label_smoothing), int(targets.numel())


class TranslationTask(L.LightningModule):
    """Trains a :class:`Seq2Seq` with teacher forcing; validates with loss, perplexity and BLEU.

    :param config: the resolved run config (plain dict), stored in every checkpoint.
    """

    def __init__(self, config: Mapping[str, Any], source_tokenizer: Tokenizer, target_tokenizer: Tokenizer):
        super().__init__()
        self.config = dict(config)
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        self.model = Seq2Seq.from_config(
            config["model"], config["attention"], source_tokenizer.vocab_size, target_tokenizer.vocab_size
        )
        self.label_smoothing = float(config.get("loss", {}).get("label_smoothing", 0.0))
        self._eval: dict[str, Any] = {}
        self.plateau = None
        self._plateau_state: dict | None = None

    def forward(self, batch: TranslationBatch) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(batch.src, batch.src_lengths, batch.tgt_in)

    def real_token_logits(self, batch: TranslationBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (n_real, vocab) and targets (n_real,) at real target positions only.

        The output layer is the most expensive matrix product; skipping padded positions
        saves its cost there instead of computing logits the loss would ignore.
        """
        states, _ = self.model.teacher_forced_states(batch.src, batch.src_lengths, batch.tgt_in)
        real = batch.tgt_out != PAD_ID
        return self.model.output_logits(states[real]), batch.tgt_out[real]

    def training_step(self, batch: TranslationBatch, batch_idx: int) -> torch.Tensor:
        logits, targets = self.real_token_logits(batch)
        loss_sum, tokens = sequence_loss(logits, targets, self.label_smoothing)
        loss = loss_sum / max(tokens, 1)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch.src.size(0))
        return loss

    # -- evaluation (validation and test share it) ----------------------------------------
    def _start_eval(self) -> None:
        self._eval = {"nll": 0.0, "tokens": 0, "hyps": [], "refs": []}

    def _eval_step(self, batch: TranslationBatch, dataloader_idx: int) -> None:
        if dataloader_idx == LOSS_LOADER:
            nll, tokens = sequence_loss(*self.real_token_logits(batch))
            self._eval["nll"] += float(nll)
            self._eval["tokens"] += tokens
        else:
            limit = self.config["data"].get("max_length")
            output = greedy_decode(self.model, batch.src, batch.src_lengths, max_len=limit and 2 * limit)
            self._eval["hyps"].extend(self.target_tokenizer.decode(ids) for ids in output.tokens)
            self._eval["refs"].extend(batch.references)

    def _end_eval(self, stage: str) -> None:
        state = self._eval
        if state.get("tokens"):
            loss = state["nll"] / state["tokens"]
            self.log(f"{stage}/loss", loss, sync_dist=True)
            self.log(f"{stage}/ppl", math.exp(min(loss, 50.0)), sync_dist=True)
        if state.get("hyps"):
            bleu = sacrebleu.corpus_bleu(state["hyps"], [state["refs"]])
            self.log(f"{stage}/bleu", bleu.score, prog_bar=True, sync_dist=True)

    def on_validation_epoch_start(self) -> None:
        self._start_eval()

    def validation_step(self, batch: TranslationBatch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(batch, dataloader_idx)

    def on_validation_epoch_end(self) -> None:
        self._end_eval("val")
        bleu = self.trainer.callback_metrics.get("val/bleu") if self.trainer else None
        if self.plateau is not None and bleu is not None and not self.trainer.sanity_checking:
            self.plateau.step(float(bleu))

    def on_test_epoch_start(self) -> None:
        self._start_eval()

    def test_step(self, batch: TranslationBatch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(batch, dataloader_idx)

    def on_test_epoch_end(self) -> None:
        self._end_eval("test")

    # -- optimisation and checkpoints ----------------------------------------------------
    def configure_optimizers(self):
        cfg = self.config["optim"]
        optimizer = build_optimizer(self.parameters(), cfg)
        # The plateau schedule is stepped here after each validation, not by Lightning,
        # whose step counter restarts every epoch while validation runs every N global steps.
        self.plateau = build_plateau(optimizer, cfg, mode="max")
        if self.plateau is not None and self._plateau_state is not None:
            self.plateau.load_state_dict(self._plateau_state)
        return configure(optimizer, cfg, self.trainer.max_steps if self.trainer else None)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint[PAYLOAD_KEY] = make_payload(
            "translation",
            self.config,
            {"source": self.source_tokenizer, "target": self.target_tokenizer},
        )
        if self.plateau is not None:
            checkpoint[PLATEAU_KEY] = self.plateau.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._plateau_state = checkpoint.get(PLATEAU_KEY)
