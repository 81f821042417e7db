"""``nmt/cli/export.py``: an inference-only file (weights, tokenizers, config) that every tool
loads as it loads the checkpoint, gives the same outputs, is smaller, and cannot resume training."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from conftest import REPO, compose_config
from nmt.cli import export
from nmt.decoding import DecodingOptions
from nmt.inference.checkpoint import CheckpointError, is_inference_only, load_checkpoint, training_summary
from nmt.inference.classifier import Classifier, load_classifier
from nmt.inference.translator import Translator

SENTENCES = ["The cat sees a dog.", "A small red house.", "The big dog eats the cat."]


@pytest.fixture(scope="module")
def exported(tiny_translation_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "model.pt"
    sizes = export.export(tiny_translation_checkpoint, out)
    return out, sizes


def test_the_export_keeps_weights_tokenizers_config_and_training_figures_only(tiny_translation_checkpoint, exported):
    out, (before, after) = exported
    original, light = load_checkpoint(tiny_translation_checkpoint), load_checkpoint(out)
    assert set(light) == {"nmt", "state_dict"} and "optimizer_states" in original
    assert is_inference_only(light) and not is_inference_only(original)
    assert light["nmt"]["config"] == original["nmt"]["config"]
    assert training_summary(light) == training_summary(original) and training_summary(light)["steps"] > 0
    assert light["state_dict"].keys() == {k for k in original["state_dict"] if k.startswith("model.")}
    for key, value in light["state_dict"].items():
        torch.testing.assert_close(value, original["state_dict"][key], rtol=0, atol=0)
    assert after == out.stat().st_size < before == tiny_translation_checkpoint.stat().st_size


@pytest.mark.parametrize("options", [DecodingOptions(), DecodingOptions(strategy="beam", beam_size=4, n_best=2)])
def test_the_export_translates_exactly_as_the_checkpoint(tiny_translation_checkpoint, exported, options):
    def outputs(path):
        translations = Translator.from_checkpoint(path, device="cpu").translate(SENTENCES, options)
        return [[(h.text, h.score) for h in t.hypotheses] for t in translations]

    assert outputs(exported[0]) == outputs(tiny_translation_checkpoint)


def test_a_classifier_export_classifies_exactly_as_the_checkpoint(tiny_classification_checkpoint, tmp_path):
    out = tmp_path / "classifier.pt"
    export.export(tiny_classification_checkpoint, out)
    texts = ["free prize, call now", "see you at lunch"]
    before = Classifier(load_classifier(tiny_classification_checkpoint)).predict(texts)
    after = Classifier(load_classifier(out)).predict(texts)
    assert after == before


def test_a_float16_export_stores_half_precision_and_loads_as_float32(tiny_translation_checkpoint, exported, tmp_path):
    out = tmp_path / "half.pt"
    export.export(tiny_translation_checkpoint, out, "float16")
    stored = load_checkpoint(out)["state_dict"]
    assert all(v.dtype == torch.float16 for v in stored.values() if v.is_floating_point())
    assert out.stat().st_size < 0.6 * exported[0].stat().st_size
    translator = Translator.from_checkpoint(out, device="cpu")
    assert all(p.dtype == torch.float32 for p in translator.model.parameters())
    assert len(translator.translate(SENTENCES)) == len(SENTENCES)


def test_training_refuses_to_resume_from_an_export(exported, tmp_path):
    from nmt.cli.train import prepare_config

    cfg = compose_config([f"ckpt_path={exported[0]}", f"+run_dir={tmp_path}"])
    with pytest.raises(CheckpointError, match="inference-only export .* resume from the run's checkpoints/last.ckpt"):
        prepare_config(cfg)


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nmt.cli.export", *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_the_script_reports_the_size_saved(tiny_translation_checkpoint, tmp_path):
    out = tmp_path / "model.pt"
    result = run_script(tiny_translation_checkpoint, out)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"wrote {out}: ") and " saved, " in result.stdout
    assert is_inference_only(load_checkpoint(out))


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda ckpt, tmp: (tmp / "missing.ckpt", tmp / "out.pt"), "missing.ckpt"),
        (lambda ckpt, tmp: (ckpt, ckpt), "OUT is the checkpoint itself"),
        (lambda ckpt, tmp: (ckpt, tmp / "a_file" / "out.pt"), "a_file"),
    ],
)
def test_the_script_errors_are_one_line(tiny_translation_checkpoint, tmp_path, capsys, make_args, message):
    (tmp_path / "a_file").write_text("not a directory")
    status = export.main([str(arg) for arg in make_args(tiny_translation_checkpoint, tmp_path)])
    error = capsys.readouterr().err
    assert status == 2 and message in error
    assert error.startswith(f"{export.PROG}: error: ") and len(error.strip().splitlines()) == 1
