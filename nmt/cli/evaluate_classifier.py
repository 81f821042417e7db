"""Score a classification checkpoint (neural or ``task=baseline``) on a split of its dataset; print a JSON report.

    nmt-evaluate-classifier CHECKPOINT [--split test|dev|train] [--output FILE]

The split is rebuilt exactly as in training (same reader, seeded split, tokenizer from the
checkpoint, truncation). The report holds accuracy, macro-F1, per-class precision, recall,
F1 and support, and the confusion matrix (rows = true label, columns = predicted).

Errors (a missing or damaged checkpoint or corpus, a corpus that is not UTF-8 text) are one
line on stderr and exit status 1; a bad option exits with 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch


from nmt.inference.checkpoint import PAYLOAD_KEY, CheckpointError, load_checkpoint
from nmt.data.classification_datamodule import ClassificationDataModule
from nmt.evaluation.classification import classification_report, confusion_matrix
from nmt.inference.classifier import load_classifier
from nmt.models.classifier_output import predicted_classes


def evaluate_baseline(checkpoint: str, split: str, data_overrides: dict) -> dict:
    """The same report for a Naive Bayes baseline (``task=baseline``) on the same split."""
    from nmt.inference.baseline import evaluate_model, load_baseline

    loaded = load_checkpoint(checkpoint)
    model, labels = load_baseline(loaded, checkpoint)
    config = loaded[PAYLOAD_KEY]["config"]
    data = {**config["data"], **{k: v for k, v in data_overrides.items() if v is not None}}
    rows = ClassificationDataModule(data, seed=int(config.get("seed", 0))).prepare_corpus()[split]
    start = time.perf_counter()
    report = {"checkpoint": str(checkpoint), "dataset": data["name"], "split": split}
    report.update(evaluate_model(model, rows, labels))
    report["seconds"] = round(time.perf_counter() - start, 1)
    return report


def evaluate(checkpoint: str, split: str, data_overrides: dict, batch_size: int | None) -> dict:
    if load_checkpoint(checkpoint)[PAYLOAD_KEY]["task"] == "baseline":
        return evaluate_baseline(checkpoint, split, data_overrides)
    loaded = load_classifier(checkpoint)
    data = {**loaded.config["data"], **{k: v for k, v in data_overrides.items() if v is not None}}
    if batch_size:
        data["eval_batch_size"] = batch_size
    datamodule = ClassificationDataModule(data, tokenizer=loaded.tokenizer, seed=int(loaded.config.get("seed", 0)))
    confusion = torch.zeros(len(loaded.labels), len(loaded.labels), dtype=torch.long)
    start = time.perf_counter()
    with torch.inference_mode():
        for batch in datamodule.loader(split):
            logits = loaded.model(batch.src, batch.src_lengths).logits
            confusion += confusion_matrix(predicted_classes(logits), batch.labels, len(loaded.labels))
    report = {"checkpoint": str(checkpoint), "dataset": data["name"], "split": split}
    report.update(classification_report(confusion, loaded.labels))
    report["seconds"] = round(time.perf_counter() - start, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--split", choices=("train", "dev", "test"), default="test")
    parser.add_argument("--data-path", help="override data.path (the corpus file)")
    parser.add_argument("--test-path", help="override data.test_path (NSMC test file)")
    parser.add_argument("--batch-size", type=int, help="override data.eval_batch_size")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", help="also write the JSON report here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        report = evaluate(args.checkpoint, args.split, {"path": args.data_path, "test_path": args.test_path},
                          args.batch_size)
    except (CheckpointError, ValueError, OSError) as error:
        print(f"nmt/cli/evaluate_classifier.py: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 1
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
