"""Pretrained word vectors into a model's embedding layer (``model.embeddings.pretrained=PATH``).

Each vocabulary word of the (word) tokenizer takes the file's vector of the same word; failing
that, of its first case-folded match (a file with ``The`` and ``the`` gives a lower-casing
tokenizer the vector listed first, the more frequent one); failing that, a fastText ``.bin``
builds one from the word's character n-grams. The other rows (``<unk>``, ``<s>``, ``</s>`` and
the words the file lacks) are initialised by ``model.embeddings.unknown``:

* ``random`` (default): normal with the mean 0 and the per-dimension standard deviation of the
  found vectors, so they are on the same scale (the usual practice, e.g. Kim 2014);
* ``zeros``; or ``mean``: the mean found vector.

The padding row stays zero. With ``freeze=true`` the whole embedding is fixed (the unknown rows
too). The :class:`CoverageReport` says which share of the vocabulary and, once the training
split is known (:meth:`CoverageReport.add_token_counts`), which share of its tokens has a
pretrained vector; tasks log it and write it as ``pretrained_embeddings.json`` in the run
directory.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nmt.config.schema import UnknownInit, choices
from nmt.data.tokenizers import PAD_ID, SPECIAL_TOKENS
from nmt.embeddings.io import VectorFileError, read_vectors

log = logging.getLogger("nmt.embeddings")

UNKNOWN_INIT = choices(UnknownInit)


class PretrainedEmbeddingError(ValueError):
    """Vectors that cannot initialise the configured embedding (dimension, tokenizer)."""


@dataclass
class CoverageReport:
    """Which rows of an embedding came from a vector file.

    :ivar file_words: the file's entries read (those matching a vocabulary word, case-folded).
    :ivar vocabulary: non-special vocabulary words. :ivar exact, case_folded, subword: rows
    found by each rule. :ivar missing: words without a vector, most frequent first (first 50).
    :ivar found_ids: the token ids that got a pretrained vector (not serialised).
    """

    path: str
    format: str
    dim: int
    file_words: int
    vocabulary: int
    exact: int
    case_folded: int
    subword: int
    unknown_init: str
    freeze: bool
    missing: list[str]
    tokens: int | None = None
    tokens_found: int | None = None
    found_ids: set[int] = field(default_factory=set, repr=False)

    @property
    def found(self) -> int:
        return self.exact + self.case_folded + self.subword

    @property
    def vocabulary_coverage(self) -> float:
        return self.found / self.vocabulary if self.vocabulary else 0.0

    @property
    def token_coverage(self) -> float | None:
        if not self.tokens or self.tokens_found is None:
            return None
        return self.tokens_found / self.tokens

    def add_token_counts(self, sequences: Iterable[Sequence[int]]) -> None:
        """Count the tokens of ``sequences`` (e.g. the training split's ids; ``<unk>`` counts
        as not found) and how many have a pretrained vector."""
        counts: Counter[int] = Counter()
        for ids in sequences:
            counts.update(ids)
        self.tokens = sum(counts.values())
        self.tokens_found = sum(n for i, n in counts.items() if i in self.found_ids)

    def summary(self) -> str:
        tokens = f", {self.token_coverage:.1%} of the {self.tokens:,} training tokens" if self.tokens else ""
        how = f"exact {self.exact:,}, case-folded {self.case_folded:,}" + (
            f", from character n-grams {self.subword:,}" if self.subword else ""
        )
        missing = f"; e.g. missing: {' '.join(self.missing[:10])}" if self.missing else ""
        return (
            f"pretrained vectors {self.path} ({self.format}, dim {self.dim}): "
            f"{self.found:,} of {self.vocabulary:,} vocabulary words ({self.vocabulary_coverage:.1%}; {how}){tokens}; "
            f"the other rows and the specials: {self.unknown_init}; {'frozen' if self.freeze else 'fine-tuned'}{missing}"
        )

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "found_ids"}
        data.update(found=self.found, vocabulary_coverage=self.vocabulary_coverage, token_coverage=self.token_coverage)
        return data

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path


class _Wanted:
    """The file entries worth keeping: a vocabulary word, or one whose lower case is."""

    def __init__(self, vocabulary: Sequence[str]) -> None:
        self.words = set(vocabulary)

    def __contains__(self, word: object) -> bool:
        return word in self.words or (isinstance(word, str) and word.lower() in self.words)


def match_vocabulary(vectors, vocabulary: Sequence[str]) -> tuple[dict[int, np.ndarray], dict[str, int], list[str]]:
    """Vectors for the words of ``vocabulary`` (position -> vector), the count found by each
    rule (``exact``, ``case_folded``, ``subword``) and the words not found."""
    folded: dict[str, int] = {}
    for i, word in enumerate(vectors.words):
        folded.setdefault(word.lower(), i)
    rows: dict[int, np.ndarray] = {}
    counts = {"exact": 0, "case_folded": 0, "subword": 0}
    missing: list[str] = []
    vector_for = getattr(vectors, "vector_for", None)
    for position, word in enumerate(vocabulary):
        if word in vectors:
            rows[position], rule = vectors[word], "exact"
        elif word.lower() in folded:
            rows[position], rule = vectors.vectors[folded[word.lower()]], "case_folded"
        elif vector_for is not None and (built := vector_for(word)) is not None:
            rows[position], rule = built, "subword"
        else:
            missing.append(word)
            continue
        counts[rule] += 1
    return rows, counts, missing


def initial_rows(found: np.ndarray, count: int, dim: int, unknown: str, generator: torch.Generator) -> torch.Tensor:
    """(count, dim) rows for the ids without a vector, by the ``unknown`` rule."""
    if unknown not in UNKNOWN_INIT:
        raise PretrainedEmbeddingError(f"model.embeddings.unknown={unknown!r}: use random, zeros or mean")
    if unknown == "zeros" or not len(found):
        return torch.zeros(count, dim)
    if unknown == "mean":
        return torch.from_numpy(found.mean(axis=0)).float().expand(count, dim).clone()
    std = torch.from_numpy(found.std(axis=0)).float().clamp_min(1e-4)
    return torch.randn(count, dim, generator=generator) * std


@torch.no_grad()
def load_pretrained(
    embedding: nn.Embedding,
    tokenizer,
    path: str | Path,
    *,
    format: str = "auto",
    unknown: str = "random",
    freeze: bool = False,
    seed: int = 0,
    key: str = "model.embeddings.pretrained",
) -> CoverageReport:
    """Fill ``embedding`` (vocab, dim) from the vector file ``path`` for the words of
    ``tokenizer``; freeze it if asked; return the coverage report.

    :raises PretrainedEmbeddingError: a tokenizer that is not word-level, a vocabulary size
        that differs from the embedding's, a dimension that differs from the file's.
    :raises VectorFileError: a missing or malformed file.
    """
    if getattr(tokenizer, "kind", None) != "word":
        raise PretrainedEmbeddingError(
            f"{key} holds word vectors but the tokenizer is {getattr(tokenizer, 'kind', type(tokenizer).__name__)!r}: "
            "use tokenizer=word"
        )
    vocab_size, dim = embedding.weight.shape
    if tokenizer.vocab_size != vocab_size:
        raise PretrainedEmbeddingError(
            f"the embedding has {vocab_size} rows but the tokenizer {tokenizer.vocab_size} words"
        )
    specials = len(SPECIAL_TOKENS)
    vocabulary = tokenizer.id_to_piece(range(specials, vocab_size))
    vectors = read_vectors(path, format, vocabulary=_Wanted(vocabulary))
    if vectors.dim != dim:
        raise PretrainedEmbeddingError(
            f"{key}={path} holds {vectors.dim}-dimensional vectors but the embedding has model.embed_size={dim}: "
            f"set model.embed_size={vectors.dim} (or use vectors of dimension {dim})"
        )
    rows, counts, missing = match_vocabulary(vectors, vocabulary)
    found = np.stack(list(rows.values())) if rows else np.zeros((0, dim), dtype=np.float32)
    generator = torch.Generator().manual_seed(seed)
    weight = initial_rows(found, vocab_size, dim, unknown, generator)
    if rows:
        ids = torch.tensor([specials + position for position in rows], dtype=torch.long)
        weight[ids] = torch.from_numpy(found).float()
    weight[PAD_ID] = 0.0
    embedding.weight.copy_(weight.to(embedding.weight.dtype))
    embedding.weight.requires_grad_(not freeze)
    detected = format if format != "auto" else _detected(path)
    return CoverageReport(
        path=str(path),
        format=detected,
        dim=dim,
        file_words=len(vectors),
        vocabulary=len(vocabulary),
        exact=counts["exact"],
        case_folded=counts["case_folded"],
        subword=counts["subword"],
        unknown_init=unknown,
        freeze=bool(freeze),
        missing=missing[:50],
        found_ids={specials + position for position in rows},
    )


def _detected(path: str | Path) -> str:
    from nmt.embeddings.io import detect_format

    return detect_format(path)


def load_from_config(
    embeddings_cfg: Mapping[str, Any] | None,
    layers: Mapping[str, tuple[nn.Embedding, Any]],
    seed: int = 0,
) -> dict[str, CoverageReport]:
    """Apply ``model.embeddings`` to a model: ``pretrained`` fills ``layers["source"]``,
    ``target_pretrained`` fills ``layers["target"]`` (translation). ``layers`` maps a role to
    ``(embedding, tokenizer)``. Returns a report per filled role (none when nothing is set)."""
    cfg = dict(embeddings_cfg or {})
    reports = {}
    for role, key in (("source", "pretrained"), ("target", "target_pretrained")):
        path = cfg.get(key)
        if not path:
            continue
        if role not in layers:
            raise PretrainedEmbeddingError(f"model.embeddings.{key} is set but this model has no {role} embedding")
        embedding, tokenizer = layers[role]
        reports[role] = load_pretrained(
            embedding,
            tokenizer,
            path,
            format=cfg.get("format", "auto"),
            unknown=cfg.get("unknown", "random"),
            freeze=bool(cfg.get("freeze", False)),
            seed=seed,
            key=f"model.embeddings.{key}",
        )
        log.info("%s embedding: %s", role, reports[role].summary())
    return reports


def report_training_coverage(
    reports: Mapping[str, CoverageReport], sequences: Mapping[str, Iterable[Sequence[int]]], run_dir: str | Path | None
) -> None:
    """Add the training split's token counts to each report, log it, and write
    ``pretrained_embeddings.json`` into ``run_dir`` (when given)."""
    for role, report in reports.items():
        if role in sequences:
            report.add_token_counts(sequences[role])
            log.info("%s embedding: %s", role, report.summary())
    if run_dir is not None and reports:
        path = Path(run_dir) / "pretrained_embeddings.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps({role: r.to_dict() for role, r in reports.items()}, indent=2, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )


class PretrainedEmbeddings:
    """What a task keeps of ``model.embeddings``: the reports, and how to find its training
    split's ids (``training_ids(datamodule) -> {role: sequences}``) to add token coverage."""

    def __init__(self, reports: dict[str, CoverageReport], training_ids: Callable[[Any], Mapping[str, Any]]) -> None:
        self.reports, self.training_ids = reports, training_ids

    def report(self, trainer) -> None:
        """Log the coverage with the training tokens; rank 0 writes it into the run directory."""
        datamodule = getattr(trainer, "datamodule", None)
        sequences = self.training_ids(datamodule) if datamodule is not None else {}
        run_dir = trainer.default_root_dir if trainer.is_global_zero else None
        report_training_coverage(self.reports, sequences, run_dir)


