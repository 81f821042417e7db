"""Language models (task=lm): windows of texts, the network on the decoder class, generation
(greedy, temperature, top-k, top-p; batch-independent), training through nmt.train, the
generate CLI."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import FAST_TRAINER, compose_config
from nmt.config.checks import ConfigError, validate_config
from nmt.data.lm_datamodule import WindowDataset, collate_windows, windows
from nmt.data.tokenizers import BOS_ID, EOS_ID, PAD_ID, CharTokenizer
from nmt.decoding.generation import generate
from nmt.inference.generator import GenerationOptions, TextGenerator, continuation_text
from nmt.models.language_model import LanguageModel
from nmt.modules.decoder import AttentionDecoder

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONIOENCODING": "utf-8"}
VOCAB = 25


# -- windows ----------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 5, 9, 10, 23])
@pytest.mark.parametrize("max_length", [None, 1, 4, 10])
def test_windows_cover_every_token_once_and_start_from_the_previous_one(length, max_length):
    ids = list(range(4, 4 + length))
    cut = windows(ids, max_length)
    assert [t for _, targets in cut for t in targets] == ids + [EOS_ID]
    sequence = [BOS_ID, *ids, EOS_ID]
    position = 0
    for inputs, targets in cut:
        assert inputs == sequence[position : position + len(inputs)] and len(inputs) == len(targets)
        assert max_length is None or len(inputs) <= max_length
        position += len(targets)


def test_a_split_counts_each_texts_characters_once():
    texts = ["abc", "", "a much longer text"]
    dataset = WindowDataset(texts, [[5] * len(t) for t in texts], max_length=4)
    batch = collate_windows([dataset[i] for i in range(len(dataset))])
    assert batch.characters == sum(len(t) + 1 for t in texts)
    assert batch.num_target_tokens == sum(len(t) + 1 for t in texts)
    assert (batch.inputs == PAD_ID).sum() == (batch.targets == PAD_ID).sum()


# -- the network ------------------------------------------------------------------------------


def make_lm(cell="lstm", layers=1, dropout=0.0) -> LanguageModel:
    torch.manual_seed(0)
    return LanguageModel(VOCAB, embed_size=12, hidden_size=16, num_layers=layers, cell=cell, dropout=dropout)


def test_the_language_model_is_the_decoder_class_without_encoder_or_attention():
    model = make_lm()
    assert type(model.decoder) is AttentionDecoder
    assert model.decoder.attention is None and model.decoder.bridge_hidden is None and model.decoder.rnn is not None
    with pytest.raises(ValueError, match="zero_state"):
        model.decoder.init_state(torch.zeros(1, 16))


@pytest.mark.parametrize("cell,layers", [("lstm", 1), ("gru", 2), ("lstm", 3), ("rnn", 2)])
def test_training_pass_equals_stepping(cell, layers):
    model = make_lm(cell, layers).double().eval()
    inputs = torch.tensor([[BOS_ID, 5, 6, 7, 8], [BOS_ID, 9, 10, PAD_ID, PAD_ID]])
    logits = model(inputs)
    state = model.initial_state(2)
    with torch.no_grad():
        for t in range(inputs.size(1)):
            step_logits, state = model.step(inputs[:, t], state)
            torch.testing.assert_close(step_logits, logits[:, t])
    alone = model(inputs[1:, :3])
    torch.testing.assert_close(alone, logits[1:, :3])  # padding at the end changes nothing before it


def test_tied_embeddings_need_equal_sizes():
    model = LanguageModel(VOCAB, embed_size=16, hidden_size=16, tie_embeddings=True)
    assert model.output_layer.weight is model.embed.weight
    with pytest.raises(ValueError, match="tie_embeddings"):
        LanguageModel(VOCAB, embed_size=12, hidden_size=16, tie_embeddings=True)


# -- generation -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lm() -> LanguageModel:
    """Untrained, float64 (no ties flipping between batch layouts), with a sharpened output
    layer so that texts end at many lengths."""
    model = make_lm(layers=2).double().eval()
    with torch.no_grad():
        model.output_layer.weight.mul_(3)
    return model


PROMPTS = [[], [5], [6, 7, 8, 9, 10, 11], [12, 13], [7] * 9, [20, 21, 22]]


def sequence_log_prob(model, prompt, tokens, ended) -> float:
    inputs = torch.tensor([[BOS_ID, *prompt, *tokens]])
    with torch.no_grad():
        logits = model(inputs)[0, len(prompt) :]
    logits[:, [PAD_ID, BOS_ID]] = float("-inf")
    log_probs = torch.log_softmax(logits, -1)
    targets = tokens + ([EOS_ID] if ended else [])
    return float(log_probs[torch.arange(len(targets)), torch.tensor(targets)].sum())


def test_greedy_picks_the_most_probable_token_and_scores_it(lm):
    for prompt, [hyp] in zip(PROMPTS, generate(lm, PROMPTS, max_tokens=12, temperature=0.0)):
        ended = len(hyp.tokens) < 12
        assert hyp.log_prob == pytest.approx(sequence_log_prob(lm, prompt, hyp.tokens, ended))
        inputs = torch.tensor([[BOS_ID, *prompt, *hyp.tokens]])
        with torch.no_grad():
            logits = lm(inputs)[0, len(prompt) :]
        logits[:, [PAD_ID, BOS_ID]] = float("-inf")
        expected = hyp.tokens + ([EOS_ID] if ended else [])
        assert logits.argmax(-1).tolist()[: len(expected)] == expected


@pytest.mark.parametrize(
    "options",
    [
        dict(temperature=0.0),
        dict(temperature=1.3, top_k=5, seed=3),
        dict(temperature=0.7, top_p=0.8, num_samples=3, seed=1),
    ],
)
def test_a_prompts_text_does_not_depend_on_the_batch(lm, options):
    together = generate(lm, PROMPTS, max_tokens=15, **options)
    alone = [generate(lm, [prompt], max_tokens=15, **options)[0] for prompt in PROMPTS]
    assert [[h.tokens for h in hyps] for hyps in alone] == [[h.tokens for h in hyps] for hyps in together]
    reordered = generate(lm, PROMPTS[::-1], max_tokens=15, **options)[::-1]
    assert [[h.tokens for h in hyps] for hyps in reordered] == [[h.tokens for h in hyps] for hyps in together]


def test_samples_are_reproducible_sorted_and_scored_by_the_model(lm):
    first = generate(lm, PROMPTS, max_tokens=10, temperature=1.5, num_samples=4, seed=7)
    assert first == generate(lm, PROMPTS, max_tokens=10, temperature=1.5, num_samples=4, seed=7)
    other = generate(lm, PROMPTS, max_tokens=10, temperature=1.5, num_samples=4, seed=8)
    assert [[h.tokens for h in hyps] for hyps in first] != [[h.tokens for h in hyps] for hyps in other]
    for prompt, hyps in zip(PROMPTS, first):
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        for hyp in hyps:
            assert hyp.log_prob == pytest.approx(sequence_log_prob(lm, prompt, hyp.tokens, len(hyp.tokens) < 10))


def test_top_k_one_and_a_tiny_nucleus_are_greedy(lm):
    greedy = generate(lm, PROMPTS, max_tokens=8, temperature=0.0)
    assert generate(lm, PROMPTS, max_tokens=8, temperature=2.0, top_k=1, seed=4) == greedy
    assert generate(lm, PROMPTS, max_tokens=8, temperature=2.0, top_p=1e-9, seed=4) == greedy


def test_first_token_frequencies_follow_the_tempered_distribution(lm):
    with torch.no_grad():
        logits = lm(torch.tensor([[BOS_ID, 5]]))[0, -1]
    logits[[PAD_ID, BOS_ID]] = float("-inf")
    expected = torch.softmax(torch.log_softmax(logits, -1) / 0.5, -1)
    samples = generate(lm, [[5]], max_tokens=1, temperature=0.5, num_samples=3000, seed=2)[0]
    first = torch.tensor([h.tokens[0] if h.tokens else EOS_ID for h in samples])
    observed = torch.bincount(first, minlength=VOCAB).double() / len(samples)
    assert (observed - expected).abs().max() < 0.03


def test_bad_generation_options_are_refused(lm):
    for bad in (dict(max_tokens=0), dict(num_samples=2, temperature=0.0), dict(top_p=0.0), dict(temperature=-1.0)):
        with pytest.raises(ValueError):
            generate(lm, PROMPTS, **bad)
    with pytest.raises(ValueError, match="sample strategy"):
        GenerationOptions(strategy="greedy", num_samples=2)


def test_continuations_join_the_prompt_as_the_tokenizer_decodes_them():
    tokenizer = CharTokenizer.train(["Je suis là."])
    ids = tokenizer.encode("Je ")
    assert continuation_text(tokenizer, "Je ", ids, tokenizer.encode("suis")) == "suis"
    assert continuation_text(tokenizer, "", [], tokenizer.encode("là.")) == "là."


# -- training, checkpoints and the CLI ----------------------------------------------------------


def lm_overrides(corpus: Path, run_dir: Path, *extra: str) -> list[str]:
    return [
        "experiment=char_lm",
        f"data.path={corpus}",
        "data.batch_unit=sentences",
        "data.batch_size=16",
        "data.eval_batch_size=64",
        "data.max_length=20",
        "model.embed_size=16",
        "model.hidden_size=32",
        "trainer.max_steps=60",
        "optim.lr=0.01",
        *FAST_TRAINER,
        f"+run_dir={run_dir}",
        *extra,
    ]


@pytest.fixture(scope="module")
def lm_run(tiny_corpus, tmp_path_factory) -> tuple[Path, dict]:
    from nmt.cli.train import train

    run_dir = tmp_path_factory.mktemp("lm_run")
    torch.manual_seed(0)
    metrics = train(compose_config(lm_overrides(tiny_corpus, run_dir, "data.split_cache=null")))
    return run_dir / "checkpoints" / "best.ckpt", metrics


def test_training_learns_the_french_side_and_reports_perplexity_and_bits_per_character(lm_run):
    checkpoint, metrics = lm_run
    assert checkpoint.is_file()
    # The toy French side uses ~25 characters: a uniform guess is log2(25) = 4.6 bits each.
    assert metrics["test/bpc"] < 2.5 and metrics["test/ppl"] == pytest.approx(math.exp(metrics["test/loss"]))
    generator = TextGenerator.from_checkpoint(checkpoint, device="cpu")
    [greedy] = generator.generate([""], GenerationOptions(strategy="greedy", max_tokens=60))
    assert greedy.samples[0].ended and greedy.text.endswith("!")  # toy French ends with " !"
    words = {"le", "chat", "voit", "un", "chien", "mange", "maison", "rouge", "grand", "petit", "!"}
    assert set(greedy.text.lower().split()) <= words


def generate_cli(*args, stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nmt.generate", *map(str, args)],
        input=stdin,
        capture_output=True,
        cwd=REPO,
        env=ENV,
        timeout=300,
    )


def test_cli_writes_one_line_per_prompt_in_order(lm_run):
    checkpoint, _ = lm_run
    stdin = "Le chat\n\nLe chien mange\t!\n\xff\n".encode("utf-8", "surrogateescape")
    result = generate_cli(checkpoint, "--max-tokens", "30", "--temperature", "0.7", "--top-p", "0.9", stdin=stdin)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode("utf-8").split("\n")
    assert lines[-1] == "" and len(lines) == 5
    assert lines[0].startswith("Le chat") and lines[2].startswith("Le chien mange !")
    samples = generate_cli(
        checkpoint, "--prompt", "Le", "--prompt", "Un", "--num-samples", "3", "--seed", "1", "--continuation-only"
    )
    rows = samples.stdout.decode("utf-8").splitlines()
    assert samples.returncode == 0 and len(rows) == 2
    fields = rows[0].split("\t")
    scores = [float(x) for x in fields[1::2]]
    assert len(fields) == 6 and scores == sorted(scores, reverse=True)


@pytest.mark.parametrize(
    "args, status, message",
    [
        (["--strategy", "greedy", "--temperature", "0.5"], 2, "--temperature apply to --strategy sample"),
        (["--max-tokens", "0"], 2, "max tokens must be >= 1"),
        (["--top-p", "1.5"], 2, "top-p"),
        (["--prompt", "a", "--input", "x.txt"], 2, "not both"),
    ],
)
def test_cli_bad_options_are_one_line_and_status_2(lm_run, args, status, message):
    result = generate_cli(lm_run[0], *args)
    assert result.returncode == status and message in result.stderr.decode()
    assert len(result.stderr.decode().strip().splitlines()) == 1


def test_cli_refuses_other_checkpoints_and_utf16_input(lm_run, tiny_translation_checkpoint):
    wrong = generate_cli(tiny_translation_checkpoint, "--prompt", "a")
    assert wrong.returncode == 2 and "is a 'translation' checkpoint, not a 'lm' one" in wrong.stderr.decode()
    utf16 = generate_cli(lm_run[0], stdin="Le chat\n".encode("utf-16"))
    assert utf16.returncode == 2 and "UTF-16" in utf16.stderr.decode()


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["experiment=char_lm", "data.max_length=null"], "data.max_length"),
        (["experiment=char_lm", "data.side=french"], "data.side"),
        (["experiment=char_lm", "model.layers=0"], "model.layers"),
    ],
)
def test_language_model_configs_are_checked_before_any_data_is_read(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(compose_config(overrides))


def test_a_language_model_trains_on_a_classification_corpus(tmp_path):
    """Texts of another corpus (here SMS spam) are split as for classification."""
    from nmt.cli.train import train

    corpus = tmp_path / "SMSSpamCollection"
    messages = [("ham", "see you at lunch"), ("spam", "free prize call now"), ("ham", "ok see you soon")] * 40
    corpus.write_text("".join(f"{label}\t{text} {i}\n" for i, (label, text) in enumerate(messages)), encoding="utf-8")
    overrides = lm_overrides(corpus, tmp_path / "run", "data=sms", "trainer.max_steps=5")
    metrics = train(compose_config(overrides))
    assert math.isfinite(metrics["test/bpc"]) and metrics["test/bpc"] > 0
