"""Training end to end: overfitting, the CLI entry point, checkpoints and exact resume."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from conftest import REPO, compose_config, tiny_overrides, toy_pairs
from nmt.cli.train import train
from nmt.data.batching import pad_sequences
from nmt.data.tokenizers import BOS_ID, EOS_ID, build_tokenizers
from nmt.decoding.greedy import greedy_decode
from nmt.inference.checkpoint import PAYLOAD_KEY, checkpoint_tokenizers, load_checkpoint, model_state_dict
from nmt.models.seq2seq import Seq2Seq
from nmt.tasks.translation import sequence_loss
from nmt.training.curves import read_curves


@pytest.mark.parametrize("tokenizer", ["char", "sentencepiece"])
@pytest.mark.parametrize("attention", ["bahdanau", "dot"])
def test_tiny_corpus_is_overfitted_until_greedy_reproduces_it(tokenizer, attention):
    torch.manual_seed(0)
    pairs = toy_pairs(12, seed=3, max_words=4)
    sources, targets = [s for s, _ in pairs], [t for _, t in pairs]
    cfg = {"type": tokenizer, "joint": False, "vocab_size": 40, "model_type": "unigram", "min_freq": 1}
    src_tok, tgt_tok = build_tokenizers(cfg, sources, targets)
    model = Seq2Seq(
        src_tok.vocab_size, tgt_tok.vocab_size, embed_size=32, hidden_size=64, dropout=0.0, attention=attention
    )
    src, src_lengths = pad_sequences(src_tok.encode_batch(sources))
    tgt_ids = tgt_tok.encode_batch(targets)
    tgt_in, _ = pad_sequences([[BOS_ID, *ids] for ids in tgt_ids])
    tgt_out, _ = pad_sequences([[*ids, EOS_ID] for ids in tgt_ids])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(400):
        logits, _ = model(src, src_lengths, tgt_in)
        loss, tokens = sequence_loss(logits, tgt_out)
        optimizer.zero_grad()
        (loss / tokens).backward()
        optimizer.step()
        if (loss / tokens).item() < 0.01:
            break
    model.eval()
    output = greedy_decode(model, src, src_lengths)
    assert [tgt_tok.decode(ids) for ids in output.tokens] == targets


def test_python_dash_m_train_runs_end_to_end_and_writes_run_directory(tiny_corpus, tmp_path):
    run_dir = tmp_path / "run"
    # The char tokenizer has no vocab_size; the experiment comes first, as a user would type it.
    overrides = [
        o for o in tiny_overrides(tiny_corpus, run_dir) if not o.startswith(("+run_dir", "tokenizer.vocab_size"))
    ]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nmt.train",
            "experiment=char_dot",
            *overrides,
            "trainer.max_steps=20",
            "trainer.val_check_interval=10",
            "threads=2",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "keep subnormals" not in result.stdout + result.stderr  # both threads started after flush-to-zero was set
    for name in ["config.yaml", "checkpoints/best.ckpt", "checkpoints/last.ckpt", "csv/metrics.csv", "curves.png"]:
        assert (run_dir / name).exists(), name
    assert (run_dir / "curves.png").read_bytes()[:4] == b"\x89PNG"
    points = read_curves(run_dir / "curves.jsonl")
    assert [p["step"] for p in points if p["kind"] == "train"] == [10, 20]
    assert [p["step"] for p in points if p["kind"] == "val"] == [10, 20]
    assert all("val/bleu" in p and "val/loss" in p for p in points if p["kind"] == "val")
    times = [p["time_s"] for p in points]
    assert times == sorted(times) and times[0] > 0
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    metrics = (run_dir / "csv" / "metrics.csv").read_text()
    for column in ["val/bleu", "val/loss", "val/ppl", "train/loss", "test/bleu"]:
        assert column in metrics


def test_bad_override_fails_before_training(tiny_corpus, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nmt.train",
            f"data.path={tiny_corpus}",
            "attention.type=luong",
            f"hydra.run.dir={tmp_path}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "attention.type" in result.stderr and "bahdanau" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "checkpoints").exists()


def test_checkpoint_is_self_contained_and_loads_with_weights_only(tiny_translation_checkpoint):
    raw = torch.load(tiny_translation_checkpoint, map_location="cpu", weights_only=True)
    payload = raw[PAYLOAD_KEY]
    assert payload["task"] == "translation"
    assert payload["config"]["model"]["hidden_size"] == 64
    tokenizers = checkpoint_tokenizers(load_checkpoint(tiny_translation_checkpoint))
    assert set(tokenizers) == {"source", "target"}
    model = Seq2Seq.from_config(
        payload["config"]["model"],
        payload["config"]["attention"],
        tokenizers["source"].vocab_size,
        tokenizers["target"].vocab_size,
    )
    model.load_state_dict(model_state_dict(raw))


def _final_weights(run_dir):
    return model_state_dict(torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True))


def test_resume_from_mid_epoch_checkpoint_matches_uninterrupted_training(tiny_corpus, tmp_path):
    # 24 batches per epoch: step 30 lies in the middle of the second epoch.
    common = ["trainer.val_check_interval=10", "test_after_training=false", "optim.schedule=plateau"]
    full = tmp_path / "full"
    train(compose_config(tiny_overrides(tiny_corpus, full, "trainer.max_steps=50", *common)))
    first = tmp_path / "first"
    train(compose_config(tiny_overrides(tiny_corpus, first, "trainer.max_steps=30", *common)))
    resumed = tmp_path / "resumed"
    last = first / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 30
    train(compose_config(tiny_overrides(tiny_corpus, resumed, "trainer.max_steps=50", *common, f"ckpt_path={last}")))
    assert torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 50
    expected, actual = _final_weights(full), _final_weights(resumed)
    for name, tensor in expected.items():
        torch.testing.assert_close(actual[name], tensor, rtol=0, atol=1e-6, msg=name)
