"""A log-softmax that stays off the CPU's slow path.

``exp`` of a float32 below -87 is subnormal, and x86 CPUs produce subnormals about 100x
slower than normal numbers. A trained translation model gives most of its 8,000 tokens a
log-probability far below that, so ``torch.log_softmax`` (and the ``exp`` of a softmax
backward) spend most of their time there. Here the arguments of ``exp`` are clamped at
:data:`EXP_FLOOR`: each probability changes by less than ``exp(-87) = 1.6e-38``, and the
log-probabilities themselves are exact.

Decoding (no gradient) takes a faster road: PyTorch's own ``log_softmax`` kernel with the
CPU told to flush subnormal results to zero (:func:`flushed_log_softmax`), which gives the
same log-probabilities without the clamping pass and the temporary tensors.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import torch

from nmt.ops.precision import full_precision

log = logging.getLogger(__name__)

EXP_FLOOR = -87.0
"""Smallest argument passed to ``exp``: below it float32 results are subnormal (slow)."""


def shifted_log_normaliser(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``logits - max`` (at least float32) and ``log sum exp(logits - max)`` per row.

    :param logits: (..., vocab). :return: (..., vocab) and (..., 1).
    """
    logits = full_precision(logits)
    shifted = logits - logits.amax(dim=-1, keepdim=True)
    return shifted, shifted.clamp_min(EXP_FLOOR).exp_().sum(dim=-1, keepdim=True).log_()


def log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """``torch.log_softmax(logits, -1)`` in at least float32, without subnormal ``exp``."""
    shifted, normaliser = shifted_log_normaliser(logits)
    return shifted.sub_(normaliser)


def flushed_log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """``torch.log_softmax(logits, -1)`` in at least float32, run with flush-to-zero on.

    On an x86 CPU the calling thread's FTZ/DAZ flags are set for the call
    (``torch.set_flush_denormal``), so ``exp`` results below float32's normal range become 0
    at full speed; each probability changes by less than 1.2e-38. The flags are cleared
    afterwards (PyTorch's default). Used by the decoders, where it is several times faster
    than :func:`log_softmax` on (rows, 4,000-8,000) logits (docs/results.md); other threads
    of a multi-threaded kernel keep their own flags and stay merely slower. Elsewhere (CUDA,
    CPUs without the flags) it is :func:`log_softmax`'s result.

    :param logits: (rows, vocab). :return: (rows, vocab) log-probabilities.
    """
    logits = full_precision(logits)
    if logits.device.type != "cpu":
        return torch.log_softmax(logits, dim=-1)
    with flushing_subnormals() as flushing:
        return torch.log_softmax(logits, dim=-1) if flushing else log_softmax(logits)


_kept_flushing = False  # set by keep_flushing_subnormals(): the flags then stay on


@contextlib.contextmanager
def flushing_subnormals() -> Iterator[bool]:
    """Flush subnormal float results to zero on the calling thread (x86 FTZ/DAZ) for the
    duration of the block; yields whether the CPU took the flags. Cleared afterwards
    (PyTorch's default) unless :func:`keep_flushing_subnormals` set them for good. Other
    threads of a multi-threaded kernel keep their own flags."""
    flushing = torch.set_flush_denormal(True)
    try:
        yield flushing
    finally:
        if flushing and not _kept_flushing:
            torch.set_flush_denormal(False)


def keep_flushing_subnormals() -> bool:
    """Flush subnormal float results to zero on the calling thread from now on; returns
    whether the CPU took the flags. For training: a trained recurrent network's backward over
    long texts produces subnormal gradients, which make x86 arithmetic several times slower
    (docs/results.md); zeroing values below 1.2e-38 changes nothing else.

    PyTorch's intra-op threads (``threads`` > 1) inherit the flags only when they start after
    this call; threads started earlier by a parallel op keep theirs, and a warning says how
    many (:func:`threads_not_flushing`)."""
    global _kept_flushing
    _kept_flushing = torch.set_flush_denormal(True)
    if _kept_flushing and (missed := threads_not_flushing()):
        log.warning(
            "%d of %d intra-op threads started before flush-to-zero was set and keep subnormals: steps over "
            "long texts may be slower; train in a fresh process (python -m nmt.train) or with threads=1",
            missed,
            torch.get_num_threads(),
        )
    return _kept_flushing


def threads_not_flushing() -> int:
    """How many of PyTorch's intra-op threads do not flush subnormals (0 when all do, or the
    calling thread does not either): an elementwise product over a tensor of subnormals, cut
    into one chunk per thread, keeps nonzero values in the chunks of those threads."""
    threads = torch.get_num_threads()
    if threads == 1 or not torch.set_flush_denormal(True):
        return 0
    chunk = 4 * 32768  # above ATen's grain size: every thread gets one chunk
    # Bit pattern 1 is float32's smallest subnormal, 1.4e-45 (a float literal would be flushed here).
    subnormal = torch.ones(threads * chunk, dtype=torch.int32).view(torch.float32)
    # Compared as bits: a flushing thread would read a subnormal as zero.
    kept = (subnormal * 2.0).view(torch.int32).ne(0).view(threads, chunk).any(dim=1)
    return int(kept.sum())


def stop_flushing_subnormals() -> None:
    """Undo :func:`keep_flushing_subnormals` (PyTorch's default again)."""
    global _kept_flushing
    _kept_flushing = False
    torch.set_flush_denormal(False)
