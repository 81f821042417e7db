"""Batched greedy decoding; finished sentences leave the batch and stop costing work."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from nmt.data.tokenizers import BOS_ID, EOS_ID, PAD_ID


@dataclass
class Hypotheses:
    """Decoder output for a batch, in the batch's order.

    :ivar tokens: per sentence, the output ids without BOS/EOS.
    :ivar scores: per sentence, the summed log-probability (EOS included when produced).
    :ivar attention: per sentence, (out_len, src_len) float32 weights, if requested.
    """

    tokens: list[list[int]]
    scores: list[float]
    attention: list[torch.Tensor] | None = field(default=None)


def max_output_lengths(
    src_lengths: torch.Tensor, ratio: float, offset: int, cap: int | None = None
) -> torch.Tensor:
    """Longest output allowed per sentence: ``ratio * src_len + offset`` (capped), (batch,)."""
    limits = (src_lengths.float() * ratio).long() + offset
    if cap is not None:
        limits = limits.clamp(max=cap)
    return limits.clamp(min=1)


def trim_at_eos(row: list[int]) -> list[int]:
    """Ids before the first EOS (and without padding)."""
    if EOS_ID in row:
        row = row[: row.index(EOS_ID)]
    return [token for token in row if token != PAD_ID]


@torch.no_grad()
def greedy_decode(
    model,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    *,
    max_len_ratio: float = 2.0,
    max_len_offset: int = 10,
    max_len: int | None = None,
    return_attention: bool = False,
) -> Hypotheses:
    """Pick the most probable token at every step.

    :param model: a :class:`~nmt.modules.seq2seq.Seq2Seq` (``encode`` / ``decode_step``).
    :param src: (batch, src_len) ids. :param src_lengths: (batch,).
    """
    batch, src_len = src.shape
    device = src.device
    source, state = model.encode(src, src_lengths)
    limits = max_output_lengths(src_lengths.to(device), max_len_ratio, max_len_offset, max_len)
    steps = int(limits.max())
    tokens = torch.full((batch, steps), PAD_ID, dtype=torch.long, device=device)
    scores = torch.zeros(batch, device=device)
    attention = torch.zeros(batch, steps, src_len, device=device) if return_attention else None
    active = torch.arange(batch, device=device)
    prev = torch.full((batch,), BOS_ID, dtype=torch.long, device=device)
    for t in range(steps):
        logits, state, weights = model.decode_step(prev, state, source)
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        best_score, best = log_probs.max(dim=-1)
        tokens[active, t] = best
        scores[active] += best_score
        if attention is not None:
            attention[active, t] = weights
        done = (best == EOS_ID) | (limits[active] <= t + 1)
        if bool(done.all()):
            break
        if bool(done.any()):
            keep = (~done).nonzero().squeeze(1)
            active, best = active[keep], best[keep]
            state, source = state.select(keep), source.select(keep)
        prev = best
    rows = [trim_at_eos(row) for row in tokens.tolist()]
    attn_list = None
    if attention is not None:
        lengths = src_lengths.tolist()
        attn_list = [
            attention[i, : min(len(row) + 1, steps), : lengths[i]].cpu() for i, row in enumerate(rows)
        ]
    return Hypotheses(rows, scores.tolist(), attn_list)
