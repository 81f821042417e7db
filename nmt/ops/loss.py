"""Label-smoothed cross-entropy with hand-written backward passes.

``F.cross_entropy(..., label_smoothing=eps)`` builds its gradient from three full-size
pieces (the NLL scatter, the smoothing term's broadcast, and the log-softmax backward),
which on a CPU costs about as much as the output layer's matrix products. The gradient has
a closed form, ``softmax(z) - q`` with ``q = (1 - eps) * onehot(y) + eps / V``.

* :func:`smoothed_cross_entropy` takes logits and computes that gradient in place.
* :func:`linear_cross_entropy` fuses the output layer into the loss: it goes through the
  tokens in slices, and for each slice computes the logits, the loss and, at once, the
  gradients of the output layer's input, weight and bias; the (tokens, vocab) logits never
  exist as a whole. On a CPU this avoids allocating several fresh tensors of hundreds of MB
  per step (each a round of page faults) and keeps each slice's logits in cache.

Both keep the softmax off the CPU's slow path for subnormal ``exp`` results
(:mod:`nmt.ops.softmax`): :func:`linear_cross_entropy` on one CPU thread (or on a GPU)
runs PyTorch's fused ``log_softmax`` kernel with subnormal results flushed to zero, and
takes the probabilities as ``exp`` of the log-probabilities in place (5 passes over each
slice of logits instead of 11); elsewhere the ``exp`` arguments are clamped. Numerics
match ``F.cross_entropy`` (tested).
"""

from __future__ import annotations

import contextlib

import torch

from nmt.ops.precision import full_precision
from nmt.ops.softmax import EXP_FLOOR, flushing_subnormals, shifted_log_normaliser

SLICE_ELEMENTS = 1 << 20
"""Logits computed at once by :func:`linear_cross_entropy` (4 MB in float32)."""


def _loss_from_shifted(
    shifted: torch.Tensor, normaliser: torch.Tensor, targets: torch.Tensor, smoothing: float
) -> torch.Tensor:
    """Summed smoothed NLL of rows whose log-probabilities are ``shifted - normaliser``."""
    nll = (normaliser.squeeze(-1) - shifted.gather(1, targets.unsqueeze(1)).squeeze(1)).sum()
    if not smoothing:
        return nll
    mean_log_prob = (shifted.mean(dim=-1) - normaliser.squeeze(-1)).sum()
    return (1.0 - smoothing) * nll - smoothing * mean_log_prob


