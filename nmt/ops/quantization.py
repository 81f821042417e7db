"""Int8 inference on a CPU: the decoder's products on oneDNN's int8 kernel.

Decoding spends half its time in the output layer's product (hidden -> vocabulary, for every
live row at every step), and much of the rest in the recurrent products. With int8 operands
a CPU with VNNI instructions does four times the multiply-adds per instruction of float32,
so decoding is markedly faster at the cost of a few changed outputs (speed-up, share of
changed outputs and BLEU in docs/results.md, "Decoding on a CPU").

* Weights: symmetric int8, one scale per output row (``max |w_row| / 127``), made once when
  the layer is wrapped. A checkpoint stays float32; it is quantized when loaded for decoding.
* Inputs: uint8 over a *fixed* range ``[-bound, bound]`` (codes 0..254, zero point 127).
  Every decoder here feeds the output layer a tanh (or ``sigmoid * tanh``) output, and the
  recurrent products read such states too (h, and the fed-back h~), so ``bound = 1`` loses
  nothing to clipping, costs no per-call range search, and -- unlike a per-batch range --
  leaves each sentence's result independent of the others in its batch.
* The kernel accumulates in int32 and writes float32, rescaled, with the bias added.

Training never uses this module.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

INT8_MAX = 127
ZERO_POINT = 127
"""Of the inputs' uint8 codes: -bound, 0 and bound are 0, 127 and 254, all exact."""


def quantize_weight(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row int8.

    :param weight: (out, in) float. :return: ``(int8 weight (out, in), scales (out,) float32)``
        with ``weight ~= int8 * scales[:, None]``; an all-zero row gets scale 1.
    """
    scales = weight.detach().abs().amax(dim=1).float() / INT8_MAX
    scales = torch.where(scales > 0, scales, torch.ones_like(scales))
    quantized = torch.round(weight.detach().float() / scales.unsqueeze(1)).clamp_(-INT8_MAX, INT8_MAX)
    return quantized.to(torch.int8), scales


def quantize_input(x: torch.Tensor, bound: float) -> torch.Tensor:
    """Fixed-range uint8: ``x ~= (q - ZERO_POINT) * bound / 127`` over ``[-bound, bound]``.

    :param x: (rows, in) float. :return: (rows, in) uint8; values beyond ``bound`` are clamped.
    """
    return (x * (INT8_MAX / bound)).add_(ZERO_POINT).round_().clamp_(0, 2 * INT8_MAX).to(torch.uint8)


class Int8Linear(nn.Module):
    """A frozen ``nn.Linear`` for CPU inference with int8 products.

    :param linear: the float layer; its weights are quantized now (later changes to it are
        not seen). :param bound: the inputs' range ``[-bound, bound]``; beyond it they are
        clamped. Output: float32, (..., out_features).
    """

    weight_scales: torch.Tensor
    weight_zero_points: torch.Tensor
    bias: torch.Tensor | None

    def __init__(self, linear: nn.Linear, bound: float = 1.0) -> None:
        super().__init__()
        check_int8_support()
        if not bound > 0:
            raise ValueError(f"the input bound must be > 0, got {bound}")
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        self.bound = float(bound)
        weight, scales = quantize_weight(linear.weight)
        self.register_buffer("weight_scales", scales, persistent=False)
        self.register_buffer("weight_zero_points", torch.zeros(self.out_features, dtype=torch.long), persistent=False)
        bias = None if linear.bias is None else linear.bias.detach().float().clone()
        self.register_buffer("bias", bias, persistent=False)
        self._packed = torch.ops.onednn.qlinear_prepack(weight, None)  # oneDNN's blocked layout, once

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":
            raise RuntimeError("int8 layers run on a CPU only: on a GPU decode with --precision fp32, bf16 or fp16")
        shape = x.shape
        codes = quantize_input(x.reshape(-1, self.in_features).float(), self.bound)
        out = _int8_product(codes, self.bound, self._packed, self.weight_scales, self.weight_zero_points, self.bias)
        return out.view(*shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8, inputs in [-{self.bound:g}, {self.bound:g}]"


def _int8_product(
    codes: torch.Tensor,
    bound: float,
    packed: torch.Tensor,
    weight_scales: torch.Tensor,
    weight_zero_points: torch.Tensor,
    bias: torch.Tensor | None,
) -> torch.Tensor:
    """oneDNN's u8s8 product: (rows, in) uint8 input codes (:func:`quantize_input` over
    ``[-bound, bound]``) times a prepacked int8 weight, rescaled to float32 (rows, out), bias added."""
    return torch.ops.onednn.qlinear_pointwise(
        codes,
        bound / INT8_MAX,
        ZERO_POINT,
        packed,
        weight_scales,
        weight_zero_points,
        bias,
        1.0,
        0,
        torch.float32,
        "none",
        [],
        "",
    )


_SUPPORT: bool | None = None


def int8_supported() -> bool:
    """Whether this PyTorch build runs oneDNN's int8 linear kernel on this CPU (checked once,
    on a tiny product)."""
    global _SUPPORT
    if _SUPPORT is None:
        try:
            weight, scales = quantize_weight(torch.ones(2, 4))
            packed = torch.ops.onednn.qlinear_prepack(weight, None)
            out = _int8_product(
                quantize_input(torch.ones(1, 4), 1.0), 1.0, packed, scales, torch.zeros(2, dtype=torch.long), None
            )
            _SUPPORT = bool(torch.allclose(out, torch.full((1, 2), 4.0)))
        except (AttributeError, RuntimeError, NotImplementedError):
            _SUPPORT = False
    return _SUPPORT


def check_int8_support() -> None:
    """A clear error where int8 inference cannot run."""
    if not int8_supported():
        raise RuntimeError(
            "int8 decoding needs PyTorch's oneDNN int8 kernels (an x86-64 CPU build of PyTorch), "
            "which this installation lacks: use --precision fp32 or bf16"
        )


def int8_decoding_copy(model: Any) -> Any:
    """A copy of ``model``, in eval mode, whose output layer -- and, for an LSTM decoder, each
    layer's step product (``[fed-back or lower layer's state; h_{t-1}] -> gates``, see
    :meth:`~nmt.modules.decoder.AttentionDecoder.step_product_layers`) -- is an
    :class:`Int8Linear` over ``[-1, 1]``: all of them read tanh-bounded states. The rest (the
    encoder, attention, the gates' nonlinearities) stays float32; ``model`` is left as it was.

    :raises RuntimeError: where int8 kernels are missing, or ``model`` is not on the CPU.
    """
    check_int8_support()
    if model.output_layer.weight.device.type != "cpu":
        raise RuntimeError("int8 decoding runs on a CPU: move the model there, or use bf16/fp16 on a GPU")
    quantized = copy.deepcopy(model).eval()
    quantized.output_layer = Int8Linear(model.output_layer)
    decoder = quantized.decoder
    if decoder.cell_type == "lstm":
        decoder.step_products = nn.ModuleList(Int8Linear(layer) for layer in decoder.step_product_layers())
    return quantized
