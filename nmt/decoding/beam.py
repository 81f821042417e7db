"""Batched beam search with the GNMT length penalty and n-best lists.

The ``A`` active sentences times ``K`` beams are flattened to ``A * K`` decoder rows,
sentence-major (row ``a * K + k``). One step:

1. ``log p(token | beam)`` for every row, (A*K, vocab), and each beam's 2K best tokens. On a
   CPU the output layer, softmax and top-k run over slices of rows small enough for a slice's
   logits to stay in the core's cache (:data:`SLICE_ELEMENTS`).
2. Candidates: the sentence's 2K best of those K * 2K by cumulative log-probability. (A beam
   adds one number to all its tokens, so the sentence's 2K best over the whole vocabulary
   are among them. 2K, so that K candidates without EOS remain however many beams end.)
3. EOS candidates among the K best become finished hypotheses, scored
   ``log_prob / lp(length) + cp`` with ``lp(n) = ((5 + n) / 6) ** alpha`` (Wu et al., 2016);
   ``length`` counts the EOS, and ``cp`` is the coverage penalty of the hypothesis's summed
   attention (:func:`~nmt.decoding.penalties.coverage_penalty`, 0 unless asked for; <= 0,
   so the bound of point 5 stays an upper bound). Each sentence keeps its K best finished
   hypotheses.
4. The K best candidates without EOS are the new beams.
5. A sentence is done when its ``n_best``-th best finished hypothesis scores at least the
   best live beam's ``log_prob / lp(length)`` for any length the beam could still reach
   within ``patience`` more steps (and its length limit) -- log-probabilities only fall, so
   then no live beam can displace the n-best list within that horizon (for ``alpha = 0``
   at all) -- or when it reaches its length limit, where its live beams count as finished
   (without EOS). Done sentences leave the batch (``select``) and stop costing work.

   ``patience=0`` is OpenNMT-py's rule (stop once the best candidate ends); ``None`` looks
   as far as the length limit. The first stops too early (short outputs, a larger brevity
   penalty), the second follows beams long after they matter; ``patience=2``, the default,
   gives nearly the limit's outputs in clearly less time (figures in docs/results.md,
   "Decoding on a CPU").

Only beam 0 is live at the start (the others score -inf), so beam size 1 is greedy search
exactly. No step looks across sentences, so a sentence's result does not depend on its batch.

With lexical constraints (phrases every output must contain), points 2-4 choose by Dynamic
Beam Allocation instead (:func:`~nmt.decoding.constraints.constrained_step`): more candidates,
the beam shared among banks of hypotheses by the constraint tokens they have met, and EOS
forbidden until all are met. Without constraints the search above runs unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nmt.data.tokenizers import BOS_ID, EOS_ID, PAD_ID
from nmt.decoding.constraints import (
    ConstraintState,
    ConstraintTables,
    check_constraints_fit,
    constrained_step,
    next_constraint_tokens,
)
from nmt.decoding.greedy import (
    Hypothesis,
    check_attention_wanted,
    max_output_lengths,
    next_token_log_probs,
    trim_at_eos,
)
from nmt.decoding.penalties import RepetitionRules, coverage_penalty
from nmt.decoding.prefix import check_prefix_fits, forced_at, prefix_lengths
from nmt.decoding.selection import row_topk


def length_penalty(length: int, alpha: float) -> float:
    """GNMT length penalty ``((5 + length) / 6) ** alpha``; 1 for ``alpha = 0``."""
    return ((5.0 + length) / 6.0) ** alpha


def length_penalty_of(lengths: torch.Tensor, alpha: float) -> torch.Tensor:
    """:func:`length_penalty` of each of ``lengths`` (a tensor)."""
    return ((5.0 + lengths.to(torch.float64)) / 6.0) ** alpha


@dataclass
class _Finished:
    """The K best finished hypotheses of each of N sentences, best first.

    :ivar scores: (N, K) length-penalised scores, -inf where none yet.
    :ivar log_probs: (N, K). :ivar steps: (N, K) decoder steps taken (EOS included).
    :ivar tokens: (N, K, T) ids, PAD-padded. :ivar attention: (N, K, T, S) or None.
    :ivar token_log_probs: (N, K, T) each step's log-probability, 0 past the end.
    """

    scores: torch.Tensor
    log_probs: torch.Tensor
    steps: torch.Tensor
    tokens: torch.Tensor
    attention: torch.Tensor | None
    token_log_probs: torch.Tensor

    @classmethod
    def empty(cls, n: int, k: int, t: int, s: int, attention: bool, dtype, device) -> _Finished:
        return cls(
            torch.full((n, k), float("-inf"), dtype=dtype, device=device),
            torch.full((n, k), float("-inf"), dtype=dtype, device=device),
            torch.zeros((n, k), dtype=torch.long, device=device),
            torch.full((n, k, t), PAD_ID, dtype=torch.long, device=device),
            torch.zeros((n, k, t, s), device=device) if attention else None,
            torch.zeros((n, k, t), dtype=dtype, device=device),
        )

    def select(self, index: torch.Tensor) -> _Finished:
        attention = None if self.attention is None else self.attention[index]
        return _Finished(
            self.scores[index],
            self.log_probs[index],
            self.steps[index],
            self.tokens[index],
            attention,
            self.token_log_probs[index],
        )

    def assign(self, index: torch.Tensor, other: _Finished) -> None:
        """Store ``other``'s sentences at rows ``index``."""
        self.scores[index] = other.scores
        self.log_probs[index] = other.log_probs
        self.steps[index] = other.steps
        self.tokens[index] = other.tokens
        self.token_log_probs[index] = other.token_log_probs
        if self.attention is not None and other.attention is not None:
            self.attention[index] = other.attention

    def merge(
        self,
        scores: torch.Tensor,
        log_probs: torch.Tensor,
        steps: int,
        tokens: torch.Tensor,
        attention: torch.Tensor | None,
        token_log_probs: torch.Tensor,
    ) -> _Finished:
        """Keep the K best of the current and the new hypotheses.

        :param scores: (N, C) penalised scores of the new ones, -inf for non-candidates.
        :param tokens: (N, C, T). :param attention: (N, C, T, S) or None.
        :param token_log_probs: (N, C, T).
        """
        k = self.scores.size(1)
        best, pick = torch.cat([self.scores, scores], dim=1).topk(k, dim=1)
        rows = torch.arange(pick.size(0), device=pick.device).unsqueeze(1)
        new_steps = torch.full_like(scores, steps, dtype=torch.long)
        merged_attention = None
        if self.attention is not None and attention is not None:
            merged_attention = torch.cat([self.attention, attention], dim=1)[rows, pick]
        return _Finished(
            best,
            torch.cat([self.log_probs, log_probs], dim=1).gather(1, pick),
            torch.cat([self.steps, new_steps], dim=1).gather(1, pick),
            torch.cat([self.tokens, tokens], dim=1)[rows, pick],
            merged_attention,
            torch.cat([self.token_log_probs, token_log_probs], dim=1)[rows, pick],
        )


