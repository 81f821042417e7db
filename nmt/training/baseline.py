"""``task: baseline``: fit a Naive Bayes baseline on a classification corpus's own splits.

Called by ``python -m nmt.train`` (``experiment=sms_naive_bayes``, ``imdb_nbsvm``, ...)
instead of Lightning's loop. The splits are those of the neural classifiers exactly
(:class:`~nmt.data.classification_datamodule.ClassificationDataModule`: same reader, seeded
stratified grouped split, ``data.limit``); texts are not truncated. Every setting of the
``alpha`` / ``C`` grid is fitted on train and the one with the best dev macro-F1 is kept; its
dev and test reports (the JSON of ``nmt/cli/evaluate_classifier.py``) are logged and written
to ``RUN_DIR/report_{dev,test}.json``, and the model to ``RUN_DIR/checkpoints/best.ckpt``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, cast

from omegaconf import DictConfig, OmegaConf

from nmt.baselines.naive_bayes import candidates, fit, fit_vocabulary
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
    train_texts = [t for t, _ in splits["train"]]
    counts, vocabulary = fit_vocabulary(train_texts, model_cfg)
    log.info(
        "%d training texts, %d n-grams (%s %s-grams, min_df %s)",
        len(train_texts),
        len(vocabulary),
        model_cfg["analyzer"],
        "-".join(map(str, model_cfg["ngram_range"])),
        model_cfg["min_df"],
    )
    best: tuple[float, Any, Any, dict] | None = None
    for setting in candidates(model_cfg):
        model = fit(
            train_texts,
            [y for _, y in splits["train"]],
            len(labels),
            model_cfg,
            setting,
            seed=int(cfg.seed),
            counts=counts,
            vocabulary=vocabulary,
        )
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
