"""Per-token log-probabilities of every decoder, and forced decoding that agrees with them."""

from __future__ import annotations

import pytest
import torch

from nmt.data.batching import collate_pairs, pad_sequences
from nmt.decoding import decode
from nmt.decoding.forced import forced_decode
from nmt.models.seq2seq import Seq2Seq

VOCAB = 30
STRATEGIES = [
    {"strategy": "greedy"},
    {"strategy": "beam", "beam_size": 4, "n_best": 3},
    {"strategy": "beam", "beam_size": 3, "length_penalty": 0.0},
    {"strategy": "sample", "n_best": 3, "temperature": 1.5, "seed": 2},
]


@pytest.fixture(scope="module")
def model() -> Seq2Seq:
    """Untrained, float64, with a sharpened output layer: sentences end at various lengths."""
    torch.manual_seed(0)
    net = Seq2Seq(VOCAB, VOCAB, embed_size=16, hidden_size=32, dropout=0.0).eval().double()
    with torch.no_grad():
        net.output_layer.weight.mul_(4)
    return net


@pytest.fixture(scope="module")
def sources() -> list[list[int]]:
    generator = torch.Generator().manual_seed(1)
    lengths = torch.randint(1, 12, (12,), generator=generator).tolist()
    return [torch.randint(4, VOCAB, (n,), generator=generator).tolist() for n in lengths]


def force(model, sources, targets, return_attention=False):
    batch = collate_pairs([(source, target, "") for source, target in zip(sources, targets)])
    return forced_decode(model, batch, return_attention=return_attention)


@pytest.mark.parametrize("options", STRATEGIES, ids=lambda o: "-".join(map(str, o.values())))
def test_token_log_probs_sum_to_the_log_prob_one_per_step(model, sources, options):
    src, lengths = pad_sequences(sources)
    results = decode(model, src, lengths, return_attention=True, **options)
    ended = 0
    for hyps in results:
        for hyp in hyps:
            assert len(hyp.token_log_probs) == hyp.attention.size(0)
            assert len(hyp.token_log_probs) in (len(hyp.tokens), len(hyp.tokens) + 1)
            assert all(lp <= 0 for lp in hyp.token_log_probs)
            assert sum(hyp.token_log_probs) == pytest.approx(hyp.log_prob, abs=1e-9)
            ended += hyp.ended
    assert ended > 0  # the fixture makes some hypotheses end with EOS


@pytest.mark.parametrize("options", STRATEGIES, ids=lambda o: "-".join(map(str, o.values())))
def test_forced_decoding_of_a_search_output_gives_the_search_scores(model, sources, options):
    src, lengths = pad_sequences(sources)
    results = decode(model, src, lengths, **options)
    pairs = [(source, hyp) for source, hyps in zip(sources, results) for hyp in hyps if hyp.ended]
    forced = force(model, [s for s, _ in pairs], [h.tokens for _, h in pairs])
    for (_, hyp), score, token_lps in zip(pairs, forced.scores, forced.token_log_probs):
        assert score == pytest.approx(hyp.log_prob, abs=1e-6)
        assert token_lps == pytest.approx(hyp.token_log_probs, abs=1e-6)


def test_forced_decoding_shapes_and_an_empty_target_scores_only_eos(model, sources):
    targets = [[5, 6, 7], [], [8] * 9]
    out = force(model, sources[:3], targets, return_attention=True)
    assert out.tokens == targets
    assert [len(lps) for lps in out.token_log_probs] == [4, 1, 10]
    assert [tuple(a.shape) for a in out.attention] == [(n, len(s)) for n, s in zip([4, 1, 10], sources)]
    for attention in out.attention:
        assert torch.allclose(attention.sum(dim=1).double(), torch.ones(attention.size(0)).double(), atol=1e-5)
    for score, lps in zip(out.scores, out.token_log_probs):
        assert score == pytest.approx(sum(lps), abs=1e-9)


def test_a_sentence_scores_the_same_alone_and_in_a_batch(model, sources):
    targets = [[4 + i % 20] * (1 + i % 5) for i in range(len(sources))]
    together = force(model, sources, targets).scores
    alone = [force(model, [s], [t]).scores[0] for s, t in zip(sources, targets)]
    assert together == pytest.approx(alone, abs=1e-9)
