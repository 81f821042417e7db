"""The hand-written label-smoothed cross-entropy matches PyTorch's, value and gradient."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nmt.data.tokenizers import PAD_ID
from nmt.tasks.loss import smoothed_cross_entropy
from nmt.tasks.translation import sequence_loss


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_value_and_gradient_match_torch_cross_entropy(smoothing):
    torch.manual_seed(0)
    logits = torch.randn(40, 25, dtype=torch.double, requires_grad=True)
    targets = torch.randint(0, 25, (40,))
    ours = smoothed_cross_entropy(logits, targets, smoothing)
    reference = F.cross_entropy(logits, targets, label_smoothing=smoothing, reduction="sum")
    torch.testing.assert_close(ours, reference)
    (grad_ours,) = torch.autograd.grad(ours, logits)
    (grad_ref,) = torch.autograd.grad(reference, logits)
    torch.testing.assert_close(grad_ours, grad_ref)


def test_gradcheck():
    torch.manual_seed(1)
    logits = torch.randn(6, 7, dtype=torch.double, requires_grad=True)
    targets = torch.randint(0, 7, (6,))
    assert torch.autograd.gradcheck(lambda z: smoothed_cross_entropy(z, targets, 0.2), (logits,))


def test_half_precision_logits_give_a_float32_loss_and_gradient_of_their_dtype():
    logits = (torch.randn(4, 9) * 50).to(torch.bfloat16).requires_grad_()
    loss = smoothed_cross_entropy(logits, torch.tensor([0, 1, 2, 3]), 0.1)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert logits.grad.dtype == torch.bfloat16


def test_sequence_loss_ignores_padding_and_counts_real_tokens():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 11)
    targets = torch.tensor([[5, 6, PAD_ID], [7, PAD_ID, PAD_ID]])
    loss, tokens = sequence_loss(logits, targets, 0.1)
    real = targets != PAD_ID
    expected = F.cross_entropy(logits[real], targets[real], label_smoothing=0.1, reduction="sum")
    assert tokens == 3
    torch.testing.assert_close(loss, expected)
