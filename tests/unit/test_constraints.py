"""Lexically constrained beam search (Dynamic Beam Allocation): the constraint state, the bank
allocation, and what constraints do to beam search -- every output holds them, no constraints
is the plain search, scores are forced decoding's, batch independence, ensembles, errors."""

from __future__ import annotations

import random

import pytest
import torch

from nmt.data.batching import collate_pairs, pad_sequences
from nmt.data.tokenizers import EOS_ID, UNK_ID
from nmt.decoding import decode
from nmt.decoding.beam import _top_candidates
from nmt.decoding.constraints import (
    ConstraintState,
    advance,
    bank_sizes,
    constrained_step,
    constraint_tables,
    kmp_borders,
)
from nmt.decoding.forced import forced_decode
from nmt.models.ensemble import Seq2SeqEnsemble
from nmt.models.seq2seq import Seq2Seq

VOCAB = 30
INF = float("-inf")


def tiny_network(seed: int, sharpen: float = 3.0, **sizes) -> Seq2Seq:
    """An untrained float64 network whose sharpened output layer ends sentences at varied lengths."""
    torch.manual_seed(seed)
    net = Seq2Seq(VOCAB, VOCAB, **{"embed_size": 16, "hidden_size": 32, "dropout": 0.0, **sizes}).eval().double()
    with torch.no_grad():
        net.output_layer.weight.mul_(sharpen)
    return net


@pytest.fixture(scope="module")
def model() -> Seq2Seq:
    return tiny_network(0)


@pytest.fixture(scope="module")
def sources() -> list[list[int]]:
    generator = torch.Generator().manual_seed(2)
    lengths = torch.randint(2, 10, (8,), generator=generator).tolist()
    return [torch.randint(4, VOCAB, (n,), generator=generator).tolist() for n in lengths]


def run(model, sources, constraints=None, **options):
    src, lengths = pad_sequences(sources)
    return decode(model, src, lengths, constraints=constraints, **{"strategy": "beam", **options})


def holds(tokens: list[int], phrases: list[list[int]]) -> bool:
    """Whether ``tokens`` holds every phrase, each as often as it is listed (non-overlapping)."""
    for phrase in map(list, {tuple(p) for p in phrases}):
        found, i = 0, 0
        while i + len(phrase) <= len(tokens):
            if tokens[i : i + len(phrase)] == phrase:
                found, i = found + 1, i + len(phrase)
            else:
                i += 1
        if found < phrases.count(phrase):
            return False
    return True


def everything(results) -> list:
    """Every field of every hypothesis, for exact comparisons."""
    return [
        (h.tokens, h.score, h.log_prob, h.token_log_probs, None if h.attention is None else h.attention.tolist())
        for hyps in results
        for h in hyps
    ]


# Varied constraints in one batch: phrases of one to three tokens, two at once, one listed
# twice, one sentence without any, and a phrase whose start repeats (KMP's case).
CONSTRAINTS = [[[5]], [[6, 7]], [], [[9], [9]], [[10, 11], [12]], [[14]], [[15, 16, 17]], [[4, 4, 5]]]


# -- the constraint state ------------------------------------------------------------------------


def walk(phrases: list[list[int]], tokens: list[int]) -> list[int]:
    """Constraint tokens met after each of ``tokens``, for one sentence with ``phrases``."""
    tables = constraint_tables([phrases])
    sentence = torch.zeros(1, dtype=torch.long)
    state = ConstraintState.initial(tables, sentence)
    met = []
    for token in tokens:
        state = advance(tables, sentence, state, torch.tensor([token]))
        met.append(int(state.met(tables.lengths[sentence])))
    return met


def test_kmp_borders_list_every_proper_border_of_each_progress():
    chain = kmp_borders([5, 5, 6, 5, 5, 5], 6)
    assert chain[1].nonzero().flatten().tolist() == [0]
    assert chain[2].nonzero().flatten().tolist() == [0, 1]  # "5 5": border "5"
    assert chain[5].nonzero().flatten().tolist() == [0, 1, 2]  # "5 5 6 5 5": borders "5 5", "5"