def load_pretrained_embeddings(
    config: Mapping[str, Any],
    layers: Mapping[str, tuple[nn.Embedding, Any]],
    training_ids: Callable[[Any], Mapping[str, Any]],
) -> PretrainedEmbeddings | None:
    """A task's entry point: fill ``layers`` from ``config["model"]["embeddings"]`` (None when
    no vector file is set). On resume (``ckpt_path``) the weights come from the checkpoint:
    nothing is read, but a frozen embedding stays frozen."""
    cfg = dict((config.get("model") or {}).get("embeddings") or {})
    roles = [role for role, key in (("source", "pretrained"), ("target", "target_pretrained")) if cfg.get(key)]
    if not roles:
        return None
    if config.get("ckpt_path"):
        for role in roles:
            layers[role][0].weight.requires_grad_(not cfg.get("freeze", False))
        return None
    return PretrainedEmbeddings(load_from_config(cfg, layers, seed=int(config.get("seed", 0))), training_ids)


__all__ = [
    "CoverageReport",
    "PretrainedEmbeddingError",
    "PretrainedEmbeddings",
    "UNKNOWN_INIT",
    "VectorFileError",
    "load_from_config",
    "load_pretrained",
    "load_pretrained_embeddings",
    "match_vocabulary",
    "report_training_coverage",
]
