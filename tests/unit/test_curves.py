"""Learning curves: what a run records, how a resume continues them, and the plots."""

from __future__ import annotations

import importlib
import importlib.util
import json
from types import SimpleNamespace

import pytest
import torch

from nmt.training.curves import LearningCurves, dev_metric, plot_curves, read_curves

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fake_trainer(step: int, metrics: dict | None = None, sanity: bool = False) -> SimpleNamespace:
    return SimpleNamespace(
        global_step=step,
        is_global_zero=True,
        sanity_checking=sanity,
        callback_metrics={k: torch.tensor(v) for k, v in (metrics or {}).items()},
    )


def write_points(path, points) -> None:
    path.write_text("".join(json.dumps(p) + "\n" for p in points), encoding="utf-8")


def points_of_a_run(steps: int, bleu_slope: float) -> list[dict]:
    points = []
    for step in range(50, steps + 1, 50):
        points.append({"kind": "train", "step": step, "time_s": step * 0.3, "train/loss": 6.0 / (1 + step / 200)})
        if step % 200 == 0:
            points.append(
                {
                    "kind": "val",
                    "step": step,
                    "time_s": step * 0.3 + 1,
                    "val/bleu": bleu_slope * step,
                    "val/loss": 3.0 - step / 1000,
                }
            )
    return points


def test_train_points_hold_the_mean_loss_of_their_interval(tmp_path):
    curves = LearningCurves(tmp_path, every_n_steps=2, plot=False)
    curves.on_train_start(fake_trainer(0), None)
    losses = [4.0, 2.0, 3.0, 1.0]
    for step, loss in enumerate(losses, start=1):
        curves.on_train_batch_end(fake_trainer(step), None, {"loss": torch.tensor(loss)}, None, step - 1)
    points = read_curves(tmp_path / "curves.jsonl")
    assert [(p["step"], p["train/loss"]) for p in points] == [(2, 3.0), (4, 2.0)]
    assert all(p["kind"] == "train" and p["time_s"] >= 0 for p in points)


def test_validation_points_skip_the_sanity_check_and_draw_the_plot(tmp_path):
    curves = LearningCurves(tmp_path, every_n_steps=10)
    curves.on_train_start(fake_trainer(0), None)
    curves.on_validation_end(fake_trainer(0, {"val/bleu": 1.0}, sanity=True), None)
    assert read_curves(tmp_path / "curves.jsonl") == []
    curves.on_validation_end(fake_trainer(30, {"val/bleu": 12.5, "val/loss": 2.5, "train/loss": 9.0}), None)
    [point] = read_curves(tmp_path / "curves.jsonl")
    assert point["kind"] == "val" and point["step"] == 30
    assert point["val/bleu"] == 12.5 and point["val/loss"] == 2.5 and "train/loss" not in point
    assert (tmp_path / "curves.png").read_bytes()[:8] == PNG_MAGIC


def test_resume_drops_points_after_the_checkpoint_and_continues_the_clock(tmp_path):
    first = points_of_a_run(1000, 0.01)
    write_points(tmp_path / "curves.jsonl", first)
    resumed = LearningCurves(tmp_path, plot=False)
    resumed.load_state_dict({"elapsed_s": 500.0})
    resumed.on_train_start(fake_trainer(600), None)
    assert read_curves(tmp_path / "curves.jsonl") == [p for p in first if p["step"] <= 600]
    assert resumed.elapsed_s() >= 500.0
    assert resumed.state_dict()["elapsed_s"] >= 500.0


def test_a_torn_last_line_is_skipped(tmp_path):
    path = tmp_path / "curves.jsonl"
    write_points(path, points_of_a_run(200, 0.01))
    with path.open("a", encoding="utf-8") as stream:
        stream.write('{"kind": "train", "step": 2')
    assert len(read_curves(path)) == len(points_of_a_run(200, 0.01))
    assert read_curves(tmp_path / "missing.jsonl") == []


def test_dev_metric_prefers_the_task_metric():
    assert dev_metric(points_of_a_run(400, 0.01)) == "val/bleu"
    assert dev_metric([{"kind": "val", "step": 1, "time_s": 1, "val/loss": 2.0, "val/acc": 0.5}]) == "val/acc"
    assert dev_metric([{"kind": "train", "step": 1, "time_s": 1, "train/loss": 2.0}]) is None


def test_plot_curves_writes_a_png(tmp_path):
    path = plot_curves({"a": points_of_a_run(1000, 0.01), "b": points_of_a_run(800, 0.02)}, tmp_path / "x" / "c.png")
    assert path.read_bytes()[:8] == PNG_MAGIC


def run_compare(capsys, *args: str) -> tuple[int, str, str]:
    """``nmt/cli/compare_runs.py ARGS`` in this process: (exit status, stdout, stderr)."""
    script = importlib.import_module("nmt.cli.compare_runs")
    status = script.main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_compare_runs_overlays_runs_and_prints_the_best_points(tmp_path, capsys):
    for name, slope in (("slow", 0.01), ("fast", 0.03)):
        (tmp_path / name).mkdir()
        write_points(tmp_path / name / "curves.jsonl", points_of_a_run(1000, slope))
    output = tmp_path / "compare.png"
    status, out, err = run_compare(
        capsys, str(tmp_path / "slow"), str(tmp_path / "fast" / "curves.jsonl"), "--output", str(output)
    )
    assert status == 0, err
    assert output.read_bytes()[:8] == PNG_MAGIC
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:3]}
    assert rows["slow"][1:4] == ["10.00", "1000", "5.0"] and rows["fast"][1:4] == ["30.00", "1000", "5.0"]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d, "has no curves.jsonl"),
        (lambda d: (d / "curves.jsonl").write_text("") and d or d, "no points recorded yet"),
    ],
)
def test_compare_runs_errors_name_the_run(tmp_path, capsys, make, message):
    run = tmp_path / "run"
    run.mkdir()
    make(run)
    status, _, err = run_compare(capsys, str(run), "--output", str(tmp_path / "c.png"))
    assert status == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "c.png").exists()