@pytest.mark.parametrize(
    "phrases, tokens, met",
    [
        ([[5, 6, 7]], [5, 6, 7], [1, 2, 3]),
        ([[5, 6, 7]], [5, 6, 8, 5, 6, 7], [1, 2, 0, 1, 2, 3]),  # a mismatch undoes the progress
        ([[5, 5, 6]], [5, 5, 5, 6], [1, 2, 2, 3]),  # ... back to the longest prefix still ending the output
        ([[5, 6, 5, 7]], [5, 6, 5, 6, 5, 7], [1, 2, 3, 2, 3, 4]),
        ([[5], [5]], [5, 8, 5], [1, 1, 2]),  # a phrase listed twice needs two occurrences
        ([[5, 6], [7]], [5, 7, 5, 6], [1, 1, 2, 3]),  # a token that breaks one phrase may start another
        ([[8], [5, 6]], [5, 6, 8], [1, 2, 3]),
        ([[5, 6]], [6, 5, 6, 6], [0, 1, 2, 2]),  # a met phrase stays met
    ],
)
def test_the_state_counts_the_constraint_tokens_met(phrases, tokens, met):
    assert walk(phrases, tokens) == met


def test_a_state_that_has_met_everything_holds_every_phrase_and_finds_any_single_phrase():
    rng = random.Random(0)
    for _ in range(500):
        phrases = [[rng.randint(4, 6) for _ in range(rng.randint(1, 3))] for _ in range(rng.randint(1, 2))]
        tokens = [rng.randint(4, 6) for _ in range(rng.randint(1, 12))]
        all_met = walk(phrases, tokens)[-1] == sum(map(len, phrases))
        if all_met:
            assert holds(tokens, phrases)
        if len(phrases) == 1:  # one phrase is recognised wherever it occurs (KMP)
            assert all_met == holds(tokens, phrases)


def test_phrases_that_overlap_in_the_output_each_need_their_own_tokens():
    # "5 6" and "6 7" in "5 6 7" share the 6: the state counts one phrase, the search looks further.
    assert walk([[5, 6], [6, 7]], [5, 6, 7]) == [1, 2, 2]


# -- the bank allocation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "counts, top, k, sizes",
    [
        ([9, 9], 1, 5, [2, 3]),  # K // (N + 1) each, the remainder to the top bank
        ([9, 9, 9, 9], 3, 4, [1, 1, 1, 1]),
        ([9, 1, 0, 0], 3, 4, [3, 1, 0, 0]),  # unused slots pass down
        ([9, 0, 0, 0, 0, 0], 5, 3, [3, 0, 0, 0, 0, 0]),  # more banks than beams: the top gets them all, then down
        ([1, 9], 1, 5, [1, 4]),  # bank 0's unused slots go to the top bank
        ([0, 9, 0], 1, 3, [0, 3, 0]),  # a sentence with fewer banks than the batch's most
    ],
)
def test_bank_sizes_split_the_beam_and_pass_unused_slots_down(counts, top, k, sizes):
    result = bank_sizes(torch.tensor([counts]), torch.tensor([top]), k)
    assert result.tolist() == [sizes]


