"""The network: shapes, padding masks, attention numerics, teacher forcing vs stepping."""

from __future__ import annotations

import pytest
import torch

from nmt.data.tokenizers import BOS_ID, PAD_ID
from nmt.models.seq2seq import Seq2Seq
from nmt.modules.attention import BahdanauAttention, DotAttention, GeneralAttention, build_attention
from nmt.modules.encoder import RNNEncoder
from nmt.modules.masks import padding_mask

ATTENTIONS = ["bahdanau", "dot", "general"]


def make_model(attention="bahdanau", cell="lstm", **kwargs) -> Seq2Seq:
    torch.manual_seed(0)
    options = dict(embed_size=12, hidden_size=16, dropout=0.0, attention=attention, cell=cell)
    options.update(kwargs)
    return Seq2Seq(20, 24, **options).eval()


def random_batch(lengths, vocab=20, seed=1):
    generator = torch.Generator().manual_seed(seed)
    src = torch.full((len(lengths), max(lengths)), PAD_ID)
    for row, length in enumerate(lengths):
        src[row, :length] = torch.randint(4, vocab, (length,), generator=generator)
    return src, torch.tensor(lengths)


def test_padding_mask_marks_real_positions():
    mask = padding_mask(torch.tensor([3, 1]), 4)
    assert mask.tolist() == [[True, True, True, False], [True, False, False, False]]


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_encoder_shapes_and_zero_outputs_at_padding(cell, bidirectional):
    encoder = RNNEncoder(8, 16, num_layers=2, cell=cell, bidirectional=bidirectional)
    outputs, final = encoder(torch.randn(3, 5, 8), torch.tensor([5, 2, 3]))
    assert outputs.shape == (3, 5, 16) and final.shape == (3, 16)
    assert torch.all(outputs[1, 2:] == 0)


