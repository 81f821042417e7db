"""Cross-key checks of a run config, made before anything is trained; no file is read.

Hydra already rejects unknown keys (the composed config is in struct mode); the schema
(:mod:`nmt.config.schema`) gives every key its type, default and allowed values. This module
merges a config with that schema (:func:`validate_config` returns the typed result) and
checks what one key cannot say alone: ``model.tie_embeddings`` needs equal sizes, a cosine
schedule needs ``trainer.max_steps``, ...
"""

from __future__ import annotations

import importlib.util
import math
import re
import typing
from dataclasses import fields, is_dataclass
from enum import Enum
from typing import Any, cast

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from nmt.config.schema import (
    DATA_SCHEMAS,
    EMBEDDING_METHODS,
    LOGGER_PACKAGES,
    MOVED_KEYS,
    SCHEMAS,
    SECTION_SCHEMAS,
    LanguageSide,
    StopwordList,
    TokenizerSchema,
    VectorFormat,
    choices,
    group_schema,
)


class ConfigError(ValueError):
    """A config value that cannot work; the message says which key and how to fix it."""


LM_DATASETS = ("fra", "imdb", "sms", "nsmc")

POSITIVE = (
    "model.conv_filters",
    "model.conv_kernel",
    "model.pool_size",
    "model.embed_size",
    "model.layers",
    "model.hidden_size",
    "model.encoder_layers",
    "model.decoder_layers",
    "data.batch_size",
    "data.max_length",
    "data.max_tokens",
)


def _check_choices(prefix: str, schema: type, node: Any) -> None:
    """An enum-typed key outside its values: the old one-line message, naming every option."""
    if not OmegaConf.is_dict(node) and not isinstance(node, dict):
        return
    hints = typing.get_type_hints(schema)
    for item in fields(schema):
        kind = hints[item.name]
        value = node.get(item.name) if item.name in node else None
        key = f"{prefix}.{item.name}"
        if isinstance(kind, type) and issubclass(kind, Enum):
            allowed = choices(kind)
            if value is not None and value not in allowed:
                options = " or ".join(f"{key}={choice}" for choice in allowed)
                raise ConfigError(f"{key}={value!r} is not supported: use {options}")
        elif isinstance(kind, type) and is_dataclass(kind) and value is not None:
            _check_choices(key, kind, value)


def _typed(group: str, node: Any, schema: type) -> DictConfig:
    """``node`` merged onto ``schema``'s defaults; a bad value is a one-line :class:`ConfigError`."""
    _check_choices(group, schema, node)
    try:
        typed = cast(DictConfig, OmegaConf.merge(OmegaConf.structured(schema), node))
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None) or getattr(error, "key", None)
        where = f"{group}.{key}" if key else f"config group '{group}'"
        raise ConfigError(f"bad value for {where}: {str(error.msg).splitlines()[0]}") from error
    _keep_missing(node, typed)
    return typed


def _keep_missing(node: Any, typed: DictConfig) -> None:
    """A merge does not carry ``???`` over a default; a preset's required key must stay
    missing (``model.encoder.init_from: ???``) so that its check names it."""
    if not OmegaConf.is_dict(node):
        return
    for key in node:
        if OmegaConf.is_missing(node, key):
            typed[key] = "???"
        elif OmegaConf.is_dict(node[key]) and key in typed:
            _keep_missing(node[key], typed[key])


def data_schema(cfg: DictConfig) -> type:
    """The schema of ``cfg.data``, picked by ``data.name``."""
    name = OmegaConf.select(cfg, "data.name")
    if name not in DATA_SCHEMAS:
        raise ConfigError(f"data.name={name!r} is not a known corpus: use data=" + " or data=".join(DATA_SCHEMAS))
    return DATA_SCHEMAS[name]


