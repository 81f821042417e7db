"""``python -m nmt.translate``: one output line per input line, whatever the input; clear errors."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nmt.cli.common import read_lines
from nmt.cli.translate import format_translation, main
from nmt.data.input_check import SNIFF_BYTES, text_problem
from nmt.decoding import DecodingOptions
from nmt.inference.translator import TranslatedHypothesis, Translation, Translator

REPO = Path(__file__).resolve().parents[2]
# One thread: the tiny model gains nothing from more, and spinning threads hurt a shared CPU.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONIOENCODING": "utf-8"}

HOSTILE_LINES = [
    "The cat sees a dog.",
    "",
    "   \t  ",
    "the cat " * 1250,  # 10,000 characters, hundreds of tokens
    "x" * 10_000,
    "a\x00b\x07c\x1bd\x0ce\x0bf\x1cg\x85h\u2028i\u2029j",  # controls, incl. str.splitlines breaks
    "\U0001f600\U0001f389 the dog \U0001f436",
    "你好，世界",
    "안녕하세요",
    "مرحبا بالعالم",
    "\ufeff\u200b",
    "A big red house.",
    "\r",
    "The cat sees a dog.",
]


def hostile_bytes() -> bytes:
    text = "\n".join(HOSTILE_LINES) + "\n"
    return text.encode("utf-8") + b"\xff\xfe invalid utf-8\n" + b"a small cat"  # no final newline


def translate_cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nmt.translate", *map(str, args)],
        input=stdin,
        capture_output=True,
        cwd=REPO,
        env=ENV,
        timeout=300,
    )


@pytest.fixture(scope="module")
def translator(tiny_translation_checkpoint) -> Translator:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield Translator.from_checkpoint(tiny_translation_checkpoint, device="cpu")
    torch.set_num_threads(threads)


def test_hostile_input_gives_exactly_one_line_per_input_line_in_order(tiny_translation_checkpoint, translator):
    result = translate_cli(tiny_translation_checkpoint, "--batch-size", "3", stdin=hostile_bytes())
    assert result.returncode == 0, result.stderr.decode()
    output = result.stdout.decode("utf-8").split("\n")
    assert output[-1] == ""  # every line is terminated
    output = output[:-1]
    inputs = HOSTILE_LINES + ["\ufffd\ufffd invalid utf-8", "a small cat"]
    assert len(output) == len(inputs)
    # Order: each line is what that line alone translates to.
    assert output == [translator.translate([line])[0].text for line in inputs]
    assert output[0] == output[13] == "Le chat voit un chien !"
    for empty in (1, 2, 10, 12):
        assert output[empty] == ""
    stderr = result.stderr.decode()
    assert "line 4:" in stderr and "truncated" in stderr
    assert "Traceback" not in stderr


def test_n_best_format_files_and_attention_plots(tiny_translation_checkpoint, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("The cat sees a dog.\n\nA big red house.\n", encoding="utf-8")
    target, plots = tmp_path / "out.txt", tmp_path / "plots"
    result = translate_cli(
        tiny_translation_checkpoint,
        "--strategy",
        "beam",
        "--beam-size",
        "4",
        "--n-best",
        "3",
        "--input",
        source,
        "--output",
        target,
        "--plot-attention",
        plots,
    )
    assert result.returncode == 0, result.stderr.decode()
    lines = target.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and len(lines) == 4
    assert lines[1] == ""
    for line in (lines[0], lines[2]):
        fields = line.split("\t")
        assert len(fields) == 6
        scores = [float(score) for score in fields[1::2]]
        assert scores == sorted(scores, reverse=True)
    assert lines[0].split("\t")[0] == "Le chat voit un chien !"
    assert sorted(p.name for p in plots.iterdir()) == ["line-000001.png", "line-000003.png"]


def write_corrupt(kind: str, directory: Path, good: Path) -> Path:
    path = directory / f"{kind}.ckpt"
    if kind == "corrupt":
        path.write_bytes(b"this is not a checkpoint")
    elif kind == "truncated":
        path.write_bytes(Path(good).read_bytes()[:5000])
    return path  # "missing": not written


@pytest.mark.parametrize(
    "case", ["missing checkpoint", "corrupt checkpoint", "cuda without cuda", "fp16 on a cpu", "unknown option"]
)
def test_cli_errors_are_one_line_with_a_non_zero_exit(case, tiny_translation_checkpoint, tmp_path):
    checkpoint, args = tiny_translation_checkpoint, []
    if case.endswith("checkpoint"):
        checkpoint = write_corrupt(case.split()[0], tmp_path, tiny_translation_checkpoint)
    elif case == "cuda without cuda":
        if torch.cuda.is_available():
            pytest.skip("CUDA is available here")
        args = ["--device", "cuda"]
    elif case == "fp16 on a cpu":
        args = ["--device", "cpu", "--precision", "fp16"]
    else:
        args = ["--beam-width", "3"]
    result = translate_cli(checkpoint, *args, stdin=b"The cat.\n")
    stderr = result.stderr.decode().strip()
    assert result.returncode != 0 and result.stdout == b""
    assert len(stderr.splitlines()) == 1 and "error" in stderr, stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--beam-size", "many"],
        ["--n-best", "3"],
        ["--strategy", "sample", "--top-p", "2"],
        ["--strategy", "beam", "--beam-size", "2", "--n-best", "3"],
        ["--batch-size", "0"],
        ["--strategy", "beam", "--beam-patience", "soon"],
        ["--strategy", "beam", "--beam-patience", "-1"],
        ["--no-repeat-ngram-size", "-1"],
        ["--no-repeat-ngram-size", "two"],
        ["--repetition-penalty", "0"],
        ["--coverage-penalty", "0.2"],
        ["--strategy", "beam", "--coverage-penalty", "-1"],
    ],
)
def test_bad_option_values_are_one_line_errors(args, tiny_translation_checkpoint, capsys):
    try:
        status = main([str(tiny_translation_checkpoint), *args])
    except SystemExit as exit:  # argparse
        status = exit.code
    captured = capsys.readouterr()
    assert status != 0 and captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1 and "error" in captured.err


def test_truncated_checkpoint_is_a_one_line_error(tiny_translation_checkpoint, tmp_path, capsys):
    checkpoint = write_corrupt("truncated", tmp_path, tiny_translation_checkpoint)
    assert main([str(checkpoint)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot read checkpoint" in err


# -- in-process details ------------------------------------------------------------------------


def test_read_lines_splits_on_newline_only():
    data = "a\x0cb\u2028c\r\nd\x85e\n\nlast".encode() + b"\xff"
    assert read_lines(io.BytesIO(data)) == ["a\x0cb\u2028c", "d\x85e", "", "last\ufffd"]
    assert read_lines(io.BytesIO(b"")) == []
    assert read_lines(io.BytesIO(b"\n")) == [""]


def test_format_translation_joins_n_best_with_tabs_and_keeps_one_line():
    translation = Translation(
        "x", [TranslatedHypothesis("un\tdeux\nx", -1.23456, -2.0), TranslatedHypothesis("trois", -2.5, -3.0)]
    )
    assert format_translation(translation, 1) == "un deux x"
    assert format_translation(translation, 2) == "un deux x\t-1.2346\ttrois\t-2.5000"
    assert format_translation(Translation("", []), 3) == ""


def test_interactive_mode_translates_line_by_line(translator, monkeypatch, capsys, tmp_path):
    from nmt.cli import translate

    monkeypatch.setattr(sys, "stdin", io.StringIO("The cat sees a dog.\n\n"))
    out = io.StringIO()
    translate._interactive(translator, DecodingOptions(), out, plot_dir=tmp_path)
    assert out.getvalue() == "Le chat voit un chien !\n\n"
    assert "> " in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["line-000001.png"]


def test_empty_input_gives_empty_output(tiny_translation_checkpoint, tmp_path):
    source, target = tmp_path / "empty.txt", tmp_path / "out.txt"
    source.write_bytes(b"")
    assert main([str(tiny_translation_checkpoint), "--input", str(source), "--output", str(target)]) == 0
    assert target.read_bytes() == b""


def test_translator_warns_once_per_truncated_line(translator):
    messages: list[str] = []
    translator.warn = messages.append
    try:
        results = translator.translate(["the cat " * 300, "a dog", "the dog " * 300], first_line=10)
    finally:
        from nmt.inference.translator import warn_on_stderr

        translator.warn = warn_on_stderr
    assert [m.split(":")[0] for m in messages] == ["line 10", "line 12"]
    assert [r.truncated for r in results] == [True, False, True]


# -- input that is not UTF-8 text -----------------------------------------------------------------

NOT_TEXT = {
    "UTF-16 file": ("The cat sees a dog.\n".encode("utf-16"), "UTF-16LE (byte-order mark FF FE)"),
    "UTF-16 without BOM": ("The cat sees a dog.\nA red house.\n".encode("utf-16-be"), "UTF-16BE without"),
    "gzip file": (gzip.compress(b"The cat sees a dog.\n"), "gzip-compressed data"),
}


@pytest.mark.parametrize("via", ["--input", "stdin"])
@pytest.mark.parametrize("data, what", NOT_TEXT.values(), ids=NOT_TEXT.keys())
def test_input_that_is_not_utf8_text_is_refused_with_the_fix(
    data, what, via, tiny_translation_checkpoint, tmp_path, monkeypatch, capsys
):
    args = [str(tiny_translation_checkpoint)]
    if via == "--input":
        source = tmp_path / "input.txt"
        source.write_bytes(data)
        args += ["--input", str(source)]
    else:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.strip().splitlines()
    named = str(tmp_path / "input.txt") if via == "--input" else "standard input"
    assert line.startswith(f"python -m nmt.translate: error: {named} ") and what in line, line
    assert ("iconv" if "UTF" in what else "gunzip") in line


def test_utf8_byte_order_mark_is_dropped_not_translated():
    assert read_lines(io.BytesIO(b"\xef\xbb\xbfThe cat.\nA dog.")) == ["The cat.", "A dog."]


# -- property: one line out per line in, whatever the lines ---------------------------------------


def count_lines(data: bytes) -> int:
    """Lines as ``wc -l`` counts them, plus an unterminated last one. A leading UTF-8
    byte-order mark is not text: a file holding only "\\ufeff" is empty."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


