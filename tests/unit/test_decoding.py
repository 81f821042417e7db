"""Greedy, sampling and beam search: the invariants every decoder must keep."""

from __future__ import annotations

import pytest
import torch

from nmt.data.batching import pad_sequences
from nmt.data.tokenizers import BOS_ID, EOS_ID, PAD_ID
from nmt.decoding import DecodingOptions, decode, greedy_decode
from nmt.decoding.beam import length_penalty
from nmt.decoding.greedy import max_output_lengths
from nmt.decoding.sampling import filter_log_probs, uniforms
from nmt.models.seq2seq import Seq2Seq

VOCAB = 30


@pytest.fixture(scope="module")
def model() -> Seq2Seq:
    """An untrained network in float64 (no ties flipping between batch layouts) whose
    sharpened output layer ends sentences at different lengths, some only at the limit."""
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


def tokens(results) -> list[list[list[int]]]:
    return [[hyp.tokens for hyp in hyps] for hyps in results]


def teacher_forced_log_prob(model, source: list[int], output: list[int], ended: bool) -> float:
    """log p(output [+ EOS] | source) by a forward pass, with PAD and BOS excluded as in decoding."""
    src, lengths = pad_sequences([source])
    target = output + ([EOS_ID] if ended else [])
    tgt_in = torch.tensor([[BOS_ID] + target[:-1]])
    with torch.no_grad():
        logits, _ = model(src, lengths, tgt_in)
    logits[..., PAD_ID] = float("-inf")
    logits[..., BOS_ID] = float("-inf")
    log_probs = torch.log_softmax(logits[0], dim=-1)
    return float(log_probs[torch.arange(len(target)), torch.tensor(target)].sum())


# -- beam search ------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0])
def test_beam_size_one_equals_greedy(model, sources, alpha):
    greedy = run(model, sources)
    beam = run(model, sources, strategy="beam", beam_size=1, length_penalty=alpha)
    assert tokens(beam) == tokens(greedy)
    assert [b[0].log_prob for b in beam] == pytest.approx([g[0].log_prob for g in greedy], abs=1e-9)


def test_beam_output_does_not_depend_on_batch_or_batch_size(model, sources):
    options = dict(strategy="beam", beam_size=4, n_best=4)
    together = run(model, sources, **options)
    alone = [run(model, [source], **options)[0] for source in sources]
    assert tokens(alone) == tokens(together)
    in_threes = [hyps for i in range(0, len(sources), 3) for hyps in run(model, sources[i : i + 3], **options)]
    assert tokens(in_threes) == tokens(together)
    assert [h.score for hyps in in_threes for h in hyps] == pytest.approx([h.score for hyps in together for h in hyps])


def test_n_best_lists_are_sorted_by_score_and_distinct(model, sources):
    results = run(model, sources, strategy="beam", beam_size=5, n_best=5)
    for hyps in results:
        assert len(hyps) == 5
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(h.tokens) for h in hyps}) == 5


def test_asking_for_more_n_best_does_not_change_the_best_without_penalty(model, sources):
    one = run(model, sources, strategy="beam", beam_size=5, n_best=1, length_penalty=0.0)
    five = run(model, sources, strategy="beam", beam_size=5, n_best=5, length_penalty=0.0)
    assert [hyps[0].tokens for hyps in one] == [hyps[0].tokens for hyps in five]


@pytest.mark.parametrize("slice_rows", [1, 7])
def test_beam_output_layer_in_slices_of_rows_changes_nothing(model, sources, monkeypatch, slice_rows):
    """On a CPU the output layer, softmax and top-k run over slices of rows (cache-sized):
    the same tokens and the same scores as one slice (up to the last bits: a matrix product
    of fewer rows may add in another order)."""
    import nmt.decoding.beam as beam

    options = dict(strategy="beam", beam_size=4, n_best=3)
    whole = run(model, sources, **options)
    monkeypatch.setattr(beam, "SLICE_ELEMENTS", slice_rows * VOCAB)
    sliced = run(model, sources, **options)
    assert tokens(sliced) == tokens(whole)
    for mine, theirs in zip(sliced, whole):
        assert [h.score for h in mine] == pytest.approx([h.score for h in theirs], rel=1e-12)


