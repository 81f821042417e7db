"""Skip-gram with negative sampling built by hand in PyTorch: the course's two-table model.

    pairs (w, c) of words at most ``window`` apart in a text          (Keras's ``skipgrams``)
    + ``negative`` noise words c' per pair, drawn from unigram^0.75
    score(w, c) = target_table[w] . context_table[c]
    loss = -log sigmoid(score(w, c)) - sum_c' log sigmoid(-score(w, c'))

The two tables are ``nn.Embedding``s (``target`` for the centre word, ``context`` for its
neighbours); the vectors are the target table. Frequent words are subsampled as word2vec
does (a word of frequency f is kept with probability ``sqrt(t / f) + t / f``), once per
epoch. Pairs are shuffled and trained in mini-batches with sparse Adam (only the rows of a
batch change). gensim's word2vec is the fast, maintained implementation; this one is here to
be read, and is checked against it on the same corpus and analogy table (docs/embeddings.md).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger("nmt.embeddings")


class SkipGramModel(nn.Module):
    """Two embedding tables and their dot product.

    :param vocab_size: words. :param dim: vector size.
    """

    def __init__(self, vocab_size: int, dim: int) -> None:
        super().__init__()
        self.target = nn.Embedding(vocab_size, dim, sparse=True)
        self.context = nn.Embedding(vocab_size, dim, sparse=True)
        nn.init.uniform_(self.target.weight, -0.5 / dim, 0.5 / dim)  # word2vec's initialisation
        nn.init.zeros_(self.context.weight)

    def loss(self, targets: torch.Tensor, contexts: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Mean negative-sampling loss. :param targets: (batch,) ids. :param contexts: (batch,)
        ids. :param noise: (batch, negative) ids. :return: a scalar."""
        centre = self.target(targets)  # (batch, dim)
        positive = (centre * self.context(contexts)).sum(-1)  # (batch,)
        negative = torch.bmm(self.context(noise), centre.unsqueeze(2)).squeeze(2)  # (batch, negative)
        return -(F.logsigmoid(positive) + F.logsigmoid(-negative).sum(-1)).mean()


def skipgram_pairs(sentences: Sequence[torch.Tensor], window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (centre, context) pair at most ``window`` apart within each text, both sides.

    :param sentences: 1-D int64 id tensors. :return: targets and contexts, (pairs,) each.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    kept = [s for s in sentences if s.numel() > 1]
    if not kept:
        return torch.empty(0, dtype=torch.int64), torch.empty(0, dtype=torch.int64)
    ids = torch.cat(kept)
    sentence = torch.repeat_interleave(torch.arange(len(kept)), torch.tensor([s.numel() for s in kept]))
    targets, contexts = [], []
    for distance in range(1, window + 1):  # a loop over distances, each one vectorised
        same = sentence[distance:] == sentence[:-distance]
        left, right = ids[:-distance][same], ids[distance:][same]
        targets += [left, right]
        contexts += [right, left]
    return torch.cat(targets), torch.cat(contexts)


def noise_distribution(counts: torch.Tensor, power: float = 0.75) -> torch.Tensor:
    """(vocab,) float64 probabilities proportional to ``counts ** power``."""
    weights = counts.double().pow(power)
    return weights / weights.sum()


def subsample(sentences: Sequence[torch.Tensor], counts: torch.Tensor, threshold: float, generator: torch.Generator):
    """word2vec's subsampling: keep a token of frequency f with probability sqrt(t/f) + t/f."""
    if threshold <= 0:
        return list(sentences)
    frequency = counts.double() / counts.sum()
    ratio = threshold / frequency.clamp(min=1e-12)
    keep_probability = (ratio.sqrt() + ratio).clamp(max=1.0)
    return [s[torch.rand(s.numel(), generator=generator, dtype=torch.float64) < keep_probability[s]] for s in sentences]


def train_sgns(
    sentences: Sequence[Sequence[int]],
    vocab_size: int,
    dim: int,
    *,
    window: int = 5,
    negative: int = 5,
    sample: float = 1e-3,
    epochs: int = 3,
    lr: float = 0.01,
    batch_size: int = 4096,
    seed: int = 0,
) -> tuple[SkipGramModel, list[float]]:
    """Train skip-gram with negative sampling; return the model and each epoch's mean loss."""
    if negative < 1:
        raise ValueError(f"negative must be >= 1, got {negative}")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = SkipGramModel(vocab_size, dim)
    tensors = [torch.as_tensor(s, dtype=torch.int64) for s in sentences]
    counts = torch.zeros(vocab_size, dtype=torch.int64)
    for s in tensors:
        counts.index_add_(0, s, torch.ones_like(s))
    noise = noise_distribution(counts)
    optimizer = torch.optim.SparseAdam(model.parameters(), lr=lr)
    losses = []
    for epoch in range(epochs):
        started = time.monotonic()
        targets, contexts = skipgram_pairs(subsample(tensors, counts, sample, generator), window)
        order = torch.randperm(targets.numel(), generator=generator)
        total, batches = 0.0, 0
        for start in range(0, order.numel(), batch_size):
            index = order[start : start + batch_size]
            drawn = torch.multinomial(noise, index.numel() * negative, replacement=True, generator=generator)
            loss = model.loss(targets[index], contexts[index], drawn.view(index.numel(), negative))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, batches = total + loss.item(), batches + 1
        losses.append(total / max(batches, 1))
        log.info(
            "sgns epoch %d: %s pairs, loss %.4f, %.0f s",
            epoch + 1,
            f"{targets.numel():,}",
            losses[-1],
            time.monotonic() - started,
        )
    if not all(math.isfinite(x) for x in losses):
        raise RuntimeError(f"skip-gram training diverged (epoch losses {losses}): lower method.lr")
    return model, losses
