"""training.max_cpu_time: a training budget in CPU time of the process, counted over resumes."""

from __future__ import annotations

import pytest
import torch

from conftest import compose_config, tiny_overrides
from nmt.config.checks import ConfigError, validate_config
from nmt.inference.checkpoint import load_checkpoint
from nmt.training.cpu_budget import CpuTimeBudget, parse_duration


def test_durations_are_read_like_max_time():
    assert parse_duration("00:00:15:00") == 900
    assert parse_duration("01:02:03:04") == ((24 + 2) * 60 + 3) * 60 + 4
    with pytest.raises(ValueError, match="DD:HH:MM:SS"):
        parse_duration("15m")


@pytest.mark.parametrize("value", ["15m", "00:00:00:00", 900])
def test_a_bad_budget_is_refused_before_training(value):
    cfg = compose_config([f"training.max_cpu_time={value}"])
    with pytest.raises(ConfigError, match="max_cpu_time"):
        validate_config(cfg)


def test_training_stops_on_the_cpu_budget_and_a_resume_continues_it(tiny_corpus, tmp_path):
    from nmt.cli.train import train

    overrides = tiny_overrides(
        tiny_corpus,
        tmp_path,
        "trainer.max_steps=100000",
        "training.max_cpu_time=00:00:00:02",
        "test_after_training=false",
    )
    torch.manual_seed(0)
    train(compose_config(overrides))
    last = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    used = next(state["used_s"] for key, state in last["callbacks"].items() if "CpuTimeBudget" in key)
    assert 2.0 <= used < 30.0 and 0 < last["global_step"] < 100000
    budget = CpuTimeBudget(10.0)
    budget.load_state_dict({"used_s": used})
    assert budget.used_s() == pytest.approx(used)  # a resumed run starts from what was spent
