"""``scripts/compare_classifiers.py``: the table of classifier variants, resuming a
comparison, and a bad override refused before any training. Also ``RUN/results.json``."""

from __future__ import annotations

import importlib.util
import json
import random
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from nmt.training.run_summary import RESULTS_FILE, TrainingClock, run_summary, write_run_summary

REPO = Path(__file__).resolve().parents[2]


def load_script():
    spec = importlib.util.spec_from_file_location(
        "script_compare_classifiers", REPO / "scripts" / "compare_classifiers.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


compare_classifiers = load_script()


@pytest.fixture(scope="module")
def sms_corpus(tmp_path_factory) -> Path:
    """120 ``label<TAB>text`` lines whose class is plain from the words."""
    rng = random.Random(0)
    ham, spam = "ok see you later at home".split(), "free win prize cash claim now".split()
    lines = []
    for _ in range(120):
        label = "spam" if rng.random() < 0.3 else "ham"
        words = spam if label == "spam" else ham
        lines.append(f"{label}\t{' '.join(rng.choice(words) for _ in range(rng.randint(2, 6)))}\n")
    path = tmp_path_factory.mktemp("sms") / "SMSSpamCollection"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def arguments(corpus: Path, output: Path, *extra: str) -> list[str]:
    return [
        "--experiment=sms_bilstm_attn",
        "--seeds=7",
        "--max-steps=2",
        f"--output={output}",
        f"data.path={corpus}",
        "tokenizer=char",
        "model.embed_size=8",
        "model.hidden_size=8",
        "trainer.enable_progress_bar=false",
        "trainer.num_sanity_val_steps=0",
        *extra,
    ]


@pytest.fixture(scope="module")
def comparison(sms_corpus, tmp_path_factory) -> Path:
    """Two variants, one seed, two steps each, really trained by ``python -m nmt.train``."""
    output = tmp_path_factory.mktemp("comparison")
    assert compare_classifiers.main([*arguments(sms_corpus, output), "--variants", "base", "gru", "--jobs", "2"]) == 0
    return output


def test_the_table_lists_each_variant_with_its_seed(comparison, capsys):
    table = (comparison / "table.md").read_text(encoding="utf-8")
    rows = [line for line in table.splitlines() if line.startswith("| ") and "variant" not in line]
    assert [row.split(" | ")[0] for row in rows] == ["| LSTM, last state", "| BiGRU, last states"]
    assert all("7: " in row and row.endswith("| max_steps |") for row in rows)
    report = json.loads((comparison / "results.json").read_text(encoding="utf-8"))
    assert [(run["variant"], run["seed"], run["steps"]) for run in report["runs"]] == [("base", 7, 2), ("gru", 7, 2)]
    assert all(0.0 <= run["test_acc"] <= 1.0 and run["train_cpu_s"] >= 0.0 for run in report["runs"])
    assert report["variants"]["gru"][0] == "model.cell=gru"


def test_each_run_trains_the_variant_it_names(comparison):
    from omegaconf import OmegaConf

    base = OmegaConf.load(comparison / "base" / "seed7" / "config.yaml")
    gru = OmegaConf.load(comparison / "gru" / "seed7" / "config.yaml")
    assert (base.model.cell, base.model.bidirectional, base.model.pooling, base.seed) == ("lstm", False, "last", 7)
    assert (gru.model.cell, gru.model.bidirectional, gru.model.dropout) == ("gru", True, 0.3)
    assert base.trainer.max_steps == 2 and base.trainer.max_time is None


def test_a_second_call_reuses_the_finished_runs(comparison, sms_corpus, monkeypatch, capsys):
    before = (comparison / "table.md").read_text(encoding="utf-8")

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(compare_classifiers.subprocess, "run", no_training)
    assert compare_classifiers.main([*arguments(sms_corpus, comparison), "--variants", "base", "gru"]) == 0
    assert capsys.readouterr().out == before == (comparison / "table.md").read_text(encoding="utf-8")


def test_an_unfinished_run_is_started_over_and_a_failed_one_reported(sms_corpus, tmp_path, monkeypatch, capsys):
    stale = tmp_path / "base" / "seed7" / "stale.txt"
    stale.parent.mkdir(parents=True)
    stale.write_text("left by a killed run", encoding="utf-8")
    monkeypatch.setattr(compare_classifiers.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 1))
    assert compare_classifiers.main([*arguments(sms_corpus, tmp_path), "--variants", "base"]) == 1
    assert not stale.exists()
    assert "| LSTM, last state | failed | 7: failed | | | |" in (tmp_path / "table.md").read_text(encoding="utf-8")
    assert "base seed 7" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, named",
    [
        (["optim.schedule=weekly"], "optim.schedule"),  # a value the schema does not allow
        (["model.no_such_key=1"], "no_such_key"),  # a key the config does not have
    ],
)
def test_a_bad_override_fails_before_any_training(sms_corpus, tmp_path, monkeypatch, capsys, extra, named):
    monkeypatch.setattr(compare_classifiers.subprocess, "run", lambda *a, **k: pytest.fail("trained"))
    assert compare_classifiers.main([*arguments(sms_corpus, tmp_path, *extra), "--variants", "base"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("compare_classifiers.py: error: variant base: ") and named in error
    assert len(error.splitlines()) == 1
    assert not (tmp_path / "base").exists()


def test_an_override_of_what_the_variants_change_is_refused(sms_corpus, tmp_path, capsys):
    assert compare_classifiers.main(arguments(sms_corpus, tmp_path, "model.pooling=mean")) == 2
    assert "model.pooling is what the variants change" in capsys.readouterr().err


def test_runs_without_a_test_are_refused(sms_corpus, tmp_path, capsys):
    assert compare_classifiers.main(arguments(sms_corpus, tmp_path, "test_after_training=false")) == 2
    assert "needs each run's test accuracy" in capsys.readouterr().err


def test_a_translation_preset_is_refused(sms_corpus, tmp_path, capsys):
    argv = [*arguments(sms_corpus, tmp_path), "--experiment=spm_bahdanau", "--variants", "base"]
    assert compare_classifiers.main(argv) == 2
    assert "give a classification one" in capsys.readouterr().err


def test_a_budget_is_required(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        compare_classifiers.main(["--experiment=sms_bilstm_attn", f"--output={tmp_path}"])
    assert stopped.value.code == 2
    assert "--max-cpu-time" in capsys.readouterr().err


def test_the_table_gives_mean_and_spread_over_seeds():
    rows = [
        {"variant": "gru", "seed": s, "test_acc": a, "steps": 100, "train_cpu_s": 120.0, "stopped_by": why}
        for s, a, why in ((1, 0.9, "max_cpu_time"), (2, 0.8, "max_cpu_time"), (3, None, None))
    ]
    line = compare_classifiers.table(rows, ["gru"]).splitlines()[2]
    assert line == "| BiGRU, last states | 85.00 ± 7.07 | 1: 90.00, 2: 80.00, 3: failed | 100 | 2.0 | max_cpu_time x2 |"


# -- RUN/results.json -----------------------------------------------------------------------------
def test_the_training_clock_continues_over_a_resume():
    clock = TrainingClock()
    clock.load_state_dict({"wall_s": 30.0, "cpu_s": 20.0})
    assert clock.wall_s() == 30.0 and clock.cpu_s() == 20.0
    resumed = TrainingClock()
    resumed.load_state_dict(clock.state_dict())
    assert resumed.state_dict() == {"wall_s": 30.0, "cpu_s": 20.0}


def test_the_run_summary_round_trips_through_its_file(tmp_path):
    clock = TrainingClock()
    clock.load_state_dict({"wall_s": 12.345, "cpu_s": 6.0})
    summary = run_summary("classification", {"test/acc": 0.5}, 40, 2, clock, "max_steps")
    write_run_summary(tmp_path, summary)
    assert json.loads((tmp_path / RESULTS_FILE).read_text(encoding="utf-8")) == {
        "task": "classification",
        "global_step": 40,
        "epoch": 2,
        "train_time_s": 12.35,
        "train_cpu_s": 6.0,
        "stopped_by": "max_steps",
        "metrics": {"test/acc": 0.5},
    }
    assert [p.name for p in tmp_path.iterdir()] == [RESULTS_FILE]


def test_an_early_stopped_run_says_so_after_its_test(sms_corpus, tmp_path):
    """The test pass restores best.ckpt's callback state; the reason is taken before it."""
    run_dir = tmp_path / "run"
    command = [
        sys.executable, "-m", "nmt.train", "experiment=sms_bilstm_attn", f"data.path={sms_corpus}",
        "tokenizer=char", "model.embed_size=8", "model.hidden_size=8", "optim.lr=1e-12",
        "early_stopping.patience=1", "trainer.val_check_interval=2", "trainer.max_steps=40",
        "trainer.max_time=null", "trainer.enable_progress_bar=false", "trainer.num_sanity_val_steps=0",
        "threads=1", f"hydra.run.dir={run_dir}",
    ]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, check=True, capture_output=True, cwd=tmp_path)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    process_cpu_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    summary = json.loads((run_dir / RESULTS_FILE).read_text(encoding="utf-8"))
    assert summary["stopped_by"] == "early_stopping"
    assert summary["global_step"] < 40 and "test/acc" in summary["metrics"]
    assert 0.0 < summary["train_cpu_s"] < process_cpu_s  # training only: not counted twice by the test pass


def test_a_snapshot_of_the_clock_ignores_a_later_restore():
    clock = TrainingClock()
    clock.load_state_dict({"wall_s": 30.0, "cpu_s": 20.0})
    snapshot = clock.snapshot()
    clock.load_state_dict({"wall_s": 5.0, "cpu_s": 4.0})  # what testing an older best.ckpt does
    assert snapshot.state_dict() == {"wall_s": 30.0, "cpu_s": 20.0}
