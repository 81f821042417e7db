"""What every command shares: the parser, input reading, output lines, options, exit codes.

Exit codes, the same in every command:

* :data:`EXIT_USER_ERROR` (2): something the user can fix -- a bad option or value, a
  missing, damaged or wrong-task checkpoint, input that is not UTF-8 text, a file that
  cannot be read or written, a device that is not there.
* :data:`EXIT_RUNTIME_ERROR` (1): the run itself failed (out of memory, a diverged run).

Errors are one line on stderr, ``PROG: error: MESSAGE``. Nothing here imports torch: a
command's ``--help`` and its option errors stay fast.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, TextIO

EXIT_OK = 0
EXIT_RUNTIME_ERROR = 1
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C

PRECISIONS = ("fp32", "bf16", "fp16", "int8")
"""The ``--precision`` names; their meaning is
:data:`nmt.inference.translator.DECODING_PRECISIONS` (torch-free here, for a fast ``--help``)."""

LINE_BREAKS = str.maketrans({c: " " for c in "\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"})
"""TAB and every character that ``str.splitlines`` breaks at, each mapped to a space."""


class OneLineArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are a single line on stderr (exit status 2)."""

    def error(self, message: str):
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see --help)\n")


def positive_int(text: str) -> int:
    """An argparse ``type``: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_device_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup, help_extra: str = "") -> None:
    """``--device auto|cpu|cuda|cuda:N`` (auto: a GPU when there is one)."""
    parser.add_argument(
        "--device",
        default="auto",
        help=f"auto | cpu | cuda | cuda:N (default auto: a GPU when there is one){help_extra}",
    )


def add_threads_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--threads N``: torch's CPU threads (default: torch's choice); apply with :func:`apply_threads`."""
    parser.add_argument(
        "--threads", type=positive_int, metavar="N", help="CPU threads for torch (default: torch's choice)"
    )


def add_precision_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup, help_extra: str = "") -> None:
    """``--precision``, with the meaning of :func:`nmt.inference.translator.decoding_dtype`."""
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="bf16/fp16: matrix products under autocast, states and softmax float32 "
        "(fp16 needs a GPU); int8: the decoder's products on int8 kernels, CPU only "
        f"(default fp32){help_extra}",
    )


def add_running_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup, precision: bool = True) -> None:
    """``--device``, ``--threads`` and (for decoding tools) ``--precision``."""
    add_device_argument(parser)
    add_threads_argument(parser)
    if precision:
        add_precision_argument(parser)


def apply_threads(threads: int | None) -> None:
    """Give torch ``threads`` CPU threads (None: leave torch's choice)."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def resolve_device(name: str):
    """The ``torch.device`` of a ``--device`` value; ValueError for a missing GPU or a bad name."""
    from nmt.inference.translator import resolve_device as resolve

    return resolve(name)


def iter_lines(stream: BinaryIO, name: str = "-") -> Iterator[str]:
    """Lines of UTF-8 input, one at a time, with the guarantees every command documents.

    Lines are split on ``\\n`` only (a ``\\r`` of a CRLF ending is dropped; U+2028, form
    feeds and other characters that ``str.splitlines`` breaks at stay inside their line), so
    the count matches ``wc -l`` plus an unterminated last line. Undecodable bytes become
    U+FFFD and a UTF-8 byte-order mark is dropped. Input that is not UTF-8 text at all
    (UTF-16 or UTF-32, compressed, binary) raises :class:`~nmt.data.input_check.NotTextError`
    before the first line is yielded, so before anything is written. A terminal is read as
    typed, unchecked: typed text cannot be UTF-16, and the check would wait for input.

    :param name: the file's path (``"-"``: standard input), for the error message.
    """
    if not stream.isatty():
        from nmt.data.input_check import checked_stream

        stream = checked_stream(stream, name)
    for raw in stream:
        line = raw.decode("utf-8", errors="replace")
        line = line[:-1] if line.endswith("\n") else line
        yield line[:-1] if line.endswith("\r") else line


@contextlib.contextmanager
def output_stream(path: str | Path | None) -> Iterator[TextIO]:
    """``path`` opened for UTF-8 text with ``\n`` line ends (closed afterwards), or standard
    output when it is None (left open)."""
    if path is None:
        yield sys.stdout
        return
    with open(path, "w", encoding="utf-8", newline="\n") as stream:
        yield stream


def utf8_stdout() -> None:
    """Standard output in UTF-8 whatever the locale (a character it cannot write becomes "?"
    instead of failing the command)."""
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(encoding="utf-8", errors="replace")


def read_lines(stream: BinaryIO, name: str = "-") -> list[str]:
    """Every line of ``stream`` (see :func:`iter_lines`)."""
    return list(iter_lines(stream, name))


def one_line(text: str) -> str:
    """``text`` safe as one field of one output line: TABs and line breaks become spaces."""
    return text.translate(LINE_BREAKS)


def write_json_report(report: dict, output: str | None = None) -> None:
    """Print ``report`` as indented JSON; also write it to ``output`` when given."""
    import json
    from pathlib import Path

    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    if output:
        Path(output).write_text(text + "\n", encoding="utf-8")


def error_message(error: BaseException) -> str:
    """An error's message on one line."""
    return " ".join(str(error).split()) or type(error).__name__


def user_error_types(extra: tuple[type[BaseException], ...] = ()) -> tuple[type[BaseException], ...]:
    """The exceptions that mean "the user can fix this" (exit 2), ``extra`` included.

    ``CheckpointError`` counts only once its module is loaded: before that, none can have
    been raised, and importing it here would import torch.
    """
    types: tuple[type[BaseException], ...] = (ValueError, OSError, *extra)
    checkpoint = sys.modules.get("nmt.inference.checkpoint")
    return (checkpoint.CheckpointError, *types) if checkpoint is not None else types


# The optional packages and the extra (pyproject.toml) that installs each: a command that
# needs one that is absent says which extra to install instead of a traceback.
EXTRA_OF_PACKAGE = {
    "fastapi": "serve",
    "uvicorn": "serve",
    "httpx": "serve",
    "gensim": "embeddings",
    "sklearn": "baselines",
    "kiwipiepy": "korean",
}


def missing_extra_message(error: ModuleNotFoundError) -> str | None:
    """ "needs X: pip install ..." for an optional package's absence; None for any other module."""
    package = (error.name or "").split(".")[0]
    extra = EXTRA_OF_PACKAGE.get(package)
    if extra is None:
        return None
    return f"this needs {package}, from the {extra!r} extra: pip install 'nmt[{extra}]' (or pip install -e '.[{extra}]' in a checkout)"


def run_command(prog: str, action: Callable[[], int | None], user_errors: tuple[type[BaseException], ...] = ()) -> int:
    """Run ``action`` and turn its failure into one line on stderr and the exit code.

    A closed output pipe (``| head``) ends quietly with 0; Ctrl-C with 130.
    """
    try:
        return action() or EXIT_OK
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except ModuleNotFoundError as error:
        message = missing_extra_message(error)
        if message is None:
            raise  # a missing dependency of nmt itself: the traceback is what helps
        print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
        return EXIT_USER_ERROR
    except Exception as error:
        status = EXIT_USER_ERROR if isinstance(error, user_error_types(user_errors)) else EXIT_RUNTIME_ERROR
        if status == EXIT_RUNTIME_ERROR and not isinstance(error, RuntimeError):
            raise  # a bug: the traceback is what helps
        print(f"{prog}: error: {error_message(error)}", file=sys.stderr, flush=True)
        return status
