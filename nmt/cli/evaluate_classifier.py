"""Score a classification checkpoint (neural or ``task=baseline``) on a split of its dataset; print a JSON report.

    nmt-evaluate-classifier CHECKPOINT [--split test|dev|train] [--output FILE]

The split is rebuilt exactly as in training (same reader, seeded split, tokenizer from the
checkpoint, truncation). The report holds accuracy, macro-F1, per-class precision, recall,
F1 and support, and the confusion matrix (rows = true label, columns = predicted).

Errors (a bad option, a missing, damaged or non-classification checkpoint, a missing corpus
or one that is not UTF-8 text) are one line on stderr and exit status 2; a failure of the
run itself exits with 1 (see :mod:`nmt.cli.common`).
"""

from __future__ import annotations

import sys
import time

from nmt.cli.common import (
    OneLineArgumentParser,
    add_threads_argument,
    apply_threads,
    positive_int,
    run_command,
    write_json_report,
)

PROG = "nmt-evaluate-classifier"
TASKS = ("classification", "baseline")


def evaluate_baseline(loaded, split: str, data_overrides: dict) -> dict:
    """The same report for a loaded Naive Bayes baseline (``task=baseline``) on the same split."""
    from nmt.data.classification_datamodule import ClassificationDataModule
    from nmt.inference.baseline import evaluate_model

    config = loaded.config
    data = {**config["data"], **{k: v for k, v in data_overrides.items() if v is not None}}
    rows = ClassificationDataModule(data, seed=int(config.get("seed", 0))).prepare_corpus()[split]
    start = time.perf_counter()
    report = {"checkpoint": str(loaded.path), "dataset": data["name"], "split": split}
    report.update(evaluate_model(loaded.model, rows, loaded.labels))
    report["seconds"] = round(time.perf_counter() - start, 1)
    return report


def evaluate(checkpoint: str, split: str, data_overrides: dict, batch_size: int | None) -> dict:
    """The report of a classification or baseline checkpoint on ``split``."""
    import torch

    from nmt.data.classification_datamodule import ClassificationDataModule
    from nmt.evaluation.classification import classification_report, confusion_matrix
    from nmt.inference.loading import load_model
    from nmt.models.classifier_output import predicted_classes

    loaded = load_model(checkpoint, task=TASKS)
    if loaded.task == "baseline":
        return evaluate_baseline(loaded, split, data_overrides)
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
    parser = OneLineArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--split", choices=("train", "dev", "test"), default="test")
    parser.add_argument("--data-path", help="override data.path (the corpus file)")
    parser.add_argument("--test-path", help="override data.test_path (NSMC test file)")
    parser.add_argument("--batch-size", type=positive_int, help="override data.eval_batch_size")
    add_threads_argument(parser)
    parser.add_argument("--output", help="also write the JSON report here")
    args = parser.parse_args(argv)

    def run() -> None:
        apply_threads(args.threads)
        report = evaluate(
            args.checkpoint, args.split, {"path": args.data_path, "test_path": args.test_path}, args.batch_size
        )
        write_json_report(report, args.output)

    return run_command(PROG, run)


if __name__ == "__main__":
    sys.exit(main())
