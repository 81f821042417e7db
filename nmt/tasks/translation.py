"""Lightning wrapper around :class:`~nmt.models.seq2seq.Seq2Seq`: loss, metrics, optimiser."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import sacrebleu
import torch

from nmt.data.batching import TranslationBatch
from nmt.data.tokenizers import PAD_ID, Tokenizer
from nmt.decoding.greedy import greedy_decode
from nmt.embeddings.pretrained import load_pretrained_embeddings
from nmt.models.seq2seq import Seq2Seq
from nmt.ops.loss import linear_cross_entropy, smoothed_cross_entropy
from nmt.tasks.base import TrainingTask
from nmt.training.distributed import gather_objects, sum_across_ranks

LOSS_LOADER, BLEU_LOADER = 0, 1


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


class TranslationTask(TrainingTask):
    """Trains a :class:`Seq2Seq` with teacher forcing; validates with loss, perplexity and BLEU.

    Under DDP each rank evaluates its share of the dev batches; the summed loss and token
    counts, and the translations for BLEU, are combined across ranks, so the metrics equal
    those of a single process.

    :param config: the resolved run config (plain dict), stored in every checkpoint.
    """

    task_name = "translation"
    monitor = "val/bleu"
    monitor_mode = "max"

    def __init__(self, config: Mapping[str, Any], source_tokenizer: Tokenizer, target_tokenizer: Tokenizer):
        super().__init__(config)
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        self.model = Seq2Seq.from_config(
            config["model"], config["attention"], source_tokenizer.vocab_size, target_tokenizer.vocab_size
        )
        self.label_smoothing = float(config["loss"]["label_smoothing"])
        self._eval: dict[str, Any] = {}
        self.pretrained = load_pretrained_embeddings(
            config,
            {"source": (self.model.src_embed, source_tokenizer), "target": (self.model.tgt_embed, target_tokenizer)},
            lambda dm: {"source": dm.datasets["train"].src_ids, "target": dm.datasets["train"].tgt_ids},
        )

    def tokenizers(self) -> dict[str, Tokenizer]:
        return {"source": self.source_tokenizer, "target": self.target_tokenizer}

    def uniform_loss(self) -> float:
        return math.log(self.target_tokenizer.vocab_size)

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.pretrained is not None:
            self.pretrained.report(self.trainer)

    def forward(self, batch: TranslationBatch) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(batch.src, batch.src_lengths, batch.tgt_in)

    def summed_loss(self, batch: TranslationBatch, label_smoothing: float) -> tuple[torch.Tensor, int]:
        """The summed loss over real target tokens and their number.

        The output layer is the most expensive matrix product: it runs on real target
        positions only, fused with the loss (:func:`~nmt.ops.loss.linear_cross_entropy`),
        so the (tokens, vocab) logits are never materialised.
        """
        states, _ = self.model.teacher_forced_states(batch.src, batch.src_lengths, batch.tgt_in)
        real = batch.tgt_out != PAD_ID
        output = self.model.output_layer
        targets = batch.tgt_out[real]
        loss = linear_cross_entropy(
            self.model.output_dropout(states[real]), output.weight, output.bias, targets, label_smoothing
        )
        return loss, int(targets.numel())

    def training_loss(self, batch: TranslationBatch) -> tuple[torch.Tensor, int]:
        loss_sum, tokens = self.summed_loss(batch, self.label_smoothing)
        return loss_sum / max(tokens, 1), batch.src.size(0)

    # -- evaluation (validation and test share it) ----------------------------------------
    def _start_eval(self) -> None:
        self._eval = {"nll": 0.0, "tokens": 0, "hyps": [], "refs": []}

    def _eval_step(self, batch: TranslationBatch, dataloader_idx: int = 0) -> None:
        if dataloader_idx == LOSS_LOADER:
            nll, tokens = self.summed_loss(batch, 0.0)
            self._eval["nll"] += float(nll)
            self._eval["tokens"] += tokens
        else:
            limit = self.config["data"].get("max_length")
            output = greedy_decode(self.model, batch.src, batch.src_lengths, max_len=limit and 2 * limit)
            self._eval["hyps"].extend(self.target_tokenizer.decode(ids) for ids in output.tokens)
            self._eval["refs"].extend(batch.references)

    def _end_eval(self, stage: str) -> None:
        state = self._eval
        nll, tokens = sum_across_ranks([state.get("nll", 0.0), state.get("tokens", 0)])
        if tokens:
            loss = nll / tokens
            self.log(f"{stage}/loss", loss)
            self.log(f"{stage}/ppl", math.exp(min(loss, 50.0)))
        shards = gather_objects((state.get("hyps", []), state.get("refs", [])))
        hyps = [h for shard_hyps, _ in shards for h in shard_hyps]
        refs = [r for _, shard_refs in shards for r in shard_refs]
        if hyps:
            bleu = sacrebleu.corpus_bleu(hyps, [refs])
            self.log(f"{stage}/bleu", bleu.score, prog_bar=True)
