"""Start ``python -m nmt.serve`` as a child process on a free loopback port, for tools that
drive a real server (the load test, the page screenshots)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def started_server(
    checkpoints: Sequence[str | Path], extra: Sequence[str], cwd: str | Path | None = None
) -> Iterator[str]:
    """A ``python -m nmt.serve`` child on a free loopback port; yields its URL (no final /).

    :param extra: more ``nmt.serve`` options. :param cwd: the child's working directory
        (relative checkpoint paths are read from there); None = this process's.
    :raises RuntimeError: the server exited before it said where it serves (with its log's end).
    """
    command = [
        sys.executable,
        "-m",
        "nmt.serve",
        *map(str, checkpoints),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--log-level",
        "warning",
        *extra,
    ]
    with tempfile.TemporaryFile("w+") as log:  # a file, not a pipe: a chatty server never blocks on it
        process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=log, text=True)
        assert process.stdout is not None
        try:
            url = next((line.split()[-1].rstrip("/") for line in process.stdout if line.startswith("serving ")), None)
            if url is None:
                process.wait(30)
                log.seek(0)
                raise RuntimeError(f"the server did not start: {' '.join(log.read().split()[-60:])}")
            yield url
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
            process.stdout.close()
