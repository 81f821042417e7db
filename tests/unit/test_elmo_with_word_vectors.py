"""ELMo + GloVe: a word-level biLM's scalar mix concatenated with pretrained word vectors in the
classifier's own embedding (model.contextual.bilm with model.embeddings.pretrained)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from conftest import FAST_TRAINER, compose_config
from nmt.config.checks import ConfigError
from nmt.data.tokenizers import PAD_ID, CharTokenizer, WordTokenizer
from nmt.embeddings.pretrained import load_pretrained
from nmt.inference.checkpoint import PAYLOAD_KEY, load_checkpoint, make_payload, model_state_dict
from nmt.inference.classifier import Classifier, load_classifier
from nmt.models.bilm import BidirectionalLanguageModel
from nmt.models.classifier import TextClassifier
from nmt.models.contextual import ContextualEmbedder
from nmt.tasks.preflight import check_run_config

HAM = "ok see you later at home tonight call me when get there love dinner going now".split()
SPAM = "free win prize cash claim now call txt urgent award guaranteed offer stop reply".split()
DIM = 8


def glove_file(path: Path, words: list[str], seed: int = 0) -> dict[str, np.ndarray]:
    """A GloVe text file (no header) with a vector for each of ``words``; returns them."""
    rng = np.random.default_rng(seed)
    vectors = {word: rng.normal(size=DIM).round(4).astype(np.float32) for word in words}
    path.write_text(
        "".join(f"{word} {' '.join(f'{x:.4f}' for x in vector)}\n" for word, vector in vectors.items()),
        encoding="utf-8",
    )
    return vectors


# -- the network: shapes and the concatenated input ---------------------------------------------


def word_classifier(tokenizer: WordTokenizer, hidden: int = 6) -> TextClassifier:
    torch.manual_seed(0)
    bilm = BidirectionalLanguageModel(tokenizer.vocab_size, embed_size=hidden, hidden_size=hidden, num_layers=2)
    return TextClassifier(
        tokenizer.vocab_size, 2, embed_size=DIM, hidden_size=10, dropout=0.0, contextual=ContextualEmbedder(bilm)
    ).eval()


def test_encoder_input_is_the_word_vector_then_the_elmo_features_of_the_same_token(tmp_path):
    tokenizer = WordTokenizer.train([" ".join(HAM + SPAM)])
    vectors = glove_file(tmp_path / "vectors.txt", ["free", "prize", "home"])
    model = word_classifier(tokenizer)
    report = load_pretrained(model.src_embed, tokenizer, tmp_path / "vectors.txt", unknown="zeros")
    assert report.found == 3
    assert model.encoder.rnn.input_size == DIM + 2 * 6  # GloVe dim + the biLM's [forward; backward]

    ids = torch.tensor([tokenizer.encode("free prize at home"), tokenizer.encode("free home") + [PAD_ID] * 2])
    lengths = torch.tensor([4, 2])
    with torch.no_grad():
        embedded = model.embed(ids, lengths)
        elmo = model.contextual(ids, lengths)
    assert embedded.shape == (2, 4, DIM + 12)
    for row, column, word in ((0, 0, "free"), (0, 1, "prize"), (0, 3, "home"), (1, 1, "home")):
        assert torch.equal(embedded[row, column, :DIM], torch.from_numpy(vectors[word]))
    assert torch.equal(embedded[0, 2, :DIM], torch.zeros(DIM))  # "at": not in the file, unknown=zeros
    assert torch.equal(embedded[..., DIM:], elmo)
    assert torch.equal(embedded[1, 2:], torch.zeros(2, DIM + 12))  # padding: zero row and zero features


# -- through nmt.train: the biLM, the classifier, the checkpoint ---------------------------------


def toy_sms(count: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        spam = rng.random() < 0.3
        words = SPAM if spam else HAM
        rows.append(("spam" if spam else "ham", " ".join(rng.choice(words) for _ in range(rng.randint(2, 8)))))
    return rows


@pytest.fixture(scope="module")
def tiny_sms(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sms") / "SMSSpamCollection"
    path.write_text("".join(f"{label}\t{text}\n" for label, text in toy_sms(300)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def vectors(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    path = tmp_path_factory.mktemp("vectors") / "vectors.glove.txt"
    return path, glove_file(path, [w for w in HAM + SPAM if w not in ("ok", "txt")])  # two words left out


COMMON = ["trainer.max_time=null", "training.max_cpu_time=null", *FAST_TRAINER]


def bilm_overrides(corpus: Path, run_dir: Path) -> list[str]:
    return [
        "experiment=sms_bilm_word",
        f"data.path={corpus}",
        *COMMON,
        "model.embed_size=16",
        "model.hidden_size=16",
        "data.batch_size=400",
        "trainer.max_steps=30",
        "optim.lr=0.01",
        f"+run_dir={run_dir}",
    ]


def elmo_glove_overrides(corpus: Path, run_dir: Path, bilm: Path, vector_file: Path | None, *extra: str) -> list[str]:
    return [
        "experiment=sms_elmo_glove",
        f"data.path={corpus}",
        *COMMON,
        f"model.contextual.bilm={bilm}",
        *([f"model.embeddings.pretrained={vector_file}"] if vector_file else []),
        "model.hidden_size=16",
        "model.dropout=0.0",
        "trainer.max_steps=60",
        "optim.lr=0.01",
        f"+run_dir={run_dir}",
        *extra,
    ]


@pytest.fixture(scope="module")
def word_bilm(tiny_sms, tmp_path_factory) -> Path:
    from nmt.cli.train import train

    run_dir = tmp_path_factory.mktemp("bilm_word")
    torch.manual_seed(0)
    train(compose_config(bilm_overrides(tiny_sms, run_dir)))
    return run_dir / "checkpoints" / "best.ckpt"


@pytest.fixture(scope="module")
def elmo_glove_run(tiny_sms, word_bilm, vectors, tmp_path_factory) -> tuple[Path, dict]:
    from nmt.cli.train import train

    run_dir = tmp_path_factory.mktemp("elmo_glove")
    torch.manual_seed(0)
    overrides = elmo_glove_overrides(tiny_sms, run_dir, word_bilm, vectors[0], "model.embeddings.freeze=true")
    metrics = train(check_run_config(compose_config(overrides)))
    return run_dir / "checkpoints" / "best.ckpt", metrics


def test_checkpoint_holds_the_files_vectors_the_bilm_and_its_word_tokenizer(elmo_glove_run, word_bilm, vectors):
    checkpoint, metrics = elmo_glove_run
    assert metrics["test/acc"] >= 0.85  # 30 toy test messages, 70% ham
    classifier, bilm = load_checkpoint(checkpoint), load_checkpoint(word_bilm)
    tokenizers = classifier[PAYLOAD_KEY]["tokenizers"]
    assert tokenizers["source"] == bilm[PAYLOAD_KEY]["tokenizers"]["text"]
    assert tokenizers["source"]["kind"] == "word"
    weights = model_state_dict(classifier)
    for key, value in model_state_dict(bilm).items():  # frozen biLM
        assert torch.equal(weights[f"contextual.bilm.{key}"], value)
    loaded = load_classifier(checkpoint)
    _, by_word = vectors
    embedding = weights["src_embed.weight"]
    assert embedding.shape[1] == DIM  # model.embed_size taken from the file
    for word in ("free", "prize", "home"):  # frozen: still the file's vectors after training
        (token,) = loaded.tokenizer.encode(word)
        assert torch.equal(embedding[token], torch.from_numpy(by_word[word]))
    assert loaded.model.encoder.rnn.input_size == DIM + 2 * 16


def test_classify_needs_neither_the_bilm_nor_the_vector_file(elmo_glove_run, word_bilm, vectors, tmp_path):
    checkpoint, _ = elmo_glove_run
    moved = [(path, tmp_path / path.name) for path in (word_bilm, vectors[0])]
    for path, away in moved:
        path.rename(away)
    try:
        predictions = Classifier(load_classifier(checkpoint)).predict(["free prize claim now", "see you at home"])
    finally:
        for path, away in moved:
            away.rename(path)
    assert [p.label for p in predictions] == ["spam", "ham"]
    assert predictions[1].tokens == ["see", "you", "at", "home"]


# -- config checks ------------------------------------------------------------------------------------


def fake_bilm(path: Path, experiment: str, tokenizer) -> Path:
    """An untrained biLM checkpoint of ``experiment``'s config with ``tokenizer``."""
    cfg = compose_config([f"experiment={experiment}"])
    payload = make_payload("bilm", OmegaConf.to_container(cfg, resolve=True), {"text": tokenizer})
    network = BidirectionalLanguageModel.from_config(payload["config"]["model"], tokenizer.vocab_size)
    torch.save({"state_dict": {f"model.{k}": v for k, v in network.state_dict().items()}, PAYLOAD_KEY: payload}, path)
    return path


