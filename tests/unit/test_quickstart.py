"""``experiment=quickstart``: the five-minute first model, on the corpus shipped with nmt."""

from __future__ import annotations

import pytest

from conftest import compose_config
from nmt.cli.train import train
from nmt.config.checks import validate_config
from nmt.data.embedded import embedded_path


def test_quickstart_composes_as_a_bounded_run_of_the_default_recipe():
    cfg = compose_config(["experiment=quickstart"])
    validate_config(cfg)
    default = compose_config([])
    assert cfg.name == "quickstart" and cfg.task == "translation" and cfg.data.download is False
    assert cfg.trainer.max_time == "00:00:04:00"
    assert cfg.model == default.model and cfg.attention == default.attention  # the recipe, only smaller data
    assert default.trainer.max_time is not None  # the main command ends by itself too


def test_quickstart_trains_a_few_steps_on_the_shipped_pairs(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("NMT_DATA_DIR", str(tmp_path / "empty"))  # a fresh machine: no corpus on disk
    run_dir = tmp_path / "run"
    cfg = compose_config(
        [
            "experiment=quickstart",
            "data.split_cache=null",
            "data.bleu_sentences=8",
            "trainer.max_steps=3",
            "trainer.val_check_interval=3",
            "trainer.limit_val_batches=1",
            "trainer.num_sanity_val_steps=0",
            "trainer.enable_progress_bar=false",
            "test_after_training=false",
            f"+run_dir={run_dir}",
        ]
    )
    with caplog.at_level("INFO", logger="nmt.data"):
        metrics = train(cfg)
    assert str(embedded_path("fra")) in caplog.text
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    assert metrics["val/bleu"] == pytest.approx(metrics["val/bleu"])  # a number, not NaN