def _loss_from_log_probs(log_probs: torch.Tensor, targets: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Summed smoothed NLL of rows of log-probabilities (rows, vocab)."""
    nll = -log_probs.gather(1, targets.unsqueeze(1)).sum()
    if not smoothing:
        return nll
    return (1.0 - smoothing) * nll - smoothing * log_probs.sum() / log_probs.size(-1)


def _minus_target(probs: torch.Tensor, targets: torch.Tensor, smoothing: float) -> torch.Tensor:
    """``probs - q`` in place, q the smoothed one-hot target: the gradient of the summed loss
    wrt the logits."""
    if smoothing:
        probs.sub_(smoothing / probs.size(-1))
    return probs.scatter_add_(1, targets.unsqueeze(1), probs.new_full((targets.numel(), 1), smoothing - 1.0))


def _probs_minus_target(log_probs: torch.Tensor, targets: torch.Tensor, smoothing: float) -> torch.Tensor:
    """``softmax - q`` from log-probabilities, in place."""
    return _minus_target(log_probs.exp_(), targets, smoothing)


def _softmax_minus_target(
    shifted: torch.Tensor, normaliser: torch.Tensor, targets: torch.Tensor, smoothing: float
) -> torch.Tensor:
    """``softmax - q`` from ``logits - max`` and the log-normaliser; reuses ``shifted``."""
    return _minus_target(shifted.sub_(normaliser).clamp_min_(EXP_FLOOR).exp_(), targets, smoothing)


class _SmoothedCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor, smoothing: float) -> torch.Tensor:
        ctx.input_dtype = logits.dtype
        # Half-precision logits are promoted: the softmax and the loss must not overflow.
        shifted, normaliser = shifted_log_normaliser(logits)
        loss = _loss_from_shifted(shifted, normaliser, targets, smoothing)
        ctx.save_for_backward(shifted, normaliser, targets)
        ctx.smoothing = smoothing
        return loss

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        shifted, normaliser, targets = ctx.saved_tensors
        grad = _softmax_minus_target(shifted.clone(), normaliser, targets, ctx.smoothing)
        grad.mul_(grad_output)
        return grad.to(ctx.input_dtype), None, None


def smoothed_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, smoothing: float = 0.0) -> torch.Tensor:
    """Summed label-smoothed cross-entropy, in float32 whatever the logits' dtype.

    :param logits: (n, vocab). :param targets: (n,) class ids (no padding: select real tokens first).
    :param smoothing: epsilon in [0, 1); the smoothing mass is spread uniformly over the vocabulary,
        as in ``F.cross_entropy(label_smoothing=...)``.
    :return: a scalar, the sum over the n rows.
    """
    return _SmoothedCrossEntropy.apply(logits, targets, float(smoothing))


def _accumulate_gradients(
    grad_logits: torch.Tensor,
    chunk: torch.Tensor,
    weight: torch.Tensor,
    grad_states: torch.Tensor,
    grad_weight: torch.Tensor,
    grad_bias: torch.Tensor | None,
) -> None:
    """One slice's share: ``grad_states`` (rows, hidden) is written, ``grad_weight`` and
    ``grad_bias`` are added to (in float32 or wider, whatever the compute dtype).

    :param grad_logits: (rows, vocab), float32 or wider. :param chunk: (rows, hidden) and
    :param weight: (vocab, hidden), both in the compute dtype, in which the products run.
    """
    if grad_bias is not None:
        grad_bias += grad_logits.sum(dim=0)
    grad_logits = grad_logits.to(weight.dtype)
    if grad_states.dtype == weight.dtype:
        torch.mm(grad_logits, weight, out=grad_states)
    else:
        grad_states.copy_(grad_logits @ weight)
    if grad_weight.dtype == weight.dtype:
        grad_weight.addmm_(grad_logits.t(), chunk)  # no (vocab, hidden) temporary
    else:  # in the compute dtype, as autocast would run it; accumulated in float32
        grad_weight += (grad_logits.t() @ chunk).to(grad_weight.dtype)


class _LinearCrossEntropy(torch.autograd.Function):
    """Output layer + smoothed cross-entropy, slice by slice, gradients computed in forward.

    The loss is a scalar, so its gradient wrt every input is known up to the incoming
    ``grad_output``: forward computes them while each slice's logits are at hand, and
    backward only scales them.
    """

    @staticmethod
    def forward(ctx, states, weight, bias, targets, smoothing, compute_dtype):
        needs_grad = any(ctx.needs_input_grad[:3])
        vocab = weight.size(0)
        rows = max(1, SLICE_ELEMENTS // vocab)
        gemm_weight = weight.to(compute_dtype)
        gemm_bias = None if bias is None else bias.to(compute_dtype)
        loss = states.new_zeros((), dtype=torch.float64 if compute_dtype == torch.float64 else torch.float32)
        grad_states = torch.empty_like(states) if needs_grad else None
        accumulate = torch.float64 if weight.dtype == torch.float64 else torch.float32
        grad_weight = torch.zeros(weight.shape, dtype=accumulate, device=weight.device) if needs_grad else None
        grad_bias = None
        if needs_grad and bias is not None:
            grad_bias = torch.zeros(vocab, dtype=accumulate, device=weight.device)
        # Flush-to-zero reaches only this thread, so a multi-threaded CPU run clamps instead.
        flush = states.device.type == "cpu" and torch.get_num_threads() == 1
        with flushing_subnormals() if flush else contextlib.nullcontext(False) as flushing:
            fused_softmax = flushing or states.device.type != "cpu"
            for start in range(0, states.size(0), rows):
                chunk = states[start : start + rows].to(compute_dtype)
                logits = torch.nn.functional.linear(chunk, gemm_weight, gemm_bias)
                chunk_targets = targets[start : start + rows]
                if fused_softmax:
                    log_probs = torch.log_softmax(full_precision(logits), dim=-1)
                    loss += _loss_from_log_probs(log_probs, chunk_targets, smoothing)
                    if needs_grad:
                        grad_logits = _probs_minus_target(log_probs, chunk_targets, smoothing)
                else:
                    shifted, normaliser = shifted_log_normaliser(logits)
                    loss += _loss_from_shifted(shifted, normaliser, chunk_targets, smoothing)
                    if needs_grad:
                        grad_logits = _softmax_minus_target(shifted, normaliser, chunk_targets, smoothing)
                if needs_grad:
                    assert grad_states is not None and grad_weight is not None
                    _accumulate_gradients(
                        grad_logits, chunk, gemm_weight, grad_states[start : start + rows], grad_weight, grad_bias
                    )
        ctx.save_for_backward(*(t for t in (grad_states, grad_weight, grad_bias) if t is not None))
        ctx.has_bias = grad_bias is not None
        ctx.dtypes = (states.dtype, weight.dtype, None if bias is None else bias.dtype)
        return loss

    @staticmethod
    def backward(ctx, grad_output):
        saved = list(ctx.saved_tensors)
        grad_states, grad_weight = saved[0], saved[1]
        grad_bias = saved[2] if ctx.has_bias else None
        states_dtype, weight_dtype, bias_dtype = ctx.dtypes
        return (
            (grad_states * grad_output.to(grad_states.dtype)).to(states_dtype),
            (grad_weight * grad_output.to(grad_weight.dtype)).to(weight_dtype),
            None if grad_bias is None else (grad_bias * grad_output.to(grad_bias.dtype)).to(bias_dtype),
            None,
            None,
            None,
        )


def linear_cross_entropy(
    states: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    targets: torch.Tensor,
    smoothing: float = 0.0,
) -> torch.Tensor:
    """Summed label-smoothed cross-entropy of ``states @ weight.T + bias``, float32.

    Equals ``smoothed_cross_entropy(F.linear(states, weight, bias), targets, smoothing)``
    without materialising the (n, vocab) logits. Under autocast the matrix products run in
    the autocast dtype, as ``F.linear`` would; the softmax, the loss and the accumulated
    weight gradient are float32.

    :param states: (n, hidden). :param weight: (vocab, hidden). :param bias: (vocab,) or None.
    :param targets: (n,) class ids (no padding).
    """
    device_type = states.device.type
    compute_dtype = states.dtype if states.dtype == torch.float64 else torch.float32
    if torch.is_autocast_enabled(device_type):
        compute_dtype = torch.get_autocast_dtype(device_type)
    with torch.autocast(device_type, enabled=False):
        return _LinearCrossEntropy.apply(states, weight, bias, targets, float(smoothing), compute_dtype)
