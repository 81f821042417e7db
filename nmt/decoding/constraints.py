"""Lexically constrained beam search: phrases that must appear somewhere in every output.

Dynamic Beam Allocation (Post & Vilar, 2018), held as tensors over the (batch x beam) rows
in the manner of Hu et al. (2019), so one step costs a few tensor operations whatever the
batch; :func:`~nmt.decoding.beam.beam_search` calls :func:`constrained_step` in place of its
plain candidate selection.

**Tables** (:class:`ConstraintTables`, one per batch): sentence ``b``'s phrases as a
PAD-padded (B, C, M) id tensor (C phrases of at most M tokens), their lengths, and for each
phrase the KMP border chains (below). A sentence with fewer phrases than C has padding
phrases of length 0, which count as met from the start.

**State** (:class:`ConstraintState`, one per decoder row): which phrases are met
(``done``, (rows, C)), the phrase in progress (``current``, -1 for none) and how many of its
tokens the hypothesis has just produced (``progress``). The constraint tokens a hypothesis
has met are those of its done phrases plus ``progress``; their number is its **bank**.

**Advancing** by one token (:func:`advance`):

* in a phrase, the expected next token moves it on (and completes it at its end);
* any other token falls back, as the Knuth-Morris-Pratt matcher does, to the longest
  prefix of the phrase that still ends the output (``a a b`` after ``a a a``: progress 2,
  not 0), so a phrase is recognised wherever it occurs, overlapping starts included;
* otherwise (no phrase in progress, or none left after the fall-back) a token equal to the
  first token of an unmet phrase starts it (the first such phrase: two equal constraints
  need two occurrences).

A met phrase stays met, and the tokens counted for different phrases are different output
positions, so a hypothesis whose state says "all met" contains every phrase as a contiguous
run of tokens. (The converse can fail when phrases overlap each other in the output, e.g.
``x y`` and ``y z`` in ``x y z``: the state then needs another occurrence. The search never
loses exactness this way, only options.)

**One step** (:func:`constrained_step`), per sentence:

1. Candidates: each live beam's 2K best tokens (as in the plain search) and, from
   :func:`next_constraint_tokens`, each unmet phrase's next token (the in-progress phrase's
   continuation, every other unmet phrase's first token), without duplicates. Each gets its
   state after the token and so its bank.
2. A candidate is dropped when it can no longer meet every constraint within the sentence's
   length limit (it would need more tokens than steps remain), and EOS is forbidden (-inf)
   to a hypothesis that has not met every constraint. So every hypothesis that finishes, by
   EOS or at the limit, contains all the phrases; and since each live beam keeps a candidate
   that advances it, a sentence whose constraints fit its limit always finishes with one
   (unless a no-repeat rule bans every way to place them: then the search says so).
3. The K beams are divided among the banks 0..N (N = the sentence's constraint tokens):
   ``K // (N + 1)`` each, the remainder to bank N; from the top bank down, slots a bank
   cannot fill pass to the bank below (from bank 0 to bank N). Each bank takes its best
   candidates by score; the K chosen beams are ordered by score. Done once with EOS
   candidates, to decide which of them finish (those that would take a slot), and once
   without, for the beams that go on -- as the plain search takes EOS among its K best and
   continues with the K best others. With no constraints there is one bank, and this is
   the plain step.

Scores are the model's: constraint tokens keep their log-probabilities, so a constrained
output scores what forced decoding of it gives, as with a prefix (:mod:`nmt.decoding.prefix`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from nmt.data.tokenizers import BOS_ID, EOS_ID, PAD_ID, UNK_ID

SPECIAL_IDS = (PAD_ID, UNK_ID, BOS_ID, EOS_ID)


def kmp_borders(phrase: Sequence[int], width: int) -> torch.Tensor:
    """Each progress's fall-back chain: ``chain[p, q]`` is True when the first ``q`` tokens of
    ``phrase`` are a proper suffix of its first ``p`` (``q = 0`` always is).

    After a mismatch at progress ``p`` with token ``w``, the new progress is ``q + 1`` for the
    largest ``q`` in the chain with ``phrase[q] == w``, else 0 (Knuth-Morris-Pratt).

    :param width: M, the padded phrase length. :return: (M, M) bool.
    """
    fail = [0] * (len(phrase) + 1)  # fail[p]: length of the longest proper border of phrase[:p]
    border = 0
    for p in range(2, len(phrase) + 1):
        while border and phrase[p - 1] != phrase[border]:
            border = fail[border]
        if phrase[p - 1] == phrase[border]:
            border += 1
        fail[p] = border
    chain = torch.zeros(width, width, dtype=torch.bool)
    for p in range(1, len(phrase)):
        q = fail[p]
        while True:
            chain[p, q] = True
            if q == 0:
                break
            q = fail[q]
    return chain


@dataclass
class ConstraintTables:
    """The constraints of a batch of B sentences.

    :ivar phrases: (B, C, M) ids, PAD-padded; a sentence's padding phrases have length 0.
    :ivar lengths: (B, C) tokens per phrase. :ivar totals: (B,) constraint tokens per sentence.
    :ivar borders: (B, C, M, M) each phrase's :func:`kmp_borders`.
    """

    phrases: torch.Tensor
    lengths: torch.Tensor
    totals: torch.Tensor
    borders: torch.Tensor

    @property
    def max_total(self) -> int:
        """The most constraint tokens of any sentence: the highest bank."""
        return int(self.totals.max())


def constraint_tables(
    constraints: Sequence[Sequence[Sequence[int]]], device: torch.device | str = "cpu"
) -> ConstraintTables | None:
    """Per-sentence phrases (lists of target ids) as :class:`ConstraintTables`; None when no
    sentence has any.

    :raises ValueError: an empty phrase, or one holding a special token (PAD, UNK, BOS, EOS).
    """
    for row, phrases in enumerate(constraints):
        for number, phrase in enumerate(phrases, start=1):
            if not phrase:
                raise ValueError(f"constraint {number} of sentence {row} is empty: give each constraint a token")
            if any(token in SPECIAL_IDS for token in phrase):
                raise ValueError(
                    f"constraint {number} of sentence {row} holds a special token (PAD, UNK, BOS or EOS): "
                    "give the phrase's text tokens only"
                )
    count = max((len(phrases) for phrases in constraints), default=0)
    if count == 0:
        return None
    width = max(len(phrase) for phrases in constraints for phrase in phrases)
    batch = len(constraints)
    table = torch.full((batch, count, width), PAD_ID, dtype=torch.long)
    lengths = torch.zeros(batch, count, dtype=torch.long)
    borders = torch.zeros(batch, count, width, width, dtype=torch.bool)
    for row, phrases in enumerate(constraints):
        for c, phrase in enumerate(phrases):
            table[row, c, : len(phrase)] = torch.as_tensor(list(phrase), dtype=torch.long)
            lengths[row, c] = len(phrase)
            borders[row, c] = kmp_borders(list(phrase), width)
    return ConstraintTables(table.to(device), lengths.to(device), lengths.sum(1).to(device), borders.to(device))


def check_constraints_fit(
    tables: ConstraintTables | None, prefix_lengths: torch.Tensor | None, limits: torch.Tensor
) -> None:
    """A one-line ValueError when a sentence's constraint tokens (plus its prefix) exceed its
    output limit: then no output can hold them all.

    The prefix is counted whole even where it already holds a constraint: the check is
    simple and errs on the side of refusing.

    :param prefix_lengths: (B,) tokens in each sentence's prefix, or None. :param limits: (B,).
    """
    if tables is None:
        return
    needed = tables.totals.to(limits.device)
    if prefix_lengths is not None:
        needed = needed + prefix_lengths.to(limits.device)
    over = (needed > limits).nonzero().squeeze(1).tolist()
    if over:
        row = over[0]
        raise ValueError(
            f"sentence {row}: its constraints (and prefix) need {int(needed[row])} tokens, more than its output "
            f"limit of {int(limits[row])} tokens: drop or shorten constraints or raise --max-len-ratio"
        )


@dataclass
class ConstraintState:
    """Each decoder row's progress through its sentence's constraints.

    :ivar done: (rows, C) phrases met (padding phrases included).
    :ivar current: (rows,) the phrase in progress, -1 for none.
    :ivar progress: (rows,) its tokens produced so far (0 when none is in progress).
    """

    done: torch.Tensor
    current: torch.Tensor
    progress: torch.Tensor

    @classmethod
    def initial(cls, tables: ConstraintTables, sentences: torch.Tensor) -> ConstraintState:
        """Nothing met yet, for rows of ``sentences`` (indices into ``tables``)."""
        rows = sentences.numel()
        device = tables.lengths.device
        return cls(
            tables.lengths[sentences] == 0,
            torch.full((rows,), -1, dtype=torch.long, device=device),
            torch.zeros(rows, dtype=torch.long, device=device),
        )

    def select(self, index: torch.Tensor) -> ConstraintState:
        return ConstraintState(self.done[index], self.current[index], self.progress[index])

    def met(self, lengths: torch.Tensor) -> torch.Tensor:
        """(rows,) constraint tokens met: the bank. :param lengths: (rows, C) phrase lengths."""
        return (self.done * lengths).sum(1) + self.progress


def next_constraint_tokens(tables: ConstraintTables, sentences: torch.Tensor, state: ConstraintState) -> torch.Tensor:
    """Each row's constraint candidates: per phrase, the in-progress phrase's next token and
    every other unmet phrase's first token; PAD for met phrases.

    :param sentences: (rows,) each row's sentence in ``tables``. :return: (rows, C) ids.
    """
    phrases = tables.phrases[sentences]  # (rows, C, M)
    count = phrases.size(1)
    in_progress = state.current.unsqueeze(1) == torch.arange(count, device=phrases.device)  # (rows, C)
    position = torch.where(in_progress, state.progress.unsqueeze(1), 0)
    tokens = phrases.gather(2, position.unsqueeze(2)).squeeze(2)
    return tokens.masked_fill(state.done, PAD_ID)


def advance(tables: ConstraintTables, sentences: torch.Tensor, state: ConstraintState, tokens: torch.Tensor):
    """The state of each row after it produces ``tokens`` (see the module docstring).

    :param sentences: (N,) each row's sentence in ``tables``. :param tokens: (N,) ids.
    :return: the new :class:`ConstraintState` of the N rows.
    """
    lengths = tables.lengths[sentences]  # (N, C)
    width = tables.phrases.size(2)
    in_progress = state.current >= 0
    current = state.current.clamp(min=0)
    progress = state.progress
    phrase = tables.phrases[sentences, current]  # (N, M) the phrase in progress (phrase 0 when none)
    at = progress.clamp(max=width - 1)
    hit = in_progress & (phrase.gather(1, at.unsqueeze(1)).squeeze(1) == tokens)
    # A mismatch falls back to the longest border q of the progress with phrase[q] == token.
    chain = tables.borders[sentences, current, at]  # (N, M)
    steps = torch.arange(1, width + 1, device=tokens.device)
    fallback = torch.where(chain & (phrase == tokens.unsqueeze(1)), steps, 0).amax(1)
    kept = torch.where(hit, progress + 1, torch.where(in_progress, fallback, 0))
    completes = hit & (kept == lengths.gather(1, current.unsqueeze(1)).squeeze(1))
    stays = in_progress & ~completes & (kept > 0)
    # Not in a phrase any more (and the token not used to complete one): it may start one.
    startable = (
        (~stays & ~completes).unsqueeze(1) & ~state.done & (tables.phrases[sentences, :, 0] == tokens.unsqueeze(1))
    )
    starts = startable.any(1)
    started = startable.to(torch.uint8).argmax(1)  # the first startable phrase
    single = starts & (lengths.gather(1, started.unsqueeze(1)).squeeze(1) == 1)
    opens = starts & ~single
    phrase_ids = torch.arange(lengths.size(1), device=tokens.device)
    done = (
        state.done
        | ((phrase_ids == current.unsqueeze(1)) & completes.unsqueeze(1))
        | ((phrase_ids == started.unsqueeze(1)) & single.unsqueeze(1))
    )
    new_current = torch.where(stays, state.current, torch.where(opens, started, -1))
    new_progress = torch.where(stays, kept, opens.long())
    return ConstraintState(done, new_current, new_progress)


def bank_sizes(counts: torch.Tensor, tops: torch.Tensor, k: int) -> torch.Tensor:
    """Beam slots per bank (Post & Vilar's allocation): ``k // (N + 1)`` for each bank
    0..N, the remainder to bank N; then, from the top bank down, slots a bank has no
    candidates for pass to the bank below, bank 0's to bank N.

    :param counts: (n, N_max + 1) candidates per bank. :param tops: (n,) N, each sentence's
        constraint tokens. :return: (n, N_max + 1) slots, 0 above a sentence's own N.
    """
    banks = counts.size(1)
    number = torch.arange(banks, device=counts.device)
    share = torch.div(k, tops + 1, rounding_mode="floor")
    sizes = torch.where(number <= tops.unsqueeze(1), share.unsqueeze(1), 0)
    sizes = sizes + torch.where(number == tops.unsqueeze(1), (k - share * (tops + 1)).unsqueeze(1), 0)
    # One pass per bank, top down: a bank's unused slots depend on what the banks above passed
    # to it. Banks are few (constraint tokens + 1); each pass is one operation over the batch.
    for bank in reversed(range(banks)):
        unused = (sizes[:, bank] - counts[:, bank]).clamp(min=0)
        sizes[:, bank] -= unused
        below = torch.full_like(tops, bank - 1) if bank > 0 else tops
        sizes.scatter_add_(1, below.unsqueeze(1), unused.unsqueeze(1))
    return sizes


def allocate(
    scores: torch.Tensor, banks: torch.Tensor, valid: torch.Tensor, tops: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each sentence's k beams, chosen bank by bank (:func:`bank_sizes`), best score first.

    :param scores: (n, P) candidates' cumulative log-probabilities. :param banks: (n, P)
        constraint tokens each would have met. :param valid: (n, P) which may be chosen.
    :param tops: (n,) each sentence's constraint tokens (its highest bank).
    :return: (n, k) candidate indices, and (n, k) whether each is a real choice (False
        where fewer than k candidates were valid).
    """
    order = scores.masked_fill(~valid, float("-inf")).argsort(dim=1, descending=True, stable=True)
    sorted_banks = banks.gather(1, order)
    sorted_valid = valid.gather(1, order)
    number = torch.arange(int(tops.max()) + 1, device=scores.device)
    members = (sorted_banks.unsqueeze(2) == number) & sorted_valid.unsqueeze(2)  # (n, P, banks)
    rank = (members.cumsum(1) - 1).gather(2, sorted_banks.unsqueeze(2)).squeeze(2)  # place within its bank
    sizes = bank_sizes(members.sum(1), tops, k)
    chosen = sorted_valid & (rank < sizes.gather(1, sorted_banks))
    pick = (~chosen).to(torch.uint8).argsort(dim=1, stable=True)[:, :k]  # the chosen, in score order
    return order.gather(1, pick), chosen.gather(1, pick)


@dataclass
class ConstrainedStep:
    """What :func:`constrained_step` chose for n sentences, in the plain step's layout: 2K
    candidates per sentence, the first K those that would fill the beam with EOS allowed (its
    EOS ones finish), the last K the beams that go on.

    :ivar scores, tokens, beams, token_lps: (n, 2K) cumulative score (-inf: no candidate),
        id, beam number (0..K-1) and the token's own log-probability.
    :ivar state: (n * K,) the constraint state of the beams that go on, sentence-major.
    """

    scores: torch.Tensor
    tokens: torch.Tensor
    beams: torch.Tensor
    token_lps: torch.Tensor
    state: ConstraintState


def constrained_step(
    tables: ConstraintTables,
    sentences: torch.Tensor,
    state: ConstraintState,
    live: torch.Tensor,
    top_lp: torch.Tensor,
    top_tok: torch.Tensor,
    extra_lp: torch.Tensor,
    extra_tok: torch.Tensor,
    steps_left: torch.Tensor,
) -> ConstrainedStep:
    """One step of Dynamic Beam Allocation for n sentences of K beams (module docstring).

    :param sentences: (n,) the sentences in ``tables``. :param state: (n * K,) the beams' states.
    :param live: (n, K) the beams' cumulative log-probabilities (-inf: dead).
    :param top_lp, top_tok: (n * K, 2K) each beam's best next tokens and log-probabilities.
    :param extra_lp, extra_tok: (n * K, C) its :func:`next_constraint_tokens` (PAD: none) and
        their log-probabilities.
    :param steps_left: (n,) tokens each sentence may still produce after this one.
    """
    n, k = live.shape
    # An extra token is a new candidate only when the beam's top tokens and its earlier extras lack it.
    seen_top = (extra_tok.unsqueeze(2) == top_tok.unsqueeze(1)).any(2)
    count = extra_tok.size(1)
    earlier = torch.ones(count, count, dtype=torch.bool, device=live.device).tril(-1)
    seen_extra = ((extra_tok.unsqueeze(2) == extra_tok.unsqueeze(1)) & earlier).any(2)
    extra_lp = extra_lp.masked_fill((extra_tok == PAD_ID) | seen_top | seen_extra, float("-inf"))
    tokens = torch.cat([top_tok, extra_tok], dim=1)  # (n * K, W)
    token_lps = torch.cat([top_lp, extra_lp], dim=1)
    per_beam = tokens.size(1)
    scores = (live.view(-1, 1) + token_lps).view(n, k * per_beam)
    tokens, token_lps = tokens.view(n, -1), token_lps.view(n, -1)

    # Every candidate's state after its token, and so its bank.
    rows = torch.arange(n * k, device=live.device).repeat_interleave(per_beam)  # (n * K * W,)
    candidate_sentences = sentences.repeat_interleave(k * per_beam)
    after = advance(tables, candidate_sentences, state.select(rows), tokens.view(-1))
    banks = after.met(tables.lengths[candidate_sentences]).view(n, -1)
    tops = tables.totals[sentences]
    is_eos = tokens == EOS_ID
    # EOS already has -inf unless every constraint is met; the rest must leave room for them.
    valid = torch.isfinite(scores) & (tops.unsqueeze(1) - banks <= steps_left.unsqueeze(1))
    ending, ending_ok = allocate(scores, banks, valid, tops, k)
    going, going_ok = allocate(scores, banks, valid & ~is_eos, tops, k)
    picked = torch.cat([ending, going], dim=1)
    ok = torch.cat([ending_ok, going_ok], dim=1)
    beams = torch.div(picked, per_beam, rounding_mode="floor")
    flat_going = (torch.arange(n, device=live.device).unsqueeze(1) * (k * per_beam) + going).view(-1)
    return ConstrainedStep(
        scores.gather(1, picked).masked_fill(~ok, float("-inf")),
        tokens.gather(1, picked),
        beams,
        token_lps.gather(1, picked),
        after.select(flat_going),
    )
