"""Schemas for the config groups, checked before anything is trained.

Hydra already rejects unknown keys (the composed config is in struct mode). These dataclasses
add types and allowed values, so ``model.hidden_size=abc`` or ``attention.type=dott`` fails
at start-up with a message that names the key, not after an hour of data preparation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException


class ConfigError(ValueError):
    """A config value that cannot work; the message says which key and how to fix it."""


@dataclass
class InitSchema:
    """``model.init``: weight initialisation (nmt/modules/initialization.py)."""

    scheme: str = "default"  # default (PyTorch's own) | uniform | xavier | orthogonal
    range: float = 0.1  # uniform: U(-range, range)
    forget_bias: Optional[float] = 1.0  # LSTM forget-gate bias, any scheme but default; null = the scheme's


@dataclass
class ModelSchema:
    cell: str = "lstm"  # lstm | gru
    embed_size: int = 256
    hidden_size: int = 256  # encoder output and decoder state size
    encoder_layers: int = 1
    decoder_layers: int = 1
    bidirectional: bool = True  # a bidirectional encoder splits hidden_size over directions
    dropout: float = 0.2
    input_feeding: bool = True
    tie_embeddings: bool = False
    init: InitSchema = field(default_factory=InitSchema)


@dataclass
class EncoderTransferSchema:
    init_from: Optional[str] = None  # translation checkpoint whose source side is reused
    freeze: bool = False
    lr_scale: float = 1.0


@dataclass
class ClassifierModelSchema:
    """``model`` group when ``task: classification`` (conf/model/bilstm_attn.yaml)."""

    cell: str = "lstm"  # lstm | gru
    embed_size: int = 256
    hidden_size: int = 256
    encoder_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.3
    attention_size: Optional[int] = None
    encoder: EncoderTransferSchema = field(default_factory=EncoderTransferSchema)
    init: InitSchema = field(default_factory=InitSchema)


@dataclass
class AttentionSchema:
    type: str = "bahdanau"  # bahdanau | dot | general
    size: Optional[int] = None  # additive attention's inner size; null = hidden_size


@dataclass
class TokenizerSchema:
    type: str = "sentencepiece"  # sentencepiece | char
    joint: bool = False
    vocab_size: int = 8000
    model_type: str = "unigram"  # unigram | bpe
    character_coverage: float = 1.0
    max_sentences: Optional[int] = None
    min_freq: int = 1


@dataclass
class OptimSchema:
    lr: float = 1e-3
    betas: list = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.0
    schedule: str = "plateau"  # none | plateau | inverse_sqrt | cosine
    warmup_steps: int = 0
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    min_lr: float = 1e-5


CHOICES = {
    "model.cell": ("lstm", "gru"),
    "model.init.scheme": ("default", "uniform", "xavier", "orthogonal"),
    "attention.type": ("bahdanau", "dot", "general"),
    "tokenizer.type": ("sentencepiece", "char"),
    "tokenizer.model_type": ("unigram", "bpe"),
    "optim.schedule": ("none", "plateau", "inverse_sqrt", "cosine"),
    "data.batch_unit": ("sentences", "tokens"),
    "data.truncation": ("head", "head_tail"),
}

SCHEMAS = {
    "model": ModelSchema,
    "attention": AttentionSchema,
    "tokenizer": TokenizerSchema,
    "optim": OptimSchema,
}

POSITIVE = (
    "model.embed_size",
    "model.hidden_size",
    "model.encoder_layers",
    "model.decoder_layers",
    "data.batch_size",
    "data.max_length",
    "data.max_tokens",
)


def _typed(group: str, node: Any, task: str | None = None) -> DictConfig:
    schema = ClassifierModelSchema if group == "model" and task == "classification" else SCHEMAS[group]
    try:
        return OmegaConf.merge(OmegaConf.structured(schema), node)
    except OmegaConfBaseException as error:
        raise ConfigError(f"bad value in config group '{group}': {error.msg}") from error


def validate_config(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` for a config that cannot train; do nothing otherwise."""
    for group in SCHEMAS:
        if group in cfg:
            _typed(group, cfg[group], cfg.get("task"))
    if cfg.get("task") == "classification":
        _validate_classification(cfg)
    for key, allowed in CHOICES.items():
        value = OmegaConf.select(cfg, key)
        if value is not None and value not in allowed:
            options = " or ".join(f"{key}={choice}" for choice in allowed)
            raise ConfigError(f"{key}={value!r} is not supported: use {options}")
    for key in POSITIVE:
        value = OmegaConf.select(cfg, key)
        if value is not None and (not isinstance(value, int) or value <= 0):
            raise ConfigError(f"{key} must be a positive integer, got {value!r}")
    dropout = OmegaConf.select(cfg, "model.dropout")
    if dropout is not None and not 0.0 <= dropout < 1.0:
        raise ConfigError(f"model.dropout must be in [0, 1), got {dropout}")
    split = OmegaConf.select(cfg, "data.split")
    if split is not None:
        total = sum(float(v) for v in split.values())
        if abs(total - 1.0) > 1e-6 or any(float(v) < 0 for v in split.values()):
            raise ConfigError(f"data.split fractions must be >= 0 and sum to 1, got {dict(split)}")
    attention = OmegaConf.select(cfg, "attention.type")
    if attention == "dot" and cfg.model.get("hidden_size") is None:
        raise ConfigError("dot attention needs model.hidden_size")
    label_smoothing = OmegaConf.select(cfg, "loss.label_smoothing")
    if label_smoothing is not None and not 0.0 <= label_smoothing < 1.0:
        raise ConfigError(f"loss.label_smoothing must be in [0, 1), got {label_smoothing}")


def _validate_classification(cfg: DictConfig) -> None:
    if OmegaConf.is_missing(cfg.model.encoder, "init_from"):
        raise ConfigError(
            "model.encoder.init_from is required by this experiment: pass "
            "model.encoder.init_from=PATH/TO/translation/checkpoints/best.ckpt"
        )
    lr_scale = OmegaConf.select(cfg, "model.encoder.lr_scale")
    if lr_scale is not None and lr_scale <= 0:
        raise ConfigError(f"model.encoder.lr_scale must be > 0, got {lr_scale} (use model.encoder.freeze=true)")
    labels = OmegaConf.select(cfg, "data.labels")
    if labels is None or len(labels) < 2:
        raise ConfigError(f"data.labels must name at least two classes, got {labels}")