def section_schemas(cfg: DictConfig) -> dict[str, type]:
    """The schema of every typed section: those ``cfg`` holds of :data:`SCHEMAS` (``model``'s by
    task), ``data``'s by corpus, and every one of :data:`SECTION_SCHEMAS`, held or not (a config
    saved before such a section existed gets its defaults)."""
    task = cfg.get("task")
    found = {group: group_schema(group, task) for group in SCHEMAS if group in cfg}
    found |= SECTION_SCHEMAS
    if "data" in cfg:
        found["data"] = data_schema(cfg)
    return found


def typed_config(cfg: DictConfig) -> DictConfig:
    """``cfg`` with every typed section merged onto its schema: each key the YAML left out holds
    the schema's default. Values stay plain (enum members become their strings), so the result
    saves, compares and resumes like the composed config."""
    typed = cast(DictConfig, OmegaConf.create(OmegaConf.to_container(cfg, resolve=False)))
    for group, schema in section_schemas(cfg).items():
        node = cfg.get(group, {})
        typed[group] = OmegaConf.to_container(_typed(group, node, schema), enum_to_str=True)
    OmegaConf.set_struct(typed, True)
    return typed


def moved_key_message(old: str, new: str) -> str:
    return f"{old} moved to {new}: use {new}=... (the trainer group holds only lightning.Trainer's keys)"


def moved_key_error(key: str) -> ConfigError | None:
    """The error for an override of a key that moved to another group (``trainer.max_cpu_time``), else None."""
    old = key.lstrip("+~")
    new = MOVED_KEYS.get(old)
    return None if new is None else ConfigError(moved_key_message(old, new))


def validate_config(cfg: DictConfig) -> DictConfig:
    """The typed run config (:func:`typed_config`); raise :class:`ConfigError` for one that cannot train."""
    for key in MOVED_KEYS:
        if OmegaConf.select(cfg, key, default=None) is not None or (
            "trainer" in cfg and key.split(".", 1)[1] in cfg.trainer
        ):
            raise ConfigError(moved_key_message(key, MOVED_KEYS[key]))
    typed = typed_config(cfg)
    if typed.get("task") == "classification":
        _validate_classification(typed)
    if OmegaConf.select(typed, "model.embeddings") is not None:
        _validate_pretrained_embeddings(typed)
    if typed.get("task") in ("lm", "bilm"):
        _validate_language_model(typed)
    if typed.get("task") == "baseline":
        _validate_baseline(typed)
    for key in POSITIVE:
        value = OmegaConf.select(typed, key)
        if value is not None and (not isinstance(value, int) or value <= 0):
            raise ConfigError(f"{key} must be a positive integer, got {value!r}")
    for key in ("model.dropout", "model.recurrent_dropout"):
        dropout = OmegaConf.select(typed, key)
        if dropout is not None and not 0.0 <= dropout < 1.0:
            raise ConfigError(f"{key} must be in [0, 1), got {dropout}")
    split = OmegaConf.select(typed, "data.split")
    if split is not None:
        total = sum(float(v) for v in split.values())
        if abs(total - 1.0) > 1e-6 or any(float(v) < 0 for v in split.values()):
            raise ConfigError(f"data.split fractions must be >= 0 and sum to 1, got {dict(split)}")
    attention = OmegaConf.select(typed, "attention.type")
    if attention == "dot" and typed.model.get("hidden_size") is None:
        raise ConfigError("dot attention needs model.hidden_size")
    label_smoothing = OmegaConf.select(typed, "loss.label_smoothing")
    if label_smoothing is not None and not 0.0 <= label_smoothing < 1.0:
        raise ConfigError(f"loss.label_smoothing must be in [0, 1), got {label_smoothing}")
    _validate_model_combinations(typed)
    _validate_subword_sampling(typed)
    _validate_morpheme_tokenizer(typed)
    _validate_optim(typed)
    _validate_batching(typed)
    if "trainer" in typed:
        _validate_trainer(typed)
    if "training" in typed:
        _validate_training(typed)
    if "logger" in typed:
        _validate_logger(typed)
    threads = typed.get("threads")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"threads must be a positive integer or null (all cores), got {threads!r}")
    patience = OmegaConf.select(typed, "early_stopping.patience")
    if patience is not None and (not isinstance(patience, int) or patience < 0):
        raise ConfigError(f"early_stopping.patience must be an integer >= 0 (0 or null: off), got {patience!r}")
    return typed


