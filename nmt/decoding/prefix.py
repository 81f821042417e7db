"""Prefix-constrained decoding: every output starts with a given target prefix.

Each sentence of a batch may have its own prefix (or none), held as one PAD-padded
(batch, P) id tensor. While step ``t`` is inside a row's prefix, every token of that row but
the prefix's ``t``-th gets -inf (:func:`force_tokens`, one (rows, vocab) mask, no loop over
the batch); past its prefix the row decodes freely. Greedy search, sampling and beam search
all take their step distribution from :func:`~nmt.decoding.greedy.next_token_log_probs`,
which applies the mask, so the three strategies are constrained alike.

The forced token keeps the model's own log-probability (it is not renormalised to 0): the
prefix's tokens count in a hypothesis's score and token log-probabilities exactly as if
the model had chosen them, so a constrained output scores what forced decoding of it would.
EOS cannot be chosen inside the prefix, so an output is never shorter than its prefix.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from nmt.data.tokenizers import BOS_ID, EOS_ID, PAD_ID


def prefix_tensor(prefixes: Sequence[Sequence[int]], device: torch.device | str = "cpu") -> torch.Tensor | None:
    """Per-sentence prefix ids as one (batch, P) tensor, PAD-padded; None when every prefix is empty.

    :raises ValueError: a prefix holding PAD, BOS or EOS (a tokenizer's output never does).
    """
    longest = max((len(prefix) for prefix in prefixes), default=0)
    if longest == 0:
        return None
    table = torch.full((len(prefixes), longest), PAD_ID, dtype=torch.long)
    for row, prefix in enumerate(prefixes):
        if any(token in (PAD_ID, BOS_ID, EOS_ID) for token in prefix):
            raise ValueError(
                f"prefix {row} holds a special token (PAD, BOS or EOS): give the prefix's text tokens only"
            )
        table[row, : len(prefix)] = torch.as_tensor(list(prefix), dtype=torch.long)
    return table.to(device)


def prefix_lengths(prefix: torch.Tensor) -> torch.Tensor:
    """Tokens in each row's prefix, (batch,), from a PAD-padded (batch, P) prefix tensor."""
    return (prefix != PAD_ID).sum(dim=1)


def check_prefix_fits(prefix: torch.Tensor | None, limits: torch.Tensor) -> None:
    """A one-line ValueError when a prefix is longer than its sentence's output limit.

    :param prefix: (batch, P) PAD-padded ids, or None. :param limits: (batch,) output limits.
    """
    if prefix is None:
        return
    lengths = prefix_lengths(prefix).to(limits.device)
    over = (lengths > limits).nonzero().squeeze(1).tolist()
    if over:
        row = over[0]
        raise ValueError(
            f"a prefix of {int(lengths[row])} tokens is longer than its sentence's output limit of "
            f"{int(limits[row])} tokens: shorten the prefix or raise --max-len-ratio"
        )


def forced_at(prefix: torch.Tensor | None, rows: torch.Tensor, step: int) -> torch.Tensor | None:
    """The token each of ``rows`` must take at ``step``, PAD where it is free; None when no
    row is constrained any more (the step past the longest prefix).

    :param prefix: (batch, P). :param rows: (rows,) the rows' sentences in ``prefix``.
    :return: (rows,) ids, or None.
    """
    if prefix is None or step >= prefix.size(1):
        return None
    return prefix[rows, step]


def force_tokens(log_probs: torch.Tensor, forced: torch.Tensor) -> torch.Tensor:
    """Give -inf, in place, to every token of a constrained row but its forced one, which keeps
    its log-probability; rows whose forced id is PAD are left as they are.

    :param log_probs: (rows, vocab). :param forced: (rows,) ids, PAD for a free row.
    :return: ``log_probs``.
    """
    vocab = torch.arange(log_probs.size(1), device=log_probs.device)
    others = (forced != PAD_ID).unsqueeze(1) & (vocab != forced.unsqueeze(1))  # (rows, vocab)
    return log_probs.masked_fill_(others, float("-inf"))


def repeated_ngram(prefix: Sequence[int], n: int) -> bool:
    """Whether ``prefix`` holds some n-gram twice (then the no-repeat rule would ban its own
    token: no output can start with it)."""
    grams = [tuple(prefix[i : i + n]) for i in range(len(prefix) - n + 1)]
    return len(grams) != len(set(grams))