def test_with_no_constraints_the_step_is_the_plain_step():
    """One bank: the same candidates finish and go on, in the same order, bit for bit."""
    generator = torch.Generator().manual_seed(0)
    n, k = 6, 3
    tables = constraint_tables([[[5]]] + [[] for _ in range(n)])  # sentence 0 has one; 1..n none
    sentences = torch.arange(1, n + 1)
    state = ConstraintState.initial(tables, sentences.repeat_interleave(k))
    for _ in range(20):
        log_probs = torch.randn(n * k, VOCAB, generator=generator, dtype=torch.float64).log_softmax(-1)
        top_lp, top_tok = log_probs.topk(2 * k, dim=1)
        live = torch.randn(n, k, generator=generator, dtype=torch.float64) * 3
        live[:, 2] = INF  # a dead beam
        extra = torch.zeros(n * k, 1, dtype=torch.long)
        step = constrained_step(
            tables, sentences, state, live, top_lp, top_tok, extra.double(), extra, torch.full((n,), 9)
        )
        scores, tokens, beams, lps = _top_candidates(top_lp, top_tok, live)
        # The plain step: EOS among its K best finish; its K best others go on.
        is_eos = tokens == EOS_ID
        ending = is_eos & torch.isfinite(scores)
        ending[:, k:] = False
        cont = is_eos.to(torch.uint8).argsort(dim=1, stable=True)[:, :k]
        finishing = step.tokens[:, :k] == EOS_ID
        assert sorted(step.scores[:, :k][finishing].tolist()) == sorted(scores[ending].tolist())
        assert torch.equal(step.scores[:, k:], scores.gather(1, cont))
        assert torch.equal(step.tokens[:, k:], tokens.gather(1, cont))
        assert torch.equal(step.beams[:, k:], beams.gather(1, cont))
        assert torch.equal(step.token_lps[:, k:], lps.gather(1, cont))


# -- what constraints do to beam search ---------------------------------------------------------


def random_case(rng: random.Random, count: int) -> tuple[list[list[int]], list[list[list[int]]], dict]:
    sources = [[rng.randint(4, VOCAB - 1) for _ in range(rng.randint(1, 9))] for _ in range(count)]
    constraints = [
        [[rng.randint(4, VOCAB - 1) for _ in range(rng.randint(1, 3))] for _ in range(rng.choice([0, 1, 1, 2, 3]))]
        for _ in range(count)
    ]
    beam = rng.randint(1, 5)
    options = {
        "beam_size": beam,
        "n_best": rng.randint(1, beam),
        "length_penalty": rng.choice([0.0, 1.0]),
        "beam_patience": rng.choice([0, 2, None]),
        "coverage_penalty": rng.choice([0.0, 0.0, 0.4]),
        "repetition_penalty": rng.choice([1.0, 1.0, 1.3]),
    }
    return sources, constraints, options


def test_every_output_holds_its_constraints_over_many_random_cases():
    rng = random.Random(0)
    checked = 0
    for case in range(80):
        net = tiny_network(case % 5, sharpen=rng.choice([1.0, 3.0, 5.0]))
        sources, constraints, options = random_case(rng, 6)
        prefixes = [[rng.randint(4, VOCAB - 1)] if rng.random() < 0.3 else [] for _ in sources]
        src, lengths = pad_sequences(sources)
        results = decode(net, src, lengths, strategy="beam", constraints=constraints, prefixes=prefixes, **options)
        for hyps, phrases, prefix in zip(results, constraints, prefixes):
            assert 1 <= len(hyps) <= options["n_best"]
            assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
            assert len({tuple(h.tokens) for h in hyps}) == len(hyps)  # no duplicates in an n-best list
            for hyp in hyps:
                assert holds(hyp.tokens, phrases), (hyp.tokens, phrases)
                assert hyp.tokens[: len(prefix)] == prefix
                assert hyp.log_prob > INF
                checked += 1
    assert checked > 600


def test_no_constraints_is_the_plain_beam_search_bit_for_bit(model, sources):
    for options in ({"beam_size": 4, "n_best": 3}, {"beam_size": 3, "length_penalty": 0.0, "coverage_penalty": 0.4}):
        plain = everything(run(model, sources, None, return_attention=True, **options))
        empty = everything(run(model, sources, [[] for _ in sources], return_attention=True, **options))
        assert empty == plain


def test_sentences_without_constraints_decode_as_plain_beside_constrained_ones(model, sources):
    plain = run(model, sources, None, beam_size=4, n_best=2)
    mixed = run(model, sources, CONSTRAINTS, beam_size=4, n_best=2)
    for i, phrases in enumerate(CONSTRAINTS):
        if not phrases:
            assert [h.tokens for h in mixed[i]] == [h.tokens for h in plain[i]]
            assert [h.score for h in mixed[i]] == pytest.approx([h.score for h in plain[i]], abs=1e-12)


