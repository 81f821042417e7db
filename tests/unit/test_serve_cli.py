"""``python -m nmt.serve``: the command line, as a user starts it: one-line errors for bad
options and checkpoints, and a real server on a free loopback port that answers and stops
cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from conftest import REPO  # noqa: E402
from nmt.cli.serve import PROG, listen, main  # noqa: E402


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--port", "70000", "x.ckpt"], "--port must be in 0..65535, got 70000"),
        (["--max-batch", "0", "x.ckpt"], "--max-batch must be >= 1, got 0"),
        (["--max-wait-ms", "-1", "x.ckpt"], "--max-wait-ms must be in 0..10000"),
        (["--max-queue", "10", "x.ckpt"], "--max-queue (10) must be >= --max-texts (64)"),
        (["--max-chars", "many", "x.ckpt"], "--max-chars: invalid int value: 'many'"),
        ([], "the following arguments are required: CKPT"),
    ],
)
def test_bad_options_are_one_line_and_status_2(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    error = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and message in error and len(error.splitlines()) == 1


def test_a_missing_or_foreign_file_is_one_line_and_status_2(tmp_path, capsys):
    assert main([str(tmp_path / "missing.ckpt"), "--port", "0"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"{PROG}: error: ") and "missing.ckpt" in error and len(error.splitlines()) == 1
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    assert main([str(tmp_path / "notes.txt"), "--port", "0"]) == 2
    assert "notes.txt" in capsys.readouterr().err


def test_int8_is_refused_on_a_gpu_before_any_model_loads(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr("nmt.inference.translator.resolve_device", lambda device: torch.device("cuda"))
    assert main([str(tmp_path / "missing.ckpt"), "--precision", "int8", "--port", "0"]) == 2
    error = capsys.readouterr().err.strip()
    assert "int8 decoding runs on a CPU" in error and "missing.ckpt" not in error


def test_translators_load_in_the_precision_asked_for(tiny_translation_checkpoint):
    from nmt.ops.quantization import Int8Linear, int8_supported
    from nmt.serve.models import ModelSpec, load_models

    if not int8_supported():
        pytest.skip("this PyTorch build has no oneDNN int8 kernels")
    [served] = load_models([ModelSpec.parse(str(tiny_translation_checkpoint))], "cpu", precision="int8").values()
    [exact] = load_models([ModelSpec.parse(str(tiny_translation_checkpoint))], "cpu").values()
    assert isinstance(served.translator.model.output_layer, Int8Linear)
    assert served.describe()["precision"] == "int8" and exact.describe()["precision"] == "fp32"
    assert served.describe()["parameters"] == exact.describe()["parameters"]  # the network's, not the packed copy's


def test_the_same_name_twice_is_refused(tiny_classification_checkpoint, capsys):
    assert main([f"a={tiny_classification_checkpoint}", f"a={tiny_classification_checkpoint}", "--port", "0"]) == 2
    assert "the model name 'a' is given twice" in capsys.readouterr().err


def test_a_port_in_use_is_one_line_and_status_2(tiny_classification_checkpoint, capsys):
    taken = listen("127.0.0.1", 0)
    try:
        port = taken.getsockname()[1]
        assert main([str(tiny_classification_checkpoint), "--port", str(port)]) == 2
    finally:
        taken.close()
    error = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in error and "choose another --port" in error


def test_the_server_starts_answers_and_stops_on_sigterm(tiny_translation_checkpoint, tiny_classification_checkpoint):
    command = [
        sys.executable,
        "-m",
        "nmt.serve",
        f"toy={tiny_translation_checkpoint}",
        str(tiny_classification_checkpoint),
        "--port",
        "0",
        "--threads",
        "1",
    ]
    server = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [server.stdout.readline() for _ in range(3)]
        assert lines[0].startswith("toy: translation, best.ckpt")
        assert lines[1].startswith("sms_bilstm_attn: classification, classifier.ckpt")
        assert lines[2].startswith("serving 2 models at http://127.0.0.1:"), server.stderr.read()
        url = lines[2].split()[-1]
        assert httpx.get(f"{url}health", timeout=30).json()["models"] == ["toy", "sms_bilstm_attn"]
        answer = httpx.post(f"{url}translate", json={"text": ["The cat.", "A dog."]}, timeout=60)
        assert answer.status_code == 200 and len(answer.json()["translations"]) == 2
        assert httpx.post(f"{url}classify", json={"text": ""}, timeout=60).status_code == 422
        server.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal so that its parent sees it
        assert server.wait(30) in (0, -signal.SIGTERM)
        assert "Finished server process" in server.stderr.read()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(30)
        server.stdout.close()
        server.stderr.close()