def test_encoder_output_of_a_sentence_does_not_depend_on_padding():
    encoder = RNNEncoder(8, 16, bidirectional=True).eval()
    sentence = torch.randn(1, 3, 8)
    alone, final_alone = encoder(sentence, torch.tensor([3]))
    padded = torch.cat([sentence, torch.randn(1, 4, 8)], dim=1)  # garbage after the end
    batch = torch.cat([padded, torch.randn(1, 7, 8)])
    together, final_together = encoder(batch, torch.tensor([3, 7]))
    torch.testing.assert_close(together[0, :3], alone[0])
    torch.testing.assert_close(final_together[0], final_alone[0])


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
@pytest.mark.parametrize("layers,bidirectional", [(1, True), (2, True), (2, False)])
def test_cpu_training_path_equals_the_packed_rnn_with_its_gradients(layers, bidirectional, cell):
    """An encoder trained on a CPU runs padded, per direction (the packed backward is slow
    there); outputs, final states and every gradient must be those of the packed call."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.manual_seed(0)
    encoder = RNNEncoder(6, 8, num_layers=layers, cell=cell, bidirectional=bidirectional).double()
    embedded = torch.randn(5, 7, 6, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([7, 3, 1, 6, 7])
    upstream = torch.randn(5, 7, 8, dtype=torch.float64), torch.randn(5, 8, dtype=torch.float64)

    outputs, final = encoder(embedded, lengths)
    ((outputs * upstream[0]).sum() + (final * upstream[1]).sum()).backward()
    grads = [embedded.grad.clone()] + [p.grad.clone() for p in encoder.rnn.parameters()]

    embedded.grad = None
    encoder.zero_grad()
    packed_out, state = encoder.rnn(pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False))
    hidden = state[0] if cell == "lstm" else state
    ref_outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=7)
    directions = 2 if bidirectional else 1
    ref_final = torch.cat(list(hidden.view(layers, directions, 5, -1)[-1]), dim=-1)
    ((ref_outputs * upstream[0]).sum() + (ref_final * upstream[1]).sum()).backward()
    ref_grads = [embedded.grad] + [p.grad for p in encoder.rnn.parameters()]

    torch.testing.assert_close(outputs, ref_outputs, rtol=0, atol=1e-12)
    torch.testing.assert_close(final, ref_final, rtol=0, atol=1e-12)
    for grad, ref in zip(grads, ref_grads):
        torch.testing.assert_close(grad, ref, rtol=0, atol=1e-10)
    assert not any(name.startswith("_one_direction") for name in encoder.state_dict())


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_cpu_training_path_leaves_the_global_rng_alone(cell):
    """Its per-direction helper modules are made on first use; drawing their throwaway
    initial weights from the global RNG would shift a resumed run's dropout masks."""
    encoder = RNNEncoder(6, 8, cell=cell, bidirectional=True).train()
    embedded = torch.randn(3, 4, 6, requires_grad=True)
    before = torch.get_rng_state()
    encoder(embedded, torch.tensor([4, 2, 1]))
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_recurrent_dropout_drops_the_same_state_units_at_every_step(cell):
    """Variational dropout: whole columns of W_hh (state units) dropped, the rest scaled by
    1 / (1 - p); the padded CPU path and the packed path use the same masks; off in eval."""
    encoder = RNNEncoder(6, 8, num_layers=2, cell=cell, bidirectional=True, recurrent_dropout=0.5).double()
    embedded = torch.randn(4, 5, 6, dtype=torch.float64)
    lengths = torch.tensor([5, 2, 1, 4])
    torch.manual_seed(3)
    dropped = encoder.recurrent_weights()
    assert sorted(dropped) == sorted(n for n, _ in encoder.rnn.named_parameters() if n.startswith("weight_hh"))
    for name, weight in dropped.items():
        original = getattr(encoder.rnn, name)
        kept = weight.abs().sum(dim=0) > 0  # (hidden,) the state units kept
        assert 0 < kept.sum() < kept.numel()
        torch.testing.assert_close(weight[:, kept], original[:, kept] * 2.0)

    torch.manual_seed(3)
    padded = encoder(embedded.clone().requires_grad_(), lengths)  # the CPU training path
    torch.manual_seed(3)
    with torch.no_grad():
        packed = encoder(embedded, lengths)  # the packed path, same masks
    for a, b in zip(padded, packed, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    encoder.eval()
    assert encoder.recurrent_weights() == {}
    with torch.no_grad():
        plain = encoder(embedded, lengths)
    assert not torch.allclose(plain[0], packed[0])  # training dropped units; evaluation does not


def test_recurrent_dropout_out_of_range_names_the_key():
    with pytest.raises(ValueError, match=r"model.recurrent_dropout must be in \[0, 1\)"):
        RNNEncoder(6, 8, recurrent_dropout=1.0)


def test_odd_hidden_size_with_bidirectional_encoder_is_rejected_with_fix():
    with pytest.raises(ValueError, match="even"):
        RNNEncoder(8, 15, bidirectional=True)


@pytest.mark.parametrize("kind", ATTENTIONS)
def test_attention_weights_sum_to_one_over_real_tokens_and_are_zero_at_padding(kind):
    torch.manual_seed(0)
    attention = build_attention(kind, 16, 16, 8)
    memory = torch.randn(2, 5, 16)
    mask = padding_mask(torch.tensor([5, 2]), 5)
    context, weights = attention(torch.randn(2, 16), attention.project_keys(memory), memory, mask)
    assert context.shape == (2, 16) and weights.shape == (2, 5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2))
    assert torch.all(weights[1, 2:] == 0)


