"""``python -m nmt.train`` as a user meets it: one-line errors with exit status 2 for what the
user can fix, resume from ``ckpt_path`` alone, readable logs off a terminal."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from conftest import REPO, compose_config, tiny_overrides
from nmt.config.checks import validate_config
from nmt.config.location import CONF_DIR
from nmt.config.schema import ClassifierModelSchema
from nmt.inference.checkpoint import PAYLOAD_KEY
from nmt.training.run_config import (
    ResumeMismatch,
    _claimed_run_directories,
    claim_run_directory,
    overridden_keys,
    resumed_config,
)


def nmt_train(*arguments: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nmt.train", *arguments],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def cli_overrides(corpus: Path, run_dir: Path, *extra: str) -> list[str]:
    overrides = [o for o in tiny_overrides(corpus, run_dir, *extra) if not o.startswith("+run_dir")]
    return [*overrides, f"hydra.run.dir={run_dir}"]


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("python -m nmt.train: error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


@pytest.mark.parametrize(
    "override,fragments",
    [
        ("model.hiden_size=128", ["hiden_size"]),
        ("experiment=no_such_preset", ["no_such_preset"]),
        ("attention.type=luong", ["attention.type", "bahdanau"]),
        ("model.hidden_size=abc", ["hidden_size"]),
        ("optim.schedule=cosine", ["trainer.max_steps"]),
        ("trainer=gpu", ["CUDA", "trainer.accelerator=cpu"]),
    ],
)
def test_user_errors_before_training_are_one_line_with_exit_status_2(tiny_corpus, tmp_path, override, fragments):
    if override == "trainer=gpu" and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    result = nmt_train(*cli_overrides(tiny_corpus, tmp_path, "trainer.max_steps=-1"), override)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "checkpoints").exists()


def test_a_missing_corpus_is_one_line_naming_the_path(tmp_path):
    result = nmt_train(f"data.path={tmp_path / 'nowhere.txt'}", f"hydra.run.dir={tmp_path}")
    assert_one_line_error(result, "nowhere.txt", "data.path")


def test_a_damaged_checkpoint_is_one_line(tiny_corpus, tmp_path):
    damaged = tmp_path / "last.ckpt"
    damaged.write_bytes(b"\x80\x02 not a checkpoint")
    result = nmt_train(*cli_overrides(tiny_corpus, tmp_path / "run"), f"ckpt_path={damaged}")
    assert_one_line_error(result, "last.ckpt")


def test_full_traceback_with_hydra_full_error(tmp_path):
    result = nmt_train(
        f"data.path={tmp_path / 'nowhere.txt'}", f"hydra.run.dir={tmp_path}", env={"HYDRA_FULL_ERROR": "1"}
    )
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_resuming_with_other_model_sizes_lists_every_difference(tiny_corpus, tiny_translation_checkpoint, tmp_path):
    result = nmt_train(
        *cli_overrides(tiny_corpus, tmp_path),
        f"ckpt_path={tiny_translation_checkpoint}",
        "model.hidden_size=32",
        "attention=dot",
    )
    assert_one_line_error(result, "model.hidden_size=32 (checkpoint: 64)", "attention.type='dot'")


def test_resuming_a_translation_run_from_a_classification_checkpoint_is_refused(tiny_translation_checkpoint, tmp_path):
    checkpoint = torch.load(tiny_translation_checkpoint, weights_only=True)
    checkpoint[PAYLOAD_KEY]["task"] = checkpoint[PAYLOAD_KEY]["config"]["task"] = "classification"
    foreign = tmp_path / "classifier.ckpt"
    torch.save(checkpoint, foreign)
    cfg = compose_config(["experiment=spm_bahdanau", f"ckpt_path={foreign}"])
    with pytest.raises(ResumeMismatch, match=r"task='translation' \(checkpoint: 'classification'\)"):
        resumed_config(cfg, compose_config(), overridden_keys(["experiment=spm_bahdanau"], REPO / "conf"))


def test_resume_config_comes_from_the_checkpoint_with_command_line_changes_on_top(tiny_translation_checkpoint):
    saved = torch.load(tiny_translation_checkpoint, weights_only=True)[PAYLOAD_KEY]["config"]
    cfg = compose_config([f"ckpt_path={tiny_translation_checkpoint}", "trainer.max_steps=999", "trainer.max_time=null"])
    resumed = resumed_config(cfg, compose_config(), {"trainer.max_steps", "trainer.max_time"})
    assert resumed.model.hidden_size == saved["model"]["hidden_size"] == 64  # not the default 256
    assert resumed.data.path == saved["data"]["path"]
    assert resumed.trainer.max_steps == 999 and resumed.trainer.max_time is None
    assert resumed.ckpt_path == str(tiny_translation_checkpoint)


def test_a_classification_checkpoint_resumes_with_its_own_model_section(tiny_classification_checkpoint, tmp_path):
    """Today's default composition (model=lstm) must not leak decoder keys into a classifier's
    model section; a key newer than the checkpoint takes the classifier schema's default."""
    checkpoint = torch.load(tiny_classification_checkpoint, weights_only=True)
    del checkpoint[PAYLOAD_KEY]["config"]["model"]["dropout"]  # as if saved before that key existed
    checkpoint[PAYLOAD_KEY]["config"]["data"]["split"] = {"train": 0.9, "dev": 0.1}  # as IMDB's (official test)
    older = tmp_path / "older.ckpt"
    torch.save(checkpoint, older)
    cfg = compose_config([f"ckpt_path={older}", "trainer.max_time=null"])
    resumed = resumed_config(cfg, compose_config(), {"trainer.max_time"})
    validate_config(resumed)
    assert resumed.task == "classification" and "decoder_layers" not in resumed.model
    assert dict(resumed.data.split) == checkpoint[PAYLOAD_KEY]["config"]["data"]["split"]  # not fra's three parts
    assert resumed.model.hidden_size == checkpoint[PAYLOAD_KEY]["config"]["model"]["hidden_size"]
    assert resumed.model.dropout == ClassifierModelSchema.dropout
    assert resumed.trainer.max_time is None


