"""Sampling applies the temperature first, then top-k / top-p on the tempered distribution."""

from __future__ import annotations

import math

import pytest
import torch

from nmt.decoding.sampling import sampling_probabilities

PROBS = torch.tensor([[0.5, 0.3, 0.15, 0.05]], dtype=torch.float64)


def test_the_nucleus_is_taken_from_the_tempered_distribution():
    # Tempered by T=2 the probabilities are ~[0.38, 0.29, 0.21, 0.12]: the smallest set
    # reaching 0.8 has three tokens. Filtering before tempering would keep two (0.5 + 0.3).
    probabilities = sampling_probabilities(PROBS.log(), temperature=2.0, top_p=0.8)
    tempered = PROBS.sqrt() / PROBS.sqrt().sum()
    expected = torch.cat([tempered[:, :3] / tempered[:, :3].sum(), torch.zeros(1, 1, dtype=torch.float64)], 1)
    torch.testing.assert_close(probabilities, expected)


def test_a_low_temperature_narrows_the_nucleus():
    # At T=0.5 the first token alone has 0.5^2 / sum p^2 = 0.66: top-p 0.6 keeps only it.
    probabilities = sampling_probabilities(PROBS.log(), temperature=0.5, top_p=0.6)
    assert probabilities[0].tolist() == [1.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize("temperature", [0.5, 1.0, 3.0])
def test_top_k_keeps_the_k_best_and_renormalises_their_tempered_probabilities(temperature):
    probabilities = sampling_probabilities(PROBS.log(), temperature=temperature, top_k=2)
    kept = PROBS[0, :2] ** (1 / temperature)
    torch.testing.assert_close(probabilities[0, :2], kept / kept.sum())
    assert probabilities[0, 2:].tolist() == [0.0, 0.0]


def test_excluded_tokens_stay_excluded_at_any_temperature():
    log_probs = torch.tensor([[-math.inf, -math.inf, math.log(0.7), math.log(0.3)]])
    for temperature in (0.3, 1.0, 10.0):
        probabilities = sampling_probabilities(log_probs, temperature, top_p=0.99)
        assert probabilities[0, :2].tolist() == [0.0, 0.0]
        assert float(probabilities.sum()) == pytest.approx(1.0)