def _validate_model_combinations(cfg: DictConfig) -> None:
    """Combinations that used to fail only once the network was built, after the data."""
    model = cfg.get("model") or {}
    hidden, embed = model.get("hidden_size"), model.get("embed_size")
    if model.get("bidirectional") and isinstance(hidden, int) and hidden % 2:
        raise ConfigError(
            f"a bidirectional encoder splits model.hidden_size over two directions: {hidden} is odd; "
            "use an even model.hidden_size or model.bidirectional=false"
        )
    if model.get("tie_embeddings") and embed != hidden:
        raise ConfigError(
            f"model.tie_embeddings=true needs model.embed_size ({embed}) == model.hidden_size ({hidden}): "
            "change one of them or set model.tie_embeddings=false"
        )
    size = OmegaConf.select(cfg, "attention.size")
    if size is not None and (not isinstance(size, int) or size <= 0):
        raise ConfigError(f"attention.size must be a positive integer or null (= model.hidden_size), got {size!r}")
    if cfg.get("task") == "translation":
        _validate_decoder(cfg)
    if cfg.get("task") == "classification":
        encoder = model.get("encoder") or {}
        if encoder.get("freeze") and not encoder.get("init_from"):
            raise ConfigError(
                "model.encoder.freeze=true needs model.encoder.init_from=PATH to a translation checkpoint "
                "(a randomly initialised encoder would stay random)"
            )


def _validate_decoder(cfg: DictConfig) -> None:
    """The decoder variants: no attention, and Bahdanau's order, each without input feeding."""
    attention = OmegaConf.select(cfg, "attention.type")
    style = OmegaConf.select(cfg, "model.decoder_style") or "luong"
    feeding = OmegaConf.select(cfg, "model.input_feeding")
    if attention == "none" and style == "bahdanau":
        raise ConfigError(
            "model.decoder_style=bahdanau is defined by its attention (queried from s_t-1, the context "
            "enters the cell): pick attention=bahdanau|dot|general, or model.decoder_style=luong for attention=none"
        )
    if attention == "none" and feeding:
        raise ConfigError(
            "attention=none leaves no attentional state to feed back: add model.input_feeding=false "
            "(the presets char_plain and spm_plain do)"
        )
    if style == "bahdanau" and feeding:
        raise ConfigError(
            "model.decoder_style=bahdanau feeds the context c_t into the cell itself, so Luong's input "
            "feeding does not apply: add model.input_feeding=false (the presets char_rnnsearch and spm_rnnsearch do)"
        )


def _validate_optim(cfg: DictConfig) -> None:
    optim = cfg.get("optim")
    if optim is None:
        return
    lr = optim.get("lr")
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ConfigError(f"optim.lr must be a positive number, got {lr!r}")
    warmup = optim.get("warmup_steps", 0)
    if not isinstance(warmup, int) or warmup < 0:
        raise ConfigError(f"optim.warmup_steps must be an integer >= 0, got {warmup!r}")
    factor = optim.get("plateau_factor", 0.5)
    if not 0.0 < factor < 1.0:
        raise ConfigError(f"optim.plateau_factor must be in (0, 1), got {factor}")
    if optim.get("schedule") == "cosine":
        max_steps = OmegaConf.select(cfg, "trainer.max_steps")
        if not isinstance(max_steps, int) or max_steps <= 0:
            raise ConfigError(
                "optim.schedule=cosine decays over trainer.max_steps: set trainer.max_steps=N "
                f"(got {max_steps!r}) or use optim.schedule=plateau|inverse_sqrt"
            )
        if warmup >= max_steps:
            raise ConfigError(f"optim.warmup_steps ({warmup}) must be below trainer.max_steps ({max_steps})")


