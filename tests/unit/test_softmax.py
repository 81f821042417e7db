"""The decoders' log-softmax: PyTorch's kernel with flush-to-zero, equal to the clamped one."""

import pytest
import torch

from nmt.ops.softmax import flushed_log_softmax, log_softmax


def _logits_with_far_tails(rows: int = 6, vocab: int = 500) -> torch.Tensor:
    """Logits whose rows hold values far below the row maximum (exp would be subnormal)."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(rows, vocab, generator=generator) * 40
    logits[0, :10] = 200.0  # a confident row: almost everything below max - 87
    logits[1] = 0.0  # a uniform row
    logits[2, 1:] = float("-inf")  # masked tokens, one left
    return logits


def test_flushed_log_softmax_equals_the_clamped_one_and_pytorch():
    logits = _logits_with_far_tails()
    expected = torch.log_softmax(logits.double(), dim=-1)
    for result in (flushed_log_softmax(logits), log_softmax(logits)):
        assert result.dtype == torch.float32
        finite = torch.isfinite(expected)
        assert torch.equal(torch.isfinite(result), finite)
        torch.testing.assert_close(result[finite].double(), expected[finite], rtol=0, atol=2e-5)
    assert flushed_log_softmax(logits)[2, 0] == 0.0


def test_flushed_log_softmax_promotes_half_precision_and_clears_the_flag_after():
    logits = _logits_with_far_tails().to(torch.bfloat16)
    result = flushed_log_softmax(logits)
    assert result.dtype == torch.float32
    torch.testing.assert_close(result, torch.log_softmax(logits.float(), dim=-1), rtol=0, atol=1e-5)
    # flush-to-zero is off again afterwards: the smallest subnormal survives a multiplication
    tiny = torch.tensor([torch.finfo(torch.float32).tiny], dtype=torch.float32)
    assert float(tiny * 0.5) > 0.0


@pytest.mark.parametrize("vocab", [7, 4000])
def test_flushed_log_softmax_rows_sum_to_one(vocab):
    logits = torch.randn(3, vocab) * 30
    assert torch.allclose(flushed_log_softmax(logits).exp().sum(-1), torch.ones(3), atol=1e-5)
