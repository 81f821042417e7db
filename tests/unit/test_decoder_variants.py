"""The plain encoder-decoder (attention=none) and Bahdanau's own decoder keep the invariants of
the default decoder: training's teacher-forced pass equals decoding step by step, beam 1 is
greedy, outputs do not depend on the batch, scores are the model's log-probabilities."""

from __future__ import annotations

import pytest
import torch

from nmt.data.batching import pad_sequences
from nmt.data.tokenizers import BOS_ID, EOS_ID, PAD_ID
from nmt.decoding import decode
from nmt.decoding.beam import length_penalty
from nmt.decoding.greedy import max_output_lengths
from nmt.models.seq2seq import Seq2Seq
from nmt.modules.bahdanau_decoder import BahdanauDecoder
from nmt.modules.decoder import AttentionDecoder

VOCAB = 30
PLAIN = dict(attention="none", input_feeding=False)
BAHDANAU = dict(decoder_style="bahdanau", input_feeding=False)
VARIANTS = {
    "plain": PLAIN,
    "plain, gru, 2 layers": dict(PLAIN, cell="gru", decoder_layers=2, encoder_layers=2),
    "bahdanau decoder": BAHDANAU,
    "bahdanau decoder, gru, 2 layers, dot": dict(BAHDANAU, cell="gru", decoder_layers=2, attention="dot"),
    "plain, rnn": dict(PLAIN, cell="rnn"),
    "bahdanau decoder, rnn, 2 layers": dict(BAHDANAU, cell="rnn", decoder_layers=2),
    "bahdanau decoder, 3 layers, general, unidirectional": dict(
        BAHDANAU, decoder_layers=3, attention="general", bidirectional=False
    ),
}


def make(options: dict, dropout: float = 0.0) -> Seq2Seq:
    torch.manual_seed(0)
    return Seq2Seq(VOCAB, VOCAB, embed_size=16, hidden_size=32, dropout=dropout, **options)


@pytest.fixture(scope="module", params=list(VARIANTS))
def variant(request) -> Seq2Seq:
    """In float64 (no ties flipping between batch layouts), with a sharpened output layer so
    that sentences end at many lengths, some only at the limit."""
    net = make(VARIANTS[request.param]).eval().double()
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


def tokens(results):
    return [[hyp.tokens for hyp in hyps] for hyps in results]


def ended(source: list[int], hyp) -> bool:
    """A hypothesis that stops before the length limit ended with EOS (with no attention rows
    to count steps, the limit tells)."""
    limit = int(max_output_lengths(torch.tensor([len(source)]), 2.0, 10)[0])
    return len(hyp.tokens) < limit


def teacher_forced_log_prob(model, source, output, with_eos: bool) -> float:
    src, lengths = pad_sequences([source])
    target = output + ([EOS_ID] if with_eos else [])
    with torch.no_grad():
        logits, _ = model(src, lengths, torch.tensor([[BOS_ID] + target[:-1]]))
    logits[..., [PAD_ID, BOS_ID]] = float("-inf")
    log_probs = torch.log_softmax(logits[0], dim=-1)
    return float(log_probs[torch.arange(len(target)), torch.tensor(target)].sum())


# -- the networks -----------------------------------------------------------------------------


def test_the_plain_decoder_has_no_attention_and_sees_only_the_final_state():
    model = make(PLAIN).eval()
    assert model.decoder.attention is None and model.decoder.combine is None and not model.has_attention
    src, lengths = pad_sequences([[5, 6, 7, 8], [9, 10, 11]])
    source, state = model.encode(src, lengths)
    logits, attention = model(src, lengths, torch.tensor([[BOS_ID, 5, 6]] * 2))
    assert attention is None and logits.shape == (2, 3, VOCAB)
    # Changing the encoder states other than the final one changes nothing downstream.
    tgt = torch.tensor([BOS_ID, BOS_ID])
    first, _, weights = model.decode_step(tgt, state, source)
    source.memory.normal_()
    source.keys.normal_()
    again, _, _ = model.decode_step(tgt, state, source)
    assert weights is None and torch.equal(first, again)


