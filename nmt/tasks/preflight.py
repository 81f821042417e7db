"""Checks of a run config that read files, made before any data is read or model built:
the word-vector files and the biLM checkpoint the config names. The config's own checks
(:mod:`nmt.config.checks`) read nothing."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from nmt.config.checks import ConfigError, validate_config
from nmt.embeddings.io import VectorFileError, vector_dim
from nmt.inference.checkpoint import CheckpointError
from nmt.tasks.contextual_transfer import ContextualTransferError, read_bilm, split_conflicts, tokenizer_conflicts

log = logging.getLogger(__name__)


def check_run_config(cfg: DictConfig, command_line: set[str] | frozenset[str] = frozenset()) -> DictConfig:
    """:func:`~nmt.config.checks.validate_config`, then the files it names; return the typed
    config. Raises :class:`ConfigError` with one line that names the key and the fix.

    :param command_line: the dotted keys the user set on the command line. Pretrained word
        vectors decide ``model.embed_size`` unless the user set it there (as Keras's
        ``weights=`` does); a value that only comes from a preset gives way.
    """
    cfg = validate_config(cfg)
    _check_vector_files(cfg, "model.embed_size" in command_line)
    _check_bilm(cfg)
    _check_baseline_vectors(cfg)
    return validate_config(cfg)  # the embedding size may have changed: its checks again


def _check_vector_files(cfg: DictConfig, size_given: bool) -> None:
    """The vector files exist and are readable; their dimension sets ``model.embed_size``
    unless ``size_given`` (then a different dimension is an error naming the fix)."""
    emb = OmegaConf.select(cfg, "model.embeddings")
    if emb is None:
        return
    sized_by: str | None = None  # the first file that set the size: a second must agree
    for key in ("pretrained", "target_pretrained"):
        path = emb.get(key)
        if not path:
            continue
        if not Path(path).is_file():
            raise ConfigError(f"model.embeddings.{key}={path}: no such file (give a word2vec, GloVe or fastText file)")
        try:
            dim = vector_dim(path, emb.get("format", "auto"))
        except VectorFileError as error:
            raise ConfigError(f"model.embeddings.{key}: {error}") from error
        if dim is None or dim == cfg.model.embed_size:
            sized_by = sized_by or key
            continue
        if size_given or sized_by is not None:
            given = "set on the command line" if size_given else f"set by model.embeddings.{sized_by}"
            raise ConfigError(
                f"model.embeddings.{key}={path} holds {dim}-dimensional vectors but model.embed_size="
                f"{cfg.model.embed_size} ({given}): set model.embed_size={dim} or use vectors of one dimension"
            )
        log.info(
            "model.embed_size=%d (the preset's %d) from the %d-dimensional vectors of model.embeddings.%s",
            dim,
            cfg.model.embed_size,
            dim,
            key,
        )
        cfg.model.embed_size = dim
        sized_by = key


def _check_baseline_vectors(cfg: DictConfig) -> None:
    """``model.vectors`` of a ``mean_vectors`` baseline: the file exists and is a vector file."""
    if cfg.get("task") != "baseline" or OmegaConf.select(cfg, "model.type") != "mean_vectors":
        return
    path = cfg.model.vectors
    if not Path(path).is_file():
        raise ConfigError(
            f"model.vectors={path}: no such file (give a word2vec, GloVe or fastText file, e.g. from "
            "python -m nmt.embeddings method=word2vec data=<data> 'corpus.splits=[train]')"
        )
    try:
        vector_dim(path, cfg.model.get("vectors_format", "auto"))
    except VectorFileError as error:
        raise ConfigError(f"model.vectors: {error}") from error


def _check_bilm(cfg: DictConfig) -> None:
    """``model.contextual.bilm``: the checkpoint exists, is a biLM, and fits this run."""
    path = OmegaConf.select(cfg, "model.contextual.bilm", default=None)
    if not path or cfg.get("task") != "classification":
        return
    if cfg.get("ckpt_path"):
        return  # resuming: the checkpoint holds the biLM's weights and model config
    if not Path(path).is_file():
        raise ConfigError(
            f"model.contextual.bilm={path}: no such file (give a biLM checkpoint: "
            "outputs/<data>_bilm/<run>/checkpoints/best.ckpt)"
        )
    try:
        bilm = read_bilm(path)
    except (CheckpointError, ContextualTransferError) as error:
        raise ConfigError(str(error)) from error
    kind = getattr(bilm.tokenizer, "kind", type(bilm.tokenizer).__name__)
    if OmegaConf.select(cfg, "model.embeddings.pretrained") and kind != "word":
        raise ConfigError(
            f"model.embeddings.pretrained holds word vectors but the biLM {path} reads {kind!r} tokens: "
            "train the biLM with tokenizer=word (experiment=sms_bilm_word)"
        )
    conflicts = tokenizer_conflicts(cfg.get("tokenizer"), bilm)
    if conflicts:
        raise ConfigError(
            f"the classifier uses the tokenizer of model.contextual.bilm={path}, but "
            f"{', '.join(conflicts)}: drop these tokenizer overrides or set them to the biLM's"
        )
    conflicts = split_conflicts(cfg.data, bilm)
    if conflicts:
        raise ConfigError(
            f"the biLM {path} was pretrained on another split of data={cfg.data.name} "
            f"({', '.join(conflicts)}), so its training texts may include this run's dev or test "
            "texts: use the biLM's split settings"
        )