def _validate_subword_sampling(cfg: DictConfig) -> None:
    """Subword regularisation needs a SentencePiece tokenizer and a translation run."""
    alpha = OmegaConf.select(cfg, "tokenizer.sampling_alpha")
    if alpha is None:
        return
    kind = OmegaConf.select(cfg, "tokenizer.type")
    if kind != "sentencepiece":
        raise ConfigError(
            f"tokenizer.sampling_alpha={alpha} samples SentencePiece segmentations, but tokenizer.type={kind}: "
            "use tokenizer=spm or drop tokenizer.sampling_alpha"
        )
    if cfg.get("task", "translation") != "translation":
        raise ConfigError(f"tokenizer.sampling_alpha is for translation training, not task={cfg.get('task')}")
    if OmegaConf.select(cfg, "tokenizer.model_type") != "unigram":
        raise ConfigError(
            "tokenizer.sampling_alpha samples among a unigram model's n best segmentations, "
            "which a BPE model has not: use tokenizer.model_type=unigram"
        )
    if alpha <= 0:
        raise ConfigError(f"tokenizer.sampling_alpha must be > 0 (smaller: flatter, more varied draws), got {alpha}")
    nbest = OmegaConf.select(cfg, "tokenizer.sampling_nbest")
    if not isinstance(nbest, int) or nbest < 2:
        raise ConfigError(f"tokenizer.sampling_nbest must be an integer > 1 (the candidates drawn among), got {nbest}")


def _validate_morpheme_tokenizer(cfg: DictConfig) -> None:
    """``tokenizer.type=morpheme``: a task whose output is not decoded text, valid stopwords, Kiwi installed."""
    if OmegaConf.select(cfg, "tokenizer.type") != "morpheme":
        return
    if cfg.get("task", "translation") == "translation":
        raise ConfigError(
            "tokenizer.type=morpheme is for Korean classification and language models: its decoding "
            "joins morphemes with spaces, so translations could not be scored; use tokenizer=spm for translation"
        )
    stopwords = OmegaConf.select(cfg, "tokenizer.stopwords")
    names = choices(StopwordList)
    if isinstance(stopwords, str) and stopwords not in names:
        raise ConfigError(
            f"tokenizer.stopwords={stopwords!r} is not a built-in list: use tokenizer.stopwords="
            + " or tokenizer.stopwords=".join(names)
            + ", a list such as [의,가,이], or null"
        )
    if stopwords is not None and not isinstance(stopwords, str):
        words = list(stopwords) if OmegaConf.is_list(stopwords) else None
        if words is None or not all(isinstance(w, str) and w and " " not in w for w in words):
            raise ConfigError(
                f"tokenizer.stopwords must be null, a built-in list's name or a list of morphemes "
                f"without spaces, got {stopwords!r}"
            )
    if importlib.util.find_spec("kiwipiepy") is None:
        raise ConfigError(
            "tokenizer.type=morpheme needs kiwipiepy, from the 'korean' extra: pip install 'nmt[korean]' "
            "(or pip install -e '.[korean]' in a checkout)"
        )


def _validate_batching(cfg: DictConfig) -> None:
    """A token budget must hold the longest item, known from the length limits."""
    data = cfg.get("data")
    if data is None or data.get("batch_unit", "sentences") != "tokens":
        return
    budget = data.get("batch_size")
    longest = data.get("max_tokens") if cfg.get("task") == "classification" else data.get("max_length")
    if isinstance(longest, int) and isinstance(budget, int):
        needed = longest + (0 if cfg.get("task") == "classification" else 1)  # + BOS/EOS
        if budget < needed:
            raise ConfigError(
                f"data.batch_unit=tokens: data.batch_size={budget} tokens cannot hold the longest item "
                f"({needed} tokens): raise data.batch_size to at least {needed} or lower the length limit"
            )


