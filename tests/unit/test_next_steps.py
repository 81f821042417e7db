"""The end of a training run: ``outputs/latest``, and the message with the model and the next commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, tiny_overrides
from nmt.cli.next_steps import model_checkpoint, next_steps_message
from nmt.training.latest_run import update_latest_run


def make_run(root: Path, name: str, *checkpoints: str) -> Path:
    run_dir = root / "outputs" / "spm_bahdanau" / name
    (run_dir / "checkpoints").mkdir(parents=True)
    for checkpoint in checkpoints:
        (run_dir / "checkpoints" / checkpoint).write_bytes(b"weights")
    return run_dir


def test_latest_points_at_the_newest_run_through_a_relative_link(tmp_path):
    first = make_run(tmp_path, "2026-01-01_10-00-00")
    second = make_run(tmp_path, "2026-01-01_11-00-00")
    update_latest_run(first, tmp_path / "outputs")
    latest = update_latest_run(second, tmp_path / "outputs")
    assert latest == tmp_path / "outputs" / "latest" and latest.resolve() == second
    assert not Path(os.readlink(latest)).is_absolute()  # survives moving the outputs directory
    assert sorted(p.name for p in (tmp_path / "outputs").iterdir()) == ["latest", "spm_bahdanau"]


def test_latest_is_a_file_with_the_path_where_symlinks_are_impossible(tmp_path, monkeypatch):
    run_dir = make_run(tmp_path, "run")

    def refuse(*args, **kwargs):
        raise OSError("symlinks are not allowed here")

    monkeypatch.setattr(Path, "symlink_to", refuse)
    latest = update_latest_run(run_dir, tmp_path / "outputs")
    assert latest.read_text(encoding="utf-8").strip() == str(run_dir.resolve())


def test_a_run_outside_outputs_leaves_latest_alone(tmp_path):
    assert update_latest_run(tmp_path / "elsewhere" / "run", tmp_path / "outputs") is None
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize(
    "checkpoints,chosen",
    [(("best.ckpt", "last.ckpt", "average.ckpt"), "average.ckpt"), (("best.ckpt", "last.ckpt"), "best.ckpt")],
)
def test_the_model_is_the_average_else_the_best_checkpoint(tmp_path, checkpoints, chosen):
    assert model_checkpoint(make_run(tmp_path, "run", *checkpoints)).name == chosen


def test_the_message_names_the_model_and_the_commands_with_its_path(tmp_path):
    run_dir = make_run(tmp_path, "run", "best.ckpt")
    message = next_steps_message(run_dir, "translation", tmp_path / "outputs" / "latest")
    checkpoint = run_dir / "checkpoints" / "best.ckpt"
    assert f"Model: {checkpoint}" in message and str(tmp_path / "outputs" / "latest") in message
    for command in ("-m nmt.translate", "-m nmt.evaluate", "-m nmt.serve"):
        assert f"{command} {checkpoint}" in message


def test_the_commands_call_the_interpreter_that_trained(tmp_path, monkeypatch):
    venv_python = tmp_path / ".venv" / "bin" / "python"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.executable", str(venv_python))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no `python` on the PATH: not activated
    message = next_steps_message(make_run(tmp_path, "run", "best.ckpt"), "translation")
    assert ".venv/bin/python -m nmt.translate" in message and " python -m" not in message


def test_a_run_without_checkpoints_says_so(tmp_path):
    assert "No checkpoint was written" in next_steps_message(make_run(tmp_path, "run"), "translation")


def test_a_tiny_run_ends_with_the_next_commands_and_outputs_latest(tiny_corpus, tmp_path):
    run_dir = tmp_path / "outputs" / "tiny" / "2026-01-01_00-00-00"
    overrides = [
        o for o in tiny_overrides(tiny_corpus, run_dir, "trainer.max_steps=20") if not o.startswith("+run_dir")
    ]
    result = subprocess.run(
        [sys.executable, "-m", "nmt.train", *overrides, f"hydra.run.dir={run_dir}"],
        cwd=tmp_path,  # outputs/ is relative to where the command runs
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "outputs" / "latest").resolve() == run_dir
    checkpoint = run_dir / "checkpoints" / "best.ckpt"
    assert f"Model: {checkpoint}" in result.stdout
    assert f"-m nmt.translate {checkpoint}" in result.stdout
    assert f"-m nmt.evaluate {checkpoint} --split test" in result.stdout


@pytest.mark.parametrize(("task", "served"), [("classification", True), ("baseline", False)])
def test_a_classifier_is_offered_to_classify_and_only_a_network_to_the_server(tmp_path, task, served):
    run_dir = make_run(tmp_path, "run", "best.ckpt")
    message = next_steps_message(run_dir, task)
    assert f"-m nmt.classify {run_dir / 'checkpoints' / 'best.ckpt'}" in message
    assert "-m nmt.cli.evaluate_classifier" in message
    assert ("-m nmt.serve" in message) == served