line_text = st.one_of(
    st.text(st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)), max_size=40),
    st.sampled_from(["", " ", "\t", "\r", "\u00a0\u2028", "\ufeff", "\x00", "\x07\x1b", "\U0001f600\U0001f389"]),
    st.lists(st.sampled_from(["the", "cat", "dog", "sees", "a", "red", "house", "."]), max_size=8).map(" ".join),
    st.text(st.sampled_from("the cat dog "), min_size=400, max_size=1500),  # longer than the model's limit
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(line_text, max_size=8), final_newline=st.booleans())
def test_any_lines_give_exactly_one_output_line_each(tiny_translation_checkpoint, lines, final_newline):
    data = "\n".join(lines).encode("utf-8") + (b"\n" if final_newline and lines else b"")
    expected = count_lines(data)
    with tempfile.TemporaryDirectory() as directory:
        source, target = Path(directory) / "in.txt", Path(directory) / "out.txt"
        source.write_bytes(data)
        with contextlib.redirect_stderr(io.StringIO()) as err:
            status = main(
                [str(tiny_translation_checkpoint), "--input", str(source), "--output", str(target), "--batch-size", "3"]
            )
        if text_problem(data[:SNIFF_BYTES]) is not None:  # e.g. mostly control characters
            assert status == 2 and "not UTF-8 text" in err.getvalue()
            return
        assert status == 0, err.getvalue()
        assert len(read_lines(io.BytesIO(data))) == expected
        output = target.read_text(encoding="utf-8")
    assert output.count("\n") == expected and (output == "" or output.endswith("\n"))


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_bf16_decoding_runs_the_output_layer_in_bf16_and_keeps_one_line_per_input(
    precision, tiny_translation_checkpoint
):
    translator = Translator.from_checkpoint(tiny_translation_checkpoint, device="cpu", precision=precision)
    seen = []
    translator.model.output_layer.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    lines = ["The cat sees a dog.", "", "A big red house."]
    for options in (DecodingOptions(), DecodingOptions(strategy="beam", beam_size=3, n_best=2)):
        translations = translator.translate(lines, options, batch_size=2)
        assert len(translations) == 3 and translations[1].hypotheses == []
        for translation in (translations[0], translations[2]):
            assert all(torch.isfinite(torch.tensor(h.log_prob)) for h in translation.hypotheses)
    assert set(seen) == {torch.bfloat16 if precision == "bf16" else torch.float32}


