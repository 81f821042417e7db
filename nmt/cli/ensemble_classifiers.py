"""Stack classification checkpoints into one ensemble, fitted on dev, scored on test; print a JSON report.

    nmt-ensemble-classifiers CKPT CKPT [CKPT ...] [--fit-split dev] [--split test]
        [--folds 5] [--output FILE]

Members may be any mix of neural classifiers (``python -m nmt.train experiment=imdb_elmo``,
``imdb_bilstm_attn``, ...) and Naive Bayes / NB-SVM baselines (``experiment=imdb_nbsvm``)
trained on the same corpus and split. Each scores the fitting and the evaluation split as in
``nmt/cli/evaluate_classifier.py``; a logistic regression over their standardised scores is
fitted on the fitting split (its penalty chosen by k-fold accuracy there) and applied to the
evaluation split. The report gives every member's accuracy on both splits, the stacker's
cross-validated accuracy on the fitting split, its weights, and the ensemble's evaluation
report (accuracy, macro-F1, per class, confusion matrix).

Errors (a bad option, a missing or damaged checkpoint, a checkpoint of another task, members
on different texts or labels, scikit-learn missing) are one line on stderr and exit status 2.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from nmt.cli.common import OneLineArgumentParser, add_threads_argument, apply_threads, run_command, write_json_report

PROG = "nmt-ensemble-classifiers"


def split_accuracy(scores, gold, num_classes: int) -> float:
    """Accuracy of (texts, num_classes) ``scores`` against (texts,) ``gold`` labels."""
    from nmt.evaluation.classification import accuracy, confusion_matrix
    from nmt.models.classifier_output import predicted_classes

    return accuracy(confusion_matrix(predicted_classes(scores), gold, num_classes))


def ensemble(checkpoints: list[str], fit_split: str, split: str, folds: int, data_overrides: dict) -> dict:
    import numpy as np

    from nmt.evaluation.classification import classification_report, confusion_matrix
    from nmt.inference.classifier_ensemble import check_members_agree, fit_stacker, member_scores, stack_features

    start = time.perf_counter()
    members = [member_scores(path, (fit_split, split), data_overrides) for path in checkpoints]
    check_members_agree(members)
    labels = members[0].labels
    gold_fit, gold = members[0].gold[fit_split], members[0].gold[split]
    stacker = fit_stacker(stack_features(members, fit_split), gold_fit, folds=folds)
    predicted = stacker.predict(stack_features(members, split))
    regression = stacker.pipeline[-1]
    weights = np.asarray(regression.coef_).reshape(len(regression.coef_), len(members), -1)
    report: dict[str, Any] = {
        "fit_split": fit_split,
        "split": split,
        "members": [
            {
                "checkpoint": m.checkpoint,
                "kind": m.kind,
                f"{fit_split}_accuracy": split_accuracy(m.scores[fit_split], gold_fit, len(labels)),
                f"{split}_accuracy": split_accuracy(m.scores[split], gold, len(labels)),
                # standardised-score weights of this member's class columns (one row per
                # regression output: 1 for two classes)
                "stacker_weights": np.round(weights[:, i, :], 4).tolist(),
            }
            for i, m in enumerate(members)
        ],
        "stacker": {"C": stacker.c, f"{fit_split}_cv_accuracy": stacker.cv_accuracy, "folds": folds},
    }
    report.update(classification_report(confusion_matrix(predicted, gold, len(labels)), labels))
    report["seconds"] = round(time.perf_counter() - start, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", metavar="CKPT")
    parser.add_argument(
        "--fit-split",
        choices=("dev", "train"),
        default="dev",
        help="where the stacker is fitted (default dev: the members never trained on it)",
    )
    parser.add_argument("--split", choices=("dev", "test"), default="test", help="where the ensemble is scored")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds for the stacker's penalty")
    parser.add_argument("--data-path", help="override data.path (the corpus file) for every member")
    parser.add_argument("--test-path", help="override data.test_path (NSMC test file) for every member")
    add_threads_argument(parser)
    parser.add_argument("--output", help="also write the JSON report here")
    args = parser.parse_args(argv)
    if len(args.checkpoints) < 2:
        parser.error("give at least two checkpoints")
    if args.fit_split == args.split:
        parser.error(f"--fit-split and --split are both {args.split}: score the ensemble on texts it was not fitted on")
    if args.folds < 2:
        parser.error("--folds must be >= 2")

    def run() -> None:
        apply_threads(args.threads)
        report = ensemble(
            args.checkpoints,
            args.fit_split,
            args.split,
            args.folds,
            {"path": args.data_path, "test_path": args.test_path},
        )
        write_json_report(report, args.output)

    return run_command(PROG, run, user_errors=(ImportError,))


if __name__ == "__main__":
    sys.exit(main())