def test_beam_scores_are_length_penalised_log_probs_of_the_tokens(model, sources):
    alpha = 0.8
    results = run(model, sources, strategy="beam", beam_size=3, n_best=3, length_penalty=alpha, return_attention=True)
    for source, hyps in zip(sources, results):
        for hyp in hyps:
            steps = hyp.attention.size(0)
            ended = steps == len(hyp.tokens) + 1
            assert hyp.log_prob == pytest.approx(teacher_forced_log_prob(model, source, hyp.tokens, ended))
            assert hyp.score == pytest.approx(hyp.log_prob / length_penalty(steps, alpha))


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0, 2.0])
def test_early_stopping_never_changes_the_result(model, sources, monkeypatch, alpha):
    """Stopping a sentence once no live beam can beat its n-best must give what running every
    beam to the length limit gives: the bound accounts for the length penalty still growing."""
    stopped = run(model, sources, strategy="beam", beam_size=4, n_best=2, length_penalty=alpha, beam_patience=None)
    import nmt.decoding.beam as beam_module

    # An infinite penalty bound: no sentence ends before its length limit.
    monkeypatch.setattr(
        beam_module,
        "length_penalty_of",
        lambda lengths, a: torch.full(lengths.shape, float("inf"), dtype=torch.float64),
    )
    exhaustive = run(model, sources, strategy="beam", beam_size=4, n_best=2, length_penalty=alpha)
    assert tokens(stopped) == tokens(exhaustive)
    for mine, full in zip(stopped, exhaustive):
        assert [h.score for h in mine] == pytest.approx([h.score for h in full])


def rows_per_step(model, sources, **options) -> tuple[list[int], list]:
    """Decoder rows computed at each step (the work a stopping rule saves), and the results."""
    rows = []
    original = model.decode_step_states  # every strategy's step goes through it

    def counting_step(prev, state, source):
        rows.append(prev.numel())
        return original(prev, state, source)

    model.decode_step_states = counting_step
    try:
        results = run(model, sources, **options)
    finally:
        del model.decode_step_states
    return rows, results


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_beam_patience_trades_work_for_a_horizon_and_is_exact_without_length_penalty(model, sources, alpha):
    """patience=0 is OpenNMT-py's rule, None follows beams to the length limit; without a
    length penalty a live beam's score only falls, so every patience gives the same result."""
    work, results = {}, {}
    for patience in (0, 1, 2, None):
        rows, results[patience] = rows_per_step(
            model, sources, strategy="beam", beam_size=4, length_penalty=alpha, beam_patience=patience
        )
        work[patience] = sum(rows)
    assert work[0] <= work[1] <= work[2] <= work[None]
    assert work[0] < work[None] if alpha else work[0] == work[None]
    if alpha == 0.0:
        assert all(tokens(results[p]) == tokens(results[None]) for p in (0, 1, 2))
    far_rows, far_results = rows_per_step(
        model, sources, strategy="beam", beam_size=4, length_penalty=alpha, beam_patience=10_000
    )
    assert sum(far_rows) == work[None] and tokens(far_results) == tokens(results[None])


def test_negative_beam_patience_is_refused():
    with pytest.raises(ValueError, match="beam patience must be >= 0"):
        DecodingOptions(strategy="beam", beam_patience=-1)


def test_wider_beam_finds_at_least_the_greedy_log_prob_without_penalty(model, sources):
    greedy = run(model, sources)
    beam = run(model, sources, strategy="beam", beam_size=6, length_penalty=0.0)
    better = [b[0].log_prob >= g[0].log_prob - 1e-9 for b, g in zip(beam, greedy)]
    assert sum(better) >= len(sources) - 1  # beam search is a heuristic, but rarely loses


