"""``task: baseline``: fit a Naive Bayes baseline on a classification corpus's own splits.

Called by ``python -m nmt.train`` (``experiment=sms_naive_bayes``, ``imdb_nbsvm``, ...)
instead of Lightning's loop. The splits are those of the neural classifiers exactly
(:class:`~nmt.data.classification_datamodule.ClassificationDataModule`: same reader, seeded
stratified grouped split, ``data.limit``); texts are not truncated. Every setting of the
``alpha`` / ``C`` grid is fitted on train and the one with the best dev macro-F1 is kept; its
dev and test reports (the JSON of ``scripts/evaluate_classifier.py``) are logged and written
to ``RUN_DIR/report_{dev,test}.json``, and the model to ``RUN_DIR/checkpoints/best.ckpt``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Mapping

import torch
from omegaconf import DictConfig, OmegaConf

from nmt.baselines.naive_bayes import LinearTextModel, candidates, fit, fit_vocabulary
from nmt.checkpoint import MODEL_PREFIX, PAYLOAD_KEY, CheckpointError, atomic_save, make_payload
from nmt.data.classification_datamodule import ClassificationDataModule
from nmt.evaluation.classification import classification_report, confusion_matrix

log = logging.getLogger("nmt.train")

TASK = "baseline"
MONITOR = "macro_f1"
BASELINE_KEY = "baseline"
"""In the payload of a baseline checkpoint: the model's vocabulary and feature options."""


def evaluate_model(model: LinearTextModel, rows: list[tuple[str, int]], labels: list[str]) -> dict[str, Any]:
    """The ``scripts/evaluate_classifier.py`` report of ``model`` on labelled ``rows``."""
    texts, gold = [t for t, _ in rows], torch.tensor([y for _, y in rows], dtype=torch.long)
    predicted = model.predict(texts)
    return classification_report(confusion_matrix(predicted, gold, len(labels)), labels)


def baseline_checkpoint(model: LinearTextModel, config: Mapping[str, Any], labels: list[str],
                        setting: Mapping[str, float]) -> dict[str, Any]:
    """A checkpoint in the ``nmt`` format (no tokenizer: the n-gram vocabulary is the model's)."""
    description, tensors = model.to_state()
    payload = make_payload(TASK, config, {})
    payload["labels"] = list(labels)
    payload[BASELINE_KEY] = {**description, "setting": dict(setting)}
    return {PAYLOAD_KEY: payload, "state_dict": {MODEL_PREFIX + k: v for k, v in tensors.items()}}


def load_baseline(checkpoint: Mapping[str, Any], path: str | Path = "checkpoint") -> tuple[LinearTextModel, list[str]]:
    """The model and label names of a loaded baseline checkpoint."""
    payload = checkpoint[PAYLOAD_KEY]
    if payload.get("task") != TASK:
        raise CheckpointError(f"{path} is a {payload.get('task')!r} checkpoint, not a baseline one")
    try:
        tensors = {k[len(MODEL_PREFIX):]: v for k, v in checkpoint["state_dict"].items() if k.startswith(MODEL_PREFIX)}
        return LinearTextModel.from_state(payload[BASELINE_KEY], tensors), list(payload["labels"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path} is an incomplete baseline checkpoint: {error}") from error


def train_baseline(cfg: DictConfig, run_dir: Path) -> dict[str, float]:
    """Fit, select on dev, test; return ``val/*`` and ``test/*`` accuracy and macro-F1."""
    config = OmegaConf.to_container(cfg, resolve=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    labels = list(config["data"]["labels"])
    splits = ClassificationDataModule(cfg.data, seed=int(cfg.seed)).prepare_corpus()
    model_cfg = config["model"]
    start = time.process_time()
    train_texts = [t for t, _ in splits["train"]]
    counts, vocabulary = fit_vocabulary(train_texts, model_cfg)
    log.info("%d training texts, %d n-grams (%s %s-grams, min_df %s)", len(train_texts), len(vocabulary),
             model_cfg["analyzer"], "-".join(map(str, model_cfg["ngram_range"])), model_cfg["min_df"])
    best: tuple[float, Any, Any, dict] | None = None
    for setting in candidates(model_cfg):
        model = fit(train_texts, [y for _, y in splits["train"]], len(labels), model_cfg, setting,
                    seed=int(cfg.seed), counts=counts, vocabulary=vocabulary)
        dev = evaluate_model(model, splits["dev"], labels)
        log.info("%s %s: dev accuracy %.4f, macro-F1 %.4f", model_cfg["type"], setting, dev["accuracy"], dev["macro_f1"])
        if best is None or dev[MONITOR] > best[0]:
            best = (dev[MONITOR], setting, model, dev)
    _, setting, model, dev = best
    test = evaluate_model(model, splits["test"], labels)
    seconds = round(time.process_time() - start, 1)
    checkpoint_path = run_dir / "checkpoints" / "best.ckpt"
    atomic_save(baseline_checkpoint(model, config, labels, setting), checkpoint_path)
    for split, report in (("dev", dev), ("test", test)):
        report = {"checkpoint": str(checkpoint_path), "dataset": config["data"]["name"], "split": split, **report}
        (run_dir / f"report_{split}.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n",
                                                      encoding="utf-8")
    log.info("chosen %s on dev; test accuracy %.4f, macro-F1 %.4f (%.1f s of CPU time)", setting,
             test["accuracy"], test["macro_f1"], seconds)
    log.info("run directory: %s", run_dir)
    return {"val/acc": dev["accuracy"], "val/f1": dev["macro_f1"], "test/acc": test["accuracy"], "test/f1": test["macro_f1"]}