def test_unknown_or_cpu_fp16_precision_is_refused(tiny_translation_checkpoint):
    with pytest.raises(ValueError, match="fp16 decoding needs a GPU"):
        Translator.from_checkpoint(tiny_translation_checkpoint, device="cpu", precision="fp16")
    with pytest.raises(ValueError, match="unknown precision 'int4': use fp32, bf16, fp16, int8"):
        Translator.from_checkpoint(tiny_translation_checkpoint, device="cpu", precision="int4")


@pytest.mark.parametrize("patience, expected", [("none", None), ("None", None), ("0", 0), ("5", 5)])
def test_beam_patience_option_reaches_the_decoder(patience, expected):
    from nmt.cli.translate import build_parser, decoding_options

    args = build_parser().parse_args(["model.ckpt", "--strategy", "beam", "--beam-patience", patience])
    assert decoding_options(args).beam_patience == expected
    assert decoding_options(build_parser().parse_args(["model.ckpt"])).beam_patience == 2


def test_repetition_and_coverage_options_reach_the_decoder():
    from nmt.cli.translate import build_parser, decoding_options

    args = ["model.ckpt", "--strategy", "beam", "--no-repeat-ngram-size", "3", "--repetition-penalty", "1.2"]
    options = decoding_options(build_parser().parse_args([*args, "--coverage-penalty", "0.2"]))
    assert (options.no_repeat_ngram_size, options.repetition_penalty, options.coverage_penalty) == (3, 1.2, 0.2)
    defaults = decoding_options(build_parser().parse_args(["model.ckpt"]))
    assert (defaults.no_repeat_ngram_size, defaults.repetition_penalty, defaults.coverage_penalty) == (0, 1.0, 0.0)


