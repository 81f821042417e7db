"""Stacked ensembles of classification checkpoints (``nmt/cli/ensemble_classifiers.py``).

Each member (a neural classifier or a ``task=baseline`` Naive Bayes / NB-SVM) scores every
text of a split; a multinomial logistic regression over the members' scores (stacked
generalisation, Wolpert 1992) is fitted on the **dev** split, where the members were never
trained, and then applied to the test split. Scores of different kinds (log-probabilities of a
network or of multinomial NB, floored at -10; SVM margins) are standardised first, so the
regression's L2 penalty treats them alike; its strength is chosen by k-fold cross-validation
on dev, and that cross-validated dev accuracy is the ensemble's honest dev estimate.

Members must share their texts: each reads and splits its own corpus as in training, and the
ensemble refuses members whose dev or test texts or labels differ (another ``data.split``,
``data.split_seed``, ``data.limit`` or corpus).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nmt.data.classification_batching import collate_labelled
from nmt.inference.loading import BASELINE_TASK, load_model

MEMBER_TASKS = ("classification", BASELINE_TASK)

STACKER_C_GRID = (0.01, 0.1, 1.0, 10.0)
LOG_PROBABILITY_FLOOR = -10.0
"""Log-probabilities below this (p < 4.5e-5) are raised to it before stacking. Multinomial NB
and confident networks give log-probabilities of -100 and less, whose size says nothing
reliable; unbounded, a few such texts dominate the regression's fit, and the ensemble can
fall below its best member (measured on SMS, docs/results.md, "Text classification")."""


@dataclass
class MemberScores:
    """One checkpoint's scores of every text of some splits, in the splits' row order.

    :ivar scores: split -> (texts, num_classes) float64 log-probabilities (a network, NB) or
        margins (NB-SVM), as the member gives them (its predictions are their argmax).
    :ivar gold: split -> (texts,) int64 labels.
    :ivar fingerprints: split -> digest of the split's texts and labels (members must agree).
    """

    checkpoint: str
    kind: str
    labels: list[str]
    scores: dict[str, torch.Tensor] = field(default_factory=dict)
    gold: dict[str, torch.Tensor] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)


def fingerprint(rows: Sequence[tuple[str, int]]) -> str:
    """A digest of a split's (text, label) rows, in order."""
    digest = hashlib.sha256()
    for text, label in rows:
        digest.update(f"{label}\t{text}\n".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def log_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """(batch, num_classes) float64 log-probabilities from a classifier's logits; a single
    (binary) logit z gives ``[log sigmoid(-z), log sigmoid(z)]``."""
    logits = logits.double()
    if logits.size(-1) == 1:
        return torch.cat([F.logsigmoid(-logits), F.logsigmoid(logits)], dim=-1)
    return torch.log_softmax(logits, dim=-1)


def score_in_order(model: torch.nn.Module, ids: Sequence[Sequence[int]], batch_tokens: int = 40_000) -> torch.Tensor:
    """(texts, num_classes) log-probabilities of a neural classifier for ``ids``, in their order.

    Texts are batched by length (about ``batch_tokens`` padded tokens a batch) and the rows
    put back; a text's scores do not depend on the batch it is in (packed sequences, masks).
    """
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    rows: list[torch.Tensor] = [torch.empty(0)] * len(ids)
    start = 0
    with torch.inference_mode():
        while start < len(order):
            end = start + 1  # lengths ascend: the batch is as wide as its last text
            while end < len(order) and (end - start + 1) * max(1, len(ids[order[end]])) <= batch_tokens:
                end += 1
            chunk = order[start:end]
            batch = collate_labelled([(list(ids[i]), 0) for i in chunk])
            scores = log_probabilities(model(batch.src, batch.src_lengths).logits)
            for row, index in enumerate(chunk):
                rows[index] = scores[row]
            start = end
    return torch.stack(rows) if rows else torch.empty(0, 0, dtype=torch.float64)


def member_scores(checkpoint: str | Path, splits: Sequence[str], data_overrides: dict | None = None) -> MemberScores:
    """Score ``splits`` (e.g. ``("dev", "test")``) with one classification or baseline checkpoint."""
    from nmt.data.classification_datamodule import ClassificationDataModule

    overrides = {k: v for k, v in (data_overrides or {}).items() if v is not None}
    loaded = load_model(checkpoint, task=MEMBER_TASKS)
    task, labels, config = loaded.task, loaded.labels, loaded.config
    if task == BASELINE_TASK:
        datamodule = ClassificationDataModule({**config["data"], **overrides}, seed=int(config.get("seed", 0)))
        kind = str(config["model"]["type"])  # multinomial_nb | nbsvm
    else:
        datamodule = ClassificationDataModule(
            {**config["data"], **overrides}, tokenizer=loaded.tokenizer, seed=int(config.get("seed", 0))
        )
        kind = str(config["model"].get("architecture", "rnn")) + " classifier"
    member = MemberScores(str(checkpoint), kind, list(labels))
    corpus = datamodule.prepare_corpus()
    for split in splits:
        rows = corpus[split]
        if not rows:
            raise ValueError(
                f"{checkpoint}: its {split} split is empty (data.split); an ensemble needs labelled {split} texts"
            )
        member.gold[split] = torch.tensor([y for _, y in rows], dtype=torch.long)
        member.fingerprints[split] = fingerprint(rows)
        if task == BASELINE_TASK:
            raw = loaded.model.scores([text for text, _ in rows])
            member.scores[split] = raw if kind == "nbsvm" else torch.log_softmax(raw, dim=-1)
        else:
            member.scores[split] = score_in_order(loaded.model, datamodule.dataset(split).ids)
    return member


def check_members_agree(members: Sequence[MemberScores]) -> None:
    """Refuse members that do not score the same texts with the same labels."""
    if len(members) < 2:
        raise ValueError("an ensemble needs at least two checkpoints")
    first = members[0]
    for other in members[1:]:
        if other.labels != first.labels:
            raise ValueError(
                f"{other.checkpoint} predicts labels {other.labels}, {first.checkpoint} "
                f"{first.labels}: ensemble checkpoints of one dataset"
            )
        for split, digest in first.fingerprints.items():
            if other.fingerprints[split] != digest:
                raise ValueError(
                    f"{other.checkpoint} and {first.checkpoint} have different {split} texts "
                    f"({len(other.gold[split])} and {len(first.gold[split])}): train the members on the same "
                    "corpus with the same data.split, data.split_seed and data.limit"
                )


def stack_features(members: Sequence[MemberScores], split: str) -> np.ndarray:
    """(texts, members * num_classes) the members' scores side by side, log-probabilities
    floored at :data:`LOG_PROBABILITY_FLOOR` (NB-SVM margins as they are)."""
    columns = [
        m.scores[split] if m.kind == "nbsvm" else m.scores[split].clamp(min=LOG_PROBABILITY_FLOOR) for m in members
    ]
    return torch.cat(columns, dim=-1).numpy()


def _stacker(c: float, seed: int):
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
    except ImportError as error:  # pragma: no cover - the baselines extra is installed in CI
        raise ImportError("the ensemble's stacker needs scikit-learn: pip install -e .[baselines]") from error
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000, random_state=seed))


