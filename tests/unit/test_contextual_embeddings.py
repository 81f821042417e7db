"""ELMo-style contextual embeddings: the biLM (task=bilm), its layers as classifier features
(scalar mix, frozen or fine-tuned), checkpoints, and the config checks."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from conftest import FAST_TRAINER, compose_config
from nmt.config.checks import ConfigError
from nmt.data.lm_datamodule import collate_windows, windows
from nmt.data.tokenizers import BOS_ID, EOS_ID, PAD_ID
from nmt.inference.checkpoint import PAYLOAD_KEY, load_checkpoint, model_state_dict
from nmt.inference.classifier import load_classifier
from nmt.models.bilm import BidirectionalLanguageModel, reverse_padded
from nmt.models.classifier import TextClassifier
from nmt.models.contextual import ContextualEmbedder, ScalarMix, add_boundaries
from nmt.modules.encoder import RNNEncoder
from nmt.tasks import registry
from nmt.tasks.bidirectional_lm import window_sequences
from nmt.tasks.preflight import check_run_config

VOCAB = 20
HAM = "ok see you later at home tonight call me when get there love dinner going now".split()
SPAM = "free win prize cash claim now call txt urgent award guaranteed offer stop reply".split()


def make_bilm(layers: int = 2, cell: str = "lstm", dropout: float = 0.0) -> BidirectionalLanguageModel:
    torch.manual_seed(0)
    return BidirectionalLanguageModel(
        VOCAB, embed_size=6, hidden_size=6, num_layers=layers, cell=cell, dropout=dropout
    ).double()


def batch_of(texts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(t) for t in texts])
    ids = torch.full((len(texts), int(lengths.max())), PAD_ID, dtype=torch.long)
    for row, text in enumerate(texts):
        ids[row, : len(text)] = torch.tensor(text)
    return ids, lengths


# -- the biLM ---------------------------------------------------------------------------------------


def test_reverse_padded_reverses_each_row_within_its_length_and_is_its_own_inverse():
    ids, lengths = batch_of([[4, 5, 6, 7], [8, 9]])
    reversed_ids = reverse_padded(ids, lengths)
    assert reversed_ids.tolist() == [[7, 6, 5, 4], [9, 8, PAD_ID, PAD_ID]]
    states = torch.randn(2, 4, 3)
    assert torch.equal(reverse_padded(reverse_padded(states, lengths), lengths), states)


def test_both_directions_reuse_the_encoder_class_and_share_embedding_and_softmax():
    model = make_bilm()
    assert all(
        type(layer) is RNNEncoder and not layer.bidirectional
        for layer in [*model.forward_layers, *model.backward_layers]
    )
    assert len(model.forward_layers) == len(model.backward_layers) == 2
    ids, lengths = batch_of([[BOS_ID, 4, 5, 6, EOS_ID]])
    forward_logits, backward_logits = model(ids, lengths)
    states = model.directional_states(ids, lengths)
    # One output layer scores both directions.
    assert torch.allclose(backward_logits, model.output_layer(states.backward[-1]))
    assert torch.allclose(forward_logits, model.output_layer(states.forward[-1]))
    assert sum(1 for m in model.modules() if isinstance(m, torch.nn.Embedding)) == 1


@pytest.mark.parametrize("cell,layers", [("lstm", 1), ("lstm", 2), ("gru", 3), ("rnn", 2)])
def test_forward_reads_left_to_right_and_backward_right_to_left(cell, layers):
    """Changing token k changes the forward states at positions >= k only and the backward
    states at positions <= k only: the backward prediction of token t (made at t + 1)
    depends on the tokens after t alone."""
    model = make_bilm(layers, cell).eval()
    text = [BOS_ID, 4, 5, 6, 7, 8, 9, EOS_ID]
    ids, lengths = batch_of([text])
    before = model.directional_states(ids, lengths)
    for k in range(1, len(text) - 1):
        changed = ids.clone()
        changed[0, k] = 15
        after = model.directional_states(changed, lengths)
        for old, new in zip(before.forward, after.forward):
            assert torch.equal(old[:, :k], new[:, :k]) and not torch.allclose(old[:, k], new[:, k])
        for old, new in zip(before.backward, after.backward):
            assert torch.equal(old[:, k + 1 :], new[:, k + 1 :]) and not torch.allclose(old[:, k], new[:, k])


def test_backward_logits_are_those_of_the_reversed_text_read_forwards():
    """The backward stack on a text equals the same stack run left to right on the reversed
    text: it starts at the text's own last token, not at padding."""
    model = make_bilm().eval()
    text = [BOS_ID, 4, 5, 6, EOS_ID]
    ids, lengths = batch_of([text, [BOS_ID, 7, EOS_ID]])
    states = model.directional_states(ids, lengths)
    reversed_ids = torch.tensor([text[::-1]])
    embedded = model.embed(reversed_ids)
    outputs = embedded
    for number, layer in enumerate(model.backward_layers):
        new, _ = layer(outputs, torch.tensor([len(text)]))
        outputs = new + outputs if number > 0 else new
    assert torch.allclose(states.backward[-1][0], outputs[0].flip(0))


