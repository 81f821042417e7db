"""Blocked row maximum and top-k: the same values and columns as torch.max / torch.topk."""

from __future__ import annotations

import pytest
import torch

from nmt.decoding.selection import BLOCK, row_max, row_topk


@pytest.mark.parametrize("width", [8 * BLOCK, 4000, 4003, 8000, 8 * BLOCK + 1])
def test_row_max_equals_torch_max(width):
    generator = torch.Generator().manual_seed(width)
    scores = torch.randn(37, width, generator=generator)
    scores[0, -1] = 50.0  # the maximum in the tail columns
    scores[1, 0] = 50.0  # in the first column
    values, indices = row_max(scores)
    expected_values, expected_indices = scores.max(dim=-1)
    assert torch.equal(values, expected_values) and torch.equal(indices, expected_indices)
    assert indices.dtype == torch.int64 and values.shape == (37,)


def test_row_max_returns_the_first_of_equal_maxima_as_argmax_does():
    scores = torch.zeros(3, 4003)
    scores[0, [5, 700, 4001]] = 1.0  # in two blocks and the tail
    scores[1, [4000, 4002]] = 2.0  # only in the tail
    scores[2, :] = float("-inf")
    scores[2, [3000, 64]] = 0.5
    values, indices = row_max(scores)
    assert indices.tolist() == [5, 4000, 64] == scores.argmax(dim=-1).tolist()
    assert values.tolist() == [1.0, 2.0, 0.5]


@pytest.mark.parametrize("width, k", [(4000, 10), (4003, 10), (8000, 2), (8 * BLOCK, 8), (300, 10)])
def test_row_topk_equals_torch_topk(width, k):
    generator = torch.Generator().manual_seed(width + k)
    scores = torch.log_softmax(3 * torch.randn(25, width, generator=generator), dim=-1)
    scores[0, :k] = 0.0 - torch.arange(k) * 1e-3  # all of a row's best in one block
    scores[1, -k:] = 1.0 + torch.arange(k)  # ... in the tail
    scores[2, :] = float("-inf")  # a row with PAD/BOS-like -inf everywhere but k entries
    scores[2, torch.arange(k) * (width // k)] = -torch.arange(k, dtype=torch.float32)
    values, indices = row_topk(scores, k)
    expected_values, expected_indices = scores.topk(k, dim=-1)
    assert torch.equal(values, expected_values) and torch.equal(indices, expected_indices)
    assert torch.equal(scores.gather(1, indices), values)


def test_row_topk_with_ties_returns_tied_values_at_their_columns():
    scores = torch.zeros(2, 4000)
    values, indices = row_topk(scores, 5)
    assert torch.equal(values, torch.zeros(2, 5))
    assert all(len(set(row)) == 5 for row in indices.tolist())
    assert torch.equal(scores.gather(1, indices), values)
