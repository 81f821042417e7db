"""Prefix-constrained decoding: the mask on constructed scores, and what a prefix does to
every strategy (exactness against greedy, scores, batch independence, errors)."""

from __future__ import annotations

import pytest
import torch

from nmt.data.batching import pad_sequences
from nmt.data.tokenizers import EOS_ID, PAD_ID
from nmt.decoding import decode
from nmt.decoding.forced import forced_decode
from nmt.decoding.prefix import force_tokens, prefix_tensor
from nmt.models.seq2seq import Seq2Seq

VOCAB = 30
INF = float("-inf")


def test_force_tokens_masks_every_other_token_of_constrained_rows_only():
    log_probs = torch.log_softmax(torch.randn(3, 6), dim=1)
    before = log_probs.clone()
    force_tokens(log_probs, torch.tensor([4, PAD_ID, 5]))
    assert log_probs[1].tolist() == before[1].tolist()  # a free row is untouched
    assert log_probs[0, 4] == before[0, 4] and log_probs[2, 5] == before[2, 5]  # own log-probability kept
    assert torch.isinf(log_probs[0]).sum() == 5 and torch.isinf(log_probs[2]).sum() == 5


def test_prefix_tensor_pads_and_refuses_special_tokens():
    assert prefix_tensor([[], []]) is None
    assert prefix_tensor([[5, 6], [], [7]]).tolist() == [[5, 6], [PAD_ID, PAD_ID], [7, PAD_ID]]
    with pytest.raises(ValueError, match="special token"):
        prefix_tensor([[5, EOS_ID]])


@pytest.fixture(scope="module")
def model() -> Seq2Seq:
    torch.manual_seed(0)
    net = Seq2Seq(VOCAB, VOCAB, embed_size=16, hidden_size=32, dropout=0.0).eval().double()
    with torch.no_grad():
        net.output_layer.weight.mul_(3)
    return net


@pytest.fixture(scope="module")
def sources() -> list[list[int]]:
    generator = torch.Generator().manual_seed(2)
    lengths = torch.randint(2, 10, (8,), generator=generator).tolist()
    return [torch.randint(4, VOCAB, (n,), generator=generator).tolist() for n in lengths]


def run(model, sources, prefixes=None, **options):
    src, lengths = pad_sequences(sources)
    return decode(model, src, lengths, prefixes=prefixes, **options)


def best(results) -> list[list[int]]:
    return [hyps[0].tokens for hyps in results]


STRATEGIES = [
    {"strategy": "greedy"},
    {"strategy": "beam", "beam_size": 4},
    {"strategy": "sample", "temperature": 1.0, "seed": 3},
]
# Varied prefix lengths in one batch, and one sentence without a prefix.
PREFIXES = [[5], [6, 7, 8], [], [9, 9], [10, 11, 12, 13], [14], [15, 16], [17, 18, 19]]


@pytest.mark.parametrize("options", STRATEGIES, ids=lambda o: o["strategy"])
def test_every_output_starts_with_its_own_prefix(model, sources, options):
    n_best = 1 if options["strategy"] == "greedy" else 2
    for hyps, prefix in zip(run(model, sources, PREFIXES, n_best=n_best, **options), PREFIXES):
        assert len(hyps) == n_best
        for hyp in hyps:
            assert hyp.tokens[: len(prefix)] == prefix


@pytest.mark.parametrize("options", STRATEGIES, ids=lambda o: o["strategy"])
def test_empty_prefixes_change_nothing(model, sources, options):
    free, empty = run(model, sources, None, **options), run(model, sources, [[]] * len(sources), **options)
    assert best(free) == best(empty)
    assert [h[0].log_prob for h in free] == [h[0].log_prob for h in empty]


def test_greedy_with_a_prefix_of_its_own_output_returns_that_output(model, sources):
    free = run(model, sources)
    for k in (1, 3):
        prefixes = [hyps[0].tokens[:k] for hyps in free]
        constrained = run(model, sources, prefixes)
        assert best(constrained) == best(free)
        assert [h[0].log_prob for h in constrained] == [h[0].log_prob for h in free]


def test_beam_of_one_is_greedy_with_a_prefix(model, sources):
    greedy = run(model, sources, PREFIXES)
    beam = run(model, sources, PREFIXES, strategy="beam", beam_size=1, length_penalty=0.0, beam_patience=None)
    assert best(beam) == best(greedy)
    assert [h[0].log_prob for h in beam] == pytest.approx([h[0].log_prob for h in greedy])


def test_prefix_tokens_count_in_the_score_as_forced_decoding_scores_them(model, sources):
    from nmt.data.batching import collate_pairs

    results = [hyps[0] for hyps in run(model, sources, PREFIXES)]
    for hyp in results:
        assert sum(hyp.token_log_probs) == pytest.approx(hyp.log_prob)
    forced = forced_decode(model, collate_pairs([(s, hyp.tokens, "") for s, hyp in zip(sources, results)]))
    # Forced decoding scores target + EOS; the search scored EOS only where it ended with it.
    for steps, hyp in zip(forced.token_log_probs, results):
        assert steps[: len(hyp.token_log_probs)] == pytest.approx(hyp.token_log_probs)


@pytest.mark.parametrize("options", STRATEGIES, ids=lambda o: o["strategy"])
def test_a_sentence_decodes_the_same_alone_or_in_a_batch(model, sources, options):
    together = run(model, sources, PREFIXES, **options)
    for i in (1, 4, 7):
        alone = run(model, [sources[i]], [PREFIXES[i]], **options)
        assert best(alone) == [together[i][0].tokens]
        assert alone[0][0].log_prob == pytest.approx(together[i][0].log_prob)


def test_a_prefix_longer_than_the_output_limit_is_a_one_line_error(model, sources):
    with pytest.raises(ValueError, match=r"longer than its sentence's output limit of 3 tokens: shorten the prefix"):
        run(model, sources[:1], [[5, 6, 7, 8]], max_len=3)
    assert best(run(model, sources[:1], [[5, 6, 7]], max_len=3)) == [[5, 6, 7]]  # exactly the limit fits
    # Then the prefix is the only output: beam search lists no impossible (-inf) hypotheses.
    [hyps] = run(model, sources[:1], [[5, 6, 7]], max_len=3, strategy="beam", beam_size=3, n_best=2)
    assert [hyp.tokens for hyp in hyps] == [[5, 6, 7]] and hyps[0].log_prob > INF


def test_a_prefix_the_no_repeat_rule_forbids_is_refused(model, sources):
    with pytest.raises(ValueError, match="repeats an n-gram of 2 tokens"):
        run(model, sources[:1], [[5, 6, 5, 6]], no_repeat_ngram_size=2)


def test_one_prefix_per_sentence(model, sources):
    with pytest.raises(ValueError, match="2 prefixes for a batch of 3"):
        run(model, sources[:3], [[5], [6]])