def test_window_sequences_rebuild_each_window_and_mark_the_scored_positions():
    items = [(inputs, targets, 0) for inputs, targets in windows([4, 5, 6, 7, 8], 4) + windows([9], None)]
    batch = collate_windows(items)
    ids, lengths, scored = window_sequences(batch)
    assert ids.tolist() == [[BOS_ID, 4, 5, 6, 7], [7, 8, EOS_ID, PAD_ID, PAD_ID], [BOS_ID, 9, EOS_ID, PAD_ID, PAD_ID]]
    assert lengths.tolist() == [5, 3, 3]
    assert scored.sum(1).tolist() == [4, 2, 2]


# -- features for the classifier -------------------------------------------------------------------


def test_scalar_mix_is_gamma_times_the_softmax_weighted_sum():
    mix = ScalarMix(3)
    with torch.no_grad():
        mix.scalar_weights.copy_(torch.tensor([0.5, -1.0, 2.0]))
        mix.gamma.fill_(1.7)
    layers = [torch.randn(2, 4, 5) for _ in range(3)]
    weights = torch.softmax(torch.tensor([0.5, -1.0, 2.0]), 0)
    assert torch.allclose(mix(layers), 1.7 * sum(w * h for w, h in zip(weights, layers)), atol=1e-6)


def test_boundaries_wrap_each_text_before_its_padding():
    ids, lengths = batch_of([[4, 5, 6], [7]])
    wrapped, wrapped_lengths = add_boundaries(ids, lengths)
    assert wrapped.tolist() == [[BOS_ID, 4, 5, 6, EOS_ID], [BOS_ID, 7, EOS_ID, PAD_ID, PAD_ID]]
    assert wrapped_lengths.tolist() == [5, 3]


def test_layers_are_the_token_layer_then_forward_and_backward_halves():
    bilm = make_bilm()
    embedder = ContextualEmbedder(bilm).double()
    ids, lengths = batch_of([[4, 5, 6]])
    layers = embedder.layers(ids, lengths)
    assert len(layers) == 3 and all(layer.shape == (1, 3, 12) for layer in layers)
    embedded = bilm.embed(ids)
    assert torch.equal(layers[0], torch.cat([embedded, embedded], -1))
    states = bilm.directional_states(*add_boundaries(ids, lengths))
    assert torch.equal(layers[2][..., :6], states.forward[1][:, 1:-1])
    assert torch.equal(layers[2][..., 6:], states.backward[1][:, 1:-1])


@pytest.mark.parametrize("freeze", [True, False])
def test_a_texts_features_do_not_depend_on_its_batch_or_padding(freeze):
    embedder = ContextualEmbedder(make_bilm(dropout=0.3), freeze=freeze).double().eval()
    texts = [[4, 5, 6], [7, 8, 9, 10, 11, 12, 13], [14], [6, 5]]
    ids, lengths = batch_of(texts)
    together = embedder(ids, lengths)
    assert together.shape == (4, 7, 12)
    for row, text in enumerate(texts):
        alone = embedder(*batch_of([text]))
        assert torch.allclose(together[row, : len(text)], alone[0], atol=1e-10)
        assert not together[row, len(text) :].any()  # zero at padding


