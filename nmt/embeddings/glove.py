"""GloVe (Pennington et al. 2014) in PyTorch, on CPU or GPU.

No maintained GloVe package installs for Python 3.11 (``glove-python`` and its binary fork
stopped at 2020 and need a C++ build), so this follows the reference ``glove.c`` instead.

1. **Co-occurrences.** Within each text, every pair of tokens ``d <= window`` apart adds
   ``1/d`` to ``X[w_i, w_j]`` and to ``X[w_j, w_i]`` (symmetric context, distance weighting).
2. **Objective.** A weighted least-squares fit of the log counts over the non-zero entries::

       J = 1/2 * sum_ij f(X_ij) * (w_i . c_j + b_i + b~_j - log X_ij)^2
       f(x) = (x / x_max)^alpha  if x < x_max  else 1          (x_max 100, alpha 3/4)

3. **Optimiser.** AdaGrad as glove.c does it (learning rate 0.05, squared-gradient
   accumulators starting at 1), one update per non-zero entry in a shuffled order; a batch
   of entries is updated at once, like glove.c's lock-free threads (:meth:`GloVeModel.adagrad_step`).
4. **Vectors.** ``W + C`` (word plus context vectors), as the paper recommends.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

log = logging.getLogger("nmt.embeddings")


@dataclass
class Cooccurrences:
    """The non-zero entries of the (vocab, vocab) co-occurrence matrix.

    :ivar rows: (nnz,) int64 word ids. :ivar cols: (nnz,) int64 context ids.
    :ivar counts: (nnz,) float32 distance-weighted counts, all > 0.
    """

    rows: torch.Tensor
    cols: torch.Tensor
    counts: torch.Tensor
    vocab_size: int

    def __len__(self) -> int:
        return int(self.counts.numel())

    def dense(self) -> torch.Tensor:
        """(vocab, vocab) matrix; for tests and tiny vocabularies only."""
        matrix = torch.zeros(self.vocab_size, self.vocab_size)
        matrix[self.rows, self.cols] = self.counts
        return matrix


def count_cooccurrences(
    sentences: Sequence[Sequence[int]],
    vocab_size: int,
    window: int = 10,
    *,
    symmetric: bool = True,
    distance_weighting: bool = True,
    chunk_tokens: int = 2_000_000,
) -> Cooccurrences:
    """Count co-occurrences of the ids in ``sentences`` (no pair crosses two sentences).

    :param window: the largest distance counted.
    :param symmetric: count the left context too (glove.c's default), else the right only.
    :param distance_weighting: add ``1/d`` for a pair ``d`` apart, else 1.
    :param chunk_tokens: positions processed at once (bounds memory; not the result).
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    lengths = torch.tensor([len(s) for s in sentences], dtype=torch.int64)
    if not int(lengths.sum()):
        raise ValueError("no tokens to count co-occurrences in")
    ids = torch.tensor([i for s in sentences for i in s], dtype=torch.int64)
    if int(ids.min()) < 0 or int(ids.max()) >= vocab_size:
        raise ValueError(f"token ids must lie in [0, {vocab_size}), got {int(ids.min())}..{int(ids.max())}")
    sentence = torch.repeat_interleave(torch.arange(len(lengths)), lengths)
    keys, sums = torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.float64)
    for start in range(0, ids.numel(), chunk_tokens):
        stop = min(start + chunk_tokens, ids.numel())
        chunk_keys, chunk_values = [], []
        for d in range(1, window + 1):
            left = torch.arange(start, min(stop, ids.numel() - d))
            if not left.numel():
                break
            right = left + d
            same = sentence[left] == sentence[right]
            a, b = ids[left[same]], ids[right[same]]
            weight = 1.0 / d if distance_weighting else 1.0
            chunk_keys.append(a * vocab_size + b)
            if symmetric:
                chunk_keys.append(b * vocab_size + a)
            chunk_values.extend([torch.full((a.numel(),), weight, dtype=torch.float64)] * (2 if symmetric else 1))
        keys, sums = _sum_by_key(torch.cat([keys, *chunk_keys]), torch.cat([sums, *chunk_values]))
    return Cooccurrences(keys // vocab_size, keys % vocab_size, sums.float(), vocab_size)


def _sum_by_key(keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distinct keys and the sum of the values of each. (Sort-based: ``torch.unique`` with
    ``return_inverse`` is much slower on a CPU; docs/results.md.)"""
    sorted_keys, order = torch.sort(keys)
    unique, counts = torch.unique_consecutive(sorted_keys, return_counts=True)
    segment = torch.repeat_interleave(torch.arange(unique.numel()), counts)
    return unique, torch.zeros(unique.numel(), dtype=values.dtype).index_add_(0, segment, values[order])


def weighting(counts: torch.Tensor, x_max: float = 100.0, alpha: float = 0.75) -> torch.Tensor:
    """f(x) = (x / x_max)^alpha below x_max, 1 above: rare pairs count less, frequent ones
    are capped."""
    return torch.clamp(counts / x_max, max=1.0).pow(alpha)


class GloVeModel(nn.Module):
    """Word and context vectors and biases, with glove.c's AdaGrad accumulators."""

    words_gradsq: torch.Tensor
    contexts_gradsq: torch.Tensor
    word_bias_gradsq: torch.Tensor
    context_bias_gradsq: torch.Tensor

    def __init__(self, vocab_size: int, dim: int) -> None:
        super().__init__()
        shape = (vocab_size, dim)
        # glove.c: every weight (rand() - 0.5) / dim; squared-gradient accumulators at 1
        self.words = nn.Parameter((torch.rand(shape) - 0.5) / dim, requires_grad=False)
        self.contexts = nn.Parameter((torch.rand(shape) - 0.5) / dim, requires_grad=False)
        self.word_bias = nn.Parameter((torch.rand(vocab_size) - 0.5) / dim, requires_grad=False)
        self.context_bias = nn.Parameter((torch.rand(vocab_size) - 0.5) / dim, requires_grad=False)
        for name in ("words", "contexts", "word_bias", "context_bias"):
            self.register_buffer(f"{name}_gradsq", torch.ones_like(getattr(self, name)))

    def residuals(self, rows: torch.Tensor, cols: torch.Tensor, log_counts: torch.Tensor) -> torch.Tensor:
        """(batch,) ``w_i . c_j + b_i + b~_j - log X_ij``."""
        dot = (self.words[rows] * self.contexts[cols]).sum(-1)
        return dot + self.word_bias[rows] + self.context_bias[cols] - log_counts

    def forward(
        self, rows: torch.Tensor, cols: torch.Tensor, log_counts: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        """The summed cost ``1/2 sum f(X_ij) (w_i . c_j + b_i + b~_j - log X_ij)^2`` of a batch.

        :param rows, cols: (batch,) ids. :param log_counts, weights: (batch,) log X_ij and f(X_ij).
        """
        return 0.5 * (weights * self.residuals(rows, cols, log_counts).square()).sum()

    @torch.no_grad()
    def adagrad_step(
        self, rows: torch.Tensor, cols: torch.Tensor, log_counts: torch.Tensor, weights: torch.Tensor, lr: float
    ) -> float:
        """One AdaGrad update per entry, exactly as glove.c makes it, for a batch at once.

        With ``g = lr * f(X_ij) * residual``: ``w_i -= g c_j / sqrt(G_w)`` and
        ``c_j -= g w_i / sqrt(G_c)`` (both from the old vectors), ``b_i, b~_j -= g / sqrt(G_b)``,
        then each accumulator ``G += (its step's numerator)^2``. Entries of one batch that
        share a word all read the same old values and their updates add up, as glove.c's
        threads do (Hogwild). Returns the batch's cost before the update.
        """
        w, c = self.words[rows], self.contexts[cols]
        residual = (w * c).sum(-1) + self.word_bias[rows] + self.context_bias[cols] - log_counts
        cost = 0.5 * float((weights * residual.square()).sum())
        g = (lr * weights * residual).unsqueeze(-1)
        grad_w, grad_c, grad_b = g * c, g * w, g.squeeze(-1)
        self.words.index_add_(0, rows, -grad_w / self.words_gradsq[rows].sqrt())
        self.contexts.index_add_(0, cols, -grad_c / self.contexts_gradsq[cols].sqrt())
        self.word_bias.index_add_(0, rows, -grad_b / self.word_bias_gradsq[rows].sqrt())
        self.context_bias.index_add_(0, cols, -grad_b / self.context_bias_gradsq[cols].sqrt())
        self.words_gradsq.index_add_(0, rows, grad_w.square())
        self.contexts_gradsq.index_add_(0, cols, grad_c.square())
        self.word_bias_gradsq.index_add_(0, rows, grad_b.square())
        self.context_bias_gradsq.index_add_(0, cols, grad_b.square())
        return cost

    def vectors(self) -> torch.Tensor:
        """(vocab, dim) ``W + C``."""
        return self.words + self.contexts


def train_glove(
    cooccurrences: Cooccurrences,
    dim: int,
    *,
    epochs: int = 25,
    lr: float = 0.05,
    x_max: float = 100.0,
    alpha: float = 0.75,
    batch_size: int = 16384,
    device: str = "cpu",
    seed: int = 0,
    log_every_seconds: float = 30.0,
) -> tuple[GloVeModel, list[float]]:
    """Fit GloVe to ``cooccurrences``; return the model and the mean cost per entry of each
    epoch (the cost glove.c prints)."""
    if dim < 1 or epochs < 1 or batch_size < 1:
        raise ValueError(f"GloVe needs dim, epochs and batch_size >= 1, got {dim}, {epochs}, {batch_size}")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = GloVeModel(cooccurrences.vocab_size, dim).to(device)
    rows, cols = cooccurrences.rows.to(device), cooccurrences.cols.to(device)
    log_counts = cooccurrences.counts.log().to(device)
    weights = weighting(cooccurrences.counts, x_max, alpha).to(device)
    n = len(cooccurrences)
    history: list[float] = []
    start = last_log = time.monotonic()
    for epoch in range(1, epochs + 1):
        order = torch.randperm(n, generator=generator).to(device)
        total = 0.0
        for batch_start in range(0, n, batch_size):
            batch = order[batch_start : batch_start + batch_size]
            total += model.adagrad_step(rows[batch], cols[batch], log_counts[batch], weights[batch], lr)
            if time.monotonic() - last_log > log_every_seconds:
                last_log = time.monotonic()
                log.info("epoch %d/%d: %.0f%% of the entries", epoch, epochs, 100 * (batch_start + len(batch)) / n)
        history.append(total / n)
        elapsed = time.monotonic() - start
        if not math.isfinite(history[-1]):
            raise FloatingPointError(f"GloVe cost became {history[-1]} in epoch {epoch}: lower method.lr")
        log.info(
            "epoch %d/%d: cost %.4f, %.0f s elapsed, ETA %.0f s",
            epoch,
            epochs,
            history[-1],
            elapsed,
            elapsed / epoch * (epochs - epoch),
        )
    return model, history
