"""What every command shares (nmt/cli/common.py) and the one checkpoint loader (nmt/inference/loading.py):
fast --help, the shared options, one-line errors, and exit status 2 for a missing or wrong-task checkpoint."""

from __future__ import annotations

import importlib
import io
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nmt.cli.common import EXIT_USER_ERROR, PRECISIONS, iter_lines, one_line, read_lines
from nmt.data.input_check import NotTextError
from nmt.data.tokenizers import CharTokenizer
from nmt.inference.checkpoint import CheckpointError, atomic_save, make_payload
from nmt.inference.loading import WrongTaskError, load_model

COMMANDS = (
    "translate",
    "generate",
    "classify",
    "evaluate",
    "evaluate_classifier",
    "ensemble_classifiers",
    "export",
    "average",
    "serve",
    "query_vectors",
    "compare_runs",
    "compare_embeddings",
)

BILM_MODEL = {"embed_size": 8, "hidden_size": 8, "layers": 1, "cell": "lstm", "dropout": 0.0}


def bilm_checkpoint(path: Path) -> Path:
    """A small but complete task=bilm checkpoint: a task no tool except the biLM transfer takes."""
    from nmt.models.bilm import BidirectionalLanguageModel

    tokenizer = CharTokenizer.train(["abc"])
    network = BidirectionalLanguageModel.from_config(BILM_MODEL, tokenizer.vocab_size)
    payload = make_payload("bilm", {"model": BILM_MODEL}, {"text": tokenizer})
    atomic_save({"nmt": payload, "state_dict": {f"model.{k}": v for k, v in network.state_dict().items()}}, path)
    return path


def command_arguments(command: str, checkpoint: Path, tmp_path: Path) -> list[str]:
    """Arguments that make ``command`` open ``checkpoint`` (and nothing else first)."""
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("a\tb\n", encoding="utf-8")
    return {
        "translate": [str(checkpoint), "--input", str(pairs), "--device", "cpu"],
        "generate": [str(checkpoint), "--prompt", "a", "--device", "cpu"],
        "classify": [str(checkpoint), "--input", str(pairs), "--device", "cpu"],
        "evaluate": [str(checkpoint), "--pairs", str(pairs), "--device", "cpu"],
        "evaluate_classifier": [str(checkpoint)],
        "ensemble_classifiers": [str(checkpoint), str(checkpoint)],
        "export": [str(checkpoint), str(tmp_path / "out.pt")],
        "average": [str(checkpoint), str(checkpoint), "--output", str(tmp_path / "avg.ckpt")],
        "serve": [str(checkpoint), "--device", "cpu", "--port", "0"],
    }[command]


def run_main(command: str, argv: list[str]) -> int:
    threads = torch.get_num_threads()
    try:
        return importlib.import_module(f"nmt.cli.{command}").main(argv)
    finally:
        torch.set_num_threads(threads)


# -- the one loader ------------------------------------------------------------------------------


def test_load_model_rebuilds_the_network_in_eval_mode_with_its_tokenizer(tmp_path):
    loaded = load_model(bilm_checkpoint(tmp_path / "bilm.ckpt"), task="bilm")
    assert loaded.task == "bilm" and not loaded.model.training
    assert loaded.tokenizer.vocab_size == loaded.tokenizers["text"].vocab_size and loaded.labels == []
    for key, value in loaded.model.state_dict().items():
        torch.testing.assert_close(value, loaded.weights()[key])


def test_a_wrong_task_is_one_line_naming_both_tasks(tmp_path):
    path = bilm_checkpoint(tmp_path / "bilm.ckpt")
    with pytest.raises(WrongTaskError, match=r"bilm.ckpt is a 'bilm' checkpoint, not a 'translation' one$"):
        load_model(path, task="translation")
    with pytest.raises(WrongTaskError, match=r"not a 'classification' or 'baseline' one$"):
        load_model(path, task=("classification", "baseline"))
    assert load_model(path).task == "bilm"  # no task asked: any


def test_weights_that_do_not_fit_the_config_are_a_checkpoint_error(tmp_path):
    path = bilm_checkpoint(tmp_path / "bilm.ckpt")
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["nmt"]["config"]["model"]["hidden_size"] = 16
    atomic_save(checkpoint, path)
    with pytest.raises(CheckpointError, match="incomplete or inconsistent checkpoint"):
        load_model(path, task="bilm")


# -- exit codes: the same in every command -------------------------------------------------------


NEEDS_SERVE = pytest.mark.needs("fastapi", "uvicorn")  # the serve extra, imported before the checkpoint is read


@pytest.mark.parametrize(
    "command",
    [
        "translate",
        "generate",
        "classify",
        "evaluate",
        "evaluate_classifier",
        "ensemble_classifiers",
        "export",
        "average",
        pytest.param("serve", marks=NEEDS_SERVE),
    ],
)
def test_a_missing_checkpoint_exits_2_in_one_line(command, tmp_path, capsys):
    missing = tmp_path / "missing.ckpt"
    assert run_main(command, command_arguments(command, missing, tmp_path)) == EXIT_USER_ERROR
    captured = capsys.readouterr()
    [line] = captured.err.strip().splitlines()
    assert "error: checkpoint not found" in line and "missing.ckpt" in line and captured.out == ""


