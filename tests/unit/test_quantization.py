"""Int8 output layer for CPU decoding: the kernel against a float64 reference of its own
integer arithmetic, its error against float32, and int8 decoding end to end."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nmt.ops.quantization import (
    INT8_MAX,
    ZERO_POINT,
    Int8Linear,
    int8_decoding_copy,
    int8_supported,
    quantize_input,
    quantize_weight,
)

pytestmark = pytest.mark.skipif(not int8_supported(), reason="this PyTorch build has no oneDNN int8 kernels")


def make_linear(in_features: int = 48, out_features: int = 300, bias: bool = True, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(in_features, out_features, bias=bias)


def test_weight_quantization_is_per_row_symmetric_and_within_half_a_step():
    weight = torch.randn(20, 33)
    weight[3] = 0.0  # an all-zero row keeps a usable scale
    weight[5] *= 100.0  # a row's scale does not depend on the others
    codes, scales = quantize_weight(weight)
    assert codes.dtype == torch.int8 and scales.shape == (20,) and scales.dtype == torch.float32
    assert int(codes.abs().max()) == INT8_MAX and scales[3] == 1.0 and not codes[3].any()
    restored = codes.float() * scales.unsqueeze(1)
    assert torch.all((restored - weight).abs() <= scales.unsqueeze(1) / 2 + 1e-6)
    assert torch.equal(codes[5], quantize_weight(weight[5:6])[0][0])


def test_input_codes_map_the_bound_and_zero_exactly_and_clamp_beyond():
    x = torch.tensor([[-1.0, 0.0, 1.0, 2.5, -7.0, 0.5]])
    codes = quantize_input(x, bound=1.0)
    assert codes.dtype == torch.uint8
    assert codes.tolist() == [[0, ZERO_POINT, 2 * INT8_MAX, 2 * INT8_MAX, 0, 190]]  # 190.5 rounds to even
    assert quantize_input(torch.tensor([[0.2]]), bound=0.5).tolist() == [[round(0.2 * 254 + 127)]]


def reference(layer: nn.Linear, x: torch.Tensor, bound: float = 1.0) -> torch.Tensor:
    """What the kernel computes, in float64: dequantized codes times dequantized weights."""
    codes, scales = quantize_weight(layer.weight)
    inputs = (quantize_input(x, bound).double() - ZERO_POINT) * (bound / INT8_MAX)
    out = inputs @ (codes.double() * scales.double().unsqueeze(1)).t()
    return out + layer.bias.double() if layer.bias is not None else out


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("rows", [1, 7, 64])
def test_int8_linear_equals_its_integer_arithmetic_and_stays_near_float32(rows, bias):
    layer = make_linear(bias=bias)
    x = torch.tanh(3 * torch.randn(rows, 48, generator=torch.Generator().manual_seed(rows)))
    with torch.inference_mode():
        out = Int8Linear(layer)(x)
        exact = layer(x)
    assert out.dtype == torch.float32 and out.shape == (rows, 300)
    torch.testing.assert_close(out.double(), reference(layer, x), rtol=1e-5, atol=1e-5)
    # Each product term is off by at most half a step in either factor: a loose bound.
    _, scales = quantize_weight(layer.weight)
    worst = 48 * (0.5 / INT8_MAX * layer.weight.abs().amax(1) + 0.5 * scales + 0.25 * scales / INT8_MAX)
    assert torch.all((out - exact).abs() <= worst)
    assert (out - exact).abs().mean() < 0.05 * exact.abs().mean()


def test_int8_linear_keeps_leading_dimensions_and_is_batch_independent():
    layer = make_linear()
    quantized = Int8Linear(layer)
    x = torch.tanh(torch.randn(3, 5, 48))
    with torch.inference_mode():
        whole = quantized(x)
        alone = quantized(x[1, 2:3])
    assert whole.shape == (3, 5, 300)
    assert torch.equal(whole[1, 2:3], alone)  # the fixed input range ignores the other rows


def test_int8_linear_sees_a_custom_bound_and_refuses_a_bad_one():
    layer = make_linear()
    x = 4 * torch.tanh(torch.randn(6, 48))
    with torch.inference_mode():
        torch.testing.assert_close(
            Int8Linear(layer, bound=4.0)(x).double(), reference(layer, x, 4.0), rtol=1e-5, atol=1e-5
        )
    with pytest.raises(ValueError, match="bound must be > 0"):
        Int8Linear(layer, bound=0.0)


def test_int8_decoding_copy_quantizes_a_copy_and_keeps_the_original():
    from nmt.models.seq2seq import Seq2Seq

    torch.manual_seed(0)
    model = Seq2Seq(30, 40, embed_size=16, hidden_size=16, tie_embeddings=True, init={"scheme": "xavier"}).train()
    quantized = int8_decoding_copy(model)
    assert isinstance(quantized.output_layer, Int8Linear) and not quantized.training
    assert all(isinstance(layer, Int8Linear) for layer in quantized.decoder.step_products)
    assert isinstance(model.output_layer, nn.Linear) and model.training and model.decoder.step_products is None
    assert model.output_layer.weight is model.tgt_embed.weight  # still tied in the original
    assert quantized.tgt_embed.weight is not model.tgt_embed.weight
    gru = int8_decoding_copy(Seq2Seq(30, 40, embed_size=16, hidden_size=16, cell="gru"))
    assert isinstance(gru.output_layer, Int8Linear) and gru.decoder.step_products is None  # GRU steps stay float


def test_an_int8_copy_leaves_the_global_random_state_untouched():
    """Quantizing for decoding (e.g. a server loading a model mid-run) draws no random numbers."""
    from nmt.models.seq2seq import Seq2Seq

    torch.manual_seed(0)
    model = Seq2Seq(30, 40, embed_size=16, hidden_size=16, decoder_layers=2)
    before = torch.get_rng_state()
    int8_decoding_copy(model)
    assert torch.equal(torch.get_rng_state(), before)


DECODERS = {
    "lstm, input feeding": dict(),
    "lstm, no input feeding, 2 layers": dict(input_feeding=False, decoder_layers=2),
    "lstm, input feeding, 2 layers, dot": dict(decoder_layers=2, attention="dot"),
    "lstm, Bahdanau's decoder": dict(input_feeding=False, decoder_style="bahdanau"),
}


@pytest.mark.parametrize("kind", DECODERS)
def test_step_products_equal_the_decoders_own_step(kind):
    """The fused ``[fed-back or lower state; h] -> gates`` layers, in float64, give the very
    step the weights give; in int8 a step stays close."""
    from nmt.models.seq2seq import Seq2Seq

    torch.manual_seed(0)
    model = Seq2Seq(30, 40, embed_size=16, hidden_size=16, dropout=0.0, **DECODERS[kind]).double().eval()
    src, lengths = torch.randint(4, 30, (5, 7)), torch.tensor([7, 6, 4, 2, 1])
    prev = torch.randint(4, 40, (5,))

    def two_steps(net):
        with torch.inference_mode():
            source, state = net.encode(src, lengths)
            _, state, _ = net.decode_step(torch.full((5,), 2), state, source)
            logits, state, _ = net.decode_step(prev, state, source)
        return logits, state

    expected, expected_state = two_steps(model)
    model.decoder.step_products = nn.ModuleList(model.decoder.step_product_layers())
    fused, state = two_steps(model)
    torch.testing.assert_close(fused, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(state.cell, expected_state.cell, rtol=1e-12, atol=1e-12)
    model.decoder.step_products = None
    quantized, _ = two_steps(int8_decoding_copy(model.float()))
    assert (quantized.double() - expected).abs().max() < 0.05 * expected.abs().max()


def test_int8_translation_is_close_to_float32_and_keeps_one_line_per_input(tiny_translation_checkpoint):
    from nmt.decoding import DecodingOptions
    from nmt.inference.translator import Translator

    lines = ["The cat sees a dog.", "", "A big red house.", "the dog"]
    exact = Translator.from_checkpoint(tiny_translation_checkpoint, device="cpu")
    int8 = Translator.from_checkpoint(tiny_translation_checkpoint, device="cpu", precision="int8")
    assert isinstance(int8.model.output_layer, Int8Linear) and isinstance(exact.model.output_layer, nn.Linear)
    for options in (DecodingOptions(), DecodingOptions(strategy="beam", beam_size=3, n_best=2)):
        reference_out = exact.translate(lines, options, batch_size=2)
        out = int8.translate(lines, options, batch_size=2)
        assert len(out) == 4 and out[1].hypotheses == []
        for ours, theirs in zip(out, reference_out):
            assert len(ours.hypotheses) == len(theirs.hypotheses)
            for a, b in zip(ours.hypotheses, theirs.hypotheses):
                assert torch.isfinite(torch.tensor(a.log_prob))
                if a.text == b.text:  # the same output: nearly the same probability
                    assert a.log_prob == pytest.approx(b.log_prob, abs=0.05 * (1 + len(a.text.split())))


def test_int8_decoding_is_refused_on_a_gpu_or_without_the_kernels_with_a_clear_message(monkeypatch, capsys):
    import nmt.inference.translator
    from nmt.cli.translate import main
    from nmt.inference.translator import decoding_dtype

    with pytest.raises(ValueError, match="int8 decoding runs on a CPU"):
        decoding_dtype("int8", torch.device("cuda"))
    assert decoding_dtype("int8", torch.device("cpu")) is None
    monkeypatch.setattr(nmt.inference.translator, "int8_supported", lambda: False)
    with pytest.raises(ValueError, match="needs PyTorch's oneDNN int8 kernels"):
        decoding_dtype("int8", torch.device("cpu"))
    assert main(["missing.ckpt", "--precision", "int8", "--device", "cpu"]) == 2  # before the checkpoint is read
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "oneDNN int8 kernels" in line and "missing.ckpt" not in line


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_int8_copy_decodes_every_strategy_with_finite_scores(cell):
    from nmt.data.batching import pad_sequences
    from nmt.decoding import decode
    from nmt.models.seq2seq import Seq2Seq

    torch.manual_seed(0)
    model = Seq2Seq(30, 40, embed_size=16, hidden_size=16, cell=cell, dropout=0.0).eval()
    src, lengths = pad_sequences([[5, 6, 7, 8], [9, 10], [11]])
    quantized = int8_decoding_copy(model)
    for options in (dict(), dict(strategy="beam", beam_size=3, n_best=2), dict(strategy="sample", seed=1)):
        exact, fast = decode(model, src, lengths, **options), decode(quantized, src, lengths, **options)
        assert [len(hyps) for hyps in fast] == [len(hyps) for hyps in exact]
        assert all(torch.isfinite(torch.tensor(h.score)) for hyps in fast for h in hyps)
