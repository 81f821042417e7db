"""The models a server holds, loaded from the checkpoints named on its command line only.

Each is a :class:`ServedTranslator` or a :class:`ServedClassifier`: a name, what
``GET /models`` says about it (:meth:`describe`), and ``run(texts, options)``, which the
batcher calls from its worker thread with a batch of texts that share the options.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nmt.data.directions import tagged_source
from nmt.data.text import normalize_text
from nmt.data.tokenizers import Tokenizer
from nmt.decoding import DecodingOptions
from nmt.inference.checkpoint import CheckpointError
from nmt.inference.classifier import Classifier, Prediction
from nmt.inference.loading import LoadedModel, load_model
from nmt.inference.translator import Translation, Translator

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""Model names: what a client puts in ``"model"``; safe in URLs and HTML."""


@dataclass(frozen=True)
class ModelSpec:
    """One served model from the command line: ``PATH`` or ``NAME=PATH``, where ``PATH`` may
    be ``PATH1+PATH2+...``: translation checkpoints served as one ensemble."""

    paths: tuple[Path, ...]
    name: str | None = None

    @classmethod
    def parse(cls, argument: str) -> ModelSpec:
        """:raises ValueError: an empty checkpoint path in an ensemble (``a.ckpt+``)."""
        name, sep, path = argument.partition("=")
        if sep and NAME_PATTERN.fullmatch(name) and not Path(argument).exists():
            return cls(_checkpoint_paths(path), name)
        return cls(_checkpoint_paths(argument))

    @property
    def path(self) -> Path:
        """The (first) checkpoint: what names the model when no name is given."""
        return self.paths[0]


def _checkpoint_paths(text: str) -> tuple[Path, ...]:
    """``a.ckpt+b.ckpt`` -> both paths; a file that exists is one path, ``+`` or not."""
    if "+" not in text or Path(text).exists():
        return (Path(text),)
    parts = text.split("+")
    if not all(parts):
        raise ValueError(f"an empty checkpoint path in the ensemble {text!r}: join checkpoints as A.ckpt+B.ckpt")
    return tuple(Path(part) for part in parts)


def _tokenizer_info(tokenizer: Tokenizer) -> dict[str, Any]:
    return {"type": tokenizer.kind, "vocab_size": tokenizer.vocab_size}


def _parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


SERVED_TASKS = ("translation", "classification")


def _ensemble_info(members: Sequence[LoadedModel]) -> dict[str, Any]:
    """:func:`_checkpoint_info` of an ensemble: the first member's, with the files joined
    (``a.ckpt+b.ckpt``), their total size, and each member's own description."""
    infos = [_checkpoint_info(member) for member in members]
    if len(infos) == 1:
        return infos[0]
    return {
        **infos[0],
        "file": "+".join(info["file"] for info in infos),
        "file_mb": round(sum(info["file_mb"] for info in infos), 2),
        "ensemble": infos,
    }


def _checkpoint_info(loaded: LoadedModel) -> dict[str, Any]:
    """What every model's description holds, whatever its task (no server paths: the file name only)."""
    return {
        "file": loaded.path.name,
        "file_mb": round(loaded.path.stat().st_size / 1e6, 2),
        "inference_only": loaded.inference_only,
        "experiment": loaded.config.get("name"),
        "data": (loaded.config.get("data") or {}).get("name"),
        "training": loaded.training_summary(),
    }


class ServedTranslator:
    """A translation checkpoint, or an ensemble of them, behind ``POST /translate``."""

    task = "translation"

    def __init__(self, name: str, translator: Translator, info: dict[str, Any], max_batch: int) -> None:
        self.name = name
        self.translator = translator
        self.info = info
        self.max_batch = max_batch

    def describe(self) -> dict[str, Any]:
        model_cfg = self.translator.config.get("model") or {}
        attention = self.translator.config.get("attention") or {}
        return {
            "name": self.name,
            "task": self.task,
            **self.info,
            "parameters": self.translator.parameter_count,
            "precision": self.translator.precision,
            **({"directions": [str(d) for d in self.translator.directions]} if self.translator.directions else {}),
            "architecture": {
                "cell": model_cfg.get("cell"),
                "embed_size": model_cfg.get("embed_size"),
                "hidden_size": model_cfg.get("hidden_size"),
                "encoder_layers": model_cfg.get("encoder_layers"),
                "decoder_layers": model_cfg.get("decoder_layers"),
                "bidirectional": model_cfg.get("bidirectional"),
                "input_feeding": model_cfg.get("input_feeding"),
                "attention": attention.get("type"),
            },
            "tokenizers": {
                "source": _tokenizer_info(self.translator.source_tokenizer),
                "target": _tokenizer_info(self.translator.target_tokenizer),
            },
            "source_token_limit": self.translator.source_limit,
        }

    def run(
        self,
        texts: Sequence[str],
        options: tuple[DecodingOptions, bool],
        prefix: str = "",
        replace_unk: bool = False,
        direction: str | None = None,
        constraints: Sequence[str] = (),
    ) -> list[Translation]:
        """Translate one batch: ``options`` is (decoding options, return attention); every
        translation starts with ``prefix`` (target text; "" = free) and contains each of
        ``constraints`` (target phrases; beam search); ``replace_unk`` as
        :meth:`~nmt.inference.translator.Translator.translate`'s; ``direction`` (``en-fr``)
        for a model trained on several."""
        decoding, attention = options
        prefixes = [prefix] * len(texts) if prefix else None
        phrases = [list(constraints)] * len(texts) if constraints else None
        return self.translator.translate(
            list(texts),
            decoding,
            self.max_batch,
            return_attention=attention,
            replace_unk=replace_unk,
            prefixes=prefixes,
            direction=direction,
            constraints=phrases,
        )

    def check_prefix(
        self, texts: Sequence[str], prefix: str, options: DecodingOptions, direction: str | None = None
    ) -> None:
        """A one-line ValueError naming the first text whose output limit ``prefix`` exceeds."""
        translator = self.translator
        chosen = translator.direction(direction)
        normalized = [normalize_text(text) for text in texts]
        if chosen is not None:
            normalized = [tagged_source(text, chosen.target) for text in normalized]
        sources = translator.source_tokenizer.encode_batch(normalized)
        ids = [row[: translator.source_limit] for row in sources]
        translator.encode_prefixes(
            [prefix] * len(texts), ids, options, 0, label="text[{}]", ratio_option="max_len_ratio"
        )

    def check_constraints(
        self, texts: Sequence[str], constraints: Sequence[str], prefix: str, options: DecodingOptions
    ) -> None:
        """A one-line ValueError for constraints that cannot be met: empty once normalised,
        outside the target vocabulary, or (with ``prefix``) longer than a text's output limit."""
        translator = self.translator
        sources = translator.source_tokenizer.encode_batch([normalize_text(text) for text in texts])
        ids = [row[: translator.source_limit] for row in sources]
        prefix_ids = translator.target_tokenizer.encode_batch([normalize_text(prefix)] * len(texts)) if prefix else None
        translator.encode_constraints(
            [list(constraints)] * len(texts),
            ids,
            options,
            0,
            prefix_ids=prefix_ids,
            label="text[{}]",
            strategy_option='"strategy": "beam"',
            ratio_option="max_len_ratio",
        )