def test_every_output_holds_its_own_constraints_and_n_best_lists_are_sorted(model, sources):
    results = run(model, sources, CONSTRAINTS, beam_size=4, n_best=3)
    for hyps, phrases in zip(results, CONSTRAINTS):
        assert len(hyps) == 3
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        assert all(holds(h.tokens, phrases) for h in hyps)
    assert any(not holds(hyps[0].tokens, phrases) for hyps, phrases in zip(run(model, sources), CONSTRAINTS))


def test_a_constraint_the_output_begins_with_gives_that_output_with_a_beam_of_one():
    """With one beam, DBA's single slot goes to the hypothesis that has met the most constraint
    tokens: while the output is spelling the constraint that is its own (only one hypothesis can
    have met t + 1 tokens after t + 1 steps), and afterwards every candidate has met them all,
    so it is greedy search again. Larger beams give DBA's other banks slots the plain search
    spent on its own hypotheses, and a constraint inside the output (not at its start) is placed
    as early as possible with one beam, so neither promises the plain output (docs: decoding)."""
    rng = random.Random(1)
    options = {"beam_size": 1, "length_penalty": 0.0, "beam_patience": None}
    compared = 0
    for seed in range(6):
        net = tiny_network(seed, sharpen=rng.choice([1.0, 3.0, 5.0]))
        sources, _, _ = random_case(rng, 8)
        greedy = [hyps[0].tokens for hyps in run(net, sources, strategy="greedy")]
        constraints = [[out[: rng.randint(1, 3)]] if out and min(out[:3]) > UNK_ID else [] for out in greedy]
        results = run(net, sources, constraints, **options)
        plain = run(net, sources, None, **options)
        for hyps, free, phrases, best in zip(results, plain, constraints, greedy):
            assert hyps[0].tokens == free[0].tokens == best
            assert hyps[0].score == pytest.approx(free[0].score, abs=1e-12)
            compared += bool(phrases)
    assert compared > 30


def test_the_reported_scores_are_forced_decodings_of_the_outputs(model, sources):
    results = [hyps[0] for hyps in run(model, sources, CONSTRAINTS, beam_size=4, length_penalty=0.0)]
    forced = forced_decode(model, collate_pairs([(s, hyp.tokens, "") for s, hyp in zip(sources, results)]))
    for steps, hyp in zip(forced.token_log_probs, results):
        assert sum(hyp.token_log_probs) == pytest.approx(hyp.log_prob)
        assert hyp.score == pytest.approx(hyp.log_prob)  # length penalty 0
        # Forced decoding scores target + EOS; the search scored EOS only where it ended with it.
        assert steps[: len(hyp.token_log_probs)] == pytest.approx(hyp.token_log_probs)


def test_a_sentence_decodes_the_same_alone_or_in_a_batch_with_other_constraints(model, sources):
    together = run(model, sources, CONSTRAINTS, beam_size=4, n_best=2)
    for i in range(len(sources)):
        alone = run(model, [sources[i]], [CONSTRAINTS[i]], beam_size=4, n_best=2)
        assert [h.tokens for h in alone[0]] == [h.tokens for h in together[i]]
        assert [h.score for h in alone[0]] == pytest.approx([h.score for h in together[i]], abs=1e-9)


def test_constraints_and_a_prefix_together(model, sources):
    prefixes = [[8, 9], [], [20], [21, 22, 23], [], [24], [25], [26, 27]]
    src, lengths = pad_sequences(sources)
    results = decode(model, src, lengths, strategy="beam", beam_size=3, prefixes=prefixes, constraints=CONSTRAINTS)
    for hyps, prefix, phrases in zip(results, prefixes, CONSTRAINTS):
        assert hyps[0].tokens[: len(prefix)] == prefix and holds(hyps[0].tokens, phrases)
    # A prefix that holds the constraint meets it: the rest decodes freely.
    [[hyp]] = decode(model, src[:1], lengths[:1], strategy="beam", beam_size=3, prefixes=[[5]], constraints=[[[5]]])
    [[free]] = decode(model, src[:1], lengths[:1], strategy="beam", beam_size=3, prefixes=[[5]])
    assert hyp.tokens == free.tokens


