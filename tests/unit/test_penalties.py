"""No-repeat n-grams, the repetition penalty and the coverage penalty: exact effects on
constructed scores, and what they do to every decoding strategy."""

from __future__ import annotations

import math

import pytest
import torch

from nmt.data.batching import pad_sequences
from nmt.data.tokenizers import EOS_ID, PAD_ID
from nmt.decoding import DecodingOptions, RepetitionRules, decode
from nmt.decoding.beam import length_penalty
from nmt.decoding.generation import generate, left_aligned_to_right
from nmt.decoding.penalties import ban_repeated_ngrams, coverage_penalty, penalize_repetitions
from nmt.inference.generator import GenerationOptions
from nmt.models.language_model import LanguageModel
from nmt.models.seq2seq import Seq2Seq

VOCAB = 30
INF = float("-inf")


def repeats_an_ngram(tokens: list[int], n: int) -> bool:
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(grams) != len(set(grams))


# -- the rules on constructed scores ---------------------------------------------------------------


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits_of_seen_tokens():
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0, -4.0], [1.0, 1.0, -2.0, 0.0, 6.0]])
    history = torch.tensor([[0, 1, 1], [2, 3, 3]])  # row 0 saw tokens 0, 1 (twice); row 1 saw 2 and 3
    penalize_repetitions(logits, history, 2.0)
    assert logits.tolist() == [[1.0, -2.0, 0.5, 3.0, -4.0], [1.0, 1.0, -4.0, 0.0, 6.0]]


def test_no_repeat_ngrams_bans_the_tokens_that_would_complete_a_seen_ngram():
    logits = torch.zeros(3, 8)
    history = torch.tensor(
        [
            [5, 6, 7, 5, 6],  # trigrams: the suffix (5, 6) was followed by 7
            [5, 6, 5, 6, 4],  # the suffix (6, 4) never occurred before: nothing banned
            [4, 6, 5, 4, 6],  # (4, 6) was followed by 5
        ]
    )
    ban_repeated_ngrams(logits, history, 3)
    expected = torch.zeros(3, 8)
    expected[0, 7] = expected[2, 5] = INF
    expected[:, PAD_ID] = INF  # non-matches point at PAD, which no decoder ever emits
    assert torch.equal(logits, expected)


def test_no_repeat_bigrams_and_unigrams():
    history = torch.tensor([[4, 5, 4, 6, 4]])
    bigrams = ban_repeated_ngrams(torch.zeros(1, 8), history, 2)
    assert torch.isinf(bigrams[0]).nonzero().squeeze(1).tolist() == [PAD_ID, 5, 6]  # after 4 came 5 and 6
    unigrams = ban_repeated_ngrams(torch.zeros(1, 8), history, 1)
    assert torch.isinf(unigrams[0]).nonzero().squeeze(1).tolist() == [4, 5, 6]
    short = ban_repeated_ngrams(torch.zeros(1, 8), history[:, :2], 3)  # no whole trigram yet
    assert torch.equal(short, torch.zeros(1, 8))


def test_ngrams_holding_padding_never_match():
    history = torch.tensor([[PAD_ID, PAD_ID, 4, 5, PAD_ID, PAD_ID]])
    logits = ban_repeated_ngrams(torch.zeros(1, 8), history, 3)
    assert torch.isinf(logits[0]).nonzero().squeeze(1).tolist() == [PAD_ID]


def test_coverage_penalty_is_beta_times_the_log_of_capped_coverage_over_real_positions():
    coverage = torch.tensor([[0.5, 2.0, 0.1, 0.0], [1.0, 1.0, 0.0, 0.25]])
    penalties = coverage_penalty(coverage, torch.tensor([3, 2]), 0.4)
    # Row 0: the padding position (0.0) does not count; row 1 is fully covered.
    assert penalties.tolist() == pytest.approx([0.4 * (math.log(0.5) + 0 + math.log(0.1)), 0.0])
    floor = coverage_penalty(torch.zeros(1, 2), torch.tensor([2]), 1.0)
    assert torch.isfinite(floor).all() and float(floor) < -40  # never attended: very low, not -inf


# -- the rules in every strategy ----------------------------------------------------------------


@pytest.fixture(scope="module")
def model() -> Seq2Seq:
    """An untrained float64 network whose sharpened output layer repeats itself a lot."""
    torch.manual_seed(0)
    net = Seq2Seq(VOCAB, VOCAB, embed_size=16, hidden_size=32, dropout=0.0).eval().double()
    with torch.no_grad():
        net.output_layer.weight.mul_(4)
    return net