def test_outputs_respect_the_length_limit(model, sources):
    for strategy in ("greedy", "beam", "sample"):
        results = run(model, sources, strategy=strategy, max_len_ratio=0.5, max_len_offset=2)
        for source, hyps in zip(sources, results):
            assert len(hyps[0].tokens) <= int(len(source) * 0.5) + 2


def test_attention_has_one_row_per_step_and_sums_to_one(model, sources):
    for strategy in ("greedy", "beam", "sample"):
        for source, hyps in zip(sources, run(model, sources, strategy=strategy, return_attention=True)):
            attention = hyps[0].attention
            assert attention.size(1) == len(source)
            assert attention.size(0) in (len(hyps[0].tokens), len(hyps[0].tokens) + 1)
            assert torch.allclose(attention.sum(dim=1), torch.ones(attention.size(0)), atol=1e-5)


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_finished_sentences_stop_costing_work(model, sources, strategy):
    rows, _ = rows_per_step(model, sources, strategy=strategy, beam_size=3)
    width = len(sources) * (3 if strategy == "beam" else 1)
    assert rows[0] == width
    assert rows == sorted(rows, reverse=True) and rows[-1] < width


def test_beam_size_too_large_for_vocabulary_is_an_error(model, sources):
    with pytest.raises(ValueError, match="too large"):
        run(model, sources, strategy="beam", beam_size=20)


# -- beam and greedy with other decoders: GRU, stacked layers, no input feeding -------------------

VARIANTS = {
    "gru": dict(cell="gru"),
    "rnn": dict(cell="rnn"),
    "rnn, 2 layers, no input feeding": dict(cell="rnn", decoder_layers=2, input_feeding=False),
    "3 decoder layers": dict(encoder_layers=2, decoder_layers=3),
    "no input feeding": dict(input_feeding=False),
    "gru, 2 layers, no input feeding, unidirectional": dict(
        cell="gru", encoder_layers=2, decoder_layers=2, input_feeding=False, bidirectional=False
    ),
}


@pytest.fixture(scope="module", params=list(VARIANTS))
def variant(request) -> Seq2Seq:
    """Like ``model``, with another decoder: each keeps a different state between steps."""
    torch.manual_seed(0)
    net = Seq2Seq(VOCAB, VOCAB, embed_size=16, hidden_size=32, dropout=0.0, **VARIANTS[request.param])
    net = net.eval().double()
    with torch.no_grad():
        net.output_layer.weight.mul_(4)
    return net


def test_other_decoders_beam_size_one_equals_greedy(variant, sources):
    greedy = run(variant, sources)
    beam = run(variant, sources, strategy="beam", beam_size=1, length_penalty=0.6)
    assert tokens(beam) == tokens(greedy)
    assert [b[0].log_prob for b in beam] == pytest.approx([g[0].log_prob for g in greedy], abs=1e-9)


def test_other_decoders_output_does_not_depend_on_batch(variant, sources):
    for options in (dict(), dict(strategy="beam", beam_size=4, n_best=3)):
        together = run(variant, sources, **options)
        alone = [run(variant, [source], **options)[0] for source in sources]
        assert tokens(alone) == tokens(together)
        in_fives = [hyps for i in range(0, len(sources), 5) for hyps in run(variant, sources[i : i + 5], **options)]
        assert tokens(in_fives) == tokens(together)