class ServedClassifier:
    """A classification checkpoint behind ``POST /classify``."""

    task = "classification"

    def __init__(self, name: str, classifier: Classifier, info: dict[str, Any]) -> None:
        self.name = name
        self.classifier = classifier
        self.info = info

    @property
    def labels(self) -> list[str]:
        return self.classifier.loaded.labels

    def describe(self) -> dict[str, Any]:
        loaded = self.classifier.loaded
        model_cfg = loaded.config.get("model") or {}
        return {
            "name": self.name,
            "task": self.task,
            **self.info,
            "parameters": _parameters(loaded.model),
            "architecture": {
                "cell": model_cfg.get("cell"),
                "embed_size": model_cfg.get("embed_size"),
                "hidden_size": model_cfg.get("hidden_size"),
                "encoder_layers": model_cfg.get("encoder_layers"),
                "bidirectional": model_cfg.get("bidirectional"),
                "pooling": "attention",
            },
            "tokenizers": {"source": _tokenizer_info(loaded.tokenizer)},
            "labels": list(loaded.labels),
            "max_tokens": self.classifier.max_tokens,
            "truncation": self.classifier.truncation,
        }

    def run(self, texts: Sequence[str], options: Any = None) -> list[Prediction]:
        return self.classifier.predict([normalize_text(text) for text in texts])


ServedModel = ServedTranslator | ServedClassifier


def _unique_name(wanted: str, taken: set[str]) -> str:
    name = wanted if NAME_PATTERN.fullmatch(wanted) else re.sub(r"[^A-Za-z0-9_.-]", "_", wanted)[:60] or "model"
    if not NAME_PATTERN.fullmatch(name):
        name = f"m{name}"[:64]
    candidate, number = name, 2
    while candidate in taken:
        candidate, number = f"{name}-{number}", number + 1
    return candidate


def load_models(
    specs: Sequence[ModelSpec], device: str | torch.device = "cpu", max_batch: int = 32, precision: str = "fp32"
) -> dict[str, ServedModel]:
    """Load every checkpoint (``weights_only``), name it, and refuse what cannot be served.

    A model's name is the one given (``NAME=PATH``), else its experiment's name
    (``spm_bahdanau``; the first member's for an ensemble ``PATH1+PATH2``), made unique with
    ``-2``, ``-3``... Translators run on ``device`` in
    ``precision`` (see :class:`~nmt.inference.translator.Translator`), classifiers on ``device``
    in float32. Each file is read once.

    :raises CheckpointError: a missing, damaged or foreign checkpoint, or a name given twice;
        a member of an ensemble that is not a translation checkpoint.
    :raises ValueError: ensemble members whose tokenizers differ.
    """
    given = [spec.name for spec in specs if spec.name is not None]
    for name in given:
        if given.count(name) > 1:
            raise CheckpointError(f"the model name {name!r} is given twice: name each checkpoint differently")
    taken = set(given)
    models: dict[str, ServedModel] = {}
    for spec in specs:
        members = [load_model(path, task=SERVED_TASKS) for path in spec.paths]
        loaded = members[0]
        info = _ensemble_info(members)
        name = spec.name or _unique_name(str(info["experiment"] or spec.path.stem), taken)
        taken.add(name)
        if loaded.task == "translation" or len(members) > 1:
            translator = Translator.from_members(members, device=device, warn=lambda message: None, precision=precision)
            models[name] = ServedTranslator(name, translator, info, max_batch)
        else:
            models[name] = ServedClassifier(name, Classifier(loaded, device), info)
    return models