def test_ckpt_path_alone_resumes_in_the_runs_own_directory(tiny_corpus, tmp_path):
    run_dir = tmp_path / "run"
    first = nmt_train(*cli_overrides(tiny_corpus, run_dir, "trainer.max_steps=20", "test_after_training=false"))
    assert first.returncode == 0, first.stderr[-2000:]
    last = run_dir / "checkpoints" / "last.ckpt"
    resumed = nmt_train(f"ckpt_path={last}", "trainer.max_steps=30")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert torch.load(last, weights_only=True)["global_step"] == 30
    assert f"run directory: {run_dir}" in resumed.stderr + resumed.stdout


def test_logs_off_a_terminal_have_plain_progress_lines_and_no_bar_redraws(tiny_corpus, tmp_path):
    result = nmt_train(
        *cli_overrides(
            tiny_corpus,
            tmp_path,
            "trainer.max_steps=30",
            "test_after_training=false",
            "trainer.enable_progress_bar=auto",
            "training.progress_every_n_steps=10",
        )
    )
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    assert "\r" not in output
    progress = [line for line in output.splitlines() if "step 20/30 |" in line]
    assert progress and "loss " in progress[0] and "elapsed" in progress[0] and "ETA" in progress[0]


def test_an_old_trainer_key_names_its_new_training_key(tiny_corpus, tmp_path):
    result = nmt_train(*cli_overrides(tiny_corpus, tmp_path), "trainer.max_cpu_time=00:00:01:00")
    assert_one_line_error(result, "trainer.max_cpu_time", "training.max_cpu_time")


