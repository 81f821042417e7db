"""Scores and alignments: ``nmt-translate --output-format jsonl``, ``nmt-score`` and ``--replace-unk``."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nmt.cli.score import main as score_main
from nmt.cli.translate import main as translate_main
from nmt.data.tokenizers import EOS, UNK_ID, UNK_SURFACE, CharTokenizer
from nmt.decoding import Hypothesis
from nmt.decoding.beam import length_penalty
from nmt.inference.alignment import hard_alignment, pharaoh, replace_unknowns
from nmt.inference.scorer import Scorer
from nmt.inference.translator import Translator
from nmt.models.seq2seq import Seq2Seq

REPO = Path(__file__).resolve().parents[2]
LINES = ["The cat sees a dog.", "", "A big red house.", "the cat " * 300, "a small dog"]


@pytest.fixture(scope="module")
def checkpoint(tiny_translation_checkpoint) -> str:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield str(tiny_translation_checkpoint)
    torch.set_num_threads(threads)


def run_cli(main, args: list[str], stdin: str, monkeypatch, capsys) -> tuple[int, list[str], str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
    try:
        status = main([*args, "--device", "cpu"])
    except SystemExit as exit:  # an option error ends in the parser
        status = exit.code
    captured = capsys.readouterr()
    return status, captured.out.splitlines(), captured.err


def translate_jsonl(checkpoint, monkeypatch, capsys, *options: str, lines=LINES) -> list[dict]:
    status, out, err = run_cli(
        translate_main, [checkpoint, "--output-format", "jsonl", *options], "\n".join(lines) + "\n", monkeypatch, capsys
    )
    assert status == 0, err
    assert len(out) == len(lines)
    return [json.loads(line) for line in out]


def check_hypothesis(hyp: dict, source_tokens: list[str]) -> None:
    """The invariants of every hypothesis record."""
    assert len(hyp["token_log_probs"]) == len(hyp["tokens"]) == len(hyp["alignment"])
    assert sum(hyp["token_log_probs"]) == pytest.approx(hyp["log_prob"], abs=1e-4)
    assert all(0 <= j < len(source_tokens) for j in hyp["alignment"])
    words = len(hyp["tokens"]) - (hyp["tokens"][-1:] == [EOS])
    assert hyp["pharaoh"] == " ".join(f"{j}-{i}" for i, j in enumerate(hyp["alignment"][:words]))


# -- translate --output-format jsonl ---------------------------------------------------------------


def test_jsonl_greedy_gives_one_record_per_line_with_scores_and_alignment(checkpoint, monkeypatch, capsys):
    records = translate_jsonl(checkpoint, monkeypatch, capsys)
    status, text, _ = run_cli(translate_main, [checkpoint], "\n".join(LINES) + "\n", monkeypatch, capsys)
    assert [r["translation"] for r in records] == text
    empty = records[1]
    assert empty["hypotheses"] == [] and empty["translation"] == "" and empty["source_tokens"] == []
    assert [r["truncated"] for r in records] == [False, False, False, True, False]
    for record in records[:1] + records[2:]:
        [hyp] = record["hypotheses"]
        check_hypothesis(hyp, record["source_tokens"])
        assert hyp["score"] == hyp["log_prob"] and hyp["length_normalisation"] is None
        assert hyp["translation"] == record["translation"]


def test_jsonl_beam_n_best_scores_each_hypothesis_with_its_length_penalty(checkpoint, monkeypatch, capsys):
    records = translate_jsonl(
        checkpoint, monkeypatch, capsys, "--strategy", "beam", "--n-best", "3", "--length-penalty", "0.6"
    )
    for record in records[:1] + records[2:]:
        assert len(record["hypotheses"]) == 3
        assert record["translation"] == record["hypotheses"][0]["translation"]
        for hyp in record["hypotheses"]:
            check_hypothesis(hyp, record["source_tokens"])
            assert hyp["length_normalisation"] == {"kind": "gnmt", "alpha": 0.6}
            assert hyp["score"] == pytest.approx(hyp["log_prob"] / length_penalty(len(hyp["tokens"]), 0.6), abs=1e-4)
        scores = [hyp["score"] for hyp in record["hypotheses"]]
        assert scores == sorted(scores, reverse=True)


def test_jsonl_sampling_scores_each_sample_by_its_log_prob(checkpoint, monkeypatch, capsys):
    records = translate_jsonl(checkpoint, monkeypatch, capsys, "--strategy", "sample", "--n-best", "2")
    for record in records[:1] + records[2:]:
        assert len(record["hypotheses"]) == 2
        for hyp in record["hypotheses"]:
            check_hypothesis(hyp, record["source_tokens"])
            assert hyp["score"] == hyp["log_prob"] and hyp["length_normalisation"] is None


# -- nmt-score -----------------------------------------------------------------------------------


def score_lines(checkpoint, monkeypatch, capsys, stdin: str, *options: str) -> list[dict]:
    status, out, err = run_cli(score_main, [checkpoint, *options], stdin, monkeypatch, capsys)
    assert status == 0, err
    return [json.loads(line) for line in out]


def test_forced_score_of_the_greedy_output_is_the_greedy_score(checkpoint, monkeypatch, capsys):
    sources = ["The cat sees a dog.", "A big red house.", "a small dog", "the dog sees the cat"]
    greedy = translate_jsonl(checkpoint, monkeypatch, capsys, lines=sources)
    pairs = "".join(f"{s}\t{r['translation']}\n" for s, r in zip(sources, greedy))
    scored = score_lines(checkpoint, monkeypatch, capsys, pairs)
    compared = 0
    for decoded, forced in zip(greedy, scored):
        [hyp] = decoded["hypotheses"]
        # Comparable where the text re-encodes to the same tokens and the search ended with EOS.
        if forced["tokens"] == hyp["tokens"]:
            assert forced["log_prob"] == pytest.approx(hyp["log_prob"], abs=1e-4)
            assert forced["token_log_probs"] == pytest.approx(hyp["token_log_probs"], abs=1e-4)
            compared += 1
    assert compared >= 2


def test_score_output_shapes_tsv_equals_parallel_files_and_empty_pairs(checkpoint, monkeypatch, capsys, tmp_path):
    pairs = [("The cat sees a dog.", "Le chat voit un chien !"), ("", ""), ("A big red house.", ""), ("x", "y " * 2000)]
    tsv = "".join(f"{s}\t{t}\n" for s, t in pairs[:1]) + "\n" + "".join(f"{s}\t{t}\n" for s, t in pairs[2:])
    records = score_lines(checkpoint, monkeypatch, capsys, tsv, "--alignment", "--batch-size", "2")
    assert len(records) == len(pairs)
    assert records[1]["log_prob"] is None and records[1]["tokens"] == []
    assert records[2]["tokens"] == [EOS] and len(records[2]["token_log_probs"]) == 1  # an empty target: only EOS
    assert records[3]["truncated"] and not records[0]["truncated"]
    for record in records[:1] + records[2:]:
        assert record["tokens"][-1] == EOS
        check_hypothesis(record, record["source_tokens"])
    src, tgt = tmp_path / "src.txt", tmp_path / "tgt.txt"
    src.write_text("".join(f"{s}\n" for s, _ in pairs))
    tgt.write_text("".join(f"{t}\n" for _, t in pairs))
    parallel = score_lines(checkpoint, monkeypatch, capsys, "", "--src", str(src), "--tgt", str(tgt), "--alignment")
    assert [r["log_prob"] for r in parallel] == pytest.approx([r["log_prob"] for r in records], abs=1e-5)


def one_line_error(main, args, stdin, monkeypatch, capsys) -> str:
    status, out, err = run_cli(main, args, stdin, monkeypatch, capsys)
    assert status == 2 and out == []
    [line] = err.strip().splitlines()
    return line


@pytest.mark.parametrize(
    "options, stdin, message",
    [
        ([], "a\tb\tc\n", "line 1: expected source<TAB>target, found 2 TABs"),
        ([], "ok\tfine\nno tab here\n", "line 2: expected source<TAB>target, found 0 TABs"),
        (["--src", "FILE"], "", "--src and --tgt go together"),
        (["--src", "FILE", "--tgt", "SHORT"], "", "--src has 2 lines but --tgt has 1"),
    ],
)
def test_bad_score_input_is_one_line_exit_2(checkpoint, monkeypatch, capsys, tmp_path, options, stdin, message):
    (tmp_path / "src").write_text("a\nb\n")
    (tmp_path / "tgt").write_text("a\n")
    options = [{"FILE": str(tmp_path / "src"), "SHORT": str(tmp_path / "tgt")}.get(o, o) for o in options]
    line = one_line_error(score_main, [checkpoint, *options], stdin, monkeypatch, capsys)
    assert line.startswith("python -m nmt.score: error: ") and message in line


def test_missing_or_wrong_task_checkpoint_exits_2(tiny_classification_checkpoint, monkeypatch, capsys, tmp_path):
    line = one_line_error(score_main, [str(tmp_path / "none.ckpt")], "a\tb\n", monkeypatch, capsys)
    assert "none.ckpt" in line
    line = one_line_error(score_main, [str(tiny_classification_checkpoint)], "a\tb\n", monkeypatch, capsys)
    assert "'classification' checkpoint, not a 'translation' one" in line


def test_score_shim_runs_as_a_module(checkpoint):
    result = subprocess.run(
        [sys.executable, "-m", "nmt.score", checkpoint, "--device", "cpu", "--threads", "1"],
        input=b"a small dog\tun petit chien\n",
        capture_output=True,
        cwd=REPO,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr.decode()
    [record] = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert math.isfinite(record["log_prob"]) and "alignment" not in record


def plain_translator(attention: str) -> Translator:
    """An untrained character model on a tiny alphabet (no checkpoint needed)."""
    tokenizer = CharTokenizer("abcdefgh ")
    torch.manual_seed(0)
    model = Seq2Seq(
        tokenizer.vocab_size,
        tokenizer.vocab_size,
        embed_size=8,
        hidden_size=8,
        attention=attention,
        input_feeding=attention != "none",
    )
    return Translator(model, tokenizer, tokenizer, device="cpu")


def test_a_model_without_attention_has_no_alignment_to_give():
    translator = plain_translator("none")
    [scored] = Scorer(translator).score([("abc", "cab")])
    assert len(scored.token_log_probs) == 4 and scored.attention is None
    with pytest.raises(ValueError, match="no attention"):
        Scorer(translator).score([("abc", "cab")], return_attention=True)
    with pytest.raises(ValueError, match="no attention"):
        translator.translate(["abc"], replace_unk=True)


# -- alignments and --replace-unk ---------------------------------------------------------------------


def test_hard_alignment_is_the_argmax_source_and_pharaoh_writes_source_dash_target():
    attention = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3], [0.0, 0.0, 1.0]])
    assert hard_alignment(attention) == [1, 0, 2]
    assert pharaoh([1, 0, 2]) == "1-0 0-1 2-2"
    assert hard_alignment(torch.zeros(0, 3)) == [] and pharaoh([]) == ""


def test_replace_unknowns_copies_the_most_attended_source_surface():
    tokens = [5, UNK_ID, 6, UNK_ID]
    text = f"le {UNK_SURFACE} de {UNK_SURFACE}"
    source = ["\u2581the", "\u2581Zorglub", "'s", "\u25812026"]
    assert replace_unknowns(text, tokens, [0, 1, 2, 3, 0], source) == "le Zorglub de 2026"
    assert replace_unknowns("le chat", [5, 6], [0, 0], source) == "le chat"
    # A count of ⁇ that does not match the unknown ids guesses nothing.
    assert replace_unknowns(f"{UNK_SURFACE}{UNK_SURFACE}", [UNK_ID], [1], source) == f"{UNK_SURFACE}{UNK_SURFACE}"


def test_every_tokenizer_decodes_each_unknown_to_one_mark(checkpoint):
    """What replace_unknowns counts on, for the tiny model's SentencePiece and for characters."""
    spm = Translator.from_checkpoint(checkpoint, device="cpu").target_tokenizer
    chars = CharTokenizer("lechat ")
    for tokenizer in (spm, chars):
        known = tokenizer.encode("le chat")
        assert UNK_ID not in known
        ids = [*known, UNK_ID, UNK_ID, *known, UNK_ID]
        assert tokenizer.decode(ids).count(UNK_SURFACE) == 3


