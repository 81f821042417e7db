"""Several translation networks decoded as one (an ensemble at decode time).

:class:`Seq2SeqEnsemble` has the decoding interface of :class:`~nmt.models.seq2seq.Seq2Seq`
(``encode``, ``decode_step``, ``decode_step_states`` + ``output_logits``, states with
``select``), so greedy search, sampling and beam search drive it unchanged:

* ``encode`` runs every member's encoder; the source and the decoder state are tuples of
  the members' own (:class:`EnsembleSource`, :class:`EnsembleState`), and ``select`` reorders
  or drops the same rows of each (beam reordering, finished sentences).
* A step's distribution is the **mean of the members' probabilities**, returned as the
  logits ``log((1/K) sum_k softmax(z_k))`` (= ``logsumexp_k(log_softmax(z_k)) - log K``).
  Their softmax is that mean itself, so the decoders' own normalisation (which also
  excludes PAD and BOS) applies to an ensemble as to one network.
* The attention returned for plots and alignments is the members' mean.
* ``forward`` is the teacher-forced pass (forced decoding, ``nmt-score``): the same mean
  of probabilities at every position, so that forcing an ensemble's own output gives the
  score its search reported.

Averaging probabilities (a mixture) rather than log-probabilities (a normalised product) is
fairseq's choice and OpenNMT-py's ``-avg_raw_probs``: a token that one member rules out is
not ruled out for all, so an ensemble is never more confident than its most confident member.

Members may differ in architecture (sizes, cell, attention); they must share the target
vocabulary -- and, checked where the checkpoints are loaded, both tokenizers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from nmt.models.seq2seq import Seq2Seq
from nmt.modules.decoder import DecoderState, EncodedSource
from nmt.ops.precision import full_precision
from nmt.ops.softmax import flushing_subnormals


@dataclass
class EnsembleSource:
    """Each member's encoded source, for the same batch rows."""

    sources: tuple[EncodedSource, ...]

    def select(self, index: torch.Tensor) -> EnsembleSource:
        """Rows ``index`` (1-D LongTensor) of every member's source."""
        return EnsembleSource(tuple(source.select(index) for source in self.sources))


@dataclass
class EnsembleState:
    """Each member's recurrent state, for the same batch rows."""

    states: tuple[DecoderState, ...]

    def select(self, index: torch.Tensor) -> EnsembleState:
        """Rows ``index`` (1-D LongTensor) of every member's state."""
        return EnsembleState(tuple(state.select(index) for state in self.states))


