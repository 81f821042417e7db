"""Text classification: shared encoder, transfer from translation, freezing, training end to end."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from conftest import FAST_TRAINER, compose_config
from nmt.config.checks import ConfigError, validate_config
from nmt.data.classification_batching import collate_labelled
from nmt.inference.checkpoint import PAYLOAD_KEY, load_checkpoint, model_state_dict
from nmt.inference.classifier import load_classifier
from nmt.models.classifier import TextClassifier
from nmt.models.classifier_output import class_probabilities, predicted_classes
from nmt.models.seq2seq import Seq2Seq
from nmt.tasks import registry
from nmt.tasks.classification import classification_loss
from nmt.tasks.encoder_transfer import EncoderTransferError, read_translation_encoder

HAM_WORDS = "ok see you later at home tonight call me when get there love dinner going now".split()
SPAM_WORDS = "free win prize cash claim now call txt urgent award guaranteed offer stop reply".split()


def toy_messages(count: int, seed: int = 0, spam_share: float = 0.3) -> list[tuple[str, str]]:
    """(label, message) pairs whose class is obvious from the words."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        spam = rng.random() < spam_share
        words = SPAM_WORDS if spam else HAM_WORDS
        rows.append(("spam" if spam else "ham", " ".join(rng.choice(words) for _ in range(rng.randint(2, 10)))))
    return rows


