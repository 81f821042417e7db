"""Checkpoint -> ready network: the one way every tool opens a checkpoint.

:func:`load_model` reads the file safely (``weights_only``, through
:func:`~nmt.inference.checkpoint.load_checkpoint`), checks that it is the task the caller
wants, and rebuilds the network from the stored config alone (no Lightning, no corpus, no
other checkpoint). A checkpoint of the wrong task is refused with the same one-line
:class:`WrongTaskError` in every tool::

    runs/x/best.ckpt is a 'classification' checkpoint, not a 'translation' one

Tools keep the result or take its parts (:class:`~nmt.inference.translator.Translator`
takes the model and tokenizers); the checkpoint is read once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nmt.data.tokenizers import Tokenizer
from nmt.inference.checkpoint import (
    PAYLOAD_KEY,
    CheckpointError,
    checkpoint_config,
    checkpoint_tokenizers,
    is_inference_only,
    load_checkpoint,
    model_state_dict,
    training_summary,
)

TOKENIZER_ROLES = {"translation": "source", "classification": "source", "lm": "text", "bilm": "text"}
"""The role under which each task stores the tokenizer its input goes through (a
translation checkpoint also stores ``target``; a baseline has its own n-gram vocabulary)."""

BASELINE_TASK = "baseline"
BASELINE_KEY = "baseline"
"""In the payload of a baseline checkpoint: the model's vocabulary and feature options
(``kind: mean_vectors`` for a word-vector baseline; none for Naive Bayes / NB-SVM)."""


class WrongTaskError(CheckpointError):
    """A readable checkpoint of another task than the tool works with."""


@dataclass
class LoadedModel:
    """What the tools need from one checkpoint.

    :ivar model: the network in eval mode, on the CPU (or ``map_location``), float32; for a
        baseline a :class:`~nmt.baselines.naive_bayes.LinearTextModel` or
        :class:`~nmt.baselines.mean_vectors.MeanVectorModel`.
    :ivar tokenizers: by role (``source``, ``target``, ``text``); empty for a baseline.
    :ivar labels: class names in output order (classification, baseline); empty otherwise.
    :ivar checkpoint: the loaded file (memory-mapped: tensors nobody reads stay on disk),
        for the tools that rewrite it (export, averaging).
    """

    path: Path
    task: str
    model: Any
    config: dict
    tokenizers: dict[str, Tokenizer]
    checkpoint: dict = field(repr=False)
    labels: list[str] = field(default_factory=list)

    @property
    def tokenizer(self) -> Tokenizer:
        """The tokenizer the model's input goes through (:data:`TOKENIZER_ROLES`)."""
        return self.tokenizers[TOKENIZER_ROLES[self.task]]

    @property
    def inference_only(self) -> bool:
        return is_inference_only(self.checkpoint)

    def training_summary(self) -> dict:
        return training_summary(self.checkpoint)

    def weights(self) -> dict[str, torch.Tensor]:
        """The network's tensors as stored (names as in ``model.state_dict()``)."""
        return model_state_dict(self.checkpoint)


def _translation(config: Mapping[str, Any], tokenizers: Mapping[str, Tokenizer], payload: Mapping) -> nn.Module:
    from nmt.models.seq2seq import Seq2Seq

    source, target = tokenizers["source"], tokenizers["target"]
    return Seq2Seq.from_config(config["model"], config["attention"], source.vocab_size, target.vocab_size)


def _classification(config: Mapping[str, Any], tokenizers: Mapping[str, Tokenizer], payload: Mapping) -> nn.Module:
    from nmt.models.classifier import TextClassifier

    return TextClassifier.from_config(config["model"], tokenizers["source"].vocab_size, len(_labels(payload, config)))


def _language_model(config: Mapping[str, Any], tokenizers: Mapping[str, Tokenizer], payload: Mapping) -> nn.Module:
    from nmt.models.language_model import LanguageModel

    return LanguageModel.from_config(config["model"], tokenizers["text"].vocab_size)


def _bilm(config: Mapping[str, Any], tokenizers: Mapping[str, Tokenizer], payload: Mapping) -> nn.Module:
    from nmt.models.bilm import BidirectionalLanguageModel

    return BidirectionalLanguageModel.from_config(config["model"], tokenizers["text"].vocab_size)


NETWORK_BUILDERS: dict[str, Callable[[Mapping, Mapping, Mapping], nn.Module]] = {
    "translation": _translation,
    "classification": _classification,
    "lm": _language_model,
    "bilm": _bilm,
}
"""How each task's network is rebuilt from its config (before its weights are loaded)."""

TASKS = (*NETWORK_BUILDERS, BASELINE_TASK)


def _labels(payload: Mapping[str, Any], config: Mapping[str, Any]) -> list[str]:
    return list(payload.get("labels") or config["data"]["labels"])


def check_task(path: str | Path, task: str | None, wanted: str | Iterable[str] | None) -> None:
    """Raise :class:`WrongTaskError` unless ``task`` is one of ``wanted`` (None: any task)."""
    if wanted is None:
        return
    wanted = (wanted,) if isinstance(wanted, str) else tuple(wanted)
    if task not in wanted:
        raise WrongTaskError(f"{path} is a {task!r} checkpoint, not a {' or '.join(map(repr, wanted))} one")


def _build(task: str, checkpoint: Mapping[str, Any], config: dict, tokenizers: dict) -> Any:
    payload = checkpoint[PAYLOAD_KEY]
    if task == BASELINE_TASK:
        from nmt.baselines.mean_vectors import KIND as MEAN_VECTORS
        from nmt.baselines.mean_vectors import MeanVectorModel
        from nmt.baselines.naive_bayes import LinearTextModel

        description = payload[BASELINE_KEY]
        baseline = MeanVectorModel if description.get("kind") == MEAN_VECTORS else LinearTextModel
        return baseline.from_state(description, model_state_dict(checkpoint))
    model = NETWORK_BUILDERS[task](config, tokenizers, payload)
    model.load_state_dict(model_state_dict(checkpoint))
    return model.eval()


def load_model(
    path: str | Path,
    task: str | Iterable[str] | None = None,
    map_location: str | torch.device = "cpu",
) -> LoadedModel:
    """Load, check and rebuild a checkpoint's network.

    :param task: the task (or tasks) the caller can use, e.g. ``"translation"`` or
        ``("classification", "baseline")``; None accepts any.
    :raises CheckpointError: missing, damaged, foreign, or incomplete / inconsistent file.
    :raises WrongTaskError: a checkpoint of another task.
    """
    checkpoint = load_checkpoint(path, map_location)
    found = checkpoint[PAYLOAD_KEY].get("task")
    check_task(path, found, task)
    if found not in TASKS:
        raise CheckpointError(f"{path} is a {found!r} checkpoint, a task this nmt does not know: upgrade nmt")
    try:
        config = checkpoint_config(checkpoint)
        tokenizers = checkpoint_tokenizers(checkpoint)
        labels = _labels(checkpoint[PAYLOAD_KEY], config) if found in ("classification", BASELINE_TASK) else []
        model = _build(found, checkpoint, config, tokenizers)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        message = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path} is an incomplete or inconsistent checkpoint: {message}") from error
    return LoadedModel(Path(path), found, model, config, tokenizers, checkpoint, labels)