def test_ensembles_decode_with_constraints_as_one_model(model, sources):
    second = tiny_network(1, hidden_size=24, embed_size=8, cell="gru", attention="dot")
    ensemble = Seq2SeqEnsemble([model, second])
    results = run(ensemble, sources, CONSTRAINTS, beam_size=3, n_best=2, coverage_penalty=0.2)
    for hyps, phrases in zip(results, CONSTRAINTS):
        assert all(holds(h.tokens, phrases) for h in hyps)
    alone = run(ensemble, [sources[4]], [CONSTRAINTS[4]], beam_size=3, n_best=2, coverage_penalty=0.2)
    assert [h.tokens for h in alone[0]] == [h.tokens for h in results[4]]
    one = everything(run(Seq2SeqEnsemble([model]), sources, CONSTRAINTS, beam_size=3))
    assert one == everything(run(model, sources, CONSTRAINTS, beam_size=3))


# -- what cannot be satisfied: one-line errors -------------------------------------------------------


@pytest.mark.parametrize("strategy", ["greedy", "sample"])
def test_constraints_need_beam_search(model, sources, strategy):
    with pytest.raises(ValueError, match=f"lexical constraints need --strategy beam, not {strategy}"):
        run(model, sources[:1], [[[5]]], strategy=strategy)
    assert run(model, sources[:1], [[]], strategy=strategy)  # no constraint: any strategy


@pytest.mark.parametrize(
    "phrases, message",
    [
        ([[]], "constraint 1 of sentence 0 is empty"),
        ([[5], [EOS_ID]], "constraint 2 of sentence 0 holds a special token"),
        ([[UNK_ID, 5]], "holds a special token"),
    ],
)
def test_empty_and_special_token_constraints_are_refused(model, sources, phrases, message):
    with pytest.raises(ValueError, match=message):
        run(model, sources[:1], [phrases])


def test_constraints_longer_than_the_output_limit_are_refused(model, sources):
    with pytest.raises(
        ValueError, match=r"sentence 0: its constraints \(and prefix\) need 4 tokens, more than its output limit of 3"
    ):
        run(model, sources[:1], [[[5, 6], [7, 8]]], max_len=3)
    src, lengths = pad_sequences(sources[:1])
    with pytest.raises(ValueError, match="need 4 tokens"):
        decode(model, src, lengths, strategy="beam", max_len=3, prefixes=[[9, 10]], constraints=[[[5, 6]]])
    # Exactly the limit fits: the output is the constraints.
    [[hyp]] = run(model, sources[:1], [[[5, 6], [7]]], max_len=3)
    assert sorted(hyp.tokens) == [5, 6, 7] and holds(hyp.tokens, [[5, 6], [7]])


def test_constraints_the_no_repeat_rule_forbids_are_refused(model, sources):
    with pytest.raises(ValueError, match="a constraint repeats an n-gram of 1 tokens"):
        run(model, sources[:1], [[[5, 5]]], no_repeat_ngram_size=1)
    # Each phrase alone is fine, but after the prefix's 5 the rule bans the 5 the phrase needs.
    src, lengths = pad_sequences(sources[:1])
    with pytest.raises(ValueError, match="sentence 0: no translation within its output limit holds every constraint"):
        decode(model, src, lengths, strategy="beam", no_repeat_ngram_size=1, prefixes=[[5, 7]], constraints=[[[5, 6]]])


def test_one_constraint_list_per_sentence(model, sources):
    with pytest.raises(ValueError, match="2 constraint lists for a batch of 3"):
        run(model, sources[:3], [[[5]], []])
