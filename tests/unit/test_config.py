"""The Hydra configs compose, and bad values fail before anything is trained."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import OmegaConfBaseException

from conftest import CONF_DIR, compose_config
from nmt.config.checks import ConfigError, validate_config

TRANSLATION_PRESETS = ["char_bahdanau", "char_dot", "spm_bahdanau", "spm_dot"]


def all_presets():
    return sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


def presets_with_their_extras():
    """Every preset; the scikit-learn baselines validate only where scikit-learn is installed."""
    return [
        pytest.param(preset, marks=pytest.mark.needs("sklearn"))
        if "task: baseline" in (CONF_DIR / "experiment" / f"{preset}.yaml").read_text(encoding="utf-8")
        else preset
        for preset in all_presets()
    ]


@pytest.mark.parametrize("preset", presets_with_their_extras())
def test_every_experiment_preset_composes_and_validates(preset):
    if preset.endswith(("_elmo", "_elmo_glove")):
        pytest.skip("needs a biLM checkpoint: test_contextual_embeddings validates it with its _bilm preset's")
    required = {"from_translation": "model.encoder.init_from=/x.ckpt", "mean_vectors": "model.vectors=/x.vec"}
    cfg = compose_config([f"experiment={preset}"] + [value for key, value in required.items() if key in preset])
    assert cfg.name == preset
    validate_config(cfg)


@pytest.mark.parametrize("preset", TRANSLATION_PRESETS)
def test_translation_presets_pick_their_tokenizer_and_attention(preset):
    cfg = compose_config([f"experiment={preset}"])
    tokenizer, attention = preset.split("_")
    assert cfg.tokenizer.type == ("char" if tokenizer == "char" else "sentencepiece")
    assert cfg.attention.type == attention


def test_default_run_is_spm_bahdanau():
    cfg = compose_config()
    assert cfg.name == "spm_bahdanau" and cfg.tokenizer.vocab_size == 4000 and cfg.optim.schedule == "inverse_sqrt"


@pytest.mark.parametrize("group", ["gpu", "ddp"])
def test_gpu_trainer_presets_use_mixed_precision(group):
    cfg = compose_config([f"trainer={group}"])
    assert cfg.trainer.accelerator == "gpu" and cfg.trainer.precision == "bf16-mixed"
    assert (cfg.trainer.strategy == "ddp") == (group == "ddp")


def test_misspelled_key_is_rejected_by_hydra():
    with pytest.raises((ConfigCompositionException, OmegaConfBaseException)):
        compose_config(["model.hiden_size=128"])


@pytest.mark.parametrize(
    "override,message",
    [
        ("attention.type=luong", "attention.type"),
        ("model.cell=transformer", "model.cell"),
        ("model.hidden_size=abc", "hidden_size"),
        ("model.hidden_size=0", "model.hidden_size"),
        ("model.dropout=1.5", "model.dropout"),
        ("data.split.train=0.5", "data.split"),
        ("tokenizer.type=bytes", "tokenizer.type"),
        ("data.batch_unit=pages", "data.batch_unit"),
        ("optim.schedule=linear", "optim.schedule"),
        ("loss.label_smoothing=1.0", "label_smoothing"),
        # combinations that used to fail only after the data was read
        ("model.tie_embeddings=true model.embed_size=128", "tie_embeddings"),
        ("optim.schedule=cosine", "trainer.max_steps"),
        ("optim.schedule=cosine trainer.max_steps=100 optim.warmup_steps=100", "warmup_steps"),
        ("model.hidden_size=255", "even model.hidden_size"),
        ("data.batch_unit=tokens data.batch_size=40", "data.batch_size"),
        ("optim.lr=0", "optim.lr"),
        ("optim.lr=-1e-3", "optim.lr"),
        ("optim.warmup_steps=-5", "optim.warmup_steps"),
        ("optim.plateau_factor=1.5", "plateau_factor"),
        ("attention.size=0", "attention.size"),
        ("trainer.max_time=30min", "DD:HH:MM:SS"),
        ("training.save_every_minutes=-1", "save_every_minutes"),
        ("training.nonfinite_patience=-1", "nonfinite_patience"),
        ("training.exploding_loss_factor=-1", "exploding_loss_factor"),
        ("training.exploding_loss_factor=0.5", "exploding_loss_factor"),
        ("training.exploding_loss_patience=1.5", "exploding_loss_patience"),
        ("trainer.enable_progress_bar=sometimes", "enable_progress_bar"),
        ("trainer.precision=8-mixed", "trainer.precision"),
        ("trainer.accelerator=cpu trainer.devices=-1", "trainer.devices"),
        ("threads=0", "threads"),
        ("experiment=sms_bilstm_attn model.encoder.freeze=true", "init_from"),
        ("experiment=sms_bilstm_attn data.batch_unit=tokens data.batch_size=100", "data.batch_size"),
    ],
)
def test_bad_value_raises_config_error_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(compose_config(override.split()))


def test_gpu_recipe_without_cuda_is_refused_before_any_data_is_read():
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ConfigError, match="trainer.accelerator=cpu"):
        validate_config(compose_config(["trainer=gpu"]))
    validate_config(compose_config(["trainer=gpu", "trainer.accelerator=cpu"]))
    validate_config(compose_config(["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]))


def test_torch_floor_in_pyproject_is_one_whose_features_we_use():
    """Fused Adam on the CPU and torch.amp.GradScaler("cpu") came in torch 2.4."""
    import re

    from conftest import REPO

    text = (REPO / "pyproject.toml").read_text()
    floor = re.search(r'"torch>=([0-9.]+)', text).group(1)
    assert tuple(int(part) for part in floor.split(".")[:2]) >= (2, 4)