@pytest.fixture(scope="module")
def sources() -> list[list[int]]:
    generator = torch.Generator().manual_seed(1)
    lengths = torch.randint(1, 12, (16,), generator=generator).tolist()
    return [torch.randint(4, VOCAB, (n,), generator=generator).tolist() for n in lengths]


def run(model, sources, **options):
    src, lengths = pad_sequences(sources)
    return decode(model, src, lengths, **options)


def outputs(results) -> list[list[list[int]]]:
    return [[hyp.tokens for hyp in hyps] for hyps in results]


STRATEGIES = [
    {"strategy": "greedy"},
    {"strategy": "beam", "beam_size": 4, "n_best": 2},
    {"strategy": "sample", "n_best": 3, "temperature": 0.2, "seed": 3},
]


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s["strategy"])
def test_defaults_change_no_output_or_score(model, sources, strategy):
    plain = run(model, sources, **strategy)
    explicit = run(model, sources, **strategy, no_repeat_ngram_size=0, repetition_penalty=1.0)
    assert outputs(explicit) == outputs(plain)
    assert [h.score for hs in explicit for h in hs] == [h.score for hs in plain for h in hs]


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s["strategy"])
@pytest.mark.parametrize("n", [2, 3])
def test_no_output_repeats_an_ngram_of_the_banned_size(model, sources, strategy, n):
    plain = [tokens for hyps in outputs(run(model, sources, **strategy)) for tokens in hyps]
    banned = [tokens for hyps in outputs(run(model, sources, **strategy, no_repeat_ngram_size=n)) for tokens in hyps]
    assert any(repeats_an_ngram(tokens, n) for tokens in plain)  # the model does repeat itself
    assert not any(repeats_an_ngram(tokens, n) for tokens in banned)


def test_repetition_penalty_makes_greedy_outputs_repeat_less(model, sources):
    def repeated_tokens(results) -> int:
        return sum(len(tokens) - len(set(tokens)) for hyps in outputs(results) for tokens in hyps)

    assert repeated_tokens(run(model, sources, repetition_penalty=2.0)) < repeated_tokens(run(model, sources))


@pytest.mark.parametrize("alpha", [0.0, 1.0])
@pytest.mark.parametrize("rules", [{"no_repeat_ngram_size": 2}, {"repetition_penalty": 1.3}])
def test_beam_size_one_is_greedy_with_the_repetition_rules(model, sources, alpha, rules):
    greedy = run(model, sources, **rules)
    beam = run(model, sources, strategy="beam", beam_size=1, length_penalty=alpha, **rules)
    assert outputs(beam) == outputs(greedy)
    assert [b[0].log_prob for b in beam] == pytest.approx([g[0].log_prob for g in greedy], abs=1e-9)


def test_beam_output_with_the_rules_does_not_depend_on_the_batch(model, sources):
    options = dict(strategy="beam", beam_size=3, no_repeat_ngram_size=2, repetition_penalty=1.2, coverage_penalty=0.3)
    together = run(model, sources, **options)
    alone = [run(model, [source], **options)[0] for source in sources]
    assert outputs(alone) == outputs(together)


def test_coverage_penalty_is_added_to_the_final_beam_scores(model, sources):
    beta, alpha = 0.7, 0.6
    results = run(model, sources, strategy="beam", beam_size=3, n_best=3, length_penalty=alpha, coverage_penalty=beta)
    src, lengths = pad_sequences(sources)
    with_attention = decode(
        model,
        src,
        lengths,
        DecodingOptions(strategy="beam", beam_size=3, n_best=3, length_penalty=alpha, coverage_penalty=beta),
        return_attention=True,
    )
    assert outputs(with_attention) == outputs(results)
    for source, hyps in zip(sources, with_attention):
        for hyp in hyps:
            assert hyp.attention is not None
            steps, covered = hyp.attention.shape[0], hyp.attention.sum(dim=0).double()
            expected_cp = beta * covered.clamp(max=1.0).log().sum()
            assert covered.numel() == len(source)
            assert hyp.score == pytest.approx(hyp.log_prob / length_penalty(steps, alpha) + float(expected_cp))
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)


def test_coverage_penalty_changes_some_beam_outputs(model, sources):
    plain = run(model, sources, strategy="beam", beam_size=4)
    covered = run(model, sources, strategy="beam", beam_size=4, coverage_penalty=5.0)
    assert outputs(covered) != outputs(plain)


