"""What a finished training run prints last: where the model is and the exact commands to use it."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

__all__ = ["model_checkpoint", "next_steps_message", "python_command"]

# The checkpoint to use, in order of preference: the mean of the last validations' weights when the
# run wrote one (training.average_last), else the best dev checkpoint, else the last state.
CHECKPOINT_PREFERENCE = ("average.ckpt", "best.ckpt", "last.ckpt")


def model_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint of ``run_dir`` that the next commands should use, or None if it has none."""
    for name in CHECKPOINT_PREFERENCE:
        path = Path(run_dir) / "checkpoints" / name
        if path.is_file():
            return path
    return None


def python_command() -> str:
    """How to call this interpreter: ``python`` when that is it (an activated venv), else its path
    (``.venv/bin/python`` after ``make train``), relative to the working directory when inside it."""
    found = shutil.which("python")
    if found and Path(found).resolve() == Path(sys.executable).resolve():
        return "python"
    executable = Path(sys.executable).absolute()
    if executable.is_relative_to(Path.cwd()):
        return shlex.quote(os.path.relpath(executable))
    return shlex.quote(str(executable))


def _commands(task: str, checkpoint: str, python: str) -> list[tuple[str, str]]:
    serve = ("serve (the serve extra)", f"{python} -m nmt.serve {checkpoint}")
    if task == "translation":
        return [
            ("translate", f'echo "I\'m hungry." | {python} -m nmt.translate {checkpoint}'),
            ("score on the test split", f"{python} -m nmt.evaluate {checkpoint} --split test"),
            serve,
        ]
    if task in ("classification", "baseline"):
        return [
            ("classify", f'echo "Free entry! Text WIN now" | {python} -m nmt.classify {checkpoint}'),
            ("score on the test split", f"{python} -m nmt.cli.evaluate_classifier {checkpoint} --split test"),
            *([serve] if task == "classification" else []),  # the server hosts networks only
        ]
    if task == "lm":
        return [("generate", f"{python} -m nmt.generate {checkpoint} --prompt 'The'")]
    return []


def next_steps_message(run_dir: Path, task: str, latest: Path | None = None) -> str:
    """Several lines: the run directory, the model, and the commands to try it (with real paths).

    :param latest: the ``outputs/latest`` link that points at this run, if one was made.
    """
    lines = [f"Run directory: {run_dir}"]
    if latest is not None:
        lines.append(f"  (also {latest})")
    checkpoint = model_checkpoint(run_dir)
    if checkpoint is None:
        lines.append("No checkpoint was written (the run stopped before its first validation).")
        return "\n".join(lines)
    lines.append(f"Model: {checkpoint}")
    commands = _commands(task, shlex.quote(str(checkpoint)), python_command())
    if commands:
        lines.append("Next:")
        width = max(len(what) for what, _ in commands) + 2
        lines += [f"  {what + ':':<{width}}{command}" for what, command in commands]
    return "\n".join(lines)