@pytest.mark.parametrize("kind", ATTENTIONS)
def test_attention_ignores_whatever_is_stored_at_padded_positions(kind):
    torch.manual_seed(0)
    attention = build_attention(kind, 16, 16, 8)
    memory = torch.randn(1, 6, 16)
    mask = padding_mask(torch.tensor([4]), 6)
    query = torch.randn(1, 16)
    context, weights = attention(query, attention.project_keys(memory), memory, mask)
    noisy = memory.clone()
    noisy[:, 4:] = 1e4 * torch.randn(1, 2, 16)
    context2, weights2 = attention(query, attention.project_keys(noisy), noisy, mask)
    torch.testing.assert_close(context, context2)
    torch.testing.assert_close(weights, weights2)


@pytest.mark.parametrize("kind", ATTENTIONS)
@pytest.mark.parametrize("garbage", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_values_at_padded_positions_do_not_reach_context_or_weights(kind, garbage):
    """The weight of a padded position is exactly 0, but 0 x NaN is NaN: padded memory must be
    zeroed, not just weighted by zero, before the weighted sum."""
    torch.manual_seed(0)
    attention = build_attention(kind, 16, 16, 8)
    memory = torch.randn(3, 6, 16)
    memory[1, 4:] = 0.0  # as the encoder leaves padding
    memory[2, 2:] = 0.0
    mask = padding_mask(torch.tensor([6, 4, 2]), 6)
    query = torch.randn(3, 16)
    clean_context, clean_weights = attention(query, *attention.prepare(memory, mask), mask)

    dirty = memory.clone()
    dirty[1, 4:] = garbage
    dirty[2, 2:] = garbage
    context, weights = attention(query, *attention.prepare(dirty, mask), mask)  # memory and keys
    assert torch.isfinite(context).all() and torch.isfinite(weights).all()
    torch.testing.assert_close(context, clean_context)
    torch.testing.assert_close(weights, clean_weights)
    # garbage in the keys alone (e.g. a projection that overflowed at padding)
    keys = attention.project_keys(memory).clone()
    keys[1, 4:] = garbage
    context, weights = attention(query, keys, memory, mask)
    torch.testing.assert_close(context, clean_context)
    torch.testing.assert_close(weights, clean_weights)


def test_bahdanau_scores_match_the_formula():
    torch.manual_seed(0)
    attention = BahdanauAttention(6, 4, 5)
    memory, query = torch.randn(1, 3, 4), torch.randn(1, 6)
    W_k, W_q, b_q = attention.key_layer.weight, attention.query_layer.weight, attention.query_layer.bias
    v = attention.energy_layer.weight[0]
    expected = torch.stack([v @ torch.tanh(W_q @ query[0] + b_q + W_k @ memory[0, j]) for j in range(3)])
    mask = torch.ones(1, 3, dtype=torch.bool)
    context, weights = attention(query, attention.project_keys(memory), memory, mask)
    torch.testing.assert_close(weights[0], torch.softmax(expected, 0))
    torch.testing.assert_close(context[0], weights[0] @ memory[0])


def test_luong_dot_and_general_scores_match_the_formulas():
    torch.manual_seed(0)
    memory, query = torch.randn(1, 3, 4), torch.randn(1, 4)
    mask = torch.ones(1, 3, dtype=torch.bool)
    dot = DotAttention(4, 4)
    _, weights = dot(query, dot.project_keys(memory), memory, mask)
    torch.testing.assert_close(weights[0], torch.softmax(memory[0] @ query[0], 0))
    general = GeneralAttention(4, 4)
    _, weights = general(query, general.project_keys(memory), memory, mask)
    W = general.key_layer.weight
    torch.testing.assert_close(weights[0], torch.softmax(memory[0] @ W.T @ query[0], 0))


def test_dot_attention_with_unequal_sizes_names_the_fix():
    with pytest.raises(ValueError, match="attention=general"):
        DotAttention(8, 16)


def test_unknown_attention_names_the_choices():
    with pytest.raises(ValueError, match="attention=bahdanau"):
        build_attention("luong", 8, 8)


def test_attention_softmax_stays_float32_under_bf16_autocast():
    attention = build_attention("dot", 16, 16)
    memory = torch.randn(2, 5, 16, dtype=torch.bfloat16) * 100
    mask = padding_mask(torch.tensor([5, 3]), 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, weights = attention(torch.randn(2, 16, dtype=torch.bfloat16) * 100, memory, memory, mask)
    assert weights.dtype == torch.float32
    assert torch.isfinite(weights).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(2))


@pytest.mark.parametrize("kind", ATTENTIONS)
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_seq2seq_forward_shapes(kind, cell):
    model = make_model(kind, cell, encoder_layers=2, decoder_layers=2)
    src, src_lengths = random_batch([5, 3, 1])
    tgt_in = torch.randint(4, 24, (3, 4))
    logits, attention = model(src, src_lengths, tgt_in)
    assert logits.shape == (3, 4, 24) and attention.shape == (3, 4, 5)
    torch.testing.assert_close(attention.sum(-1), torch.ones(3, 4))


@pytest.mark.parametrize("kind", ATTENTIONS)
def test_source_padding_never_changes_a_real_tokens_output(kind):
    model = make_model(kind)
    src, src_lengths = random_batch([3, 7])
    tgt_in = torch.randint(4, 24, (2, 5))
    batch_logits, _ = model(src, src_lengths, tgt_in)
    alone_logits, _ = model(src[:1, :3], src_lengths[:1], tgt_in[:1])
    torch.testing.assert_close(batch_logits[:1], alone_logits, rtol=1e-5, atol=1e-5)


def test_target_padding_never_changes_earlier_positions():
    model = make_model()
    src, src_lengths = random_batch([4])
    tgt_in = torch.tensor([[BOS_ID, 5, 6]])
    short, _ = model(src, src_lengths, tgt_in)
    long, _ = model(src, src_lengths, torch.tensor([[BOS_ID, 5, 6, PAD_ID, PAD_ID]]))
    torch.testing.assert_close(long[:, :3], short)


def test_stepwise_decoding_equals_teacher_forced_forward():
    model = make_model("general")
    src, src_lengths = random_batch([4, 6])
    tgt_in = torch.randint(4, 24, (2, 5))
    logits, attention = model(src, src_lengths, tgt_in)
    source, state = model.encode(src, src_lengths)
    for t in range(5):
        step_logits, state, weights = model.decode_step(tgt_in[:, t], state, source)
        torch.testing.assert_close(step_logits, logits[:, t])
        torch.testing.assert_close(weights, attention[:, t])


def test_tied_embeddings_share_one_parameter_and_need_equal_sizes():
    model = make_model(embed_size=16, tie_embeddings=True)
    assert model.output_layer.weight is model.tgt_embed.weight
    with pytest.raises(ValueError, match="tie_embeddings"):
        make_model(embed_size=12, tie_embeddings=True)


def test_state_select_reorders_rows_for_beam_search():
    model = make_model()
    src, src_lengths = random_batch([4, 2])
    source, state = model.encode(src, src_lengths)
    index = torch.tensor([1, 1, 0])
    picked = state.select(index)
    assert picked.hidden.shape[1] == 3 and picked.feed.shape[0] == 3
    torch.testing.assert_close(picked.hidden[:, 2], state.hidden[:, 0])
    assert source.select(index).mask[0].tolist() == source.mask[1].tolist()


def step_by_step(model: Seq2Seq, src, src_lengths, tgt_in):
    """The decoding path: one decode_step per target position."""
    source, state = model.encode(src, src_lengths)
    outputs, attention = [], []
    for t in range(tgt_in.size(1)):
        embedded = model.tgt_embed(tgt_in[:, t])
        attentional, state, weights = model.decoder.step(embedded, state, source)
        outputs.append(attentional)
        attention.append(weights)
    return torch.stack(outputs, 1), torch.stack(attention, 1)


@pytest.mark.parametrize("kind", ATTENTIONS)
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("input_feeding", [True, False])
@pytest.mark.parametrize("layers", [1, 2])
def test_teacher_forced_pass_equals_decoding_one_step_at_a_time(kind, cell, input_feeding, layers):
    """Training's shortcuts (the embedding product hoisted out of the loop; without input
    feeding, one fused RNN call and attention over all positions) change nothing."""
    model = make_model(kind, cell, input_feeding=input_feeding, decoder_layers=layers).double()
    src, src_lengths = random_batch([5, 3, 1])
    tgt_in = torch.randint(4, 24, (3, 6))
    states, attention = model.teacher_forced_states(src, src_lengths, tgt_in, return_attention=True)
    expected_states, expected_attention = step_by_step(model, src, src_lengths, tgt_in)
    torch.testing.assert_close(states, expected_states)
    torch.testing.assert_close(attention.double(), expected_attention.double(), atol=1e-6, rtol=1e-5)
    assert (model.decoder.rnn is None) == input_feeding


def test_without_input_feeding_the_decoder_is_one_fused_rnn_and_old_checkpoints_still_load():
    model = make_model(input_feeding=False, decoder_layers=2)
    assert isinstance(model.decoder.rnn, torch.nn.LSTM) and model.decoder.cells is None
    # Before the fused path, such a decoder stored its layers as cells.N.weight_ih, ...
    old = {}
    for key, value in model.state_dict().items():
        if key.startswith("decoder.rnn."):
            name, layer = key[len("decoder.rnn.") :].rsplit("_l", 1)
            key = f"decoder.cells.{layer}.{name}"
        old[key] = value.clone()
    fresh = make_model(input_feeding=False, decoder_layers=2)
    with torch.no_grad():
        for parameter in fresh.parameters():
            parameter.zero_()
    fresh.load_state_dict(old)
    for key, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key


def test_bahdanau_scores_of_many_queries_are_computed_in_slices_with_the_same_result(monkeypatch):
    torch.manual_seed(0)
    attention = BahdanauAttention(8, 6, 5)
    keys = attention.project_keys(torch.randn(2, 7, 6))
    queries = torch.randn(2, 9, 8)
    whole = attention.score(queries, keys)
    monkeypatch.setattr(BahdanauAttention, "MAX_ENERGY_ELEMENTS", 2 * 7 * 5 * 2)  # 2 queries per slice
    torch.testing.assert_close(attention.score(queries, keys), whole)
    assert whole.shape == (2, 9, 7)


def test_decoding_lookup_table_follows_in_place_weight_changes():
    """decode_step looks the embedding's input product up in a cached table; an optimiser
    step or load_state_dict changes weights in place, and the table must follow."""
    model = make_model()
    src, src_lengths = random_batch([5, 3])
    prev = torch.tensor([4, 7])

    def first_logits(m):
        with torch.inference_mode():
            source, state = m.encode(src, src_lengths)
            return m.decode_step(prev, state, source)[0]

    before = first_logits(model)
    with torch.no_grad():
        model.tgt_embed.weight.add_(0.5)
    after = first_logits(model)
    fresh = make_model()
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(after, first_logits(fresh))
    assert not torch.allclose(before, after)


def test_decoding_after_fused_adam_steps_uses_the_new_weights():
    """Fused Adam changes weights in place without bumping their version counters: the
    decoding lookup table must still follow (this broke validation BLEU once)."""
    model = make_model()
    src, src_lengths = random_batch([5, 3])
    prev = torch.tensor([4, 7])

    def first_logits(m):
        with torch.inference_mode():
            source, state = m.encode(src, src_lengths)
            return m.decode_step(prev, state, source)[0]

    first_logits(model.eval())  # fills the table
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1, fused=True)
    logits, _ = model(src, src_lengths, torch.randint(4, 24, (2, 4)))
    logits.sum().backward()
    optimizer.step()
    after = first_logits(model.eval())
    fresh = make_model()
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(after, first_logits(fresh.eval()))
