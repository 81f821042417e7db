"""The input-feeding loop with a hand-written backward: gradients against gradcheck and
against autograd through the step loop; where it applies and where the loop takes over."""

from __future__ import annotations

import pytest
import torch

import nmt.modules.decoder as decoder_module
from nmt.data.tokenizers import PAD_ID
from nmt.models.seq2seq import Seq2Seq
from nmt.ops.input_feeding import _InputFeedingLoop, fused_loop_applies

ATTENTIONS = ["bahdanau", "dot", "general"]


def make_model(attention="bahdanau", **kwargs) -> Seq2Seq:
    torch.manual_seed(0)
    options = dict(embed_size=6, hidden_size=8, dropout=0.0, attention=attention, input_feeding=True)
    options.update(kwargs)
    return Seq2Seq(20, 24, **options)


def batch(lengths, tgt_len=5, seed=1):
    generator = torch.Generator().manual_seed(seed)
    src = torch.full((len(lengths), max(lengths)), PAD_ID)
    for row, length in enumerate(lengths):
        src[row, :length] = torch.randint(4, 20, (length,), generator=generator)
    return src, torch.tensor(lengths), torch.randint(4, 24, (len(lengths), tgt_len), generator=generator)


def leaf(tensor):
    return None if tensor is None else tensor.detach().clone().requires_grad_()


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("kind", ATTENTIONS)
def test_gradcheck_of_every_input_and_weight(kind, cell):
    model = make_model(kind, cell=cell, attention_size=5).double()
    src, lengths, tgt = batch([4, 2, 1], tgt_len=3)
    source, state = model.encode(src, lengths)
    decoder = model.decoder
    weight_ih, weight_hh, _, bias_hh = decoder.layer_weights(0)
    attention = decoder.attention
    scorer = (
        (attention.query_layer.weight, attention.query_layer.bias, attention.energy_layer.weight)
        if kind == "bahdanau"
        else (None, None, None)
    )
    feed = torch.randn(3, 8, dtype=torch.double)  # not zeros: its gradient must be right too
    inputs = (
        leaf(decoder.embedding_gates(model.tgt_embed(tgt))),
        leaf(state.hidden[0]),
        leaf(state.cell[0]) if cell == "lstm" else None,
        leaf(feed),
        leaf(source.keys),
        leaf(source.memory),
        source.mask,
        leaf(weight_ih[:, 6:]),
        leaf(weight_hh),
        leaf(bias_hh),
        leaf(decoder.combine.weight),
        *(leaf(t) for t in scorer),
    )
    assert torch.autograd.gradcheck(lambda *xs: _InputFeedingLoop.apply(*xs)[0], inputs)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("kind", ATTENTIONS)
def test_equals_autograd_through_the_step_loop_values_attention_and_every_gradient(kind, cell):
    model = make_model(kind, cell=cell).train()
    src, lengths, tgt = batch([6, 3, 1, 5], tgt_len=7)
    upstream = torch.randn(4, 7, 8, generator=torch.Generator().manual_seed(3))
    results = []
    for fused in (True, False):
        model.decoder.fused_loop = fused
        model.zero_grad()
        states, attention = model.teacher_forced_states(src, lengths, tgt, return_attention=True)
        (states * upstream).sum().backward()
        grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
        results.append((states.detach(), attention, grads))
    (states, attention, grads), (expected_states, expected_attention, expected_grads) = results
    torch.testing.assert_close(states, expected_states)
    torch.testing.assert_close(attention, expected_attention)
    assert grads.keys() == expected_grads.keys()
    assert any(name.startswith("decoder.attention") for name in grads) == (kind != "dot")
    for name, grad in grads.items():
        torch.testing.assert_close(grad, expected_grads[name], msg=name, rtol=1e-4, atol=1e-6)
    assert torch.all(attention[1, :, 3:] == 0) and torch.allclose(attention.sum(-1), torch.ones(4, 7))


def test_the_training_step_uses_the_fused_loop_where_it_applies_and_the_step_loop_elsewhere(monkeypatch):
    calls = []
    real = decoder_module.input_feeding_loop
    monkeypatch.setattr(decoder_module, "input_feeding_loop", lambda *args: calls.append(1) or real(*args))
    src, lengths, tgt = batch([3, 2])

    def runs_fused(model, autocast=False):
        calls.clear()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            model.teacher_forced_states(src, lengths, tgt)[0].sum().backward()
        return bool(calls)

    assert runs_fused(make_model())
    assert runs_fused(make_model("dot")) and runs_fused(make_model("general"))
    assert runs_fused(make_model(cell="gru")) and runs_fused(make_model(cell="rnn"))
    assert not runs_fused(make_model(decoder_layers=2))
    assert not runs_fused(make_model(), autocast=True)  # bf16 products, float32 states: the step loop
    assert not runs_fused(make_model(input_feeding=False))
    switched_off = make_model()
    switched_off.decoder.fused_loop = False
    assert not runs_fused(switched_off)


def test_applies_only_to_full_precision_inputs():
    model = make_model()
    assert fused_loop_applies(model.decoder, torch.zeros(1, dtype=torch.float64))
    assert not fused_loop_applies(model.decoder, torch.zeros(1, dtype=torch.bfloat16))