def test_a_sweep_job_with_a_bad_value_fails_alone_and_the_other_job_trains(tiny_corpus, tmp_path):
    overrides = [
        o
        for o in cli_overrides(tiny_corpus, tmp_path / "run", "trainer.max_steps=10", "test_after_training=false")
        if not o.startswith("optim.lr=")
    ]
    result = nmt_train("-m", *overrides, f"hydra.sweep.dir={tmp_path / 'sweep'}", "optim.lr=0,0.001")
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    assert "job 0 failed: optim.lr must be a positive number" in output, output[-2000:]
    assert not (tmp_path / "sweep" / "0" / "checkpoints").exists()
    assert (tmp_path / "sweep" / "1" / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.parametrize(
    "preset,metric",
    [
        ("sms_bilstm_attn", "val/f1"),
        ("spm_bahdanau", "val/bleu"),
        ("char_lm", "val/ppl"),
        ("sms_naive_bayes", "val/f1"),
    ],
)
def test_a_run_returns_its_tasks_monitored_metric(monkeypatch, preset, metric):
    from nmt.cli import train as train_cli

    metrics = {"val/bleu": 1.0, "val/acc": 2.0, "val/ppl": 3.0, "val/f1": 4.0, "val/loss": 5.0}
    monkeypatch.setattr(train_cli, "prepare_config", lambda cfg: cfg)
    monkeypatch.setattr(train_cli, "fit", lambda cfg: metrics)
    assert train_cli.hydra_main.__wrapped__(compose_config([f"experiment={preset}"])) == metrics[metric]


def test_a_failed_sweep_job_returns_none_instead_of_exiting(monkeypatch):
    from nmt.cli import train as train_cli
    from nmt.config.checks import ConfigError
    from nmt.training.divergence import TrainingDiverged

    monkeypatch.setattr(train_cli, "in_sweep", lambda: True)
    monkeypatch.setattr(train_cli, "sweep_job_failed", lambda error: None)
    for error in (ConfigError("optim.lr must be a positive number"), TrainingDiverged("non-finite loss")):

        def failing(cfg, error=error):
            raise error

        monkeypatch.setattr(train_cli, "prepare_config", failing)
        assert train_cli.hydra_main.__wrapped__(compose_config()) is None


def test_a_new_run_claims_its_directory_and_keeps_the_same_answer(tmp_path):
    fresh = str(tmp_path / "outputs" / "spm_large" / "2026-12-06_19-16-10")
    first = claim_run_directory(fresh)
    assert first == fresh and Path(fresh).is_dir()
    assert claim_run_directory(fresh) == first  # OmegaConf may resolve hydra.run.dir again
    _claimed_run_directories.clear()  # as a second process started in the same second sees it
    assert claim_run_directory(fresh) == f"{fresh}-2" and Path(f"{fresh}-2").is_dir()


def test_runs_started_in_the_same_second_get_directories_of_their_own(tmp_path):
    """Two seeds launched side by side (``seed=1 & seed=2``) race for one timestamped name."""
    fresh, go = tmp_path / "outputs" / "spm_large" / "2026-12-06_19-16-10", tmp_path / "go"
    script = (
        "import sys, time, pathlib\n"
        "from nmt.training.run_config import claim_run_directory\n"
        "while not pathlib.Path(sys.argv[2]).exists(): time.sleep(0.01)\n"
        "print(claim_run_directory(sys.argv[1]))\n"
    )
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(fresh), str(go)], cwd=REPO, stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    time.sleep(0.5)
    go.touch()
    claimed = sorted(racer.communicate(timeout=120)[0].strip() for racer in racers)
    assert claimed == [str(fresh), f"{fresh}-2", f"{fresh}-3"]


def test_the_default_run_directory_is_claimed_when_hydra_resolves_it(tmp_path, monkeypatch):
    import nmt.cli.train  # noqa: F401  (registers the nmt_run_dir resolver, as the entry point does)

    monkeypatch.chdir(tmp_path)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        config = compose(config_name="config", overrides=["name=same_second"], return_hydra_config=True)
    run_dir = Path(OmegaConf.select(config, "hydra.run.dir"))
    assert run_dir.parent == Path("outputs/same_second") and run_dir.is_dir()
    assert Path(OmegaConf.select(config, "hydra.run.dir")) == run_dir
