"""Shared fixtures: the real Hydra configs, tiny corpora written here, a tiny trained model."""

from __future__ import annotations

import importlib
import os
import random
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"
SHARED_DATA = REPO.parent / "shared" / "data"

# The test models are tiny: one thread is as fast as two and never oversubscribes the cores
# (subprocesses inherit the variable).
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

# A toy "language pair": word-by-word translation with a fixed vocabulary, easy to overfit.
TOY_LEXICON = {
    "cat": "chat",
    "dog": "chien",
    "house": "maison",
    "red": "rouge",
    "big": "grand",
    "small": "petit",
    "the": "le",
    "sees": "voit",
    "eats": "mange",
    "a": "un",
}


def toy_pairs(count: int, seed: int = 0, min_words: int = 2, max_words: int = 6) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    words = list(TOY_LEXICON)
    pairs = []
    for _ in range(count):
        sentence = [rng.choice(words) for _ in range(rng.randint(min_words, max_words))]
        source = " ".join(sentence).capitalize() + "."
        target = " ".join(TOY_LEXICON[w] for w in sentence).capitalize() + " !"
        pairs.append((source, target))
    return pairs


def write_pairs(path: Path, pairs: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    return path


def compose_config(overrides: list[str] | None = None) -> DictConfig:
    """The real ``conf/`` composed with Hydra, as ``python -m nmt.train`` would see it."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides or [])


# Trainer settings for runs of seconds: frequent validation, no progress bar or sanity check.
FAST_TRAINER = [
    "trainer.val_check_interval=20",
    "trainer.enable_progress_bar=false",
    "trainer.num_sanity_val_steps=0",
    "trainer.log_every_n_steps=10",
    "early_stopping.patience=null",
]


def tiny_overrides(corpus: Path, run_dir: Path, *extra: str) -> list[str]:
    """Overrides that make a full training run take seconds on a CPU."""
    return [
        f"data.path={corpus}",
        "data.split_cache=null",
        "data.batch_size=16",
        "data.bleu_sentences=null",
        "tokenizer.vocab_size=60",
        "model.embed_size=32",
        "model.hidden_size=64",
        "model.tie_embeddings=false",  # the default recipe ties, which needs embed == hidden
        "model.dropout=0.0",
        "trainer.max_steps=40",
        *FAST_TRAINER,
        # Tiny runs of tens of steps: a constant rate, not the default recipe's 300 warmup steps.
        "optim.lr=0.001",
        "optim.schedule=plateau",
        "optim.warmup_steps=0",
        "training.average_last=0",
        f"+run_dir={run_dir}",
        *extra,
    ]


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """400 toy English-French pairs in the manythings format."""
    return write_pairs(tmp_path_factory.mktemp("corpus") / "fra.txt", toy_pairs(400))


@pytest.fixture(scope="session")
def tiny_translation_checkpoint(tiny_corpus, tmp_path_factory) -> Path:
    """A small spm_bahdanau model trained for a few hundred steps; returns best.ckpt."""
    from nmt.cli.train import train

    run_dir = tmp_path_factory.mktemp("tiny_run")
    cfg = compose_config(
        tiny_overrides(
            tiny_corpus,
            run_dir,
            "trainer.max_steps=300",
            "trainer.val_check_interval=100",
            "optim.lr=0.005",
            "test_after_training=false",
        )
    )
    torch.manual_seed(0)
    train(cfg)
    return run_dir / "checkpoints" / "best.ckpt"


@pytest.fixture(scope="session")
def tiny_classification_checkpoint(tmp_path_factory) -> Path:
    """An untrained ham/spam classifier (characters, sizes 8) in the real checkpoint format."""
    from omegaconf import OmegaConf

    from nmt.data.tokenizers import CharTokenizer
    from nmt.inference.checkpoint import PAYLOAD_KEY, make_payload
    from nmt.models.classifier import TextClassifier

    directory = tmp_path_factory.mktemp("tiny_classifier")
    cfg = compose_config(
        [
            "experiment=sms_bilstm_attn",
            f"data.path={directory / 'sms.txt'}",
            "data.max_tokens=50",
            "model.embed_size=8",
            "model.hidden_size=8",
        ]
    )
    config = OmegaConf.to_container(cfg, resolve=True)
    tokenizer = CharTokenizer.train(["free prize call now, see you at lunch! 0123456789"])
    torch.manual_seed(0)
    model = TextClassifier.from_config(config["model"], tokenizer.vocab_size, 2)
    payload = make_payload("classification", config, {"source": tokenizer})
    payload["labels"] = ["ham", "spam"]
    path = directory / "classifier.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}, PAYLOAD_KEY: payload}, path)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """``@pytest.mark.needs("sklearn", ...)``: skip, naming the extra's module, when it is not installed
    (``make test`` installs every extra; a lighter environment skips instead of failing)."""
    for marker in item.iter_markers("needs"):
        for module in marker.args:
            try:
                importlib.import_module(module)
            except ImportError:
                pytest.skip(f"needs {module}, an optional extra that is not installed")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip_gpu)


@pytest.fixture(autouse=True)
def subnormals_not_flushed():
    """A training run in the test process keeps flush-to-zero on for its thread (nmt.cli.train);
    every test starts from PyTorch's default again."""
    yield
    from nmt.ops.softmax import stop_flushing_subnormals

    stop_flushing_subnormals()