def test_the_bahdanau_decoder_queries_attention_with_the_previous_state():
    model = make(BAHDANAU).eval().double()
    assert isinstance(model.decoder, BahdanauDecoder) and model.decoder.combine is None
    assert model.decoder.cells[0].input_size == 16 + 32  # [embedding; context]
    src, lengths = pad_sequences([[5, 6, 7, 8, 9]])
    source, state = model.encode(src, lengths)
    decoder = model.decoder
    expected_context, expected_weights = decoder.attention(state.hidden[-1], source.keys, source.memory, source.mask)
    embedded = model.tgt_embed(torch.tensor([BOS_ID]))
    output, new_state, weights = decoder.step(embedded, state, source)
    torch.testing.assert_close(weights, expected_weights)  # from s_0, the bridged state
    # s_1 = LSTM([e; c_1], s_0) and o_1 = tanh(W_o [s_1; c_1; e] + b)
    cell = torch.nn.LSTMCell(16 + 32, 32).double()
    cell.load_state_dict(decoder.cells[0].state_dict())
    h, c = cell(torch.cat([embedded, expected_context], -1), (state.hidden[0], state.cell[0]))
    torch.testing.assert_close(new_state.hidden[0], h)
    torch.testing.assert_close(new_state.cell[0], c)
    torch.testing.assert_close(output, torch.tanh(decoder.readout(torch.cat([h, expected_context, embedded], -1))))


