"""``python -m nmt.classify`` and ``nmt/cli/evaluate_classifier.py`` as a user runs them."""

from __future__ import annotations

import gzip
import importlib
import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from conftest import REPO, compose_config
from nmt.cli.classify import parse_args, run
from nmt.data.input_check import SNIFF_BYTES, NotTextError, text_problem
from nmt.data.tokenizers import CharTokenizer
from nmt.inference.checkpoint import PAYLOAD_KEY, make_payload
from nmt.models.classifier import TextClassifier

HOSTILE = (
    b"free prize, call now\n"
    b"\n"  # empty line
    b"   \t  \n"  # only whitespace
    b"bad \xff\xfe bytes\r\n"  # invalid UTF-8 and a CRLF ending
    b"unicode line\xe2\x80\xa8separator and \x0c form feed \x00 nul\n"
    b"<script>alert('x')</script> & \"quotes\"\n" + b"very long " * 5000 + b"\n"
    b"last line without newline"
)
N_HOSTILE_LINES = 8


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """An untrained SMS-format classifier saved in the real checkpoint format."""
    directory = tmp_path_factory.mktemp("clf")
    corpus = directory / "SMSSpamCollection"
    corpus.write_text("".join(f"{'spam' if i % 4 == 0 else 'ham'}\tmessage number {i}\n" for i in range(80)))
    cfg = compose_config(
        [
            "experiment=sms_bilstm_attn",
            f"data.path={corpus}",
            "data.max_tokens=50",
            "model.embed_size=8",
            "model.hidden_size=8",
        ]
    )
    config = OmegaConf.to_container(cfg, resolve=True)
    tokenizer = CharTokenizer.train(["free prize call now message number 0123456789"])
    torch.manual_seed(0)
    model = TextClassifier.from_config(config["model"], tokenizer.vocab_size, 2)
    payload = make_payload("classification", config, {"source": tokenizer})
    payload["labels"] = ["ham", "spam"]
    path = directory / "clf.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}, PAYLOAD_KEY: payload}, path)
    return path


def run_cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nmt.classify", *args], input=stdin, capture_output=True, cwd=REPO, timeout=120
    )


def test_one_output_line_per_input_line_for_hostile_input(checkpoint, tmp_path):
    html = tmp_path / "attention.html"
    result = run_cli(str(checkpoint), "--html", str(html), "--batch-size", "3", stdin=HOSTILE)
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.decode("utf-8").split("\n")
    assert lines[-1] == "" and len(lines) - 1 == N_HOSTILE_LINES
    for line in lines[:-1]:
        label, probability, _tokens = line.split("\t")
        assert label in ("ham", "spam") and 0.5 <= float(probability) <= 1.0
    assert lines[1].endswith("\t")  # an empty line lists no tokens

    page = html.read_text(encoding="utf-8")
    assert page.count('<div class="row">') == N_HOSTILE_LINES
    assert "<script>" not in page and "&lt;" in page and "&amp;" in page


def test_jsonl_from_an_input_file_matches_line_count(checkpoint, tmp_path):
    source = tmp_path / "texts.txt"
    source.write_bytes(HOSTILE)
    result = run_cli(str(checkpoint), "--input", str(source), "--format", "jsonl", "--top-k", "2")
    assert result.returncode == 0, result.stderr.decode()
    records = [json.loads(line) for line in result.stdout.decode("utf-8").splitlines()]
    assert len(records) == N_HOSTILE_LINES
    assert records[1]["top_tokens"] == [] and len(records[0]["top_tokens"]) == 2
    assert all(set(r) == {"label", "probability", "top_tokens"} for r in records)


def test_empty_input_gives_empty_output_and_success(checkpoint):
    result = run_cli(str(checkpoint))
    assert result.returncode == 0 and result.stdout == b""


def test_missing_checkpoint_is_a_clear_error_not_a_traceback(tmp_path):
    result = run_cli(str(tmp_path / "nope.ckpt"), stdin=b"text\n")
    assert result.returncode == 2
    assert b"checkpoint not found" in result.stderr and b"Traceback" not in result.stderr