def write_sms(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f"{label}\t{text}\n" for label, text in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny_sms(tmp_path_factory) -> Path:
    return write_sms(tmp_path_factory.mktemp("sms") / "SMSSpamCollection", toy_messages(300))


def sms_overrides(corpus: Path, run_dir: Path, *extra: str) -> list[str]:
    """A seconds-long SMS-format classification run."""
    return [
        "experiment=sms_bilstm_attn",
        f"data.path={corpus}",
        "tokenizer=char",
        "model.embed_size=16",
        "model.hidden_size=32",
        "model.dropout=0.0",
        "trainer.max_steps=60",
        "trainer.max_time=null",
        *FAST_TRAINER,
        f"+run_dir={run_dir}",
        *extra,
    ]


def transfer_overrides(corpus: Path, run_dir: Path, checkpoint: Path, *extra: str) -> list[str]:
    """Classifier sized like the tiny translation model (embed 32, BiLSTM 64), initialised from it."""
    return sms_overrides(
        corpus,
        run_dir,
        "model.embed_size=32",
        "model.hidden_size=64",
        f"model.encoder.init_from={checkpoint}",
        *extra,
    )


def build(cfg):
    """Datamodule and task exactly as nmt.train builds them."""
    spec = registry.get(cfg.task)
    datamodule = spec.datamodule(cfg, None)
    from omegaconf import OmegaConf

    task = spec.task(OmegaConf.to_container(cfg, resolve=True), datamodule.build_tokenizers())
    return datamodule, task


# -- the network ----------------------------------------------------------------------------------
def test_classifier_uses_the_translation_encoder_and_embedding_classes():
    clf = TextClassifier(50, 2, embed_size=8, hidden_size=12)
    seq2seq = Seq2Seq(50, 40, embed_size=8, hidden_size=12)
    assert type(clf.encoder) is type(seq2seq.encoder)
    assert type(clf.src_embed) is type(seq2seq.src_embed)
    shared = {k for k in seq2seq.state_dict() if k.startswith(("src_embed.", "encoder."))}
    assert shared <= set(clf.state_dict())
    assert all(clf.state_dict()[k].shape == seq2seq.state_dict()[k].shape for k in shared)


def test_binary_has_one_logit_and_multiclass_a_softmax():
    src, lengths = torch.tensor([[5, 6, 7], [8, 0, 0]]), torch.tensor([3, 1])
    binary = TextClassifier(10, 2, embed_size=4, hidden_size=6)(src, lengths)
    assert binary.logits.shape == (2, 1) and binary.attention.shape == (2, 3)
    assert torch.allclose(class_probabilities(binary.logits).sum(-1), torch.ones(2))
    three = TextClassifier(10, 3, embed_size=4, hidden_size=6)(src, lengths)
    assert three.logits.shape == (2, 3)
    assert torch.allclose(class_probabilities(three.logits).sum(-1), torch.ones(2))


@pytest.mark.parametrize("num_classes", [2, 3])
def test_tiny_dataset_is_overfit(num_classes):
    """Class = which third of the vocabulary the text's words come from."""
    torch.manual_seed(0)
    rng = random.Random(0)
    items = []
    for i in range(30):
        label = i % num_classes
        ids = [rng.randrange(4 + 10 * label, 14 + 10 * label) for _ in range(rng.randint(1, 9))]
        items.append((ids, label))
    batch = collate_labelled(items)
    model = TextClassifier(40, num_classes, embed_size=8, hidden_size=8, dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(40):
        loss = classification_loss(model(batch.src, batch.src_lengths).logits, batch.labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    assert bool((predicted_classes(model(batch.src, batch.src_lengths).logits) == batch.labels).all())
    assert loss.item() < 0.05


# -- transfer from a translation checkpoint --------------------------------------------------------
def test_transfer_loads_identical_weights_and_tokenizer(tiny_translation_checkpoint, tiny_sms, tmp_path):
    cfg = compose_config(transfer_overrides(tiny_sms, tmp_path, tiny_translation_checkpoint))
    datamodule, task = build(cfg)
    translation = load_checkpoint(tiny_translation_checkpoint)
    weights = model_state_dict(translation)
    source_tokenizer = translation[PAYLOAD_KEY]["tokenizers"]["source"]
    assert datamodule.build_tokenizers()[0].to_state() == source_tokenizer
    own = task.model.state_dict()
    transferred = [k for k in weights if k.startswith(("src_embed.", "encoder."))]
    assert transferred and all(torch.equal(own[k], weights[k]) for k in transferred)
    assert all(p.requires_grad for p in task.model.parameters())


def test_freeze_keeps_transferred_weights_fixed_during_training(tiny_translation_checkpoint, tiny_sms, tmp_path):
    cfg = compose_config(
        transfer_overrides(tiny_sms, tmp_path, tiny_translation_checkpoint, "model.encoder.freeze=true")
    )
    datamodule, task = build(cfg)
    frozen = task.model.transferable_parameters()
    assert frozen and not any(p.requires_grad for p in frozen)
    before = {k: v.clone() for k, v in task.model.state_dict().items()}
    optimizer = task.configure_optimizers()
    datamodule.setup("fit")
    task.train()
    for batch in list(datamodule.train_dataloader())[:2]:
        loss = classification_loss(task(batch).logits, batch.labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = task.model.state_dict()
    for key in before:
        if key.startswith(("src_embed.", "encoder.")):
            assert torch.equal(before[key], after[key]), key
    assert not torch.equal(before["output_layer.weight"], after["output_layer.weight"])


def test_encoder_learning_rate_is_scaled(tiny_translation_checkpoint, tiny_sms, tmp_path):
    cfg = compose_config(
        transfer_overrides(
            tiny_sms, tmp_path, tiny_translation_checkpoint, "model.encoder.lr_scale=0.1", "optim.lr=0.01"
        )
    )
    _, task = build(cfg)
    groups = {group["name"]: group for group in task.configure_optimizers().param_groups}
    assert groups["head"]["lr"] == pytest.approx(0.01)
    assert groups["encoder"]["lr"] == pytest.approx(0.001)
    assert len(groups["encoder"]["params"]) == len(task.model.transferable_parameters())


def test_mismatched_encoder_is_a_clear_error(tiny_translation_checkpoint, tiny_sms, tmp_path):
    cfg = compose_config(transfer_overrides(tiny_sms, tmp_path, tiny_translation_checkpoint, "model.hidden_size=48"))
    with pytest.raises(EncoderTransferError, match=r"model.hidden_size=48 but the checkpoint has 64"):
        build(cfg)
    cfg = compose_config(transfer_overrides(tiny_sms, tmp_path, tiny_translation_checkpoint, "model.cell=gru"))
    with pytest.raises(EncoderTransferError, match=r"model.cell='gru'"):
        build(cfg)


def test_init_from_a_classification_checkpoint_is_refused(trained_sms_run):
    with pytest.raises(EncoderTransferError, match="give a translation checkpoint"):
        read_translation_encoder(trained_sms_run / "checkpoints" / "best.ckpt")


def test_freeze_without_init_from_is_refused(tiny_sms, tmp_path):
    cfg = compose_config(sms_overrides(tiny_sms, tmp_path, "model.encoder.freeze=true"))
    with pytest.raises(ValueError, match="needs model.encoder.init_from"):
        build(cfg)


# -- config ---------------------------------------------------------------------------------------
def test_translation_init_experiment_requires_a_checkpoint():
    with pytest.raises(ConfigError, match="model.encoder.init_from is required"):
        validate_config(compose_config(["experiment=imdb_from_translation"]))
    cfg = compose_config(["experiment=imdb_from_translation", "model.encoder.init_from=x.ckpt"])
    validate_config(cfg)
    assert (cfg.model.embed_size, cfg.model.hidden_size, cfg.model.bidirectional) == (256, 256, True)


@pytest.mark.parametrize("experiment", ["imdb_bilstm_attn", "sms_bilstm_attn", "nsmc_bilstm_attn"])
def test_classification_experiments_compose_and_validate(experiment):
    cfg = compose_config([f"experiment={experiment}"])
    validate_config(cfg)
    assert cfg.task == "classification" and cfg.model.encoder.init_from is None


def test_classification_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="data.truncation"):
        validate_config(compose_config(["experiment=imdb_bilstm_attn", "data.truncation=middle"]))
    with pytest.raises(ConfigError, match="model"):
        validate_config(compose_config(["experiment=imdb_bilstm_attn", "model=lstm"]))
    validate_config(compose_config([]))  # the translation default still validates


# -- end to end -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_sms_run(tiny_sms, tmp_path_factory) -> Path:
    from nmt.cli.train import train

    run_dir = tmp_path_factory.mktemp("sms_run")
    torch.manual_seed(0)
    metrics = train(compose_config(sms_overrides(tiny_sms, run_dir, "optim.lr=0.01")))
    assert metrics["test/acc"] >= 0.9, metrics
    return run_dir


def test_train_end_to_end_writes_a_self_contained_checkpoint(trained_sms_run):
    checkpoint = load_checkpoint(trained_sms_run / "checkpoints" / "best.ckpt")
    payload = checkpoint[PAYLOAD_KEY]
    assert payload["task"] == "classification"
    assert payload["labels"] == ["ham", "spam"]
    assert set(payload["tokenizers"]) == {"source"}
    loaded = load_classifier(trained_sms_run / "checkpoints" / "best.ckpt")
    assert not loaded.model.training
    ids = loaded.tokenizer.encode("free cash prize claim now")
    logits = loaded.model(torch.tensor([ids]), torch.tensor([len(ids)])).logits
    assert loaded.labels[int(predicted_classes(logits))] == "spam"


def test_resume_from_last_checkpoint_continues(trained_sms_run, tiny_sms, tmp_path):
    from nmt.cli.train import train

    last = trained_sms_run / "checkpoints" / "last.ckpt"
    cfg = compose_config(
        sms_overrides(tiny_sms, tmp_path, f"ckpt_path={last}", "trainer.max_steps=70", "test_after_training=false")
    )
    train(cfg)
    assert load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["global_step"] == 70


def test_a_huge_learning_rate_stops_a_classification_run_against_ln_of_the_classes(tiny_sms, tmp_path):
    from nmt.cli.train import train
    from nmt.training.divergence import TrainingDiverged

    # Two classes: a uniform guess loses ln 2 = 0.6931 per message.
    with pytest.raises(TrainingDiverged, match=r"training exploded: .*10 x 0\.6931"):
        train(
            compose_config(
                sms_overrides(
                    tiny_sms,
                    tmp_path,
                    "optim.lr=1e6",
                    "test_after_training=false",
                    "training.exploding_loss_patience=5",
                )
            )
        )
