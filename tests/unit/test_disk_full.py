"""A disk that fills during a checkpoint save: the run stops with one line that names the
file, the checkpoints still intact and the resume command (exit 1); no temporary file is
left, and the run resumes from the intact last.ckpt."""

from __future__ import annotations

import errno
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import nmt.inference.checkpoint as checkpoint_module
import nmt.training.curves as curves_module
from conftest import REPO, compose_config, tiny_overrides
from nmt.cli.train import train
from nmt.inference.checkpoint import TEMPORARY_MARK
from nmt.training.checkpointing import CheckpointDiskFull, DiskFull, save_checkpoint_file

# Validation (and so best.ckpt and last.ckpt) at steps 20 and 40.
TWO_VALIDATIONS = (
    "trainer.max_steps=40",
    "trainer.val_check_interval=20",
    "test_after_training=false",
    "training.save_every_minutes=0",
)


class FillingDisk:
    """``open`` for nmt.inference.checkpoint whose files take ``allowed`` writes, then fill
    the disk: later files get a few bytes written, then ENOSPC, as a real full disk does."""

    def __init__(self, allowed: int) -> None:
        self.allowed, self.opened = allowed, 0

    def __call__(self, path, mode="r", *args, **kwargs):
        handle = open(path, mode, *args, **kwargs)  # noqa: SIM115 (the caller closes it)
        self.opened += 1
        if "w" not in mode or self.opened <= self.allowed:
            return handle
        real_write = handle.write

        def write(data) -> int:
            real_write(bytes(memoryview(data)[:10]))
            raise OSError(errno.ENOSPC, "No space left on device")

        handle.write = write
        return handle


def checkpoint_step(path: Path) -> int:
    return int(torch.load(path, weights_only=True)["global_step"])


def test_a_full_disk_names_the_file_the_intact_checkpoints_and_the_resume_command(tiny_corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint_module, "open", FillingDisk(allowed=2), raising=False)  # step 20's two saves
    with pytest.raises(CheckpointDiskFull) as caught:
        train(compose_config(tiny_overrides(tiny_corpus, tmp_path, *TWO_VALIDATIONS)))
    message = str(caught.value)
    checkpoints = tmp_path / "checkpoints"
    assert "\n" not in message
    assert "No space left on device while writing checkpoint " + str(checkpoints) in message
    assert "at step 40" in message
    assert "best.ckpt (step 20), last.ckpt (step 20)" in message
    assert message.endswith(f"resume with: python -m nmt.train ckpt_path={checkpoints / 'last.ckpt'}")
    assert not list(checkpoints.glob(f".*{TEMPORARY_MARK}*"))
    assert checkpoint_step(checkpoints / "last.ckpt") == 20

    monkeypatch.undo()  # space freed: the printed command resumes the run
    train(
        compose_config(
            tiny_overrides(tiny_corpus, tmp_path, *TWO_VALIDATIONS, f"ckpt_path={checkpoints / 'last.ckpt'}")
        )
    )
    assert checkpoint_step(checkpoints / "last.ckpt") == 40


def test_a_disk_that_fills_outside_a_checkpoint_save_names_the_file_and_the_resume_command(
    tiny_corpus, tmp_path, monkeypatch
):
    """The learning curves take a point every 10 steps; after step 30's, after the checkpoints of
    step 20, the disk is full."""
    real_open, curves = Path.open, tmp_path / "curves.jsonl"

    def open_curves(path, mode="r", *args, **kwargs):
        if path == curves and "a" in mode and curves.is_file() and '"step": 30' in curves.read_text():
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(curves_module.Path, "open", open_curves)
    with pytest.raises(DiskFull) as caught:
        train(compose_config(tiny_overrides(tiny_corpus, tmp_path, *TWO_VALIDATIONS)))
    message, checkpoints = str(caught.value), tmp_path / "checkpoints"
    assert not isinstance(caught.value, CheckpointDiskFull) and "\n" not in message
    assert message.startswith(f"No space left on device while writing {curves}. Intact in {checkpoints}: ")
    assert message.endswith(f"resume with: python -m nmt.train ckpt_path={checkpoints / 'last.ckpt'}")


def test_a_disk_full_before_any_checkpoint_says_to_start_again(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint_module, "open", FillingDisk(allowed=0), raising=False)
    with pytest.raises(CheckpointDiskFull, match="no complete checkpoint to resume from yet"):
        save_checkpoint_file({"global_step": 3}, tmp_path / "last.ckpt")
    assert list(tmp_path.iterdir()) == []


def test_other_write_errors_are_not_reported_as_a_full_disk(tmp_path, monkeypatch):
    def refuse(path, mode="r", *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(checkpoint_module, "open", refuse, raising=False)
    with pytest.raises(PermissionError):
        save_checkpoint_file({"global_step": 3}, tmp_path / "last.ckpt")


def test_cli_exits_1_with_one_line_when_the_disk_fills(tiny_corpus, tmp_path):
    overrides = [o for o in tiny_overrides(tiny_corpus, tmp_path, *TWO_VALIDATIONS) if not o.startswith("+run_dir")]
    launcher = textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{str(Path(__file__).parent)!r}, {str(Path(__file__).parents[1])!r}]
        import nmt.inference.checkpoint as checkpoint_module
        from test_disk_full import FillingDisk
        checkpoint_module.open = FillingDisk(allowed=2)
        from nmt.cli.train import main
        main()
    """)
    result = subprocess.run(
        [sys.executable, "-c", launcher, *overrides, f"hydra.run.dir={tmp_path}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, result.stderr[-3000:]
    assert "No space left on device" in errors[0] and "ckpt_path=" in errors[0]
    assert "Traceback" not in result.stderr
    assert not list((tmp_path / "checkpoints").glob(f".*{TEMPORARY_MARK}*"))