PRECISIONS = ("32-true", "32", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true", "64", "16", "bf16")
ACCELERATORS = ("cpu", "gpu", "cuda", "auto", "mps")


def _validate_trainer(cfg: DictConfig) -> None:
    trainer = cfg.trainer
    precision = str(trainer.get("precision"))
    if precision not in PRECISIONS:
        raise ConfigError(f"trainer.precision={precision!r} is not supported: use 32-true, bf16-mixed or 16-mixed")
    accelerator = str(trainer.get("accelerator", "auto"))
    if accelerator not in ACCELERATORS:
        raise ConfigError(f"trainer.accelerator={accelerator!r} is not supported: use cpu, gpu or auto")
    if accelerator in ("gpu", "cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(
                "this config trains on a GPU (trainer.accelerator=gpu) but CUDA is not available here: "
                "use trainer=cpu, or add trainer.accelerator=cpu to run the same recipe on the CPU"
            )
        devices = trainer.get("devices")
        if isinstance(devices, int) and devices > torch.cuda.device_count():
            raise ConfigError(
                f"trainer.devices={devices} but this machine has {torch.cuda.device_count()} GPU(s): "
                "use trainer.devices=-1 for all of them"
            )
    if accelerator == "cpu":
        devices = trainer.get("devices")
        if not (devices in (None, "auto") or (isinstance(devices, int) and devices >= 1)):
            raise ConfigError(
                f"trainer.devices={devices!r} with trainer.accelerator=cpu: give a number of processes, "
                "e.g. trainer.devices=2 (DDP over gloo)"
            )
    clip = trainer.get("gradient_clip_val")
    if clip is not None and (not isinstance(clip, (int, float)) or clip < 0):
        raise ConfigError(f"trainer.gradient_clip_val must be a number >= 0 or null, got {clip!r}")
    accumulate = trainer.get("accumulate_grad_batches")
    if accumulate is not None and (not isinstance(accumulate, int) or accumulate < 1):
        raise ConfigError(f"trainer.accumulate_grad_batches must be an integer >= 1, got {accumulate!r}")
    bar = trainer.get("enable_progress_bar")
    if not (bar is None or isinstance(bar, bool) or bar == "auto"):
        raise ConfigError(f"trainer.enable_progress_bar must be true, false or auto, got {bar!r}")
    interval = trainer.get("val_check_interval")
    if interval is not None and (not isinstance(interval, (int, float)) or interval <= 0):
        raise ConfigError(f"trainer.val_check_interval must be a positive number of steps, got {interval!r}")
    max_time = trainer.get("max_time")
    if isinstance(max_time, str) and not re.fullmatch(DURATION, max_time):
        raise ConfigError(f"trainer.max_time must look like DD:HH:MM:SS (e.g. 00:00:30:00), got {max_time!r}")


DURATION = r"\d+:\d{1,2}:\d{1,2}:\d{1,2}"


def _validate_training(cfg: DictConfig) -> None:
    """``training``: nmt's own loop settings (types and defaults come from the schema)."""
    training = cfg.training
    minutes = training.save_every_minutes
    if minutes is not None and minutes < 0:
        raise ConfigError(f"training.save_every_minutes must be a number >= 0 or null, got {minutes!r}")
    factor = training.exploding_loss_factor
    if not (factor == 0 or factor > 1):
        # A healthy run starts at about 1 x the uniform guess's loss: a factor up to 1 would stop it.
        raise ConfigError(f"training.exploding_loss_factor must be 0 (off) or a number above 1, got {factor!r}")
    for key, minimum in (
        ("nonfinite_patience", 0),
        ("exploding_loss_patience", 0),
        ("progress_every_n_steps", 1),
        ("average_last", 0),
    ):
        if training[key] < minimum:
            raise ConfigError(f"training.{key} must be an integer >= {minimum}, got {training[key]!r}")
    cpu_time = training.max_cpu_time
    if cpu_time is not None and not (re.fullmatch(DURATION, cpu_time) and cpu_time.strip("0:")):
        raise ConfigError(
            f"training.max_cpu_time must be a positive DD:HH:MM:SS (e.g. 00:00:15:00) or null, got {cpu_time!r}"
        )


def _validate_logger(cfg: DictConfig) -> None:
    """An optional logger's package is installed (looked up, not imported: that is slow)."""
    package = LOGGER_PACKAGES.get(cfg.logger.name)
    if package is not None and importlib.util.find_spec(package) is None:
        raise ConfigError(
            f"logger={cfg.logger.name} needs the {package} package: pip install {package} "
            "(or use logger=tensorboard or logger=csv)"
        )


def _validate_language_model(cfg: DictConfig) -> None:
    name = OmegaConf.select(cfg, "data.name")
    if name not in LM_DATASETS:
        raise ConfigError(f"data={name} cannot train a language model: use data=" + " or data=".join(LM_DATASETS))
    side = OmegaConf.select(cfg, "data.side")
    if name == "fra" and side not in (None, "source", "target"):
        raise ConfigError(
            f"data.side={side!r} is not supported: use data.side=target (French) or data.side=source (English)"
        )
    if OmegaConf.select(cfg, "data.max_length") is None:
        raise ConfigError(
            "a language model trains on windows of data.max_length tokens: set data.max_length=N (e.g. 256)"
        )
    embed, hidden = OmegaConf.select(cfg, "model.embed_size"), OmegaConf.select(cfg, "model.hidden_size")
    if cfg.get("task") == "bilm" and embed != hidden:
        raise ConfigError(
            f"a biLM's token layer [e; e] is mixed with its LSTM layers [forward; backward], so model.embed_size "
            f"({embed}) must equal model.hidden_size ({hidden}): set model.embed_size={hidden}"
        )


def _validate_baseline(cfg: DictConfig) -> None:
    name = OmegaConf.select(cfg, "data.name")
    if name not in ("imdb", "sms", "nsmc", "reuters"):
        raise ConfigError(
            f"data={name} has no labels for a baseline classifier: use data=imdb, data=sms, data=nsmc or data=reuters"
        )
    labels = OmegaConf.select(cfg, "data.labels")
    if labels is None or len(labels) < 2:
        raise ConfigError(f"data.labels must name at least two classes, got {labels}")
    if cfg.get("ckpt_path"):
        raise ConfigError("task=baseline fits in one pass and cannot resume: remove ckpt_path")
    model = cfg.model
    if model.type == "mean_vectors" and OmegaConf.is_missing(model, "vectors"):
        raise ConfigError(
            "model.vectors is required by model.type=mean_vectors: pass model.vectors=PATH to a word-vector file "
            "(python -m nmt.embeddings method=word2vec data=<data> 'corpus.splits=[train]')"
        )
    if model.type == "mean_vectors" and not model.vectors:
        raise ConfigError("model.type=mean_vectors needs model.vectors=PATH to a word-vector file")
    ngrams = list(model.ngram_range) if OmegaConf.is_list(model.ngram_range) else None
    if not ngrams or len(ngrams) != 2 or not all(isinstance(n, int) for n in ngrams) or not 1 <= ngrams[0] <= ngrams[1]:
        raise ConfigError(f"model.ngram_range must be [min_n, max_n] with 1 <= min_n <= max_n, got {model.ngram_range}")
    for key in ("alpha", "C"):
        values = list(model[key]) if OmegaConf.is_list(model[key]) else [model[key]]
        if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in values):
            raise ConfigError(f"model.{key} must be a positive number or a list of them, got {model[key]}")
    if not 0.0 <= model.beta <= 1.0:
        raise ConfigError(f"model.beta must be in [0, 1], got {model.beta}")
    if model.min_df < 1 or (model.max_features is not None and model.max_features < 1):
        raise ConfigError("model.min_df and model.max_features must be >= 1")
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise ConfigError("task=baseline needs scikit-learn: pip install -e '.[baselines]'") from None


