"""``outputs/latest``: where the newest run is, so nobody has to find its timestamped directory.

A relative symlink where the file system allows one, else a one-line text file that holds the
run directory's path (e.g. on Windows without the right to create symlinks).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["LATEST_NAME", "update_latest_run"]

LATEST_NAME = "latest"


def update_latest_run(run_dir: Path, outputs_dir: Path) -> Path | None:
    """Point ``outputs_dir/latest`` at ``run_dir``; return the link, or None when ``run_dir`` is
    not inside ``outputs_dir`` (a run directory chosen with ``hydra.run.dir``, or a sweep's).

    The link is replaced atomically (a new link, then a rename over the old one), so a reader never
    finds it missing and two runs starting together leave one valid link.
    """
    run_dir, outputs_dir = Path(run_dir).resolve(), Path(outputs_dir).resolve()
    if outputs_dir not in run_dir.parents:
        return None
    latest = outputs_dir / LATEST_NAME
    staged = outputs_dir / f".{LATEST_NAME}.{os.getpid()}"
    staged.unlink(missing_ok=True)
    try:
        staged.symlink_to(os.path.relpath(run_dir, outputs_dir), target_is_directory=True)
    except OSError:  # no symlinks here: a small file that holds the path instead
        staged.write_text(f"{run_dir}\n", encoding="utf-8")
    if latest.is_dir() and not latest.is_symlink():
        staged.unlink()
        return None  # a real directory of that name is the user's: leave it alone
    os.replace(staged, latest)
    return latest
