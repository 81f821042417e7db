"""Give a classifier ELMo-style features from a pretrained biLM checkpoint (``task: bilm``).

``model.contextual.bilm=PATH`` names the checkpoint. Its tokenizer replaces the classifier's
own (the ``tokenizer`` group must agree with it: :func:`tokenizer_conflicts`), its ``model``
config is copied into the run's ``model.contextual.bilm_model`` (so the classifier's own
checkpoints rebuild without the biLM file), and its weights load into the classifier's
``contextual.bilm``. The classifier then learns a scalar mix of the biLM's layers
(:mod:`nmt.models.contextual`), with the biLM frozen or fine-tuned. A word-level biLM
(``tokenizer=word``) lets ``model.embeddings.pretrained`` fill the classifier's own embedding
over the same vocabulary (ELMo + GloVe, :mod:`nmt.models.classifier`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nmt.data.tokenizers import Tokenizer
from nmt.inference.loading import WrongTaskError, load_model

BILM_TASK = "bilm"
SPLIT_KEYS = ("split", "split_seed", "group_duplicates")
"""``data`` keys that fix which texts were the biLM's training split."""


class ContextualTransferError(ValueError):
    """The biLM checkpoint cannot feed the configured classifier."""


@dataclass
class PretrainedBiLM:
    """What a biLM checkpoint provides.

    :ivar weights: the network's tensors, keyed as in ``BidirectionalLanguageModel``.
    :ivar config: the biLM run's whole config (``model``, ``tokenizer``, ``data``, ...).
    """

    path: Path
    tokenizer: Tokenizer
    weights: dict[str, torch.Tensor]
    config: dict[str, Any]

    @property
    def model_config(self) -> dict[str, Any]:
        return dict(self.config["model"])


def read_bilm(path: str | Path) -> PretrainedBiLM:
    """Load a biLM checkpoint through :func:`nmt.inference.loading.load_model` (``weights_only``).

    :raises ContextualTransferError: it is another task's checkpoint.
    """
    try:
        loaded = load_model(path, task=BILM_TASK)
    except WrongTaskError as error:
        raise ContextualTransferError(
            f"model.contextual.bilm: {error}: give a biLM checkpoint "
            "(python -m nmt.train experiment=<data>_bilm, then <run>/checkpoints/best.ckpt)"
        ) from error
    return PretrainedBiLM(Path(path), loaded.tokenizer, loaded.weights(), dict(loaded.config))


def tokenizer_conflicts(tokenizer_cfg: Mapping[str, Any] | None, bilm: PretrainedBiLM) -> list[str]:
    """``tokenizer.*`` settings of the classifier that differ from the biLM's (which is used)."""
    theirs = bilm.config.get("tokenizer") or {}
    mine = tokenizer_cfg or {}
    return [
        f"tokenizer.{key}={mine[key]!r} (biLM: {theirs[key]!r})"
        for key in sorted(set(mine) & set(theirs))
        if key != "joint" and mine[key] != theirs[key]
    ]


def split_conflicts(data_cfg: Mapping[str, Any], bilm: PretrainedBiLM) -> list[str]:
    """``data.*`` split settings that differ from the biLM's when both use the same corpus:
    a different split could put this run's dev or test texts in the biLM's training split."""
    theirs = bilm.config.get("data") or {}
    if theirs.get("name") != data_cfg.get("name"):
        return []
    return [
        f"data.{key}={data_cfg.get(key)!r} (biLM: {theirs.get(key)!r})"
        for key in SPLIT_KEYS
        if _plain(data_cfg.get(key)) != _plain(theirs.get(key))
    ]


def _plain(value: Any) -> Any:
    return {k: float(v) for k, v in value.items()} if isinstance(value, Mapping) else value


def with_bilm_model(config: Mapping[str, Any], bilm: PretrainedBiLM) -> dict[str, Any]:
    """A copy of the run config with ``model.contextual.bilm_model`` set to the biLM's model config."""
    copied = copy.deepcopy(dict(config))
    copied["model"]["contextual"]["bilm_model"] = bilm.model_config
    return copied


def load_bilm_weights(bilm_module: torch.nn.Module, bilm: PretrainedBiLM) -> None:
    """Copy the checkpoint's weights into ``bilm_module`` (every key, shapes checked)."""
    try:
        bilm_module.load_state_dict(bilm.weights, strict=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise ContextualTransferError(f"cannot load the biLM of {bilm.path}: {first}") from error