class Seq2SeqEnsemble(nn.Module):
    """K translation networks with one decoding interface; see the module docstring.

    :param members: networks over the same target vocabulary, in eval mode.
    :raises ValueError: no member, or members with different target vocabulary sizes.
    """

    def __init__(self, members: Sequence[Seq2Seq]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one model")
        sizes = [member.output_layer.out_features for member in members]
        for number, size in enumerate(sizes[1:], start=2):
            if size != sizes[0]:
                raise ValueError(
                    f"ensemble member {number} has a target vocabulary of {size} tokens, member 1 of {sizes[0]}"
                )
        # A ModuleList registers the members (device moves, eval, parameters); typed as what it holds.
        self.members: Sequence[Seq2Seq] = nn.ModuleList(members)  # type: ignore[assignment]
        self.state_sizes = [member.output_layer.in_features for member in members]
        """Width of each member's decoder output, in the order they are concatenated."""

    def map_members(self, transform: Callable[[Seq2Seq], Seq2Seq]) -> Seq2SeqEnsemble:
        """A new ensemble of ``transform(member)`` for each member (e.g. an int8 copy)."""
        return Seq2SeqEnsemble([transform(member) for member in self.members])

    @property
    def output_layer(self) -> nn.Module:
        """The first member's output layer, for what the decoders read from it: the target
        vocabulary size (``out_features``, shared by all members) and the device. Logits
        come from :meth:`output_logits`, never from this layer."""
        return self.members[0].output_layer

    @property
    def has_attention(self) -> bool:
        """Whether every member attends (otherwise there is no mean attention to return)."""
        return all(member.has_attention for member in self.members)

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[EnsembleSource, EnsembleState]:
        """:param src: (batch, src_len) token ids, PAD_ID-padded. :param src_lengths: (batch,).
        :return: every member's encoded source and initial decoder state."""
        encoded = [member.encode(src, src_lengths) for member in self.members]
        return EnsembleSource(tuple(s for s, _ in encoded)), EnsembleState(tuple(s for _, s in encoded))

    def decode_step(
        self, prev_tokens: torch.Tensor, state: EnsembleState, source: EnsembleSource
    ) -> tuple[torch.Tensor, EnsembleState, torch.Tensor | None]:
        """:param prev_tokens: (batch,) the previous target ids (BOS_ID at the start).
        :return: the ensemble's logits (batch, tgt_vocab) (:meth:`output_logits`), the new
            state, the members' mean attention (batch, src_len) or None."""
        outputs, state, weights = self.decode_step_states(prev_tokens, state, source)
        return self.output_logits(outputs), state, weights

    def decode_step_states(
        self, prev_tokens: torch.Tensor, state: EnsembleState, source: EnsembleSource
    ) -> tuple[torch.Tensor, EnsembleState, torch.Tensor | None]:
        """:meth:`decode_step` without the output layers.

        :return: the members' decoder outputs side by side, (batch, sum of
            :attr:`state_sizes`), one tensor so that a caller can run :meth:`output_logits`
            on slices of rows; the new state; the mean attention (batch, src_len) or None.
        """
        steps = [
            member.decode_step_states(prev_tokens, member_state, member_source)
            for member, member_state, member_source in zip(self.members, state.states, source.sources)
        ]
        outputs = torch.cat([output for output, _, _ in steps], dim=-1)
        weights = [w for _, _, w in steps if w is not None]
        mean_attention = torch.stack(weights).mean(dim=0) if len(weights) == len(steps) else None
        return outputs, EnsembleState(tuple(s for _, s, _ in steps)), mean_attention

    def forward(
        self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher-forced pass of every member, combined as :meth:`decode_step` combines a step.

        :param src: (batch, src_len). :param src_lengths: (batch,).
        :param tgt_in: (batch, tgt_len) BOS followed by the target.
        :return: the ensemble's logits (batch, tgt_len, tgt_vocab) (:meth:`output_logits`) and
            the members' mean attention (batch, tgt_len, src_len), or None if a member has none.
        """
        forced = [
            member.teacher_forced_states(src, src_lengths, tgt_in, return_attention=True) for member in self.members
        ]
        states = torch.cat([member_states for member_states, _ in forced], dim=-1)
        weights = [w for _, w in forced if w is not None]
        mean_attention = torch.stack(weights).mean(dim=0) if len(weights) == len(forced) else None
        return self.output_logits(states), mean_attention

    def output_logits(self, states: torch.Tensor) -> torch.Tensor:
        """The ensemble's logits: the log of the members' mean next-token probability,
        ``log(sum_k softmax(z_k)) - log K``.

        Summed as probabilities, not as ``logsumexp`` of log-probabilities: on a CPU that is
        several times faster (``logsumexp`` across stacked members is slow, docs/results.md),
        and equal up to rounding except where every member gives a token less than 1.2e-38,
        float32's smallest normal number (flushed to 0, so -inf): far too improbable to matter.

        :param states: (..., sum of :attr:`state_sizes`) from :meth:`decode_step_states`
            (rows) or the teacher-forced states of :meth:`forward` (rows, steps).
        :return: (..., tgt_vocab), at least float32, normalised (``logsumexp = 0``); one
            member's logits unchanged.
        """
        parts = states.split(self.state_sizes, dim=-1)
        if len(self.members) == 1:
            return self.members[0].output_logits(parts[0])
        total: torch.Tensor | None = None
        with flushing_subnormals():  # subnormal exp results are slow on a CPU, and negligible here
            for member, part in zip(self.members, parts):
                probs = torch.softmax(full_precision(member.output_logits(part)), dim=-1)
                total = probs if total is None else total.add_(probs)
            assert total is not None
            return total.log_().sub_(math.log(len(self.members)))
