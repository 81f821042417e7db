"""The best entries of each row of a wide score matrix, for the decoders' per-step choices.

On a CPU, PyTorch's ``max(dim=-1)`` and ``topk`` along a (rows, 4,000-8,000) matrix track
indices element by element and run an order of magnitude slower than a plain ``amax``
(measurements in docs/results.md, "Decoding on a CPU"). Both functions here
reduce blocks of ``BLOCK`` columns with ``amax`` first and then search only the blocks that
can hold the answer, which gives exactly the same values and, for ``row_max``, the same
(first) index:

* the row maximum lies in the first block whose maximum equals it;
* each of a row's k largest entries lies in one of the k blocks with the largest maxima:
  an entry in any other block is exceeded by at least one entry of each of those k blocks.

Elsewhere (CUDA, narrow rows) they are ``torch.max`` and ``torch.topk``.
"""

from __future__ import annotations

import torch

BLOCK = 32
"""Columns per block: the fastest of the widths tried for 4,000-column rows (docs/results.md)."""


def _blocked(scores: torch.Tensor) -> bool:
    return scores.device.type == "cpu" and scores.dim() == 2 and scores.size(1) >= 8 * BLOCK


def _split(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, blocks, BLOCK) view of the leading whole blocks and the (rows, rest) tail."""
    rows, width = scores.shape
    whole = width - width % BLOCK
    return scores[:, :whole].reshape(rows, whole // BLOCK, BLOCK), scores[:, whole:]


def row_max(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``scores.max(dim=-1)``: each row's largest value and the first column holding it.

    :param scores: (rows, width). :return: values (rows,) and indices (rows,) int64.
    """
    if not _blocked(scores):
        return scores.max(dim=-1)
    blocks, tail = _split(scores)
    block_of_max = blocks.amax(dim=-1).argmax(dim=-1)  # (rows,): the first block holding the maximum
    inside = blocks[torch.arange(blocks.size(0), device=scores.device), block_of_max]  # (rows, BLOCK)
    values, offsets = inside.max(dim=-1)
    indices = block_of_max * BLOCK + offsets
    if tail.size(1):
        tail_values, tail_offsets = tail.max(dim=-1)
        tail_wins = tail_values > values  # a tie keeps the earlier column
        values = torch.where(tail_wins, tail_values, values)
        indices = torch.where(tail_wins, tail_offsets + blocks.size(1) * BLOCK, indices)
    return values, indices


def row_topk(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``scores.topk(k, dim=-1)``: each row's k largest values, largest first, and their columns.

    Equal values may come back in another column order than ``topk``'s.

    :param scores: (rows, width). :return: values (rows, k) and indices (rows, k) int64.
    """
    if not _blocked(scores) or k > scores.size(1) // BLOCK:
        return scores.topk(k, dim=-1)
    blocks, tail = _split(scores)
    rows, count, _ = blocks.shape
    _, top_blocks = blocks.amax(dim=-1).topk(k, dim=-1)  # (rows, k)
    candidates = blocks.gather(1, top_blocks.unsqueeze(-1).expand(rows, k, BLOCK)).reshape(rows, k * BLOCK)
    columns = (top_blocks.unsqueeze(-1) * BLOCK + torch.arange(BLOCK, device=scores.device)).reshape(rows, k * BLOCK)
    if tail.size(1):
        candidates = torch.cat([candidates, tail], dim=1)
        tail_columns = torch.arange(count * BLOCK, scores.size(1), device=scores.device).expand(rows, -1)
        columns = torch.cat([columns, tail_columns], dim=1)
    values, positions = candidates.topk(k, dim=-1)
    return values, columns.gather(1, positions)
