"""Which datamodule, LightningModule and selection metric each ``task`` config value uses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nmt.data.tokenizers import Tokenizer, tokenizer_from_state

TOKENIZERS_FILE = "tokenizers.pt"


@dataclass(frozen=True)
class TaskSpec:
    """How to build one kind of task.

    :ivar datamodule: ``(cfg, tokenizers or None) -> LightningDataModule`` with ``build_tokenizers()``.
    :ivar task: ``(config dict, tokenizers) -> LightningModule``.
    :ivar monitor: the dev metric that selects the best checkpoint; ``mode``: max or min.
    """

    datamodule: Callable[[Any, Any], Any]
    task: Callable[[dict, Any], Any]
    monitor: str
    mode: str


def _translation() -> TaskSpec:
    from nmt.data.translation_datamodule import TranslationDataModule
    from nmt.tasks.translation import TranslationTask

    return TaskSpec(
        datamodule=lambda cfg, toks: TranslationDataModule(cfg.data, cfg.tokenizer, toks, int(cfg.seed)),
        task=lambda config, toks: TranslationTask(config, *toks),
        monitor="val/bleu",
        mode="max",
    )


def pretrained_tokenizer(cfg: Any) -> Tokenizer | None:
    """The tokenizer a classifier must share with what it starts from: the source tokenizer
    of ``model.encoder.init_from``'s translation checkpoint, or ``model.contextual.bilm``'s."""
    init_from = cfg.model.get("encoder", {}).get("init_from")
    bilm = (cfg.model.get("contextual") or {}).get("bilm")
    if init_from:
        from nmt.tasks.encoder_transfer import read_translation_encoder

        return read_translation_encoder(init_from).tokenizer
    if bilm:
        from nmt.tasks.contextual_transfer import read_bilm

        return read_bilm(bilm).tokenizer
    return None


def _classification_datamodule(cfg: Any, tokenizers: Any) -> Any:
    from nmt.data.classification_datamodule import ClassificationDataModule

    if not tokenizers and (tokenizer := pretrained_tokenizer(cfg)) is not None:
        tokenizers = (tokenizer,)
    return ClassificationDataModule.from_config(cfg, tokenizers)


def _classification() -> TaskSpec:
    from nmt.tasks.classification import MONITOR, ClassificationTask

    return TaskSpec(
        datamodule=_classification_datamodule,
        task=lambda config, toks: ClassificationTask(config, toks[0]),
        monitor=MONITOR,
        mode="max",
    )


def _language_model() -> TaskSpec:
    from nmt.data.lm_datamodule import LanguageModelDataModule
    from nmt.tasks.language_model import MONITOR, LanguageModelTask

    return TaskSpec(
        datamodule=LanguageModelDataModule.from_config,
        task=lambda config, toks: LanguageModelTask(config, toks[0]),
        monitor=MONITOR,
        mode="min",
    )


def _bidirectional_language_model() -> TaskSpec:
    from nmt.data.lm_datamodule import LanguageModelDataModule
    from nmt.tasks.bidirectional_lm import MONITOR, BidirectionalLanguageModelTask

    return TaskSpec(
        datamodule=LanguageModelDataModule.from_config,
        task=lambda config, toks: BidirectionalLanguageModelTask(config, toks[0]),
        monitor=MONITOR,
        mode="min",
    )


BUILDERS: dict[str, Callable[[], TaskSpec]] = {
    "translation": _translation,
    "classification": _classification,
    "lm": _language_model,
    "bilm": _bidirectional_language_model,
}


def get(name: str) -> TaskSpec:
    if name not in BUILDERS:
        raise ValueError(f"unknown task {name!r}: use one of {sorted(BUILDERS)} (set by experiment=...)")
    return BUILDERS[name]()


def save_tokenizers(tokenizers: tuple[Tokenizer, ...], path: Path) -> None:
    torch.save([tok.to_state() for tok in tokenizers], path)


def load_tokenizers(path: Path) -> tuple[Tokenizer, ...]:
    return tuple(tokenizer_from_state(state) for state in torch.load(path, weights_only=True))
