"""``task: baseline``: fit a Naive Bayes or mean-word-vector baseline on a classification corpus's own splits.

Called by ``python -m nmt.train`` (``experiment=sms_naive_bayes``, ``imdb_nbsvm``, ...)
instead of Lightning's loop. The splits are those of the neural classifiers exactly
(:class:`~nmt.data.classification_datamodule.ClassificationDataModule`: same reader, seeded
stratified grouped split, ``data.limit``); texts are not truncated. A ``mean_vectors`` baseline
reads its word-vector file (``model.vectors``) here and hands the table to
:mod:`nmt.baselines.mean_vectors`. Every setting of the ``alpha`` / ``C`` grid is fitted on train and the one with the best dev macro-F1 is kept; its
dev and test reports (the JSON of ``nmt/cli/evaluate_classifier.py``) are logged and written
to ``RUN_DIR/report_{dev,test}.json``, and the model to ``RUN_DIR/checkpoints/best.ckpt``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import torch
from omegaconf import DictConfig, OmegaConf

from nmt.baselines.mean_vectors import MeanVectorModel, fit_mean_vectors
from nmt.baselines.naive_bayes import LinearTextModel, candidates, fit, fit_vocabulary
from nmt.data.classification_datamodule import ClassificationDataModule
from nmt.inference.baseline import baseline_checkpoint, evaluate_model
from nmt.inference.checkpoint import atomic_save

log = logging.getLogger("nmt.train")

MONITOR = "macro_f1"
MONITORED_METRIC = "val/f1"
"""The dev metric a baseline is selected on (:data:`MONITOR`), as :func:`train_baseline` returns it."""


def train_baseline(cfg: DictConfig, run_dir: Path) -> dict[str, float]:
    """Fit, select on dev, test; return ``val/*`` and ``test/*`` accuracy and macro-F1."""
    config = cast(dict[str, Any], OmegaConf.to_container(cfg, resolve=True))
    run_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    labels = list(config["data"]["labels"])
    splits = ClassificationDataModule(cfg.data, seed=int(cfg.seed)).prepare_corpus()
    model_cfg = config["model"]
    start = time.process_time()
    fitted = _mean_vector_models if model_cfg["type"] == "mean_vectors" else _naive_bayes_models
    best: tuple[float, Any, Any, dict] | None = None
    for setting, model in fitted(splits["train"], len(labels), model_cfg, int(cfg.seed)):
        dev = evaluate_model(model, splits["dev"], labels)
        log.info(
            "%s %s: dev accuracy %.4f, macro-F1 %.4f", model_cfg["type"], setting, dev["accuracy"], dev["macro_f1"]
        )
        if best is None or dev[MONITOR] > best[0]:
            best = (dev[MONITOR], setting, model, dev)
    assert best is not None, "candidates() gives at least one setting"
    _, setting, model, dev = best
    test = evaluate_model(model, splits["test"], labels)
    seconds = round(time.process_time() - start, 1)
    checkpoint_path = run_dir / "checkpoints" / "best.ckpt"
    atomic_save(baseline_checkpoint(model, config, labels, setting), checkpoint_path)
    for split, report in (("dev", dev), ("test", test)):
        report = {"checkpoint": str(checkpoint_path), "dataset": config["data"]["name"], "split": split, **report}
        (run_dir / f"report_{split}.json").write_text(
            json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    log.info(
        "chosen %s on dev; test accuracy %.4f, macro-F1 %.4f (%.1f s of CPU time)",
        setting,
        test["accuracy"],
        test["macro_f1"],
        seconds,
    )
    log.info("run directory: %s", run_dir)
    return {
        "val/acc": dev["accuracy"],
        MONITORED_METRIC: dev[MONITOR],
        "test/acc": test["accuracy"],
        "test/f1": test["macro_f1"],
    }


def _naive_bayes_models(
    train: list[tuple[str, int]], num_classes: int, model_cfg: dict, seed: int
) -> Iterator[tuple[dict, LinearTextModel]]:
    """Each setting of the ``alpha`` / ``C`` grid, fitted on one shared n-gram count matrix."""
    texts = [t for t, _ in train]
    counts, vocabulary = fit_vocabulary(texts, model_cfg)
    log.info(
        "%d training texts, %d n-grams (%s %s-grams, min_df %s)",
        len(texts),
        len(vocabulary),
        model_cfg["analyzer"],
        "-".join(map(str, model_cfg["ngram_range"])),
        model_cfg["min_df"],
    )
    for setting in candidates(model_cfg):
        labels = [y for _, y in train]
        model = fit(texts, labels, num_classes, model_cfg, setting, seed=seed, counts=counts, vocabulary=vocabulary)
        yield setting, model


def _mean_vector_models(
    train: list[tuple[str, int]], num_classes: int, model_cfg: dict, seed: int
) -> Iterator[tuple[dict, MeanVectorModel]]:
    """Each ``C`` of the grid: logistic regression on the training texts' mean word vectors.
    The vector file's first ``max_features`` entries are kept (all when null), in the checkpoint too."""
    from nmt.embeddings.io import read_vectors

    table = read_vectors(model_cfg["vectors"], model_cfg.get("vectors_format", "auto"), limit=model_cfg["max_features"])
    texts, labels = [t for t, _ in train], [y for _, y in train]
    options = {"lowercase": bool(model_cfg["lowercase"]), "punctuation": model_cfg.get("punctuation", "split")}
    shared = MeanVectorModel(
        list(table.words), torch.from_numpy(table.vectors), torch.zeros(0), torch.zeros(0), **options
    )
    documents = shared.document_vectors(texts)
    found = sum(1 for text in texts for word in shared.split(text) if word in shared)
    total = sum(len(shared.split(text)) for text in texts)
    log.info(
        "%d training texts; %s: %d vectors of dimension %d; %.1f%% of the %d training words have one",
        len(texts),
        model_cfg["vectors"],
        len(table.words),
        table.dim,
        100.0 * found / max(total, 1),
        total,
    )
    for C in (float(c) for c in (model_cfg["C"] if isinstance(model_cfg["C"], list) else [model_cfg["C"]])):
        model = fit_mean_vectors(
            texts, labels, num_classes, table.words, table.vectors, C, seed=seed, documents=documents, **options
        )
        yield {"C": C}, model