def test_evaluate_classifier_reports_metrics_as_json(checkpoint):
    result = subprocess.run(
        [sys.executable, "-m", "nmt.cli.evaluate_classifier", str(checkpoint), "--split", "test"],
        capture_output=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads(result.stdout)
    assert report["split"] == "test" and report["labels"] == ["ham", "spam"]
    assert sum(map(sum, report["confusion_matrix"])) == report["n"] == 8
    assert set(report["per_class"]["spam"]) == {"precision", "recall", "f1", "support"}
    assert 0.0 <= report["accuracy"] <= 1.0 and 0.0 <= report["macro_f1"] <= 1.0


# -- one line per line, in order; option and input checks ---------------------------------------


def classify_in_process(checkpoint: Path, data: bytes, *options: str) -> str:
    out = io.StringIO()
    assert run(parse_args([str(checkpoint), *options]), io.BytesIO(data), out) == 0
    return out.getvalue()


def test_each_output_line_is_that_line_classified_alone(checkpoint):
    batched = classify_in_process(checkpoint, HOSTILE, "--batch-size", "3", "--format", "jsonl").splitlines()
    lines = HOSTILE.split(b"\n")
    alone = [classify_in_process(checkpoint, line + b"\n", "--format", "jsonl") for line in lines]
    assert len(batched) == len(alone) == N_HOSTILE_LINES
    for together, single in zip(batched, alone):
        together, single = json.loads(together), json.loads(single)
        assert together["label"] == single["label"]
        assert together["probability"] == pytest.approx(single["probability"], abs=1e-5)
        assert [t["token"] for t in together["top_tokens"]] == [t["token"] for t in single["top_tokens"]]
        assert [t["weight"] for t in together["top_tokens"]] == pytest.approx(
            [t["weight"] for t in single["top_tokens"]], abs=1e-5
        )


@pytest.mark.parametrize(
    "option, value",
    [("--batch-size", "0"), ("--batch-size", "-3"), ("--top-k", "-1"), ("--threads", "0"), ("--batch-size", "many")],
)
def test_bad_option_values_are_one_line_errors_with_exit_2(option, value, checkpoint, capsys):
    with pytest.raises(SystemExit) as exit:
        parse_args([str(checkpoint), option, value])
    assert exit.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("python -m nmt.classify: error:") and option in line


def test_batch_size_zero_is_refused_not_a_silent_empty_success(checkpoint):
    result = run_cli(str(checkpoint), "--batch-size", "0", stdin=b"free prize\n")
    assert result.returncode == 2 and result.stdout == b""
    assert b"--batch-size: must be >= 1, got 0" in result.stderr and len(result.stderr.splitlines()) == 1


def test_utf16_input_is_refused_with_the_fix_and_exit_2(checkpoint, tmp_path):
    data = "free prize, call now\nsee you at lunch\n".encode("utf-16")
    result = run_cli(str(checkpoint), stdin=data)
    assert result.returncode == 2 and result.stdout == b""
    [line] = result.stderr.decode().splitlines()
    assert line.startswith("python -m nmt.classify: error: standard input looks like UTF-16LE (byte-order mark FF FE)")
    assert "iconv -f UTF-16 -t UTF-8" in line
    source = tmp_path / "texts.txt"
    source.write_bytes(gzip.compress(b"free prize\n"))
    with pytest.raises(NotTextError, match=f"{source} looks like gzip-compressed data"):
        run(parse_args([str(checkpoint), "--input", str(source)]), io.BytesIO(), io.StringIO())


def test_utf8_byte_order_mark_is_dropped(checkpoint):
    text = b"free prize, call now\nsee you\n"
    assert classify_in_process(checkpoint, b"\xef\xbb\xbf" + text) == classify_in_process(checkpoint, text)


def test_evaluate_classifier_refuses_a_utf16_corpus_in_one_line(checkpoint, tmp_path, capsys):
    corpus = tmp_path / "SMSSpamCollection"
    corpus.write_bytes("".join(f"ham\tmessage {i}\n" for i in range(40)).encode("utf-16"))
    script = importlib.import_module("nmt.cli.evaluate_classifier")
    threads = torch.get_num_threads()
    try:
        assert script.main([str(checkpoint), "--data-path", str(corpus)]) == 2
    finally:
        torch.set_num_threads(threads)
    captured = capsys.readouterr()
    [line] = captured.err.strip().splitlines()
    assert captured.out == "" and f"error: {corpus} looks like UTF-16LE" in line and "iconv" in line


# -- property: one line out per line in, whatever the lines ---------------------------------------


def count_lines(data: bytes) -> int:
    """Lines as ``wc -l`` counts them, plus an unterminated last one. A leading UTF-8
    byte-order mark is not text: a file holding only "\\ufeff" is empty."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


line_text = st.one_of(
    st.text(st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)), max_size=40),
    st.sampled_from(["", " ", "\t", "\r", "\u00a0\u2028", "\ufeff", "\x00", "\x07\x1b", "\U0001f600\U0001f389"]),
    st.text(st.sampled_from("free prize call now "), min_size=300, max_size=3000),  # past data.max_tokens
)


@settings(max_examples=40, deadline=None)
@given(
    lines=st.lists(line_text, max_size=10),
    final_newline=st.booleans(),
    options=st.sampled_from([[], ["--format", "jsonl"], ["--batch-size", "1", "--top-k", "0"]]),
)
def test_any_lines_give_exactly_one_output_line_each(checkpoint, lines, final_newline, options):
    data = "\n".join(lines).encode("utf-8") + (b"\n" if final_newline and lines else b"")
    expected = count_lines(data)
    out = io.StringIO()
    try:
        status = run(parse_args([str(checkpoint), *options]), io.BytesIO(data), out)
    except NotTextError:  # e.g. mostly control characters
        assert text_problem(data[:SNIFF_BYTES]) is not None and out.getvalue() == ""
        return
    assert status == 0
    output = out.getvalue()
    assert output.count("\n") == expected and (output == "" or output.endswith("\n"))
    for line in output.splitlines():
        record = json.loads(line) if "jsonl" in options else dict(zip(("label", "probability"), line.split("\t")))
        assert record["label"] in ("ham", "spam") and 0.5 <= float(record["probability"]) <= 1.0
