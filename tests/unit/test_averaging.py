"""Checkpoint averaging: the mean of the weights at the last validations, as a checkpoint
every tool loads; and the same for checkpoint files."""

from __future__ import annotations

import subprocess
import sys

import lightning as L
import pytest
import torch

from conftest import REPO, compose_config, tiny_overrides
from nmt.inference.checkpoint import average_weights, load_checkpoint, model_state_dict
from nmt.inference.translator import Translator


def test_average_weights_is_the_elementwise_mean_and_keeps_dtypes():
    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(5)}
    averaged = average_weights([a, b])
    torch.testing.assert_close(averaged["w"], torch.tensor([2.0, 4.0]))
    assert averaged["n"].item() == 5 and averaged["w"].dtype == torch.float32
    with pytest.raises(ValueError, match="different networks"):
        average_weights([a, {"v": torch.zeros(2)}])


class ValidationWeights(L.Callback):
    def __init__(self) -> None:
        self.taken = {}

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.taken[trainer.global_step] = {k: v.clone() for k, v in pl_module.model.state_dict().items()}


def test_training_writes_the_average_of_the_last_validations(tiny_corpus, tmp_path, monkeypatch):
    import nmt.training.trainer as trainer_module
    from nmt.cli.train import train

    spy = ValidationWeights()
    build = trainer_module.build_callbacks
    monkeypatch.setattr(trainer_module, "build_callbacks", lambda *a, **k: build(*a, **k) + [spy])
    train(
        compose_config(
            tiny_overrides(
                tiny_corpus,
                tmp_path,
                "trainer.max_steps=50",
                "trainer.val_check_interval=10",
                "training.average_last=3",
                "test_after_training=false",
            )
        )
    )
    path = tmp_path / "checkpoints" / "average.ckpt"
    checkpoint = load_checkpoint(path)
    assert checkpoint["nmt"]["averaged_steps"] == [30, 40, 50]
    expected = average_weights([spy.taken[step] for step in (30, 40, 50)])
    for key, value in model_state_dict(checkpoint).items():
        torch.testing.assert_close(value, expected[key], msg=key)
    [translation] = Translator.from_checkpoint(path, device="cpu").translate(["The cat sees a dog."])
    assert translation.text


def test_average_checkpoints_script_averages_files_and_refuses_other_networks(tiny_translation_checkpoint, tmp_path):
    last = tiny_translation_checkpoint.parent / "last.ckpt"
    output = tmp_path / "avg.ckpt"
    result = subprocess.run(
        [sys.executable, "-m", "nmt.cli.average", str(tiny_translation_checkpoint), str(last), "--output", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    expected = average_weights([model_state_dict(load_checkpoint(p)) for p in (tiny_translation_checkpoint, last)])
    for key, value in model_state_dict(load_checkpoint(output)).items():
        torch.testing.assert_close(value, expected[key])
    other = tmp_path / "other.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    checkpoint["nmt"]["config"]["model"]["hidden_size"] = 999
    torch.save(checkpoint, other)
    result = subprocess.run(
        [sys.executable, "-m", "nmt.cli.average", str(last), str(other), "--output", str(tmp_path / "x.ckpt")],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "model" in result.stderr


def test_the_default_recipes_tied_output_layer_stays_tied_in_every_checkpoint(tiny_corpus, tmp_path):
    """The default recipe ties the output layer to the target embedding: the weights saved in
    best/last/average checkpoints agree, and every loaded model shares one tensor again."""
    from nmt.cli.train import train

    cfg = compose_config(
        tiny_overrides(
            tiny_corpus,
            tmp_path,
            "model.tie_embeddings=true",
            "model.embed_size=32",
            "model.hidden_size=32",
            "trainer.max_steps=30",
            "trainer.val_check_interval=10",
            "training.average_last=2",
            "test_after_training=false",
        )
    )
    assert cfg.model.init.scheme == "xavier"  # the default recipe's, which scales the tied weights
    train(cfg)
    for name in ("best", "last", "average"):
        path = tmp_path / "checkpoints" / f"{name}.ckpt"
        weights = model_state_dict(load_checkpoint(path))
        torch.testing.assert_close(weights["output_layer.weight"], weights["tgt_embed.weight"], msg=name)
        model = Translator.from_checkpoint(path, device="cpu").model
        assert model.output_layer.weight is model.tgt_embed.weight, name