def test_coverage_penalty_needs_a_model_with_attention(sources):
    torch.manual_seed(0)
    plain = Seq2Seq(
        VOCAB, VOCAB, embed_size=8, hidden_size=8, dropout=0.0, attention="none", input_feeding=False
    ).eval()
    with pytest.raises(ValueError, match="coverage penalty needs attention weights"):
        run(plain, sources[:2], strategy="beam", beam_size=2, coverage_penalty=0.2)


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"no_repeat_ngram_size": -1}, "no-repeat n-gram size must be >= 0"),
        ({"repetition_penalty": 0.0}, "repetition penalty must be a finite number > 0"),
        ({"repetition_penalty": float("nan")}, "repetition penalty"),
        ({"strategy": "beam", "coverage_penalty": -0.1}, "coverage penalty must be a finite number >= 0"),
        ({"coverage_penalty": 0.2}, "coverage penalty needs the beam strategy"),
    ],
)
def test_bad_values_are_refused_in_one_line(bad, message):
    with pytest.raises(ValueError, match=message) as error:
        DecodingOptions(**bad)
    assert "\n" not in str(error.value)
    if "coverage_penalty" not in bad:
        with pytest.raises(ValueError, match=message):
            GenerationOptions(**bad)


def test_rules_are_off_by_default():
    assert not RepetitionRules().active and not DecodingOptions().repetition.active
    assert RepetitionRules(no_repeat_ngram_size=3).active and RepetitionRules(repetition_penalty=1.1).active


# -- language-model generation --------------------------------------------------------------------


@pytest.fixture(scope="module")
def lm() -> LanguageModel:
    torch.manual_seed(0)
    model = LanguageModel(VOCAB, embed_size=12, hidden_size=16, num_layers=2, dropout=0.0).double().eval()
    with torch.no_grad():
        model.output_layer.weight.mul_(3)
    return model


PROMPTS = [[], [5], [6, 7, 8, 9, 10, 11], [12, 13], [20, 21, 22]]


def test_left_aligned_rows_move_to_the_right_end():
    rows, lengths = pad_sequences([[4, 5, 6], [7], [8, 9]])
    assert left_aligned_to_right(rows, lengths).tolist() == [[4, 5, 6], [PAD_ID, PAD_ID, 7], [PAD_ID, 8, 9]]


def texts(results) -> list[list[int]]:
    """Each prompt followed by each of its continuations."""
    return [prompt + hyp.tokens for prompt, hyps in zip(PROMPTS, results) for hyp in hyps]


@pytest.mark.parametrize("temperature", [0.0, 0.1])
def test_generated_text_repeats_no_ngram_of_the_banned_size(lm, temperature):
    options = dict(max_tokens=40, temperature=temperature, num_samples=1 if temperature == 0 else 2, seed=1)
    plain = generate(lm, PROMPTS, **options)
    banned = generate(lm, PROMPTS, **options, repetition=RepetitionRules(no_repeat_ngram_size=3))
    assert any(repeats_an_ngram(text, 3) for text in texts(plain))
    assert not any(repeats_an_ngram(text, 3) for text in texts(banned))
    defaults = generate(lm, PROMPTS, **options, repetition=RepetitionRules())
    assert texts(defaults) == texts(plain)


def test_generated_text_does_not_repeat_the_prompts_ngrams(lm):
    prompts = [[5, 6, 7], [8, 9]]
    results = generate(lm, prompts, max_tokens=30, temperature=0.0, repetition=RepetitionRules(no_repeat_ngram_size=2))
    for prompt, hyps in zip(prompts, results):
        assert not repeats_an_ngram(prompt + hyps[0].tokens, 2)
        assert EOS_ID not in hyps[0].tokens


@pytest.mark.parametrize(
    "args, message",
    [
        (["--no-repeat-ngram-size", "-2"], "no-repeat n-gram size must be >= 0"),
        (["--repetition-penalty", "-1"], "repetition penalty must be a finite number > 0"),
    ],
)
def test_generate_cli_refuses_bad_values_in_one_line(args, message, capsys):
    from nmt.cli.generate import build_parser, generation_options

    parser = build_parser()
    with pytest.raises(SystemExit) as exit:
        generation_options(parser.parse_args(["lm.ckpt", *args]), parser)
    err = capsys.readouterr().err
    assert exit.value.code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_generate_cli_options_reach_the_generator():
    from nmt.cli.generate import build_parser, generation_options

    parser = build_parser()
    args = parser.parse_args(["lm.ckpt", "--no-repeat-ngram-size", "4", "--repetition-penalty", "1.3"])
    assert generation_options(args, parser).repetition == RepetitionRules(4, 1.3)