def test_classifier_predictions_do_not_depend_on_the_batch_with_contextual_features():
    torch.manual_seed(0)
    model = TextClassifier(VOCAB, 2, embed_size=4, hidden_size=6, contextual=ContextualEmbedder(make_bilm().float()))
    model.eval()
    texts = [[4, 5, 6], [7, 8, 9, 10, 11], [14]]
    ids, lengths = batch_of(texts)
    together = model(ids, lengths).logits
    for row, text in enumerate(texts):
        assert torch.allclose(together[row], model(*batch_of([text])).logits[0], atol=1e-5)


def test_frozen_bilm_gets_no_gradient_stays_in_eval_mode_and_builds_no_graph():
    model = TextClassifier(
        VOCAB,
        2,
        embed_size=4,
        hidden_size=6,
        contextual=ContextualEmbedder(make_bilm(dropout=0.5).float(), freeze=True),
    )
    model.train()
    assert not model.contextual.bilm.training and model.encoder.rnn.training
    ids, lengths = batch_of([[4, 5, 6], [7, 8]])
    assert not any(layer.requires_grad for layer in model.contextual.layers(ids, lengths))
    model(ids, lengths).logits.sum().backward()
    assert all(p.grad is None for p in model.contextual.bilm.parameters())
    mix = model.contextual.mix
    assert mix.scalar_weights.grad is not None and mix.scalar_weights.grad.abs().sum() > 0
    assert mix.gamma.grad is not None and mix.gamma.grad.abs() > 0