def test_prefix_starts_every_translation_and_decoding_continues(translator):
    lines = ["The cat sees a dog.", "A big red house.", ""]
    prefix_ids = translator.target_tokenizer.encode("Le chien")
    for strategy in ("greedy", "beam", "sample"):
        options = DecodingOptions(strategy=strategy, beam_size=3)
        results = translator.translate(lines, options, prefixes=["Le chien", "Le chien", "Le chien"])
        for translation in results[:2]:
            pieces = translation.hypotheses[0].pieces
            assert pieces[: len(prefix_ids)] == translator.target_tokenizer.id_to_piece(prefix_ids)
            assert translation.text.startswith("Le chien")
        assert results[2].hypotheses == []  # an empty line stays empty
    free = translator.translate(lines[:2])
    assert [t.text for t in translator.translate(lines[:2], prefixes=["", ""])] == [t.text for t in free]


def test_prefix_flags_of_the_cli(tiny_translation_checkpoint, tmp_path):
    fixed = translate_cli(tiny_translation_checkpoint, "--prefix", "Le chien", stdin=b"The cat sees a dog.\nA cat.\n")
    assert fixed.returncode == 0, fixed.stderr
    assert all(line.startswith("Le chien") for line in fixed.stdout.decode().splitlines())
    tsv = b"The cat sees a dog.\tUn\nA cat.\n"
    per_line = translate_cli(tiny_translation_checkpoint, "--prefix-from-input", "--strategy", "beam", stdin=tsv)
    assert per_line.returncode == 0, per_line.stderr
    first, second = per_line.stdout.decode().splitlines()
    assert first.startswith("Un") and "\t" not in second
    too_long = translate_cli(tiny_translation_checkpoint, "--prefix", "chien " * 40, stdin=b"A cat.\n")
    assert too_long.returncode == 2
    message = too_long.stderr.decode().strip()
    assert "\n" not in message and "line 1: the prefix has" in message and "raise --max-len-ratio" in message
    both = translate_cli(tiny_translation_checkpoint, "--prefix", "Le", "--prefix-from-input", stdin=b"A cat.\n")
    assert both.returncode == 2 and "not allowed with" in both.stderr.decode()


