"""The hand-written label-smoothed cross-entropy matches PyTorch's, value and gradient."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nmt.data.tokenizers import PAD_ID
from nmt.ops.loss import smoothed_cross_entropy
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


# -- the backward pass must scale by the incoming gradient -------------------------------------
# gradcheck and ``.backward()`` on the loss itself only ever pass an upstream gradient of 1.


def reference_gradient(logits, targets, smoothing, upstream) -> torch.Tensor:
    leaf = logits.detach().clone().requires_grad_()
    loss = F.cross_entropy(leaf, targets, label_smoothing=smoothing, reduction="sum")
    (grad,) = torch.autograd.grad(loss, leaf, grad_outputs=torch.as_tensor(upstream, dtype=loss.dtype))
    return grad


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_gradient_is_multiplied_by_the_upstream_gradient(smoothing):
    torch.manual_seed(2)
    logits = torch.randn(30, 17, dtype=torch.double, requires_grad=True)
    targets = torch.randint(0, 17, (30,))
    (grad,) = torch.autograd.grad(smoothed_cross_entropy(logits, targets, smoothing) * 3.7, logits)
    torch.testing.assert_close(grad, reference_gradient(logits, targets, smoothing, 3.7))
    upstream = torch.randn((), dtype=torch.double)  # e.g. negative
    (grad,) = torch.autograd.grad(smoothed_cross_entropy(logits, targets, smoothing), logits, grad_outputs=upstream)
    torch.testing.assert_close(grad, reference_gradient(logits, targets, smoothing, upstream))


def test_gradient_of_a_mean_over_tokens_inside_a_larger_graph():
    """As in training: the summed loss is divided by the token count and added to another term."""
    torch.manual_seed(3)
    logits = torch.randn(12, 9, requires_grad=True)
    targets = torch.randint(0, 9, (12,))
    ours = smoothed_cross_entropy(logits, targets, 0.1) / 12 + logits.square().mean()
    reference = F.cross_entropy(logits, targets, label_smoothing=0.1, reduction="sum") / 12 + logits.square().mean()
    (grad_ours,) = torch.autograd.grad(ours, logits)
    (grad_ref,) = torch.autograd.grad(reference, logits)
    torch.testing.assert_close(grad_ours, grad_ref)


def test_loss_scaling_by_2_pow_16_then_unscaling_gives_the_unscaled_gradient():
    """What mixed-precision training does (GradScaler): scale the loss, unscale the gradient."""
    torch.manual_seed(4)
    logits = torch.randn(64, 300, requires_grad=True)
    targets = torch.randint(0, 300, (64,))
    scale = 2.0**16
    (plain,) = torch.autograd.grad(smoothed_cross_entropy(logits, targets, 0.1), logits)
    (scaled,) = torch.autograd.grad(smoothed_cross_entropy(logits, targets, 0.1) * scale, logits)
    assert torch.isfinite(scaled).all()
    torch.testing.assert_close(scaled / scale, plain)
    torch.testing.assert_close(plain, reference_gradient(logits, targets, 0.1, 1.0))


# -- the output layer fused with the loss ------------------------------------------------------
import nmt.ops.loss as loss_module  # noqa: E402
from nmt.ops.loss import linear_cross_entropy  # noqa: E402


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_cross_entropy_matches_linear_then_cross_entropy_value_and_gradients(smoothing, with_bias, monkeypatch):
    monkeypatch.setattr(loss_module, "SLICE_ELEMENTS", 30 * 7)  # 7 rows per slice: several slices
    torch.manual_seed(0)
    states = torch.randn(50, 16, dtype=torch.double, requires_grad=True)
    weight = torch.randn(30, 16, dtype=torch.double, requires_grad=True)
    bias = torch.randn(30, dtype=torch.double, requires_grad=True) if with_bias else None
    targets = torch.randint(0, 30, (50,))
    inputs = (states, weight) + ((bias,) if with_bias else ())
    ours = linear_cross_entropy(states, weight, bias, targets, smoothing)
    reference = F.cross_entropy(F.linear(states, weight, bias), targets, label_smoothing=smoothing, reduction="sum")
    torch.testing.assert_close(ours, reference)
    upstream = torch.tensor(-2.7, dtype=torch.double)  # not 1: the backward must scale by it
    for mine, theirs in zip(
        torch.autograd.grad(ours, inputs, upstream), torch.autograd.grad(reference, inputs, upstream)
    ):
        torch.testing.assert_close(mine, theirs)
    assert torch.autograd.gradcheck(
        lambda *xs: linear_cross_entropy(xs[0], xs[1], xs[2] if with_bias else None, targets, smoothing), inputs
    )


def test_linear_cross_entropy_without_gradients_only_computes_the_loss():
    torch.manual_seed(0)
    states, weight, bias = torch.randn(20, 8), torch.randn(12, 8), torch.randn(12)
    targets = torch.randint(0, 12, (20,))
    with torch.no_grad():
        loss = linear_cross_entropy(states, weight, bias, targets, 0.1)
    reference = F.cross_entropy(F.linear(states, weight, bias), targets, label_smoothing=0.1, reduction="sum")
    torch.testing.assert_close(loss, reference)


def test_extreme_logits_keep_exact_log_probabilities_although_exp_arguments_are_clamped():
    """A trained model puts most tokens far below log-probability -87, where float32 exp is
    subnormal (and slow); clamping the exp arguments must not change the loss or gradient."""
    torch.manual_seed(0)
    logits = (torch.randn(16, 200) * 300).requires_grad_()
    targets = torch.randint(0, 200, (16,))
    ours = smoothed_cross_entropy(logits, targets, 0.1)
    reference = F.cross_entropy(logits.double(), targets, label_smoothing=0.1, reduction="sum")
    torch.testing.assert_close(ours.double(), reference, rtol=1e-6, atol=1e-3)
    (grad,) = torch.autograd.grad(ours, logits)
    (grad_reference,) = torch.autograd.grad(reference, logits)  # float32, as logits
    torch.testing.assert_close(grad.double(), grad_reference.double(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_linear_cross_entropy_under_autocast_gives_float32_loss_and_parameter_gradients(dtype):
    torch.manual_seed(0)
    states = torch.randn(40, 16, requires_grad=True)
    weight = torch.randn(50, 16, requires_grad=True)
    bias = torch.zeros(50, requires_grad=True)
    targets = torch.randint(0, 50, (40,))
    with torch.autocast("cpu", dtype=dtype):
        loss = linear_cross_entropy(states, weight, bias, targets, 0.1)
    assert loss.dtype == torch.float32
    loss.backward()
    assert weight.grad.dtype == torch.float32 and states.grad.dtype == torch.float32
    reference = F.cross_entropy(F.linear(states, weight, bias), targets, label_smoothing=0.1, reduction="sum")
    torch.testing.assert_close(loss, reference, rtol=2e-2, atol=0.5)


@pytest.fixture(params=[1, 2], ids=["one-thread-flushed", "threads-clamped"])
def loss_threads(request):
    """One thread takes the flushed fused-softmax path, several threads the clamped one."""
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_linear_cross_entropy_both_softmax_paths_match_float64_on_extreme_logits(loss_threads, smoothing, monkeypatch):
    """Trained-model logits: most tokens far below log-probability -87 (subnormal exp)."""
    monkeypatch.setattr(loss_module, "SLICE_ELEMENTS", 200 * 5)
    torch.manual_seed(0)
    states = torch.randn(23, 16, requires_grad=True)
    weight = (torch.randn(200, 16) * 40).requires_grad_()
    bias = torch.randn(200, requires_grad=True)
    targets = torch.randint(0, 200, (23,))
    ours = linear_cross_entropy(states, weight, bias, targets, smoothing)
    reference = F.cross_entropy(
        F.linear(states.double(), weight.double(), bias.double()), targets, label_smoothing=smoothing, reduction="sum"
    )
    torch.testing.assert_close(ours.double(), reference, rtol=1e-5, atol=1e-2)
    grads = torch.autograd.grad(ours, (states, weight, bias))
    references = torch.autograd.grad(reference, (states, weight, bias))
    for mine, theirs in zip(grads, references):
        torch.testing.assert_close(mine.double(), theirs.double(), rtol=1e-4, atol=1e-3)
    subnormal = torch.tensor(1e-39) * torch.tensor(1.0)
    assert subnormal.item() != 0.0, "the flush-to-zero flag must be cleared after the loss"
