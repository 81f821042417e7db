"""Reuse a translation model's source side (embedding, encoder, tokenizer) in a classifier.

``model.encoder.init_from=PATH`` names a translation checkpoint. Its source tokenizer
replaces the classifier's own, and its ``src_embed.*`` / ``encoder.*`` weights initialise
the classifier's modules of the same names. ``model.encoder.freeze=true`` then keeps them
fixed; otherwise they fine-tune at ``optim.lr * model.encoder.lr_scale``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nmt.data.tokenizers import Tokenizer
from nmt.inference.loading import WrongTaskError, load_model
from nmt.models.classifier import TRANSFERABLE_MODULES, TextClassifier

# Model config keys that fix the shape and meaning of the transferred weights.
ARCHITECTURE_KEYS = ("cell", "embed_size", "hidden_size", "encoder_layers", "bidirectional")


class EncoderTransferError(ValueError):
    """The translation checkpoint cannot initialise the configured classifier."""


@dataclass
class TranslationEncoder:
    """The source side of a translation checkpoint.

    :ivar weights: ``src_embed.*`` and ``encoder.*`` tensors, keyed as in both networks.
    :ivar model_config: the translation run's ``model`` config.
    """

    path: Path
    tokenizer: Tokenizer
    weights: dict[str, torch.Tensor]
    model_config: dict[str, Any]


def read_translation_encoder(path: str | Path) -> TranslationEncoder:
    """Load the source tokenizer, embedding and encoder of a translation checkpoint."""
    try:
        loaded = load_model(path, task="translation")
    except WrongTaskError as error:
        raise EncoderTransferError(
            f"model.encoder.init_from: {error}: give a translation checkpoint "
            "(e.g. outputs/spm_bahdanau/<run>/checkpoints/best.ckpt)"
        ) from error
    prefixes = tuple(f"{name}." for name in TRANSFERABLE_MODULES)
    weights = {k: v for k, v in loaded.weights().items() if k.startswith(prefixes)}
    return TranslationEncoder(Path(path), loaded.tokenizer, weights, dict(loaded.config["model"]))


def check_compatible(source: TranslationEncoder, model_cfg: Mapping[str, Any]) -> None:
    """Raise :class:`EncoderTransferError` listing every architecture key that differs."""
    differences = [
        f"model.{key}={model_cfg.get(key)!r} but the checkpoint has {source.model_config.get(key)!r}"
        for key in ARCHITECTURE_KEYS
        if model_cfg.get(key) != source.model_config.get(key)
    ]
    if differences:
        raise EncoderTransferError(
            f"the encoder in {source.path} does not fit the classifier config: "
            + "; ".join(differences)
            + ". Set these model.* values to the checkpoint's (or drop model.encoder.init_from)."
        )


def load_encoder(classifier: TextClassifier, source: TranslationEncoder) -> None:
    """Copy the transferred weights into ``classifier`` (shapes checked, all keys required)."""
    own = {
        key: value
        for key, value in classifier.state_dict().items()
        if key.startswith(tuple(f"{name}." for name in TRANSFERABLE_MODULES))
    }
    missing = sorted(set(own) - set(source.weights))
    wrong = [
        f"{key}: classifier {tuple(own[key].shape)} vs checkpoint {tuple(source.weights[key].shape)}"
        for key in sorted(set(own) & set(source.weights))
        if own[key].shape != source.weights[key].shape
    ]
    if missing or wrong:
        raise EncoderTransferError(
            f"cannot load the encoder of {source.path}: "
            + (f"missing {', '.join(missing)}; " if missing else "")
            + (f"shape mismatch {'; '.join(wrong)}" if wrong else "")
            + ". Check model.* sizes and that the classifier uses the checkpoint's tokenizer."
        )
    classifier.load_state_dict(source.weights, strict=False)


def freeze_encoder(classifier: TextClassifier) -> None:
    """Stop gradients into the embedding and the encoder (the optimiser then skips them)."""
    for parameter in classifier.transferable_parameters():
        parameter.requires_grad_(False)


def init_from_translation(
    classifier: TextClassifier, model_cfg: Mapping[str, Any], path: str | Path
) -> TranslationEncoder:
    """Read ``path``, check it against ``model_cfg`` and load it; return what was loaded."""
    source = read_translation_encoder(path)
    check_compatible(source, model_cfg)
    load_encoder(classifier, source)
    return source