@pytest.mark.parametrize(
    "command, wanted",
    [
        ("translate", "'translation'"),
        ("generate", "'lm'"),
        ("classify", "'classification' or 'baseline'"),
        ("evaluate", "'translation'"),
        ("evaluate_classifier", "'classification' or 'baseline'"),
        ("ensemble_classifiers", "'classification' or 'baseline'"),
        pytest.param("serve", "'translation' or 'classification'", marks=NEEDS_SERVE),
    ],
)
def test_a_wrong_task_checkpoint_exits_2_with_the_same_wording(command, wanted, tmp_path, capsys):
    path = bilm_checkpoint(tmp_path / "bilm.ckpt")
    assert run_main(command, command_arguments(command, path, tmp_path)) == EXIT_USER_ERROR
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.endswith(f"error: {path} is a 'bilm' checkpoint, not a {wanted} one")


def test_a_damaged_checkpoint_exits_2(tmp_path, capsys):
    damaged = tmp_path / "damaged.ckpt"
    damaged.write_bytes(b"PK\x03\x04 not really a zip")
    assert run_main("classify", command_arguments("classify", damaged, tmp_path)) == EXIT_USER_ERROR
    assert "cannot read checkpoint" in capsys.readouterr().err


# -- fast --help, shared options -------------------------------------------------------------------


def test_help_of_every_command_does_not_import_torch():
    program = (
        "import contextlib, importlib, io, sys\n"
        f"for command in {COMMANDS!r}:\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "        importlib.import_module(f'nmt.cli.{command}').main(['--help'])\n"
        "    assert 'torch' not in sys.modules, command\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("command", ["translate", "generate", "classify", "evaluate", "serve"])
def test_device_and_threads_mean_the_same_in_every_running_command(command, capsys):
    module = importlib.import_module(f"nmt.cli.{command}")
    with pytest.raises(SystemExit) as exit_info:
        module.main(["model.ckpt", "--threads", "0", "--device", "cpu"])
    [line] = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == EXIT_USER_ERROR and "--threads: must be >= 1, got 0" in line


@pytest.mark.parametrize(
    "command, checkpoints", [("evaluate_classifier", ["a.ckpt"]), ("ensemble_classifiers", ["a.ckpt", "b.ckpt"])]
)
def test_threads_is_checked_in_the_classifier_reports_too(command, checkpoints, capsys):
    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(f"nmt.cli.{command}").main([*checkpoints, "--threads", "0"])
    assert exit_info.value.code == EXIT_USER_ERROR
    assert "--threads: must be >= 1" in capsys.readouterr().err


def test_precision_names_are_those_the_translator_knows():
    from nmt.inference.translator import DECODING_PRECISIONS

    assert tuple(DECODING_PRECISIONS) == PRECISIONS


@pytest.mark.parametrize("command", ["translate", "evaluate", "serve"])
def test_an_unknown_precision_is_refused_at_parse_time(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(f"nmt.cli.{command}").main(["model.ckpt", "--precision", "fp8"])
    assert exit_info.value.code == EXIT_USER_ERROR and "invalid choice: 'fp8'" in capsys.readouterr().err


# -- input and output lines ----------------------------------------------------------------------


def test_lines_split_on_newline_only_with_bom_crlf_and_bad_bytes_handled():
    data = b"\xef\xbb\xbfa\x0cb\xe2\x80\xa8c\r\nbad \xff\n\nlast"
    assert read_lines(io.BytesIO(data)) == ["a\x0cb\u2028c", "bad \ufffd", "", "last"]
    assert read_lines(io.BytesIO(b"")) == []


def test_utf16_input_is_refused_before_the_first_line():
    lines = iter_lines(io.BytesIO("one\ntwo\n".encode("utf-16")), "in.txt")
    with pytest.raises(NotTextError, match="in.txt looks like UTF-16"):
        next(lines)


def test_output_fields_hold_no_tab_or_line_break():
    assert one_line("a\tb\nc\r\u2028d\x85e") == "a b c  d e"


@pytest.mark.parametrize("module", ["nmt.train", "nmt.embeddings"])
def test_help_of_the_hydra_commands_does_not_import_torch(module):
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", module, "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "torch" not in imported and "lightning" not in imported


def test_a_missing_optional_package_names_its_extra_in_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # "import uvicorn" now raises ModuleNotFoundError
    serve = importlib.import_module("nmt.cli.serve")
    assert serve.main([str(tmp_path / "model.ckpt")]) == EXIT_USER_ERROR
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert "uvicorn" in err and "pip install 'nmt[serve]'" in err


def test_a_missing_module_that_is_no_optional_extra_keeps_its_traceback():
    from nmt.cli.common import run_command

    def broken() -> int:
        raise ModuleNotFoundError("No module named 'numpyy'", name="numpyy")

    with pytest.raises(ModuleNotFoundError):
        run_command("nmt-x", broken)