def test_other_decoders_n_best_is_sorted_and_scored_by_a_teacher_forced_pass(variant, sources):
    alpha = 0.6
    results = run(variant, sources, strategy="beam", beam_size=4, n_best=4, length_penalty=alpha, return_attention=True)
    lengths = set()
    for source, hyps in zip(sources, results):
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(h.tokens) for h in hyps}) == 4
        for hyp in hyps:
            steps = hyp.attention.size(0)
            ended = steps == len(hyp.tokens) + 1
            assert hyp.log_prob == pytest.approx(teacher_forced_log_prob(variant, source, hyp.tokens, ended))
            assert hyp.score == pytest.approx(hyp.log_prob / length_penalty(steps, alpha))
            lengths.add(len(hyp.tokens))
    assert len(lengths) > 3  # hypotheses of many lengths: the state is carried over many steps


def test_other_decoders_greedy_log_prob_is_that_of_a_teacher_forced_pass(variant, sources):
    for source, hyps in zip(sources, run(variant, sources, return_attention=True)):
        hyp = hyps[0]
        ended = hyp.attention.size(0) == len(hyp.tokens) + 1
        assert hyp.log_prob == pytest.approx(teacher_forced_log_prob(variant, source, hyp.tokens, ended))


# -- sampling ---------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.0, 1e-6])
def test_sampling_at_temperature_zero_is_greedy(model, sources, temperature):
    sampled = run(model, sources, strategy="sample", temperature=temperature, n_best=2)
    greedy = run(model, sources)
    assert [[g[0].tokens] * 2 for g in greedy] == tokens(sampled)


@pytest.mark.parametrize("filters", [{"top_k": 1}, {"top_p": 1e-9}])
def test_sampling_with_one_candidate_is_greedy(model, sources, filters):
    assert tokens(run(model, sources, strategy="sample", **filters)) == tokens(run(model, sources))


def test_fixed_seed_gives_the_same_samples_and_another_seed_others(model, sources):
    first = run(model, sources, strategy="sample", n_best=3, seed=7)
    again = run(model, sources, strategy="sample", n_best=3, seed=7)
    other = run(model, sources, strategy="sample", n_best=3, seed=8)
    assert tokens(first) == tokens(again)
    assert tokens(first) != tokens(other)
    greedy = run(model, sources)
    assert any(h.tokens != g[0].tokens for hyps, g in zip(first, greedy) for h in hyps)  # it samples


def test_samples_do_not_depend_on_batch(model, sources):
    together = run(model, sources, strategy="sample", n_best=2, seed=3, top_p=0.9)
    alone = [run(model, [source], strategy="sample", n_best=2, seed=3, top_p=0.9)[0] for source in sources]
    assert tokens(alone) == tokens(together)


def test_samples_are_sorted_and_scored_by_model_log_prob(model, sources):
    for source, hyps in zip(
        sources, run(model, sources, strategy="sample", n_best=4, seed=1, temperature=1.5, return_attention=True)
    ):
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        for hyp in hyps:
            ended = hyp.attention.size(0) == len(hyp.tokens) + 1
            assert hyp.score == pytest.approx(teacher_forced_log_prob(model, source, hyp.tokens, ended))


def test_filter_log_probs_keeps_top_k_and_the_nucleus():
    log_probs = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isfinite(filter_log_probs(log_probs, top_k=2)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_log_probs(log_probs, top_p=0.8)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_log_probs(log_probs, top_p=0.81)).tolist() == [[True, True, True, False]]
    assert torch.isfinite(filter_log_probs(log_probs, top_p=0.1)).tolist() == [[True, False, False, False]]


def test_counter_based_uniforms_look_uniform():
    values = uniforms(torch.arange(200_000), step=3)
    assert values.min() >= 0 and values.max() < 1
    counts = torch.histc(values.float(), bins=10, min=0, max=1)
    assert (counts - 20_000).abs().max() < 800
    assert not torch.equal(values, uniforms(torch.arange(200_000), step=4))