def test_replace_unk_in_the_translator_with_a_constructed_attention(monkeypatch):
    translator = plain_translator("bahdanau")
    source = "ab hg"  # characters: a b ' ' h g
    tokens = [translator.target_tokenizer.encode("c")[0], UNK_ID, UNK_ID]
    attention = torch.zeros(4, 5)
    attention[[0, 1, 2, 3], [0, 3, 4, 4]] = 1.0  # the unknowns attend to "h" and "g"

    asked = []

    def constructed(model, src, lengths, options, return_attention=False, prefixes=None, constraints=None):
        asked.append(return_attention)
        return [[Hypothesis(tokens, -1.0, -1.0, attention if return_attention else None, [-0.2, -0.3, -0.4, -0.1])]]

    monkeypatch.setattr("nmt.inference.translator.decode", constructed)
    [plain] = translator.translate([source])
    [replaced] = translator.translate([source], replace_unk=True)
    assert asked == [False, True]  # replace_unk asks for the attention
    assert plain.text == f"c{UNK_SURFACE}{UNK_SURFACE}"
    assert replaced.text == "chg"
    assert replaced.hypotheses[0].pieces == ["c", "<unk>", "<unk>", EOS]


def unknowns_after(known: list[int]):
    """A stand-in for :func:`~nmt.decoding.decode`: every source gets ``known`` then one
    unknown token, which attends to the source's first token."""

    def constructed(model, src, lengths, options, return_attention=False, prefixes=None, constraints=None):
        tokens = [*known, UNK_ID]
        results = []
        for length in lengths.tolist():
            attention = torch.full((len(tokens) + 1, length), 0.1 / length)
            attention[:, 0] += 0.9
            results.append([Hypothesis(tokens, -1.0, -1.0, attention if return_attention else None, [-0.25] * 4)])
        return results

    return constructed