def _validate_pretrained_embeddings(cfg: DictConfig) -> None:
    emb = cfg.model.embeddings
    paths = {key: emb.get(key) for key in ("pretrained", "target_pretrained") if emb.get(key)}
    if not paths:
        if emb.get("freeze"):
            raise ConfigError("model.embeddings.freeze=true needs model.embeddings.pretrained=PATH (a vector file)")
        return
    if "target_pretrained" in paths and cfg.get("task", "translation") != "translation":
        raise ConfigError(
            "model.embeddings.target_pretrained is for translation: a classifier has one embedding, "
            "use model.embeddings.pretrained"
        )
    if "target_pretrained" in paths and emb.get("freeze") and OmegaConf.select(cfg, "model.tie_embeddings"):
        raise ConfigError(
            "model.embeddings.freeze=true with model.tie_embeddings=true would freeze the output layer "
            "too: set one of them to false"
        )
    if OmegaConf.select(cfg, "model.encoder.init_from"):
        raise ConfigError(
            "model.embeddings.pretrained and model.encoder.init_from both initialise the embedding: choose one"
        )
    if OmegaConf.select(cfg, "tokenizer.type") != "word":
        raise ConfigError(
            f"model.embeddings.{next(iter(paths))} holds word vectors but tokenizer.type="
            f"{OmegaConf.select(cfg, 'tokenizer.type')}: use tokenizer=word"
        )