def test_sample_frequencies_follow_the_temperature(model, sources):
    """With many samples, the first token's frequencies approach softmax(log p / T)."""
    src, lengths = pad_sequences([sources[0]])
    source, state = model.encode(src, lengths)
    logits, _, _ = model.decode_step(torch.tensor([BOS_ID]), state, source)
    logits[:, [PAD_ID, BOS_ID]] = float("-inf")
    expected = torch.softmax(torch.log_softmax(logits, -1) / 2.0, -1)[0]
    samples = run(
        model, [sources[0]], strategy="sample", n_best=3000, temperature=2.0, max_len_ratio=0.0001, max_len_offset=1
    )[0]
    first = torch.tensor([h.tokens[0] if h.tokens else EOS_ID for h in samples])
    observed = torch.bincount(first, minlength=VOCAB).double() / len(samples)
    assert (observed - expected).abs().max() < 0.03


# -- options and dispatch -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"strategy": "nucleus"},
        {"beam_size": 0},
        {"n_best": 0},
        {"n_best": 2},
        {"strategy": "beam", "beam_size": 2, "n_best": 3},
        {"temperature": -1.0},
        {"top_k": -1},
        {"top_p": 0.0},
        {"top_p": 1.5},
        {"max_len": 0},
    ],
)
def test_invalid_decoding_options_are_rejected(bad):
    with pytest.raises(ValueError):
        DecodingOptions(**bad)


def test_decode_returns_n_best_per_sentence_for_every_strategy(model, sources):
    for options in (
        DecodingOptions(),
        DecodingOptions(strategy="beam", n_best=2),
        DecodingOptions(strategy="sample", n_best=3),
    ):
        results = run(model, sources, options=options)
        assert len(results) == len(sources)
        assert all(len(hyps) == options.n_best for hyps in results)


def test_greedy_decode_keeps_its_batch_api(model, sources):
    src, lengths = pad_sequences(sources)
    out = greedy_decode(model, src, lengths, return_attention=True)
    assert len(out.tokens) == len(out.scores) == len(out.attention) == len(sources)
    assert out.tokens == [hyps[0].tokens for hyps in run(model, sources)]


def test_max_output_lengths():
    limits = max_output_lengths(torch.tensor([1, 5, 100]), ratio=2.0, offset=3, cap=50)
    assert limits.tolist() == [5, 13, 50]


# -- on a trained model ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def translator(tiny_translation_checkpoint):
    from nmt.inference.translator import Translator

    return Translator.from_checkpoint(tiny_translation_checkpoint, device="cpu")


TOY_SOURCES = [
    "The cat sees a dog.",
    "A big red house.",
    "Small dog eats the cat.",
    "Red.",
    "The big small red cat sees a house eats a dog.",
    "A dog.",
    "House big red.",
]


def test_trained_model_invariants(translator):
    greedy = translator.translate(TOY_SOURCES, DecodingOptions(), batch_size=4)
    beam1 = translator.translate(TOY_SOURCES, DecodingOptions(strategy="beam", beam_size=1), batch_size=3)
    assert [t.text for t in beam1] == [t.text for t in greedy]
    assert greedy[0].text == "Le chat voit un chien !"
    beam = DecodingOptions(strategy="beam", beam_size=5, n_best=3)
    together = translator.translate(TOY_SOURCES, beam, batch_size=7)
    alone = [translator.translate([s], beam)[0] for s in TOY_SOURCES]
    assert [[h.text for h in t.hypotheses] for t in alone] == [[h.text for h in t.hypotheses] for t in together]
    cold = translator.translate(TOY_SOURCES, DecodingOptions(strategy="sample", temperature=0.0), batch_size=2)
    assert [t.text for t in cold] == [t.text for t in greedy]


@pytest.mark.gpu
def test_gpu_decoding_matches_cpu(model, sources):
    cpu = run(model, sources, strategy="beam", beam_size=3)
    gpu_model = model.to("cuda")
    try:
        src, lengths = pad_sequences(sources)
        gpu = decode(gpu_model, src.cuda(), lengths.cuda(), strategy="beam", beam_size=3)
    finally:
        model.to("cpu")
    assert tokens(gpu) == tokens(cpu)