def test_fine_tuned_bilm_gets_gradients_and_trains_with_the_classifier():
    model = TextClassifier(
        VOCAB,
        2,
        embed_size=4,
        hidden_size=6,
        contextual=ContextualEmbedder(make_bilm(dropout=0.1).float(), freeze=False),
    )
    model.train()
    assert model.contextual.bilm.training
    ids, lengths = batch_of([[4, 5, 6], [7, 8]])
    model(ids, lengths).logits.sum().backward()
    grads = [p.grad for p in model.contextual.bilm.forward_layers.parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    assert model.contextual.mix.gamma.grad is not None


def test_replace_mode_has_no_own_embedding_and_concat_mode_both():
    bilm = make_bilm().float()
    replaced = TextClassifier(
        VOCAB, 2, embed_size=4, hidden_size=6, contextual=ContextualEmbedder(bilm), combine="replace"
    )
    assert replaced.src_embed is None and replaced.encoder.rnn.input_size == 12
    concat = TextClassifier(VOCAB, 2, embed_size=4, hidden_size=6, contextual=ContextualEmbedder(bilm))
    assert concat.src_embed is not None and concat.encoder.rnn.input_size == 16
    ids, lengths = batch_of([[4, 5], [6]])
    assert replaced(ids, lengths).logits.shape == concat(ids, lengths).logits.shape == (2, 1)
    with pytest.raises(ValueError, match="model.contextual.bilm"):
        TextClassifier(VOCAB, 2, combine="replace")


# -- through nmt.train: pretraining, the classifier, checkpoints -----------------------------------


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


COMMON = ["tokenizer=char", "trainer.max_time=null", "training.max_cpu_time=null", *FAST_TRAINER]


def bilm_overrides(corpus: Path, run_dir: Path, *extra: str) -> list[str]:
    return [
        "experiment=sms_bilm",
        f"data.path={corpus}",
        *COMMON,
        "model.embed_size=16",
        "model.hidden_size=16",
        "data.batch_size=400",
        "trainer.max_steps=40",
        "optim.lr=0.01",
        f"+run_dir={run_dir}",
        *extra,
    ]


def elmo_overrides(corpus: Path, run_dir: Path, bilm: Path, *extra: str) -> list[str]:
    return [
        "experiment=sms_elmo",
        f"data.path={corpus}",
        *COMMON,
        f"model.contextual.bilm={bilm}",
        "model.embed_size=8",
        "model.hidden_size=16",
        "model.dropout=0.0",
        "trainer.max_steps=60",
        "optim.lr=0.01",
        f"+run_dir={run_dir}",
        *extra,
    ]


@pytest.fixture(scope="module")
def bilm_run(tiny_sms, tmp_path_factory) -> tuple[Path, dict]:
    from nmt.cli.train import train

    run_dir = tmp_path_factory.mktemp("bilm_run")
    torch.manual_seed(0)
    metrics = train(compose_config(bilm_overrides(tiny_sms, run_dir)))
    return run_dir / "checkpoints" / "best.ckpt", metrics


@pytest.fixture(scope="module")
def elmo_run(tiny_sms, bilm_run, tmp_path_factory) -> tuple[Path, dict]:
    from nmt.cli.train import train

    run_dir = tmp_path_factory.mktemp("elmo_run")
    torch.manual_seed(0)
    metrics = train(compose_config(elmo_overrides(tiny_sms, run_dir, bilm_run[0])))
    return run_dir / "checkpoints" / "best.ckpt", metrics


def test_bilm_pretraining_reports_each_directions_perplexity_and_learns(bilm_run):
    checkpoint, metrics = bilm_run
    loaded = load_checkpoint(checkpoint)  # weights_only=True
    assert loaded[PAYLOAD_KEY]["task"] == "bilm" and "text" in loaded[PAYLOAD_KEY]["tokenizers"]
    # About 40 characters are used: a uniform guess has perplexity ~40 in each direction.
    assert metrics["test/ppl_forward"] < 12 and metrics["test/ppl_backward"] < 12
    assert metrics["test/loss"] == pytest.approx(
        sum(torch.tensor(metrics[f"test/ppl_{d}"]).log().item() for d in ("forward", "backward")), rel=1e-4
    )
    assert any(key.startswith("backward_layers.1.") for key in model_state_dict(loaded))


def test_classifier_takes_the_bilms_tokenizer_weights_and_trains_the_mix(elmo_run, bilm_run):
    checkpoint, metrics = elmo_run
    assert metrics["test/acc"] >= 0.85  # 30 toy test messages, 70% ham
    bilm = load_checkpoint(bilm_run[0])
    classifier = load_checkpoint(checkpoint)
    assert classifier[PAYLOAD_KEY]["tokenizers"]["source"] == bilm[PAYLOAD_KEY]["tokenizers"]["text"]
    weights = model_state_dict(classifier)
    for key, value in model_state_dict(bilm).items():  # frozen: still the pretrained weights
        assert torch.equal(weights[f"contextual.bilm.{key}"], value)
    assert not torch.equal(weights["contextual.mix.scalar_weights"], torch.zeros(3))
    bilm_model = classifier[PAYLOAD_KEY]["config"]["model"]["contextual"]["bilm_model"]
    assert bilm_model["hidden_size"] == 16 and bilm_model["layers"] == 2


def test_classifier_checkpoint_round_trip_without_the_bilm_file(elmo_run, bilm_run, tmp_path, tiny_sms):
    """The classifier checkpoint alone rebuilds the network: same predictions as the task's."""
    checkpoint, _ = elmo_run
    moved = tmp_path / "bilm_moved_away.ckpt"
    bilm_run[0].rename(moved)
    try:
        loaded = load_classifier(checkpoint)
    finally:
        moved.rename(bilm_run[0])
    cfg = compose_config(elmo_overrides(tiny_sms, tmp_path, bilm_run[0]))
    spec = registry.get("classification")
    datamodule = spec.datamodule(cfg, None)
    task = spec.task(OmegaConf.to_container(cfg, resolve=True), datamodule.build_tokenizers())
    task.model.load_state_dict(model_state_dict(load_checkpoint(checkpoint)))
    task.model.eval()
    ids = torch.tensor(loaded.tokenizer.encode_batch(["free prize now", "see you at home"])[0]).unsqueeze(0)
    lengths = torch.tensor([ids.size(1)])
    with torch.no_grad():
        assert torch.allclose(loaded.model(ids, lengths).logits, task.model(ids, lengths).logits)


def test_resume_needs_only_the_classifier_checkpoint(elmo_run, bilm_run, tiny_sms, tmp_path):
    from nmt.cli.train import train

    last = elmo_run[0].parent / "last.ckpt"
    moved = tmp_path / "bilm_moved_away.ckpt"
    bilm_run[0].rename(moved)
    try:
        metrics = train(
            compose_config(elmo_overrides(tiny_sms, tmp_path, moved, f"ckpt_path={last}", "trainer.max_steps=70"))
        )
    finally:
        moved.rename(bilm_run[0])
    assert metrics["test/acc"] >= 0.85


def test_fine_tuning_moves_the_bilm_at_its_own_learning_rate(bilm_run, tiny_sms, tmp_path):
    cfg = compose_config(
        elmo_overrides(
            tiny_sms, tmp_path, bilm_run[0], "model.contextual.freeze=false", "model.contextual.lr_scale=0.1"
        )
    )
    spec = registry.get("classification")
    datamodule = spec.datamodule(cfg, None)
    task = spec.task(OmegaConf.to_container(cfg, resolve=True), datamodule.build_tokenizers())
    groups = {group["name"]: group for group in task.parameter_groups()}
    assert groups["contextual"]["lr"] == pytest.approx(0.001)
    assert {id(p) for p in groups["contextual"]["params"]} == {id(p) for p in task.model.contextual.bilm.parameters()}
    assert id(task.model.contextual.mix.gamma) in {id(p) for p in groups["head"]["params"]}


# -- config checks (before any data is read) --------------------------------------------------------


@pytest.mark.parametrize("data", ["sms", "nsmc", "imdb"])
def test_each_classifier_preset_fits_a_checkpoint_of_its_bilm_preset(data, tmp_path):
    """<data>_elmo's tokenizer and split settings agree with <data>_bilm's, and it needs a biLM."""
    from nmt.data.tokenizers import CharTokenizer
    from nmt.inference.checkpoint import make_payload

    bilm_cfg = compose_config([f"experiment={data}_bilm"])
    check_run_config(bilm_cfg)
    from nmt.models.bilm import BidirectionalLanguageModel

    tokenizer = CharTokenizer.train(["ab"])
    payload = make_payload("bilm", OmegaConf.to_container(bilm_cfg, resolve=True), {"text": tokenizer})
    network = BidirectionalLanguageModel.from_config(payload["config"]["model"], tokenizer.vocab_size)
    weights = {f"model.{key}": value for key, value in network.state_dict().items()}
    path = tmp_path / "bilm.ckpt"
    torch.save({"state_dict": weights, PAYLOAD_KEY: payload}, path)
    check_run_config(compose_config([f"experiment={data}_elmo", f"model.contextual.bilm={path}"]))
    with pytest.raises(ConfigError, match="model.contextual.bilm is required"):
        check_run_config(compose_config([f"experiment={data}_elmo"]))


@pytest.mark.parametrize(
    "extra, message",
    [
        (["model.contextual.bilm=/no/such/bilm.ckpt"], "no such file"),
        (["tokenizer.min_freq=3"], "tokenizer.min_freq=3 \\(biLM: 2\\)"),
        (["data.split_seed=7"], "another split of data=sms"),
        (["model.encoder.init_from=x.ckpt"], "choose one"),
        (["model.contextual.lr_scale=0"], "model.contextual.lr_scale"),
        (["model.contextual.combine=sum"], "model.contextual.combine"),
        (["+model.architecture=conv_lstm"], "rnn_attention"),
    ],
)
def test_contextual_config_errors_are_one_line(bilm_run, tiny_sms, tmp_path, extra, message):
    overrides = elmo_overrides(tiny_sms, tmp_path, bilm_run[0], *extra)
    with pytest.raises(ConfigError, match=message) as error:
        check_run_config(compose_config(overrides))
    assert "\n" not in str(error.value)


def test_a_checkpoint_of_another_task_is_refused(tiny_classification_checkpoint, tiny_sms, tmp_path):
    with pytest.raises(ConfigError, match="is a 'classification' checkpoint, not a 'bilm' one: give a biLM checkpoint"):
        check_run_config(compose_config(elmo_overrides(tiny_sms, tmp_path, tiny_classification_checkpoint)))


def test_bilm_config_errors():
    with pytest.raises(ConfigError, match="model.embed_size=256"):
        check_run_config(compose_config(["experiment=sms_bilm", "model.embed_size=128"]))
    with pytest.raises(ConfigError, match="data.max_length"):
        check_run_config(compose_config(["experiment=sms_bilm", "data.max_length=null"]))
    with pytest.raises(ConfigError, match="combine=replace needs"):
        check_run_config(compose_config(["experiment=sms_bilstm_attn", "model.contextual.combine=replace"]))
