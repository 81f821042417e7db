"""Learning-rate schedules: warm-up, inverse square root, cosine, and plateau cuts that last."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from conftest import compose_config, tiny_overrides
from nmt.config.schema import OptimSchema, section_defaults
from nmt.tasks.optim import LinearWarmup, build_plateau, configure, warmup_factor

BASE = {**section_defaults(OptimSchema), "lr": 0.01, "min_lr": 0.001, "plateau_factor": 0.5, "plateau_patience": 0}


def rates(schedule: str, steps: int, total: int | None = None, **cfg) -> list[float]:
    """The learning rate used at each of ``steps`` optimiser steps."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=BASE["lr"])
    configured = configure(optimizer, {**BASE, "schedule": schedule, **cfg}, total)
    scheduler = configured["lr_scheduler"]["scheduler"] if isinstance(configured, dict) else None
    seen = []
    for _ in range(steps):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    return seen


def test_linear_warmup_rises_to_the_base_rate_then_stays():
    assert rates("none", 6, warmup_steps=4) == pytest.approx([0.0025, 0.005, 0.0075, 0.01, 0.01, 0.01])
    assert warmup_factor(0, 0) == 1.0


def test_no_schedule_and_no_warmup_keeps_the_rate_constant():
    assert rates("none", 4) == [0.01] * 4


def test_inverse_sqrt_warms_up_then_decays_with_the_square_root_of_the_step():
    seen = rates("inverse_sqrt", 16, warmup_steps=4)
    assert seen[:4] == pytest.approx([0.0025, 0.005, 0.0075, 0.01])
    assert seen[15] == pytest.approx(0.01 * math.sqrt(4 / 16))


def test_cosine_warms_up_then_decays_to_min_lr_at_max_steps():
    seen = rates("cosine", 12, total=10, warmup_steps=2)
    assert seen[:2] == pytest.approx([0.005, 0.01])
    middle = 2 + (10 - 2) // 2
    assert seen[middle] == pytest.approx(0.001 + 0.009 * 0.5)
    assert seen[10] == pytest.approx(0.001) and seen[11] == pytest.approx(0.001)
    assert all(a >= b for a, b in zip(seen[1:11], seen[2:11]))


def test_cosine_without_max_steps_is_an_error():
    with pytest.raises(ValueError, match="max_steps"):
        rates("cosine", 1, total=None)


def test_a_plateau_cut_after_the_warmup_lasts():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
    warmup = LinearWarmup(optimizer, 3)
    plateau = build_plateau(optimizer, {**BASE, "schedule": "plateau"}, mode="max")
    for _ in range(3):
        optimizer.step(), warmup.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01)
    plateau.step(1.0)
    plateau.step(1.0)  # no improvement, patience 0: halve
    for _ in range(5):
        optimizer.step(), warmup.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.005)


def test_plateau_with_warmup_in_a_training_run_keeps_its_cuts(tiny_corpus, tmp_path):
    from nmt.cli.train import train

    # The toy model's dev BLEU stays 0 this early: every validation after the warm-up cuts.
    train(
        compose_config(
            tiny_overrides(
                tiny_corpus,
                tmp_path,
                "optim.schedule=plateau",
                "optim.warmup_steps=15",
                "optim.plateau_patience=0",
                "trainer.max_steps=60",
                "trainer.val_check_interval=10",
                "trainer.log_every_n_steps=1",
                "test_after_training=false",
            )
        )
    )
    with open(tmp_path / "csv" / "metrics.csv") as handle:
        logged = [(int(row["step"]), float(row["lr-Adam"])) for row in csv.DictReader(handle) if row.get("lr-Adam")]
    by_step = dict(logged)
    assert by_step[0] == pytest.approx(0.001 / 15)  # warming up
    assert by_step[14] == pytest.approx(0.001)  # warm-up done
    cut_steps = [step for step, lr in logged if step > 20 and lr < 0.001]
    assert cut_steps, logged
    first_cut = min(cut_steps)
    assert all(lr < 0.001 for step, lr in logged if step >= first_cut)  # no reset to the base rate
    assert by_step[59] <= 0.001 * 0.5**2
