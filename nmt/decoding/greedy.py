"""Batched greedy decoding, and what every decoder shares: output types, length limits and
the next-token distribution. Finished sentences leave the batch and stop costing work."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from nmt.data.tokenizers import BOS_ID, EOS_ID, PAD_ID
from nmt.decoding.penalties import RepetitionRules
from nmt.decoding.prefix import check_prefix_fits, force_tokens, forced_at
from nmt.decoding.selection import row_max
from nmt.ops.precision import full_precision
from nmt.ops.softmax import flushed_log_softmax


@dataclass
class Hypotheses:
    """Decoder output for a batch, in the batch's order.

    :ivar tokens: per sentence, the output ids without BOS/EOS.
    :ivar scores: per sentence, the summed log-probability (EOS included when produced).
    :ivar attention: per sentence, (out_len, src_len) float32 weights, if requested;
        ``out_len`` counts the EOS step when EOS was produced.
    :ivar token_log_probs: per sentence, the log-probability of each output step (out_len
        values, the EOS step included when produced); they sum to the sentence's score.
    """

    tokens: list[list[int]]
    scores: list[float]
    attention: list[torch.Tensor] | None = field(default=None)
    token_log_probs: list[list[float]] = field(default_factory=list)


@dataclass
class Hypothesis:
    """One output of one sentence, as returned in the n-best lists of every strategy.

    :ivar tokens: output ids without BOS/EOS.
    :ivar score: what the n-best list is sorted by: the log-probability, divided by the
        length penalty for beam search.
    :ivar log_prob: summed log-probability under the model (EOS included when produced).
    :ivar attention: (out_len, src_len) float32 on the CPU if requested; ``out_len`` is
        ``len(tokens) + 1`` when the hypothesis ended with EOS, else ``len(tokens)``.
    :ivar token_log_probs: out_len values, each output step's log-probability under the
        model (the EOS step last when produced); their sum is ``log_prob``.
    """

    tokens: list[int]
    score: float
    log_prob: float
    attention: torch.Tensor | None = None
    token_log_probs: list[float] = field(default_factory=list)

    @property
    def ended(self) -> bool:
        """Whether the hypothesis ended with EOS (rather than at the length limit): it took one
        step more than it has tokens (counted by its token log-probs, else attention rows)."""
        steps = len(self.token_log_probs) or (0 if self.attention is None else self.attention.size(0))
        return steps > len(self.tokens)


def max_output_lengths(src_lengths: torch.Tensor, ratio: float, offset: int, cap: int | None = None) -> torch.Tensor:
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


def next_token_log_probs(
    logits: torch.Tensor,
    history: torch.Tensor | None = None,
    repetition: RepetitionRules | None = None,
    forced: torch.Tensor | None = None,
) -> torch.Tensor:
    """Log-distribution over the next token, at least float32; PAD and BOS get -inf.

    The model is never trained to emit PAD or BOS; excluding them keeps every strategy from
    producing a token that would silently vanish from the output. Modified in place.

    :param logits: (rows, vocab). :return: (rows, vocab) log-probabilities.
    :param history: (rows, t) the ids each row has generated, for ``repetition``'s rules
        (applied to the logits, before the softmax).
    :param forced: (rows,) the token each row must take (a target prefix,
        :mod:`nmt.decoding.prefix`), PAD for a free row; applied after the softmax, so a
        forced token keeps its log-probability and every other token of its row gets -inf.
    """
    logits = full_precision(logits)
    if repetition is not None and repetition.active and history is not None:
        repetition.apply(logits, history)
    logits[:, PAD_ID] = float("-inf")
    logits[:, BOS_ID] = float("-inf")
    log_probs = flushed_log_softmax(logits)
    if forced is not None:
        force_tokens(log_probs, forced)
    return log_probs


def check_attention_wanted(model, return_attention: bool) -> None:
    """A model without attention (``attention=none``) has no weights to return or plot."""
    if return_attention and not getattr(model, "has_attention", True):
        raise ValueError(
            "this model has no attention (attention=none): there are no attention weights to return or plot"
        )


TokenChooser = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]
"""``choose(log_probs (rows, vocab), rows (rows,) batch row ids, step) -> tokens (rows,)``."""


def decode_one_token_per_row(
    model,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    choose: TokenChooser | None = None,
    *,
    max_len_ratio: float = 2.0,
    max_len_offset: int = 10,
    max_len: int | None = None,
    return_attention: bool = False,
    repetition: RepetitionRules | None = None,
    prefix: torch.Tensor | None = None,
) -> Hypotheses:
    """The loop shared by greedy search and sampling: one token per row and step.

    A row leaves the batch (``DecoderState.select``) as soon as it emits EOS or reaches its
    length limit, so finished rows stop costing work.

    :param src: (batch, src_len) ids. :param src_lengths: (batch,).
    :param choose: picks each row's next token; None picks the most probable (greedy).
    :param repetition: no-repeat n-grams and repetition penalty; None = neither.
    :param prefix: (batch, P) PAD-padded target ids each output must start with
        (:mod:`nmt.decoding.prefix`); None = no constraint.
    """
    check_attention_wanted(model, return_attention)
    batch, src_len = src.shape
    device = src.device
    limits = max_output_lengths(src_lengths.to(device), max_len_ratio, max_len_offset, max_len)
    check_prefix_fits(prefix, limits)
    source, state = model.encode(src, src_lengths)
    steps = int(limits.max())
    tokens = torch.full((batch, steps), PAD_ID, dtype=torch.long, device=device)
    scores: torch.Tensor | None = None
    step_scores: torch.Tensor | None = None  # (batch, steps): each chosen token's log-probability
    attention = torch.zeros(batch, steps, src_len, device=device) if return_attention else None
    active = torch.arange(batch, device=device)
    prev = torch.full((batch,), BOS_ID, dtype=torch.long, device=device)
    penalised = repetition is not None and repetition.active
    for t in range(steps):
        logits, state, weights = model.decode_step(prev, state, source)
        history = tokens[active, :t] if penalised else None
        log_probs = next_token_log_probs(logits, history, repetition, forced_at(prefix, active, t))
        if scores is None or step_scores is None:
            scores = log_probs.new_zeros(batch)
            step_scores = log_probs.new_zeros(batch, steps)
        if choose is None:
            best_score, best = row_max(log_probs)
        else:
            best = choose(log_probs, active, t)
            best_score = log_probs.gather(1, best.unsqueeze(1)).squeeze(1)
        tokens[active, t] = best
        scores[active] += best_score
        step_scores[active, t] = best_score
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
    assert scores is not None and step_scores is not None, "max_len allows no step"
    raw = tokens.tolist()
    rows = [trim_at_eos(row) for row in raw]
    taken = [output_steps(row) for row in raw]
    per_step = [row[:n] for row, n in zip(step_scores.tolist(), taken)]
    attn_list = None
    if attention is not None:
        lengths = src_lengths.tolist()
        attn_list = [attention[i, : taken[i], : lengths[i]].cpu() for i in range(batch)]
    return Hypotheses(rows, scores.tolist(), attn_list, per_step)


def output_steps(row: list[int]) -> int:
    """Decoder steps that produced ``row`` (PAD-padded ids): its tokens plus the EOS step."""
    if EOS_ID in row:
        return row.index(EOS_ID) + 1
    return len(row) - row.count(PAD_ID)


@torch.inference_mode()
def greedy_decode(
    model,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    *,
    max_len_ratio: float = 2.0,
    max_len_offset: int = 10,
    max_len: int | None = None,
    return_attention: bool = False,
    repetition: RepetitionRules | None = None,
    prefix: torch.Tensor | None = None,
) -> Hypotheses:
    """Pick the most probable token at every step (the prefix's token while it lasts).

    :param model: a :class:`~nmt.models.seq2seq.Seq2Seq` (``encode`` / ``decode_step``).
    :param src: (batch, src_len) ids. :param src_lengths: (batch,).
    :param repetition: no-repeat n-grams and repetition penalty; None = neither.
    :param prefix: (batch, P) PAD-padded target ids each output starts with; None = none.
    """
    return decode_one_token_per_row(
        model,
        src,
        src_lengths,
        None,
        max_len_ratio=max_len_ratio,
        max_len_offset=max_len_offset,
        max_len=max_len,
        return_attention=return_attention,
        repetition=repetition,
        prefix=prefix,
    )