def holds_phrase(translator, pieces: list[str], phrase: str) -> bool:
    """Whether ``phrase``, tokenised alone with the target tokenizer, is a run of ``pieces``."""
    wanted = translator.target_tokenizer.pieces(phrase)
    return any(pieces[i : i + len(wanted)] == wanted for i in range(len(pieces) - len(wanted) + 1))


def test_constraints_appear_in_every_translation(translator):
    lines = ["The cat sees a dog.", "A big red house.", ""]
    constraints = [["maison"], ["le chien", "petit"], ["chat"]]
    options = DecodingOptions(strategy="beam", beam_size=4, n_best=2)
    results = translator.translate(lines, options, constraints=constraints)
    for translation, phrases in zip(results[:2], constraints):
        assert len(translation.hypotheses) == 2
        for hyp in translation.hypotheses:
            assert all(holds_phrase(translator, hyp.pieces, phrase) for phrase in phrases), hyp.pieces
            assert all(phrase in hyp.text for phrase in phrases)
    assert results[2].hypotheses == []  # an empty line stays empty
    free = translator.translate(lines[:2], options)
    assert [t.text for t in translator.translate(lines[:2], options, constraints=[[], []])] == [t.text for t in free]
    with_prefix = translator.translate(lines[:1], options, prefixes=["Un"], constraints=[["maison"]])
    assert with_prefix[0].text.startswith("Un") and "maison" in with_prefix[0].text


@pytest.mark.parametrize(
    "constraint, message",
    [
        ("  ", "line 1: the constraint '  ' is empty once normalised"),
        ("日本", "line 1: the constraint '日本' holds a character the target vocabulary lacks"),
        ("chien " * 40, "line 1: the constraints have \\d+ target tokens, more than the output limit of"),
    ],
)
def test_constraints_that_cannot_be_met_are_one_line_errors(translator, constraint, message):
    with pytest.raises(ValueError, match=message):
        translator.translate(["A cat."], DecodingOptions(strategy="beam"), constraints=[[constraint]])


def test_constraint_flags_of_the_cli(tiny_translation_checkpoint, translator):
    beam = ("--strategy", "beam", "--beam-size", "3")
    fixed = translate_cli(
        tiny_translation_checkpoint,
        *beam,
        "--constraint",
        "maison",
        "--constraint",
        "rouge",
        stdin=b"The cat sees a dog.\nA cat.\n",
    )
    assert fixed.returncode == 0, fixed.stderr
    assert all("maison" in line and "rouge" in line for line in fixed.stdout.decode().splitlines())
    tsv = b"The cat sees a dog.\tmaison\tgrand\nA cat.\n"
    per_line = translate_cli(
        tiny_translation_checkpoint, *beam, "--constraints-from-input", "--prefix", "Un", stdin=tsv
    )
    assert per_line.returncode == 0, per_line.stderr
    first, second = per_line.stdout.decode().splitlines()
    assert first.startswith("Un") and "maison" in first and "grand" in first
    options = DecodingOptions(strategy="beam", beam_size=3)
    assert second == translator.translate(["A cat."], options, prefixes=["Un"])[0].text  # no TAB: no constraints
    greedy = translate_cli(tiny_translation_checkpoint, "--constraint", "maison", stdin=b"A cat.\n")
    assert greedy.returncode == 2
    assert "lexical constraints need --strategy beam, not greedy" in greedy.stderr.decode()
    too_long = translate_cli(tiny_translation_checkpoint, *beam, "--constraint", "chien " * 40, stdin=b"A cat.\n")
    message = too_long.stderr.decode().strip()
    assert too_long.returncode == 2 and "\n" not in message
    assert "line 1: the constraints have" in message and "raise --max-len-ratio" in message
    both = translate_cli(
        tiny_translation_checkpoint, *beam, "--constraints-from-input", "--prefix-from-input", stdin=b"A cat.\n"
    )
    assert both.returncode == 2 and "both read TAB-separated fields" in both.stderr.decode()
    mixed = translate_cli(
        tiny_translation_checkpoint, *beam, "--constraint", "le", "--constraints-from-input", stdin=b"A cat.\n"
    )
    assert mixed.returncode == 2 and "not allowed with" in mixed.stderr.decode()
