"""Exact resume: a run stopped anywhere (max_steps, max_time, kill -9) and resumed ends with
the very weights of an uninterrupted run, with the presets' dropout on."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch

from conftest import REPO, compose_config, tiny_overrides
from nmt.cli.train import train
from nmt.inference.checkpoint import TEMPORARY_MARK, atomic_save, model_state_dict
from nmt.training.resume import capture_rng_states, restore_rng_states

# Dropout as in the presets (and variational recurrent dropout), and a plateau schedule that cuts at every stalled validation,
# so that a resume that loses the RNG, the data position or the schedule state shows.
RESUMABLE = [
    "model.dropout=0.2",
    "model.recurrent_dropout=0.2",
    "trainer.val_check_interval=10",
    "test_after_training=false",
    "optim.schedule=plateau",
    "optim.plateau_patience=0",
]
TOTAL_STEPS = 60  # 24 batches per epoch: the run crosses two epoch ends


def run(corpus: Path, run_dir: Path, *extra: str) -> Path:
    train(compose_config(tiny_overrides(corpus, run_dir, *RESUMABLE, *extra)))
    return run_dir / "checkpoints" / "last.ckpt"


def final_state(last: Path) -> tuple[int, dict[str, torch.Tensor], float]:
    checkpoint = torch.load(last, weights_only=True)
    lr = checkpoint["optimizer_states"][0]["param_groups"][0]["lr"]
    return checkpoint["global_step"], model_state_dict(checkpoint), lr


def assert_same_final_state(expected: Path, actual: Path) -> None:
    steps, weights, lr = final_state(expected)
    resumed_steps, resumed_weights, resumed_lr = final_state(actual)
    assert resumed_steps == steps
    assert resumed_lr == lr
    for name, tensor in weights.items():
        torch.testing.assert_close(resumed_weights[name], tensor, rtol=0, atol=1e-6, msg=name)


@pytest.fixture(scope="module")
def uninterrupted(tiny_corpus, tmp_path_factory) -> Path:
    return run(tiny_corpus, tmp_path_factory.mktemp("uninterrupted"), f"trainer.max_steps={TOTAL_STEPS}")


@pytest.mark.parametrize("stop_step", [25, 24, 30], ids=["between-validations", "at-epoch-end", "at-a-validation"])
def test_resume_after_max_steps_stop_matches_uninterrupted_run(tiny_corpus, tmp_path, uninterrupted, stop_step):
    first = run(tiny_corpus, tmp_path / "first", f"trainer.max_steps={stop_step}")
    assert torch.load(first, weights_only=True)["global_step"] == stop_step
    resumed = run(tiny_corpus, tmp_path / "resumed", f"trainer.max_steps={TOTAL_STEPS}", f"ckpt_path={first}")
    assert_same_final_state(uninterrupted, resumed)


def test_resume_with_the_default_recipes_tied_output_layer_matches_uninterrupted_run(tiny_corpus, tmp_path):
    tied = ("model.tie_embeddings=true", "model.embed_size=64")
    uninterrupted_tied = run(tiny_corpus, tmp_path / "uninterrupted", f"trainer.max_steps={TOTAL_STEPS}", *tied)
    first = run(tiny_corpus, tmp_path / "first", "trainer.max_steps=25", *tied)
    resumed = run(tiny_corpus, tmp_path / "resumed", f"trainer.max_steps={TOTAL_STEPS}", f"ckpt_path={first}", *tied)
    assert_same_final_state(uninterrupted_tied, resumed)
    _, weights, _ = final_state(resumed)
    assert torch.equal(weights["output_layer.weight"], weights["tgt_embed.weight"])


@pytest.mark.parametrize("cell", ["lstm", "rnn"])
def test_resume_with_the_input_feeding_loop_matches_uninterrupted_run(tiny_corpus, tmp_path, cell):
    """The input-feeding decoder trains through its own autograd Function (hand-written backward)."""
    feeding = ("model.input_feeding=true", f"model.cell={cell}")
    uninterrupted_feeding = run(tiny_corpus, tmp_path / "uninterrupted", f"trainer.max_steps={TOTAL_STEPS}", *feeding)
    first = run(tiny_corpus, tmp_path / "first", "trainer.max_steps=25", *feeding)
    resumed = run(tiny_corpus, tmp_path / "resumed", f"trainer.max_steps={TOTAL_STEPS}", f"ckpt_path={first}", *feeding)
    assert_same_final_state(uninterrupted_feeding, resumed)


def test_resume_with_subword_sampling_matches_uninterrupted_run(tiny_corpus, tmp_path, uninterrupted):
    """Sampled segmentations are a function of (seed, epoch, item): the resumed epoch redraws the same ones."""
    sampling = ("tokenizer.sampling_alpha=0.2",)
    uninterrupted_sampled = run(tiny_corpus, tmp_path / "uninterrupted", f"trainer.max_steps={TOTAL_STEPS}", *sampling)
    first = run(tiny_corpus, tmp_path / "first", "trainer.max_steps=30", *sampling)
    resumed = run(
        tiny_corpus, tmp_path / "resumed", f"trainer.max_steps={TOTAL_STEPS}", f"ckpt_path={first}", *sampling
    )
    assert_same_final_state(uninterrupted_sampled, resumed)
    _, sampled_weights, _ = final_state(resumed)
    _, best_weights, _ = final_state(uninterrupted)
    assert not torch.equal(sampled_weights["output_layer.weight"], best_weights["output_layer.weight"])


def test_resume_after_max_time_stop_matches_uninterrupted_run(tiny_corpus, tmp_path):
    first = run(tiny_corpus, tmp_path / "first", "trainer.max_steps=5000", "trainer.max_time=00:00:00:01")
    stopped_at = torch.load(first, weights_only=True)["global_step"]
    assert 0 < stopped_at < 5000, "the time limit should stop the run before max_steps"
    # Lightning validates once more when a run stops between two scheduled validations;
    # that extra validation must not feed the plateau schedule, or the runs would differ.
    total = stopped_at + 25
    # max_time is a budget for the whole run, resumes included: give it more time.
    more_time = "trainer.max_time=00:01:00:00"
    resumed = run(tiny_corpus, tmp_path / "resumed", f"trainer.max_steps={total}", more_time, f"ckpt_path={first}")
    uninterrupted = run(tiny_corpus, tmp_path / "uninterrupted", f"trainer.max_steps={total}", more_time)
    assert_same_final_state(uninterrupted, resumed)


def test_resume_after_kill_9_matches_uninterrupted_run(tiny_corpus, tmp_path, uninterrupted):
    run_dir = tmp_path / "killed"
    last = run_dir / "checkpoints" / "last.ckpt"
    overrides = [o for o in tiny_overrides(tiny_corpus, run_dir, *RESUMABLE) if not o.startswith("+run_dir")]
    command = [
        sys.executable,
        "-m",
        "nmt.train",
        *overrides,
        f"trainer.max_steps={TOTAL_STEPS}",
        "training.save_every_minutes=0.002",
        f"hydra.run.dir={run_dir}",
    ]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(random.Random(os.getpid()).uniform(0.0, 0.5))
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert last.exists()
    killed_at = torch.load(last, weights_only=True)["global_step"]
    assert killed_at < TOTAL_STEPS, "the run finished before it could be killed"
    # ckpt_path alone: the config comes from the checkpoint, the run directory is the old one.
    result = subprocess.run(
        [sys.executable, "-m", "nmt.train", f"ckpt_path={last}"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert not list((run_dir / "checkpoints").glob(f".*{TEMPORARY_MARK}*"))
    assert_same_final_state(uninterrupted, last)


def test_checkpoint_holds_rng_states_and_the_trained_data_position(tiny_corpus, tmp_path):
    last = run(tiny_corpus, tmp_path, "trainer.max_steps=30")
    state = torch.load(last, weights_only=True)["callbacks"]["ResumeState"]
    assert state["data"] == {"epoch": 1, "batches_done": 30 - 24}
    [rng] = state["rng"]  # one process, one entry
    assert {"torch", "python", "numpy"} <= set(rng)


def test_rng_states_round_trip_for_torch_python_and_numpy():
    import numpy as np

    states = capture_rng_states()
    expected = (torch.rand(3), random.random(), np.random.rand())
    torch.manual_seed(99), random.seed(99), np.random.seed(99)
    restore_rng_states(states)
    assert torch.equal(torch.rand(3), expected[0])
    assert random.random() == expected[1] and np.random.rand() == expected[2]


class BatchCounter(L.Callback):
    """Counts the batches trained in each epoch of the sampler."""

    def __init__(self) -> None:
        self.per_epoch: dict[int, int] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        epoch = trainer.train_dataloader.batch_sampler.pass_epoch
        self.per_epoch[epoch] = self.per_epoch.get(epoch, 0) + 1


def test_token_batches_every_epoch_trains_all_of_its_batches(tiny_corpus, tmp_path, monkeypatch):
    import nmt.training.trainer as trainer_module

    counter = BatchCounter()
    build = trainer_module.build_callbacks
    monkeypatch.setattr(trainer_module, "build_callbacks", lambda *a, **k: build(*a, **k) + [counter])
    run(
        tiny_corpus,
        tmp_path,
        "data.batch_unit=tokens",
        "data.batch_size=150",
        "trainer.max_epochs=4",
        "trainer.max_steps=-1",
    )
    sampler_lengths = []
    from nmt.data.batching import BucketBatchSampler
    from nmt.data.translation_datamodule import TranslationDataModule

    cfg = compose_config(tiny_overrides(tiny_corpus, tmp_path, "data.batch_unit=tokens", "data.batch_size=150"))
    datamodule = TranslationDataModule(cfg.data, cfg.tokenizer, seed=int(cfg.seed))
    datamodule.setup()
    sampler = BucketBatchSampler(datamodule.datasets["train"].lengths(), 150, unit="tokens", seed=int(cfg.seed))
    for _ in range(4):
        sampler_lengths.append(len(list(sampler)))
    assert [counter.per_epoch[e] for e in range(4)] == sampler_lengths


def test_timed_save_refreshes_last_checkpoint_between_validations(tiny_corpus, tmp_path, monkeypatch):
    import nmt.training.checkpointing as checkpointing

    saved_steps = []
    original = checkpointing.LatestCheckpoint._save_checkpoint

    def spy(self, trainer, filepath):
        saved_steps.append(trainer.global_step)
        original(self, trainer, filepath)

    monkeypatch.setattr(checkpointing.LatestCheckpoint, "_save_checkpoint", spy)
    run(tiny_corpus, tmp_path, "trainer.max_steps=25", "training.save_every_minutes=0.00001")
    assert any(step % 10 for step in saved_steps[:-1]), saved_steps  # saves off the validation steps


def test_stale_temporary_checkpoint_files_are_removed_at_start(tiny_corpus, tmp_path):
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir(parents=True)
    stale = checkpoints / f".last.ckpt{TEMPORARY_MARK}4242-deadbeef"
    stale.write_bytes(b"half a checkpoint")
    run(tiny_corpus, tmp_path, "trainer.max_steps=5")
    assert not stale.exists()
    assert (checkpoints / "last.ckpt").is_file()


def test_atomic_save_writes_beside_the_target_and_leaves_the_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "last.ckpt"
    atomic_save({"step": 1}, target)
    seen = []
    real_replace = os.replace

    def failing_replace(source, destination):
        seen.append(Path(source))
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        atomic_save({"step": 2}, target)
    monkeypatch.setattr(os, "replace", real_replace)
    assert seen and seen[0].parent == tmp_path  # same directory: the rename is atomic
    assert torch.load(target, weights_only=True) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_a_kill_during_the_write_never_damages_the_previous_checkpoint(tmp_path):
    """Kill a process that rewrites a big checkpoint in a loop, at random moments."""
    target = tmp_path / "last.ckpt"
    script = (
        "import sys, torch\n"
        "from nmt.inference.checkpoint import atomic_save\n"
        "i = 0\n"
        "while True:\n"
        "    i += 1\n"
        "    atomic_save({'i': i, 'w': torch.full((2_000_000,), float(i))}, sys.argv[1])\n"
    )
    rng = random.Random(1)
    for _ in range(5):
        process = subprocess.Popen([sys.executable, "-c", script, str(target)], cwd=REPO)
        deadline = time.monotonic() + 60
        while not target.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.05, 0.4))
        process.send_signal(signal.SIGKILL)
        process.wait()
        checkpoint = torch.load(target, weights_only=True)
        assert torch.all(checkpoint["w"] == float(checkpoint["i"]))
