"""Weight initialisation schemes for the networks (the ``model.init`` config section).

``initialize(model, scheme, range, forget_bias)`` re-initialises a built network in place,
addressing parameters by module type, so it works for :class:`~nmt.models.seq2seq.Seq2Seq`
and :class:`~nmt.models.classifier.TextClassifier` alike without either knowing the scheme:

==============  ======================================================================
``default``     nothing changes: PyTorch's own initialisation, with which every preset's
                results and checkpoints were made.
``uniform``     every parameter from U(-range, range), as OpenNMT's ``param_init``.
``xavier``      matrices Glorot-uniform (Glorot & Bengio 2010), biases zero.
``orthogonal``  recurrent matrices orthogonal, one gate block at a time (Saxe et al. 2014);
                input and other matrices Glorot-uniform, biases zero.
==============  ======================================================================

Every scheme but ``default`` then also

* sets the LSTM forget-gate bias to ``forget_bias`` (Gers et al. 2000; Jozefowicz et al.
  2015), in the encoder's ``nn.LSTM`` and the decoder's ``nn.LSTMCell`` alike. PyTorch
  keeps two biases, ``bias_ih`` and ``bias_hh``, with the gates in the order input,
  forget, cell, output; only their sum acts, so the forget quarter of ``bias_ih`` gets the
  value and that of ``bias_hh`` zero;
* initialises embeddings N(0, 1/embed_size) (``xavier``, ``orthogonal``; ``uniform``
  keeps its uniform draw) and keeps their padding row at zero;
* initialises an output layer tied to an embedding N(0, 1/embed_size) in every scheme:
  PyTorch's N(0, 1) embedding as output weights makes initial logits of standard
  deviation about sqrt(embed_size) x the state's scale (~16 at 256), a near one-hot
  first softmax; 1/embed_size brings them to the state's scale, about 1.

Parameters no rule names (e.g. attention pooling's context vector) keep their own
initialisation, except under ``uniform``, which covers everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nmt.config.schema import InitScheme, choices

INIT_SCHEMES = choices(InitScheme)
DEFAULT_RANGE = 0.1
DEFAULT_FORGET_BIAS = 1.0

_RECURRENT = (nn.LSTM, nn.GRU, nn.RNN, nn.LSTMCell, nn.GRUCell, nn.RNNCell)
_LSTMS = (nn.LSTM, nn.LSTMCell)
_ELMAN = (nn.RNN, nn.RNNCell)


def gate_count(module: nn.Module) -> int:
    """Gate blocks stacked in a recurrent module's matrices: 4 for an LSTM, 3 for a GRU, 1 for
    Elman's tanh RNN."""
    if isinstance(module, _LSTMS):
        return 4
    return 1 if isinstance(module, _ELMAN) else 3


def orthogonal_gate_blocks_(weight: torch.Tensor, gates: int) -> None:
    """Make each of the ``gates`` row blocks of ``weight`` (gates * hidden, hidden) orthogonal.

    One orthogonal matrix over the whole (4H, H) stack would only make its columns
    orthonormal; each gate multiplies the state by its own (H, H) block, and it is that
    block which must preserve norms for gradients to flow through time.
    """
    with torch.no_grad():
        for block in weight.chunk(gates, dim=0):
            nn.init.orthogonal_(block)


def set_forget_bias_(module: nn.LSTM | nn.LSTMCell, value: float) -> None:
    """Give every layer and direction of an ``nn.LSTM`` / ``nn.LSTMCell`` a forget-gate bias
    of ``value`` (``bias_ih`` + ``bias_hh``, forget quarter)."""
    hidden = module.hidden_size
    forget = slice(hidden, 2 * hidden)  # gate order: input, forget, cell, output
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if name.startswith("bias_ih"):
                parameter[forget] = value
            elif name.startswith("bias_hh"):
                parameter[forget] = 0.0


def _init_recurrent(module: nn.Module, scheme: str) -> None:
    for name, parameter in module.named_parameters():
        if name.startswith("bias"):
            nn.init.zeros_(parameter)
        elif name.startswith("weight_hh") and scheme == "orthogonal":
            orthogonal_gate_blocks_(parameter, gate_count(module))
        else:  # weight_ih*, and weight_hh* under xavier
            nn.init.xavier_uniform_(parameter)


def _init_embedding(weight: torch.Tensor) -> None:
    nn.init.normal_(weight, mean=0.0, std=weight.size(1) ** -0.5)


def initialize(
    model: nn.Module,
    scheme: str = "default",
    range: float = DEFAULT_RANGE,  # noqa: A002 - the config key's name
    forget_bias: float | None = DEFAULT_FORGET_BIAS,
) -> nn.Module:
    """Re-initialise ``model``'s parameters with ``scheme`` (see the module docstring).

    Draws from torch's global generator, so ``torch.manual_seed`` makes it reproducible.

    :param range: ``uniform``: the bound of U(-range, range); > 0.
    :param forget_bias: the LSTM forget-gate bias; None leaves the scheme's value.
    :return: ``model``, for chaining.
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}: use model.init.scheme={' | '.join(INIT_SCHEMES)}")
    if scheme == "default":
        return model
    if not range > 0:
        raise ValueError(f"model.init.range must be > 0, got {range}")
    embeddings = [m for m in model.modules() if isinstance(m, nn.Embedding)]
    embedding_weights = {id(m.weight) for m in embeddings}
    tied = [m for m in model.modules() if isinstance(m, nn.Linear) and id(m.weight) in embedding_weights]
    with torch.no_grad():
        if scheme == "uniform":
            for parameter in model.parameters():
                nn.init.uniform_(parameter, -range, range)
        else:
            for module in model.modules():
                if isinstance(module, _RECURRENT):
                    _init_recurrent(module, scheme)
                elif isinstance(module, nn.Linear) and module not in tied:
                    nn.init.xavier_uniform_(module.weight)
                    if module.bias is not None:
                        nn.init.zeros_(module.bias)
            for embedding in embeddings:
                _init_embedding(embedding.weight)
        for linear in tied:
            _init_embedding(linear.weight)
        if forget_bias is not None:
            for module in model.modules():
                if isinstance(module, _LSTMS):
                    set_forget_bias_(module, forget_bias)
        for embedding in embeddings:
            if embedding.padding_idx is not None:
                embedding.weight[embedding.padding_idx].zero_()
    return model


def initialize_from_config(model: nn.Module, init: Mapping[str, Any] | None) -> nn.Module:
    """Apply the ``model.init`` config section; absent (a checkpoint made before it
    existed) or partial sections fall back to the defaults, i.e. to ``default``."""
    init = init or {}
    forget_bias = init.get("forget_bias", DEFAULT_FORGET_BIAS)
    return initialize(
        model,
        scheme=init.get("scheme", "default"),
        range=float(init.get("range", DEFAULT_RANGE)),
        forget_bias=None if forget_bias is None else float(forget_bias),
    )