def step_by_step(model: Seq2Seq, src, src_lengths, tgt_in):
    """The decoding path: one decoder step per target position."""
    source, state = model.encode(src, src_lengths)
    outputs, attention = [], []
    for t in range(tgt_in.size(1)):
        output, state, weights = model.decoder.step(model.tgt_embed(tgt_in[:, t]), state, source)
        outputs.append(output)
        attention.append(weights)
    return torch.stack(outputs, 1), None if attention[0] is None else torch.stack(attention, 1)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_teacher_forced_pass_equals_decoding_one_step_at_a_time(name):
    model = make(VARIANTS[name]).eval().double()
    src, src_lengths = pad_sequences([[5, 6, 7, 8, 9], [10, 11, 12], [13]])
    tgt_in = torch.randint(4, VOCAB, (3, 6), generator=torch.Generator().manual_seed(2))
    states, attention = model.teacher_forced_states(src, src_lengths, tgt_in, return_attention=True)
    expected_states, expected_attention = step_by_step(model, src, src_lengths, tgt_in)
    torch.testing.assert_close(states, expected_states)
    if expected_attention is None:
        assert attention is None
    else:
        torch.testing.assert_close(attention.double(), expected_attention.double(), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(attention.sum(-1).double(), torch.ones(3, 6, dtype=torch.float64))


@pytest.mark.parametrize("name", list(VARIANTS))
def test_decoding_lookup_table_gives_the_training_path_logits(name):
    """Decoding looks the embedding's share of the products up; it must equal computing it."""
    model = make(VARIANTS[name]).eval().double()
    src, src_lengths = pad_sequences([[5, 6, 7], [8, 9]])
    prev = torch.tensor([4, 7])
    with torch.inference_mode():
        source, state = model.encode(src, src_lengths)
        looked_up, _, _ = model.decode_step(prev, state, source)
    with torch.no_grad():
        source, state = model.encode(src, src_lengths)
        computed, _, _ = model.decoder.step(model.tgt_embed(prev), state, source)
    torch.testing.assert_close(looked_up, model.output_layer(computed))


@pytest.mark.parametrize("name", list(VARIANTS))
def test_source_padding_never_changes_a_sentences_output(name):
    model = make(VARIANTS[name]).eval().double()
    src, lengths = pad_sequences([[5, 6, 7], [8, 9, 10, 11, 12, 13, 14]])
    tgt_in = torch.tensor([[BOS_ID, 5, 6, 7]] * 2)
    together, _ = model(src, lengths, tgt_in)
    alone, _ = model(src[:1, :3], lengths[:1], tgt_in[:1])
    torch.testing.assert_close(together[:1], alone)


def test_gradients_reach_every_parameter_through_the_training_path():
    for options in VARIANTS.values():
        model = make(options, dropout=0.1).train()
        src, lengths = pad_sequences([[5, 6, 7], [8, 9]])
        states, _ = model.teacher_forced_states(src, lengths, torch.tensor([[BOS_ID, 5], [BOS_ID, 6]]))
        model.output_logits(states).sum().backward()
        missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
        assert missing == [], options


@pytest.mark.parametrize(
    "options, fix",
    [
        (dict(attention="none", input_feeding=True), "input_feeding=false"),
        (dict(decoder_style="bahdanau", input_feeding=True), "input_feeding=false"),
        (dict(decoder_style="bahdanau", attention="none", input_feeding=False), "decoder_style=luong"),
        (dict(decoder_style="luong_bahdanau"), "decoder_style=luong or bahdanau"),
    ],
)
def test_impossible_decoder_combinations_name_the_fix(options, fix):
    with pytest.raises(ValueError, match=fix):
        make(options)


# -- decoding ---------------------------------------------------------------------------------


def test_beam_size_one_equals_greedy(variant, sources):
    greedy = run(variant, sources)
    beam = run(variant, sources, strategy="beam", beam_size=1, length_penalty=0.6)
    assert tokens(beam) == tokens(greedy)
    assert [b[0].log_prob for b in beam] == pytest.approx([g[0].log_prob for g in greedy], abs=1e-9)


def test_outputs_do_not_depend_on_the_batch(variant, sources):
    for options in (
        dict(),
        dict(strategy="beam", beam_size=4, n_best=3),
        dict(strategy="sample", n_best=2, seed=5, temperature=1.3, top_p=0.9),
    ):
        together = run(variant, sources, **options)
        alone = [run(variant, [source], **options)[0] for source in sources]
        assert tokens(alone) == tokens(together), options
        in_fives = [h for i in range(0, len(sources), 5) for h in run(variant, sources[i : i + 5], **options)]
        assert tokens(in_fives) == tokens(together), options


def test_n_best_is_sorted_and_scored_by_a_teacher_forced_pass(variant, sources):
    alpha = 0.6
    lengths = set()
    for source, hyps in zip(
        sources, run(variant, sources, strategy="beam", beam_size=4, n_best=4, length_penalty=alpha)
    ):
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        assert len({tuple(h.tokens) for h in hyps}) == 4
        for hyp in hyps:
            with_eos = ended(source, hyp)
            assert hyp.log_prob == pytest.approx(teacher_forced_log_prob(variant, source, hyp.tokens, with_eos))
            steps = len(hyp.tokens) + int(with_eos)
            assert hyp.score == pytest.approx(hyp.log_prob / length_penalty(steps, alpha))
            lengths.add(len(hyp.tokens))
    assert len(lengths) > 3  # many lengths: the state is carried over many steps


def test_greedy_and_sampled_log_probs_are_those_of_a_teacher_forced_pass(variant, sources):
    for options in (dict(), dict(strategy="sample", n_best=3, seed=2, temperature=1.5)):
        for source, hyps in zip(sources, run(variant, sources, **options)):
            for hyp in hyps:
                expected = teacher_forced_log_prob(variant, source, hyp.tokens, ended(source, hyp))
                assert hyp.log_prob == pytest.approx(expected)


def test_attention_is_returned_by_the_bahdanau_decoder_and_refused_without_attention(sources):
    bahdanau = make(BAHDANAU).eval().double()
    for strategy in ("greedy", "beam", "sample"):
        for source, hyps in zip(sources, run(bahdanau, sources, strategy=strategy, return_attention=True)):
            attention = hyps[0].attention
            assert attention.size(1) == len(source)
            assert torch.allclose(attention.sum(1), torch.ones(attention.size(0)))
    plain = make(PLAIN).eval()
    for strategy in ("greedy", "beam", "sample"):
        with pytest.raises(ValueError, match="no attention"):
            run(plain, sources, strategy=strategy, return_attention=True)


def test_an_old_luong_decoder_is_still_the_default():
    model = make({})
    assert type(model.decoder) is AttentionDecoder and model.decoder.input_feeding and model.has_attention
