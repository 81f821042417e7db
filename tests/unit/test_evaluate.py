"""BLEU/chrF with several references, ``python -m nmt.evaluate`` and ``scripts/bench_decode.py``."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sacrebleu

from nmt.evaluation.bleu import Segment, corpus_scores, group_by_source, reference_streams

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def load_script(name: str):
    """A user command from ``nmt.cli``, or a developer script from ``scripts/``."""
    if (REPO / "nmt" / "cli" / f"{name}.py").is_file():
        return importlib.import_module(f"nmt.cli.{name}")
    spec = importlib.util.spec_from_file_location(f"script_{name}", REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- reference grouping and scores ----------------------------------------------------------------


def test_pairs_with_the_same_source_are_references_of_one_segment():
    pairs = [("Go.", "Va !"), ("Hi.", "Salut !"), ("Go.", "Marche."), ("Go.", "Va !"), ("Go\u00a0.", "Bouge !")]
    assert group_by_source(pairs) == [
        Segment("Go.", ["Va !", "Marche."]),
        Segment("Hi.", ["Salut !"]),
        Segment("Go .", ["Bouge !"]),
    ]


def test_reference_streams_are_padded_with_none():
    assert reference_streams([["a", "b"], ["c"], ["d", "e", "f"]]) == [
        ["a", "c", "d"],
        ["b", None, "e"],
        [None, None, "f"],
    ]
    with pytest.raises(ValueError):
        reference_streams([["a"], []])


def test_multi_reference_scores_match_sacrebleu_and_beat_the_first_reference():
    hyps = ["le chat est sur le tapis", "il fait beau aujourd'hui", "je mange une pomme"]
    refs = [
        ["le chat est sur le tapis rouge", "le chat est sur le tapis"],
        ["il fait beau"],
        ["je mange la pomme", "je mange une pomme verte", "je mange une pomme"],
    ]
    scores = corpus_scores(hyps, refs)
    streams = [[refs[0][0], refs[1][0], refs[2][0]], [refs[0][1], None, refs[2][1]], [None, None, refs[2][2]]]
    assert scores["bleu"]["multi_ref"]["score"] == pytest.approx(round(sacrebleu.corpus_bleu(hyps, streams).score, 2))
    assert scores["bleu"]["single_ref"]["score"] == pytest.approx(
        round(sacrebleu.corpus_bleu(hyps, [[r[0] for r in refs]]).score, 2)
    )
    assert scores["bleu"]["multi_ref"]["score"] > scores["bleu"]["single_ref"]["score"]
    assert scores["chrf"]["multi_ref"]["score"] > scores["chrf"]["single_ref"]["score"]
    assert "nrefs:var" in scores["bleu"]["multi_ref"]["signature"]
    assert "nrefs:1" in scores["bleu"]["single_ref"]["signature"]
    assert scores["segments"] == 3 and scores["references"] == 6


def test_ter_matches_sacrebleu_corpus_ter_and_its_signature():
    hyps = ["le chat est sur le tapis", "il fait beau aujourd'hui", "je mange une pomme"]
    refs = [["le chat dort sur le tapis", "le chat est sur le tapis"], ["il fait beau"], ["je mange la pomme"]]
    scores = corpus_scores(hyps, refs)
    assert set(scores) == {"bleu", "chrf", "ter", "segments", "references"}
    assert set(scores["ter"]) == {"multi_ref", "single_ref"}
    streams = [[refs[0][0], refs[1][0], refs[2][0]], [refs[0][1], None, None]]
    multi = sacrebleu.corpus_ter(hyps, streams)
    single = sacrebleu.corpus_ter(hyps, [[r[0] for r in refs]])
    assert scores["ter"]["multi_ref"]["score"] == round(multi.score, 2)
    assert scores["ter"]["single_ref"]["score"] == round(single.score, 2)
    # Single reference by hand: 1 substitution (dort/est) + 1 deletion (aujourd'hui) + 1 substitution
    # (la/une) over 6 + 3 + 4 reference words.
    assert scores["ter"]["single_ref"]["score"] == round(100 * 3 / 13, 2)
    assert scores["ter"]["multi_ref"]["score"] < scores["ter"]["single_ref"]["score"]  # lower is better
    assert scores["ter"]["multi_ref"]["signature"].startswith("nrefs:var|case:lc|tok:tercom")
    assert "nrefs:1" in scores["ter"]["single_ref"]["signature"]


def test_perfect_hypotheses_score_100():
    hyps = ["un chat noir dort ici", "deux chiens jouent dans le jardin"]
    scores = corpus_scores(hyps, [[hyps[0]], ["2 chiens jouent", hyps[1]]])
    assert scores["bleu"]["multi_ref"]["score"] == 100.0
    assert scores["chrf"]["multi_ref"]["score"] == 100.0
    assert scores["ter"]["multi_ref"]["score"] == 0.0


# -- python -m nmt.evaluate --------------------------------------------------------------------------

PAIRS = [
    ("The cat sees a dog.", "Le chat voit un chien !"),
    ("A big red house.", "Une grande maison rouge !"),
    ("The cat sees a dog.", "Le chat voit le chien !"),
    ("Small dog.", "Petit chien !"),
]


def test_evaluate_pairs_file_reports_json_last_and_writes_outputs(tiny_translation_checkpoint, tmp_path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"{s}\t{t}\tattribution\n" for s, t in PAIRS) + "\n", encoding="utf-8")
    out = tmp_path / "eval"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nmt.cli.evaluate",
            str(tiny_translation_checkpoint),
            "--pairs",
            str(pairs),
            "--strategy",
            "beam",
            "--beam-size",
            "3",
            "--output-dir",
            str(out),
            "--plot-attention",
            str(tmp_path / "p"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=ENV,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["segments"] == 3 and report["references"] == 4 and report["multi_reference_segments"] == 1
    assert report["bleu"]["multi_ref"]["score"] >= report["bleu"]["single_ref"]["score"]
    assert report["decoding"] == {
        "strategy": "beam",
        "beam_size": 3,
        "length_penalty": 1.0,
        "beam_patience": 2,
        "n_best": 1,
        "max_len_ratio": 2.0,
        "max_len_offset": 10,
        "max_len": None,
        "coverage_penalty": 0.0,
        "no_repeat_ngram_size": 0,
        "repetition_penalty": 1.0,
    }
    assert set(report["ter"]) == {"multi_ref", "single_ref"} and "signature" in report["ter"]["multi_ref"]
    assert report["sentences_per_second"] > 0 and "decode_seconds" in report
    hypotheses = (out / "hypotheses.txt").read_text(encoding="utf-8").splitlines()
    assert len(hypotheses) == 3 and hypotheses[0] == "Le chat voit un chien !"
    assert json.loads((out / "report.json").read_text(encoding="utf-8")) == report
    assert len(list((tmp_path / "p").glob("segment-*.png"))) == 3


def test_evaluate_src_and_ref_files(tiny_translation_checkpoint, tmp_path, capsys):
    src, ref1, ref2 = tmp_path / "src.txt", tmp_path / "ref1.txt", tmp_path / "ref2.txt"
    src.write_text("The cat sees a dog.\nSmall dog.\n", encoding="utf-8")
    ref1.write_text("Le chat voit un chien !\nPetit chien !\n", encoding="utf-8")
    ref2.write_text("Le chat voit le chien !\n\n", encoding="utf-8")
    evaluate = load_script("evaluate")
    status = evaluate.main(
        [
            str(tiny_translation_checkpoint),
            "--src",
            str(src),
            "--ref",
            str(ref1),
            "--ref",
            str(ref2),
            "--output-dir",
            str(tmp_path / "out"),
        ]
    )
    assert status == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["segments"] == 2 and report["references"] == 3


def test_evaluate_the_runs_own_test_split(tiny_translation_checkpoint, tmp_path, capsys):
    evaluate = load_script("evaluate")
    assert evaluate.main([str(tiny_translation_checkpoint), "--split", "test", "--output-dir", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["data"] == "test" and report["segments"] > 0
    assert report["bleu"]["multi_ref"]["score"] > 0


def test_evaluate_errors_are_one_line(tiny_translation_checkpoint, tmp_path, capsys):
    evaluate = load_script("evaluate")
    bad = tmp_path / "bad.tsv"
    bad.write_text("no tab here\n", encoding="utf-8")
    assert evaluate.main([str(tiny_translation_checkpoint), "--pairs", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.tsv:1" in err
    with pytest.raises(SystemExit) as exit:
        evaluate.main([str(tiny_translation_checkpoint), "--pairs", str(bad), "--src", str(bad)])
    assert exit.value.code == 2


@pytest.mark.parametrize("which", ["--pairs", "--src", "--ref"])
def test_evaluate_refuses_a_utf16_file_naming_it(which, tiny_translation_checkpoint, tmp_path, capsys):
    good_src, good_ref = tmp_path / "src.txt", tmp_path / "ref.txt"
    good_src.write_text("The cat sees a dog.\n", encoding="utf-8")
    good_ref.write_text("Le chat voit un chien !\n", encoding="utf-8")
    utf16 = tmp_path / "utf16.txt"
    utf16.write_bytes(
        ("The cat sees a dog.\tLe chat voit un chien !\n" if which == "--pairs" else "The cat sees a dog.\n").encode(
            "utf-16"
        )
    )
    data = {
        "--pairs": ["--pairs", utf16],
        "--src": ["--src", utf16, "--ref", good_ref],
        "--ref": ["--src", good_src, "--ref", utf16],
    }[which]
    evaluate = load_script("evaluate")
    assert evaluate.main([str(tiny_translation_checkpoint), *map(str, data), "--output-dir", str(tmp_path)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert f"error: {utf16} looks like UTF-16LE" in line and "iconv -f UTF-16 -t UTF-8" in line


def test_evaluate_classifier_errors_are_one_line(tmp_path, capsys):
    evaluate_classifier = load_script("evaluate_classifier")
    assert evaluate_classifier.main([str(tmp_path / "missing.ckpt")]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "error: checkpoint not found" in line


# -- scripts/bench_decode.py ---------------------------------------------------------------------


def test_bench_decode_reports_sentences_per_second(tiny_translation_checkpoint, tmp_path, capsys):
    lines = tmp_path / "lines.txt"
    lines.write_text("".join(f"{s}\t{t}\n" for s, t in PAIRS), encoding="utf-8")
    bench = load_script("bench_decode")
    status = bench.main(
        [
            str(tiny_translation_checkpoint),
            "--input",
            str(lines),
            "--batch-sizes",
            "1",
            "4",
            "--strategies",
            "greedy",
            "beam3",
            "--devices",
            "cpu",
            "cuda",
        ]
    )
    assert status == 0
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["results"]
    assert [(r["strategy"], r["batch_size"]) for r in results if r["device"] == "cpu"] == [
        ("greedy", 1),
        ("greedy", 4),
        ("beam3", 1),
        ("beam3", 4),
    ]
    assert all(r["sentences_per_second"] > 0 and r["sentences"] == 4 for r in results)


def test_bench_decode_compares_precisions_and_counts_changed_outputs(tiny_translation_checkpoint, tmp_path, capsys):
    lines = tmp_path / "lines.txt"
    lines.write_text("".join(f"{s}\t{t}\n" for s, t in PAIRS), encoding="utf-8")
    bench = load_script("bench_decode")
    status = bench.main(
        [
            str(tiny_translation_checkpoint),
            "--input",
            str(lines),
            "--batch-sizes",
            "4",
            "--strategies",
            "greedy",
            "--devices",
            "cpu",
            "--precisions",
            "fp32",
            "bf16",
            "fp16",
        ]
    )
    assert status == 0
    captured = capsys.readouterr()
    assert "fp16 needs a GPU, skipped" in captured.err
    results = json.loads(captured.out.strip().splitlines()[-1])["results"]
    assert [r["precision"] for r in results] == ["fp32", "bf16"]
    assert results[0]["changed_outputs"] == 0.0 and 0.0 <= results[1]["changed_outputs"] <= 1.0


def test_bench_decode_refuses_a_utf16_input(tiny_translation_checkpoint, tmp_path, capsys):
    lines = tmp_path / "lines.txt"
    lines.write_bytes("The cat sees a dog.\n".encode("utf-16"))
    bench = load_script("bench_decode")
    assert bench.main([str(tiny_translation_checkpoint), "--input", str(lines)]) == 1
    [line] = capsys.readouterr().err.strip().splitlines()
    assert f"{lines} looks like UTF-16LE" in line