def test_evaluate_replace_unk_copies_the_source_token_and_counts_the_unknown_outputs(
    checkpoint, monkeypatch, capsys, tmp_path
):
    from nmt.cli.evaluate import main as evaluate_main
    from nmt.inference.alignment import source_surface

    translator = Translator.from_checkpoint(checkpoint, device="cpu")
    sources = ["Zorglub sees a dog.", "Tom eats 2026 apples."]
    copied = [source_surface(translator.source_pieces(s, translator.source_tokenizer.encode(s))[0]) for s in sources]
    known = translator.target_tokenizer.encode("le chat")
    monkeypatch.setattr("nmt.inference.translator.decode", unknowns_after(known))
    plain = translator.target_tokenizer.decode([*known, UNK_ID])  # SentencePiece: no space before the mark
    assert plain.count(UNK_SURFACE) == 1
    replaced = [plain.replace(UNK_SURFACE, word) for word in copied]
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"{s}\t{r}\n" for s, r in zip(sources, replaced)), encoding="utf-8")
    reports = {}
    for flags in ([], ["--replace-unk"]):
        out = tmp_path / f"eval{len(flags)}"
        status, lines, err = run_cli(
            evaluate_main,
            [checkpoint, "--pairs", str(pairs), "--output-dir", str(out), *flags],
            "",
            monkeypatch,
            capsys,
        )
        assert status == 0, err
        reports[bool(flags)] = json.loads(lines[-1])
        hypotheses = (out / "hypotheses.txt").read_text(encoding="utf-8").splitlines()
        assert hypotheses == (replaced if flags else [plain, plain])
    for flag, report in reports.items():
        assert report["replace_unk"] is flag
        assert report["outputs_with_unknown"] == {"count": 2, "share": 1.0}  # counted before the copy
    # chrF, not BLEU: these outputs are too short for BLEU's 4-grams.
    assert reports[True]["chrf"]["multi_ref"]["score"] == 100.0
    assert reports[False]["chrf"]["multi_ref"]["score"] < 100.0