def _validate_classification(cfg: DictConfig) -> None:
    _validate_contextual(cfg)
    if OmegaConf.select(cfg, "model.architecture") == "conv_lstm":
        if OmegaConf.select(cfg, "model.encoder.init_from"):
            raise ConfigError(
                "model.architecture=conv_lstm has no translation encoder to take: "
                "remove model.encoder.init_from or use model.architecture=rnn_attention"
            )
        missing = [
            key for key in ("conv_filters", "conv_kernel", "pool_size") if OmegaConf.select(cfg.model, key) is None
        ]
        if missing:
            raise ConfigError(
                f"model.architecture=conv_lstm needs model.{', model.'.join(missing)}: "
                "pick the whole model with model=conv_lstm"
            )
        if OmegaConf.select(cfg, "model.conv_kernel") % 2 == 0:
            raise ConfigError(f"model.conv_kernel={cfg.model.conv_kernel} must be odd (same padding on both sides)")
    if "encoder" in cfg.model and OmegaConf.is_missing(cfg.model.encoder, "init_from"):
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


def _validate_contextual(cfg: DictConfig) -> None:
    """``model.contextual``: the biLM checkpoint exists, is a biLM, and fits this run."""
    contextual = OmegaConf.select(cfg, "model.contextual")
    if contextual is None:
        return
    lr_scale = contextual.get("lr_scale", 1.0)
    if lr_scale is not None and lr_scale <= 0:
        raise ConfigError(f"model.contextual.lr_scale must be > 0, got {lr_scale} (use model.contextual.freeze=true)")
    if OmegaConf.is_missing(contextual, "bilm"):
        raise ConfigError(
            "model.contextual.bilm is required by this experiment: pass "
            "model.contextual.bilm=outputs/<data>_bilm/<run>/checkpoints/best.ckpt"
        )
    path = contextual.get("bilm")
    if not path:
        if contextual.get("combine", "concat") == "replace":
            raise ConfigError("model.contextual.combine=replace needs model.contextual.bilm=PATH to a biLM checkpoint")
        return
    if OmegaConf.select(cfg, "model.architecture") == "conv_lstm":
        raise ConfigError(
            "model.contextual.bilm feeds the rnn_attention classifier: use model.architecture=rnn_attention"
        )
    if OmegaConf.select(cfg, "model.encoder.init_from"):
        raise ConfigError(
            "model.contextual.bilm and model.encoder.init_from both bring a tokenizer and input layers: choose one"
        )
    if OmegaConf.select(cfg, "model.embeddings.pretrained"):
        _validate_contextual_with_word_vectors(cfg)