SLICE_ELEMENTS = 1 << 19
"""Logits per slice of rows in :func:`_top_tokens` on a CPU (2 MB of float32): a slice's
logits and log-probabilities stay in the core's cache from the output layer to the top-k,
which makes a step faster than one pass over all rows at once (docs/results.md)."""


def _top_tokens(
    model,
    outputs: torch.Tensor,
    width: int,
    history: torch.Tensor | None = None,
    repetition: RepetitionRules | None = None,
    forced: torch.Tensor | None = None,
    no_eos: torch.Tensor | None = None,
    given: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Each row's ``width`` most probable next tokens, and the log-probabilities of ``given`` ones.

    :param outputs: (rows, hidden) decoder outputs. :return: log-probabilities and token ids,
        each (rows, width), best first; the (rows, G) log-probabilities of ``given``, or None.
    :param history: (rows, t) each row's tokens so far, for ``repetition``'s rules.
    :param forced: (rows,) each row's prefix token at this step, PAD where free.
    :param no_eos: (rows,) True where EOS is forbidden (-inf): lexical constraints not yet met.
    :param given: (rows, G) ids each row also needs the log-probability of (its constraint tokens).
    """
    rows = outputs.size(0)
    vocab = model.output_layer.out_features
    per_slice = rows if outputs.device.type != "cpu" else max(1, SLICE_ELEMENTS // vocab)
    slices = outputs.split(per_slice)

    def split(values: torch.Tensor | None) -> list:
        return list(values.split(per_slice)) if values is not None else [None] * len(slices)

    parts = []
    for part, past, force, banned, asked in zip(slices, split(history), split(forced), split(no_eos), split(given)):
        log_probs = next_token_log_probs(model.output_logits(part), past, repetition, force)
        if banned is not None:
            log_probs[:, EOS_ID].masked_fill_(banned, float("-inf"))
        values, tokens = row_topk(log_probs, width)
        parts.append((values, tokens, None if asked is None else log_probs.gather(1, asked)))
    if len(parts) == 1:
        return parts[0]
    given_lps = None if given is None else torch.cat([lps for _, _, lps in parts if lps is not None])
    return torch.cat([values for values, _, _ in parts]), torch.cat([tokens for _, tokens, _ in parts]), given_lps


def _top_candidates(
    top_lp: torch.Tensor, top_tok: torch.Tensor, live: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each sentence's 2K best one-token extensions of its K beams, best first.

    :param top_lp, top_tok: (n*K, 2K) each beam's 2K best next-token log-probabilities and ids.
    :param live: (n, K) cumulative log-probabilities of the beams (-inf for dead ones).
    :return: cumulative scores, tokens, beam numbers (0..K-1) and the tokens' own
        log-probabilities, each (n, 2K).
    """
    n, k = live.shape
    totals = (live.view(-1, 1) + top_lp).view(n, 2 * k * k)
    scores, position = totals.topk(2 * k, dim=1)
    tokens = top_tok.view(n, 2 * k * k).gather(1, position)
    token_lp = top_lp.view(n, 2 * k * k).gather(1, position)
    return scores, tokens, torch.div(position, 2 * k, rounding_mode="floor"), token_lp


def _check_arguments(beam_size: int, n_best: int, vocab_size: int) -> None:
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    if not 1 <= n_best <= beam_size:
        raise ValueError(f"n_best must be between 1 and beam_size ({beam_size}), got {n_best}")
    # PAD and BOS are never candidates; each beam needs 2K real ones.
    if vocab_size - 2 < 2 * beam_size:
        raise ValueError(f"beam_size {beam_size} is too large for a vocabulary of {vocab_size}")


@torch.inference_mode()
def beam_search(
    model,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    *,
    beam_size: int = 5,
    n_best: int = 1,
    length_penalty_alpha: float = 1.0,
    max_len_ratio: float = 2.0,
    max_len_offset: int = 10,
    max_len: int | None = None,
    return_attention: bool = False,
    patience: int | None = 2,
    repetition: RepetitionRules | None = None,
    coverage_penalty_beta: float = 0.0,
    prefix: torch.Tensor | None = None,
    constraints: ConstraintTables | None = None,
) -> list[list[Hypothesis]]:
    """Beam search over a batch.

    :param model: a :class:`~nmt.models.seq2seq.Seq2Seq` (``encode`` / ``decode_step``).
    :param src: (batch, src_len) ids. :param src_lengths: (batch,).
    :param length_penalty_alpha: GNMT alpha; 0 ranks by plain log-probability.
    :param patience: how many steps past the current one a live beam is followed when
        deciding whether it could still beat the finished hypotheses (the stopping rule,
        point 5 above); None: as far as the sentence's length limit.
    :param repetition: no-repeat n-grams and repetition penalty; None = neither.
    :param coverage_penalty_beta: GNMT beta of the coverage penalty added to finished
        hypotheses' scores; 0 = none (needs a model with attention otherwise).
    :param prefix: (batch, P) PAD-padded target ids every hypothesis starts with: while a
        sentence is inside its prefix only its best beam lives, as at the first step; None = none.
    :param constraints: phrases every output of a sentence must contain (lexically
        constrained decoding, Dynamic Beam Allocation: :mod:`nmt.decoding.constraints`);
        None = none, which is the plain search.
    :return: per sentence, its ``n_best`` best hypotheses sorted by score, best first (fewer
        when fewer outputs are possible, e.g. a prefix that fills the length limit leaves one).
    :raises ValueError: constraints (with the prefix) longer than a sentence's output limit;
        a sentence for which no hypothesis could meet every constraint (a no-repeat rule that
        bans a token they need).
    """
    k = beam_size
    _check_arguments(beam_size, n_best, model.output_layer.out_features)
    check_attention_wanted(model, return_attention)
    if coverage_penalty_beta < 0:
        raise ValueError(f"coverage penalty must be >= 0, got {coverage_penalty_beta}")
    if coverage_penalty_beta > 0 and not getattr(model, "has_attention", True):
        raise ValueError("the coverage penalty needs attention weights: this model has none (attention=none)")
    batch, src_len = src.shape
    device = src.device
    limits = max_output_lengths(src_lengths.to(device), max_len_ratio, max_len_offset, max_len)
    check_prefix_fits(prefix, limits)
    check_constraints_fit(constraints, None if prefix is None else prefix_lengths(prefix), limits)
    source, state = model.encode(src, src_lengths)
    steps = int(limits.max())
    expand = torch.arange(batch, device=device).repeat_interleave(k)
    source, state = source.select(expand), state.select(expand)
    beam_offsets = torch.arange(k, device=device)

    active = torch.arange(batch, device=device)
    history = torch.full((batch * k, steps), PAD_ID, dtype=torch.long, device=device)
    attn_history = torch.zeros(batch * k, steps, src_len, device=device) if return_attention else None
    lp_history: torch.Tensor | None = None  # (rows, steps): each beam's per-step log-probabilities
    # (rows, src_len) attention summed over each beam's steps so far, for the coverage penalty.
    coverage = torch.zeros(batch * k, src_len, device=device) if coverage_penalty_beta > 0 else None
    penalised = repetition is not None and repetition.active
    prev = torch.full((batch * k,), BOS_ID, dtype=torch.long, device=device)
    live: torch.Tensor | None = None
    # (rows,) each beam's progress through its sentence's lexical constraints, if it has any.
    progress = None if constraints is None else ConstraintState.initial(constraints, expand)
    finished: _Finished | None = None
    output: _Finished | None = None
    for t in range(steps):
        outputs, state, weights = model.decode_step_states(prev, state, source)
        forced = forced_at(prefix, active, t)
        wanted = unmet = None  # each row's constraint tokens, and whether it has yet to meet some (no EOS)
        if constraints is not None and progress is not None:
            row_sentences = active.repeat_interleave(k)
            wanted = next_constraint_tokens(constraints, row_sentences, progress)
            unmet = progress.met(constraints.lengths[row_sentences]) < constraints.totals[row_sentences]
        top_lp, top_tok, wanted_lp = _top_tokens(
            model,
            outputs,
            2 * k,
            history[:, :t] if penalised else None,
            repetition,
            None if forced is None else forced.repeat_interleave(k),
            unmet,
            wanted,
        )
        n = active.numel()
        if live is None:
            live = top_lp.new_full((n, k), float("-inf"))
            live[:, 0] = 0.0
            finished = _Finished.empty(n, k, steps, src_len, return_attention, top_lp.dtype, device)
            output = _Finished.empty(n, k, steps, src_len, return_attention, top_lp.dtype, device)
            lp_history = top_lp.new_zeros(batch * k, steps)
        assert finished is not None and output is not None and lp_history is not None  # made at the first step

        if progress is None:
            cand_scores, cand_tok, cand_beam, cand_lp = _top_candidates(top_lp, top_tok, live)
            is_eos = cand_tok == EOS_ID
            # The K best candidates without EOS continue (a stable sort keeps their rank order).
            cont = is_eos.to(torch.uint8).argsort(dim=1, stable=True)[:, :k]
        else:
            # Dynamic Beam Allocation: 2K candidates laid out as above, the last K going on.
            assert constraints is not None and wanted is not None and wanted_lp is not None
            step = constrained_step(
                constraints, active, progress, live, top_lp, top_tok, wanted_lp, wanted, limits[active] - (t + 1)
            )
            cand_scores, cand_tok, cand_beam, cand_lp = step.scores, step.tokens, step.beams, step.token_lps
            is_eos = cand_tok == EOS_ID
            cont = torch.arange(k, 2 * k, device=device).expand(n, k)
            progress = step.state
        sentence_rows = torch.arange(n, device=device).unsqueeze(1)
        next_scores = cand_scores.gather(1, cont)
        next_tok = cand_tok.gather(1, cont)
        next_lp = cand_lp.gather(1, cont)
        next_row = sentence_rows * k + cand_beam.gather(1, cont)  # (n, K) rows of this step

        ending = is_eos & torch.isfinite(cand_scores)
        ending[:, k:] = False  # an EOS ranked below K would not have been in the beam
        at_limit = limits[active] <= t + 1
        penalty = length_penalty(t + 1, length_penalty_alpha)
        if bool(ending.any()) or bool(at_limit.any()):
            continuing = torch.zeros_like(ending).scatter(1, cont, True)
            new = ending | (continuing & at_limit.unsqueeze(1))
            new_tokens = history.view(n, k, steps)[sentence_rows, cand_beam]
            new_tokens[:, :, t] = cand_tok
            new_lps = lp_history.view(n, k, steps)[sentence_rows, cand_beam]
            new_lps[:, :, t] = cand_lp
            new_attention = None
            if attn_history is not None:
                new_attention = attn_history.view(n, k, steps, src_len)[sentence_rows, cand_beam]
                new_attention[:, :, t] = weights.view(n, k, src_len)[sentence_rows, cand_beam]
            final = cand_scores / penalty
            if coverage is not None:
                assert weights is not None  # a model with attention (checked above)
                covered = (coverage + weights).view(n, k, src_len)[sentence_rows, cand_beam]  # (n, 2K, S)
                lengths = src_lengths.to(device)[active].repeat_interleave(2 * k)
                penalties = coverage_penalty(covered.reshape(-1, src_len), lengths, coverage_penalty_beta)
                final = final + penalties.view(n, -1).to(final.dtype)
            finished = finished.merge(
                torch.where(new, final, float("-inf")),
                cand_scores,
                t + 1,
                new_tokens,
                new_attention,
                new_lps,
            )

        # A live beam's score can still rise: its log-probability only falls, but the length
        # penalty it is divided by grows, at most to that of the horizon's length.
        # Stopping on the current length's penalty ended sentences too early (short outputs).
        horizon = limits[active] if patience is None else limits[active].clamp(max=t + 1 + patience)
        best_possible = next_scores[:, 0] / length_penalty_of(horizon, length_penalty_alpha)
        done = at_limit | (finished.scores[:, n_best - 1] >= best_possible)
        if bool(done.any()):
            ended = done.nonzero().squeeze(1)
            output.assign(active[ended], finished.select(ended))
            if bool(done.all()):
                break
            keep = (~done).nonzero().squeeze(1)
            flat_keep = (keep.unsqueeze(1) * k + beam_offsets).view(-1)
            active, finished = active[keep], finished.select(keep)
            if progress is not None:
                progress = progress.select(flat_keep)
            next_scores, next_tok, next_row = next_scores[keep], next_tok[keep], next_row[keep]
            next_lp = next_lp[keep]
            source = source.select(flat_keep)

        rows = next_row.view(-1)
        history = history.index_select(0, rows)
        history[:, t] = next_tok.view(-1)
        lp_history = lp_history.index_select(0, rows)
        lp_history[:, t] = next_lp.view(-1)
        if attn_history is not None:
            attn_history = attn_history.index_select(0, rows)
            attn_history[:, t] = weights[rows]
        if coverage is not None and weights is not None:
            coverage = coverage.index_select(0, rows) + weights[rows]
        state = state.select(rows)
        live, prev = next_scores, next_tok.view(-1)

    assert output is not None, "max_len allows no step"
    if constraints is not None:
        _check_constraints_met(output, constraints, repetition)
    return _to_hypotheses(output, n_best, src_lengths.tolist())


def _check_constraints_met(
    output: _Finished, constraints: ConstraintTables, repetition: RepetitionRules | None
) -> None:
    """A one-line ValueError naming the first sentence with constraints but no output: every
    hypothesis that could have met them was ruled out (by a no-repeat rule, or a token the
    model gives no probability at all)."""
    lost = ((constraints.totals > 0) & ~torch.isfinite(output.log_probs[:, 0])).nonzero().squeeze(1).tolist()
    if lost:
        cause = (
            "--no-repeat-ngram-size bans a token they need: lower or turn off the no-repeat size, or change them"
            if repetition is not None and repetition.no_repeat_ngram_size > 0
            else "the model gives a token they need no probability: drop or change them"
        )
        raise ValueError(f"sentence {lost[0]}: no translation within its output limit holds every constraint; {cause}")


def _to_hypotheses(output: _Finished, n_best: int, src_lengths: list[int]) -> list[list[Hypothesis]]:
    scores = output.scores[:, :n_best].tolist()
    log_probs = output.log_probs[:, :n_best].tolist()
    steps = output.steps[:, :n_best].tolist()
    tokens = output.tokens[:, :n_best].tolist()
    attention = None if output.attention is None else output.attention[:, :n_best].cpu()
    token_log_probs = output.token_log_probs[:, :n_best].tolist()
    return [
        [
            Hypothesis(
                trim_at_eos(tokens[b][j]),
                scores[b][j],
                log_probs[b][j],
                None if attention is None else attention[b, j, : steps[b][j], : src_lengths[b]],
                token_log_probs[b][j][: steps[b][j]],
            )
            for j in range(n_best)
            # A -inf hypothesis is no output (a prefix that fills the length limit leaves one).
            if j == 0 or log_probs[b][j] > float("-inf")
        ]
        for b in range(len(scores))
    ]