def test_evaluate_replace_unk_without_attention_is_a_one_line_user_error(monkeypatch, capsys, tmp_path):
    from nmt.cli import evaluate

    monkeypatch.setattr(Translator, "from_checkpoints", classmethod(lambda cls, *a, **k: plain_translator("none")))
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("abc\tcab\n", encoding="utf-8")
    status, _, err = run_cli(
        evaluate.main, ["model.ckpt", "--pairs", str(pairs), "--replace-unk"], "", monkeypatch, capsys
    )
    assert status == 2
    [line] = err.strip().splitlines()
    assert "--replace-unk copies the most attended source token, but this model has no attention" in line


def test_replace_unk_option_runs_through_the_command(checkpoint, monkeypatch, capsys):
    status, out, err = run_cli(
        translate_main, [checkpoint, "--replace-unk"], "The cat sees a dog.\n\n", monkeypatch, capsys
    )
    assert status == 0, err
    assert len(out) == 2 and out[1] == ""


def test_interactive_mode_writes_json_lines(checkpoint, monkeypatch, capsys):
    from nmt.cli import translate
    from nmt.decoding import DecodingOptions

    translator = Translator.from_checkpoint(checkpoint, device="cpu")
    monkeypatch.setattr(sys, "stdin", io.StringIO("The cat sees a dog.\n\n"))
    out = io.StringIO()
    translate._interactive(translator, DecodingOptions(), out, output_format="jsonl", return_attention=True)
    first, empty = [json.loads(line) for line in out.getvalue().splitlines()]
    check_hypothesis(first["hypotheses"][0], first["source_tokens"])
    assert empty["hypotheses"] == []