@dataclass
class StackedEnsemble:
    """A fitted stacker. :ivar c: its L2 strength (inverse), chosen by cross-validation.
    :ivar cv_accuracy: mean k-fold accuracy on the fitting split at that ``c``."""

    pipeline: Any  # scikit-learn's Pipeline: StandardScaler, then LogisticRegression
    c: float
    cv_accuracy: float

    def predict(self, features: np.ndarray) -> torch.Tensor:
        """(texts,) predicted classes of (texts, members * num_classes) features."""
        return torch.from_numpy(np.asarray(self.pipeline.predict(features), dtype=np.int64))


def fit_stacker(
    features: np.ndarray, gold: torch.Tensor, folds: int = 5, c_grid: Sequence[float] = STACKER_C_GRID, seed: int = 0
) -> StackedEnsemble:
    """Choose the penalty by stratified ``folds``-fold accuracy on (features, gold), then refit on all of it."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    labels = gold.numpy()
    present = np.bincount(labels)
    smallest = int(present[present > 0].min()) if len(labels) else 0
    if smallest < 2:
        raise ValueError(
            f"the fitting split has a class with {smallest} text(s): cross-validation needs >= 2 "
            "of each (use a larger dev split)"
        )
    folds = max(2, min(folds, smallest))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    results = [(float(cross_val_score(_stacker(c, seed), features, labels, cv=splitter).mean()), -c, c) for c in c_grid]
    cv_accuracy, _, best_c = max(results)  # ties: the strongest penalty
    pipeline = _stacker(best_c, seed).fit(features, labels)
    return StackedEnsemble(pipeline, best_c, cv_accuracy)