def _validate_contextual_with_word_vectors(cfg: DictConfig) -> None:
    """ELMo + GloVe: the word vectors fill the classifier's own embedding, over the biLM's
    vocabulary, which therefore has to be a word vocabulary (nmt/models/classifier.py)."""
    if OmegaConf.select(cfg, "model.contextual.combine") == "replace":
        raise ConfigError(
            "model.embeddings.pretrained fills the classifier's own embedding, which "
            "model.contextual.combine=replace leaves out: use model.contextual.combine=concat"
        )
    if OmegaConf.select(cfg, "tokenizer.type") != "word":
        raise ConfigError(
            "model.embeddings.pretrained with model.contextual.bilm needs a word-level biLM: "
            "train it with tokenizer=word (experiment=sms_bilm_word) and set tokenizer=word here"
        )


# -- python -m nmt.embeddings (conf/embeddings.yaml, conf/method/) ------------------------------
def validate_embeddings_config(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` for a ``python -m nmt.embeddings`` config that cannot run."""
    name = OmegaConf.select(cfg, "method.name")
    if name not in EMBEDDING_METHODS:
        raise ConfigError(f"method={name!r} is not supported: use method={' | '.join(EMBEDDING_METHODS)}")
    method = _typed("method", cfg.method, EMBEDDING_METHODS[name])
    _typed("tokenizer", cfg.tokenizer, TokenizerSchema)
    allowed_values: dict[str, tuple[str | None, ...]] = {
        "corpus.side": choices(LanguageSide),
        "device": ("auto", "cpu", "cuda"),
        "evaluate.plot": ("tsne", "pca", None),
    }
    for key, allowed in allowed_values.items():
        value = OmegaConf.select(cfg, key)
        if value not in allowed:
            options = " or ".join(f"{key}={'null' if choice is None else choice}" for choice in allowed)
            raise ConfigError(f"{key}={value!r} is not supported: use {options}")
    for key in ("dim", "window", "epochs", "negative", "min_n", "max_n", "bucket", "batch_size"):
        value = method.get(key)
        if value is not None and (not isinstance(value, int) or value < (0 if key == "negative" else 1)):
            raise ConfigError(f"method.{key} must be a positive integer, got {value!r}")
    if name == "fasttext" and method.min_n > method.max_n:
        raise ConfigError(f"method.min_n ({method.min_n}) must not exceed method.max_n ({method.max_n})")
    if name == "sgns" and method.negative < 1:
        raise ConfigError("method.negative must be >= 1 noise words for skip-gram with negative sampling")
    if name == "lsa" and not 0.0 < method.context_alpha <= 1.0:
        raise ConfigError(f"method.context_alpha must be in (0, 1], got {method.context_alpha}")
    if name in ("word2vec", "fasttext") and method.loss == "negative" and method.negative < 1:
        raise ConfigError("method.loss=negative needs method.negative >= 1 noise words (or method.loss=hierarchical)")
    splits = list(OmegaConf.select(cfg, "corpus.splits") or [])
    if not splits or set(splits) - {"train", "dev", "test"}:
        raise ConfigError(f"corpus.splits={splits} must name some of train, dev, test")
    formats = list(OmegaConf.select(cfg, "output.formats") or [])
    bad = [f for f in formats if f not in choices(VectorFormat)]
    if bad:
        raise ConfigError(f"output.formats: unknown {bad}; use some of {', '.join(choices(VectorFormat))}")
    if "fasttext_bin" in formats and name != "fasttext":
        raise ConfigError("output.formats: fasttext_bin is the whole fastText model: only method=fasttext writes it")
    threads = cfg.get("threads")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"threads must be a positive integer, got {threads!r}")
    if cfg.get("device") == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("device=cuda but CUDA is not available here: use device=auto or device=cpu")
    split = OmegaConf.select(cfg, "data.split")
    if split is not None:
        total = sum(float(v) for v in split.values())
        if abs(total - 1.0) > 1e-6 or any(float(v) < 0 for v in split.values()):
            raise ConfigError(f"data.split fractions must be >= 0 and sum to 1, got {dict(split)}")
