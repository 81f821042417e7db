"""Classifier variants: the Conv1D + max-pool + LSTM network and the BiGRU attention classifier
(model=conv_lstm, model=bigru_attn): shapes, padding independence, config checks, training
through nmt.train and evaluation from the checkpoint."""

from __future__ import annotations

import pytest
import torch

from conftest import FAST_TRAINER, compose_config
from nmt.config.checks import ConfigError, validate_config
from nmt.data.tokenizers import PAD_ID
from nmt.models.classifier import TextClassifier
from nmt.models.conv_classifier import ConvLSTMClassifier

VOCAB = 30


def conv_lstm(num_classes=2, cell="lstm", pool=4) -> ConvLSTMClassifier:
    torch.manual_seed(0)
    model = ConvLSTMClassifier(
        VOCAB,
        num_classes,
        embed_size=8,
        conv_filters=6,
        conv_kernel=3,
        pool_size=pool,
        hidden_size=5,
        cell=cell,
        dropout=0.0,
    )
    return model.double().eval()


@pytest.mark.parametrize("num_classes, width", [(2, 1), (5, 5)])
def test_conv_lstm_gives_one_logit_for_two_classes_and_one_per_class_otherwise(num_classes, width):
    model = conv_lstm(num_classes)
    src = torch.randint(4, VOCAB, (3, 11))
    output = model(src, torch.tensor([11, 4, 1]))
    assert output.logits.shape == (3, width) and output.attention is None


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("pool", [1, 2, 4])
def test_a_texts_logits_do_not_depend_on_the_padding_of_its_batch(cell, pool):
    model = conv_lstm(cell=cell, pool=pool)
    texts = [[5, 6, 7, 8, 9, 10, 11], [12, 13], [14], [15, 16, 17, 18, 19]]
    alone = torch.cat([model(torch.tensor([t]), torch.tensor([len(t)])).logits for t in texts])
    width = max(map(len, texts)) + 3  # extra padding beyond the longest text too
    src = torch.full((len(texts), width), PAD_ID)
    for row, text in enumerate(texts):
        src[row, : len(text)] = torch.tensor(text)
    together = model(src, torch.tensor([len(t) for t in texts])).logits
    torch.testing.assert_close(together, alone)


def test_pooling_keeps_ceil_of_length_over_pool_positions():
    model = conv_lstm(pool=4)
    assert model.pooled_lengths(torch.tensor([1, 4, 5, 8, 9])).tolist() == [1, 1, 2, 2, 3]


def test_the_model_group_picks_the_network():
    conv = compose_config(["experiment=imdb_conv_lstm"])
    gru = compose_config(["experiment=imdb_gru"])
    assert isinstance(TextClassifier.from_config(conv.model, VOCAB, 2), ConvLSTMClassifier)
    network = TextClassifier.from_config(gru.model, VOCAB, 2)
    assert isinstance(network, TextClassifier) and isinstance(network.encoder.rnn, torch.nn.GRU)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.conv_kernel=4"], "must be odd"),
        (["model.architecture=cnn"], "model.architecture"),
        (["model.pool_size=0"], "model.pool_size"),
        (["model.encoder.init_from=x.ckpt"], "no translation encoder"),
    ],
)
def test_conv_lstm_configs_are_checked_before_any_data_is_read(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(compose_config(["experiment=imdb_conv_lstm", *overrides]))


def test_conv_lstm_architecture_on_an_rnn_model_names_the_missing_keys():
    with pytest.raises(
        ConfigError,
        match=r"needs model.conv_filters, model.conv_kernel, model.pool_size: pick the whole model with model=conv_lstm",
    ):
        validate_config(compose_config(["experiment=imdb_bilstm_attn", "+model.architecture=conv_lstm"]))


@pytest.mark.parametrize(
    "model",
    [
        ["model=conv_lstm", "model.embed_size=16", "model.conv_filters=8", "model.hidden_size=8"],
        ["model=bigru_attn", "model.embed_size=16", "model.hidden_size=16"],
    ],
    ids=["conv_lstm", "bigru_attn"],
)
def test_conv_lstm_and_gru_classifiers_train_through_nmt_train(tmp_path, model):
    from nmt.cli.train import train
    from nmt.inference.classifier import Classifier, load_classifier

    corpus = tmp_path / "SMSSpamCollection"
    spam = ["free prize call now {}", "win cash prize text {} now"]
    ham = ["see you at lunch {}", "are you home yet {}", "ok call me later {}"]
    rows = [("spam", spam[i % 2].format(i)) for i in range(40)] + [("ham", ham[i % 3].format(i)) for i in range(80)]
    corpus.write_text("".join(f"{label}\t{text}\n" for label, text in rows), encoding="utf-8")
    overrides = [
        "experiment=sms_bilstm_attn",
        f"data.path={corpus}",
        "tokenizer=char",
        *model,
        "trainer.max_steps=40",
        "trainer.val_check_interval=20",
        "optim.lr=0.01",
        *FAST_TRAINER,
        f"+run_dir={tmp_path / 'run'}",
    ]
    metrics = train(compose_config(overrides))
    assert metrics["test/acc"] >= 0.9
    loaded = load_classifier(tmp_path / "run" / "checkpoints" / "best.ckpt")
    [prediction] = Classifier(loaded).predict(["win cash prize text 7 now"])
    assert prediction.label == "spam"