def test_the_preset_fits_a_checkpoint_of_the_word_bilm_preset(tmp_path, vectors):
    bilm = fake_bilm(tmp_path / "bilm.ckpt", "sms_bilm_word", WordTokenizer.train([" ".join(HAM)]))
    cfg = check_run_config(
        compose_config(
            ["experiment=sms_elmo_glove", f"model.contextual.bilm={bilm}", f"model.embeddings.pretrained={vectors[0]}"]
        )
    )
    assert cfg.model.embed_size == DIM


@pytest.mark.parametrize(
    "extra, message",
    [
        (["model.contextual.combine=replace"], "combine=replace leaves out: use model.contextual.combine=concat"),
        (["tokenizer=spm"], "needs a word-level biLM: train it with tokenizer=word"),
    ],
)
def test_config_errors_are_one_line(tmp_path, vectors, extra, message):
    bilm = fake_bilm(tmp_path / "bilm.ckpt", "sms_bilm_word", WordTokenizer.train([" ".join(HAM)]))
    overrides = elmo_glove_overrides(tmp_path, tmp_path, bilm, vectors[0], *extra)
    with pytest.raises(ConfigError, match=message) as error:
        check_run_config(compose_config(overrides))
    assert "\n" not in str(error.value)


def test_a_biLM_over_characters_cannot_take_word_vectors(tmp_path, vectors):
    bilm = fake_bilm(tmp_path / "bilm.ckpt", "sms_bilm_word", CharTokenizer.train(["free prize"]))
    with pytest.raises(ConfigError, match="reads 'char' tokens: train the biLM with tokenizer=word") as error:
        check_run_config(compose_config(elmo_glove_overrides(tmp_path, tmp_path, bilm, vectors[0])))
    assert "\n" not in str(error.value)
