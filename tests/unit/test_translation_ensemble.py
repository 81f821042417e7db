"""Ensembles at decode time: several translation networks decoded as one, the mean of their
step probabilities, in every strategy and every tool."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from conftest import compose_config
from nmt.data.batching import collate_pairs, pad_sequences
from nmt.data.tokenizers import BOS_ID, PAD_ID, CharTokenizer
from nmt.decoding import decode
from nmt.decoding.forced import forced_decode
from nmt.decoding.greedy import next_token_log_probs
from nmt.inference.translator import Translator
from nmt.models.ensemble import Seq2SeqEnsemble
from nmt.models.seq2seq import Seq2Seq
from nmt.ops.quantization import Int8Linear, int8_supported

VOCAB = 30
STRATEGIES = [
    {"strategy": "greedy"},
    {"strategy": "beam", "beam_size": 4, "n_best": 2},
    {"strategy": "sample", "n_best": 3, "seed": 7, "temperature": 0.8},
]


def tiny_network(seed: int, **sizes) -> Seq2Seq:
    """An untrained float64 network (no ties flipping between layouts) whose sharpened
    output layer ends sentences at different lengths."""
    torch.manual_seed(seed)
    net = Seq2Seq(VOCAB, VOCAB, **{"embed_size": 16, "hidden_size": 32, "dropout": 0.0, **sizes}).eval().double()
    with torch.no_grad():
        net.output_layer.weight.mul_(4)
    return net


@pytest.fixture(scope="module")
def first() -> Seq2Seq:
    return tiny_network(0)


@pytest.fixture(scope="module")
def second() -> Seq2Seq:
    """Another architecture (GRU, other sizes, dot attention) over the same vocabulary."""
    return tiny_network(1, hidden_size=24, embed_size=8, cell="gru", attention="dot")


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    lengths = torch.randint(1, 12, (12,), generator=generator).tolist()
    return pad_sequences([torch.randint(4, VOCAB, (n,), generator=generator).tolist() for n in lengths])


def outputs(results) -> tuple[list, list, list]:
    """Tokens, scores and log-probabilities of every hypothesis."""
    hyps = [hyp for sentence in results for hyp in sentence]
    return [h.tokens for h in hyps], [h.score for h in hyps], [h.log_prob for h in hyps]


# -- the decoding interface -------------------------------------------------------------------


@pytest.mark.parametrize("options", STRATEGIES, ids=lambda o: o["strategy"])
def test_an_ensemble_of_one_model_decodes_exactly_as_that_model(first, batch, options):
    alone = decode(first, *batch, return_attention=True, **options)
    ensemble = decode(Seq2SeqEnsemble([first]), *batch, return_attention=True, **options)
    assert outputs(ensemble) == outputs(alone)
    for mine, theirs in zip(ensemble, alone):
        for a, b in zip(mine, theirs):
            assert torch.equal(a.attention, b.attention)


PENALTIES = {"no_repeat_ngram_size": 2, "repetition_penalty": 1.5}


@pytest.mark.parametrize("options", STRATEGIES, ids=lambda o: o["strategy"])
def test_repetition_and_coverage_options_treat_an_ensemble_of_one_as_the_model(first, batch, options):
    options = {**options, **PENALTIES, **({"coverage_penalty": 0.4} if options["strategy"] == "beam" else {})}
    assert outputs(decode(Seq2SeqEnsemble([first]), *batch, **options)) == outputs(decode(first, *batch, **options))


@pytest.mark.parametrize("options", STRATEGIES, ids=lambda o: o["strategy"])
def test_an_ensemble_of_two_copies_decodes_as_the_model(first, batch, options):
    alone = outputs(decode(first, *batch, **options))
    twice = outputs(decode(Seq2SeqEnsemble([first, first]), *batch, **options))
    assert twice[0] == alone[0]
    assert twice[1] == pytest.approx(alone[1], abs=1e-9)
    assert twice[2] == pytest.approx(alone[2], abs=1e-9)


def test_step_distribution_is_the_log_of_the_members_mean_probability(first, second, batch):
    ensemble = Seq2SeqEnsemble([first, second])
    src, lengths = batch
    with torch.no_grad():
        source, state = ensemble.encode(src, lengths)
        states = [member.encode(src, lengths) for member in (first, second)]
        for token in (BOS_ID, 5, 17):  # the first step and two later ones, states carried over
            prev = torch.full((src.size(0),), token)
            logits, state, attention = ensemble.decode_step(prev, state, source)
            steps = [m.decode_step(prev, s, e) for m, (e, s) in zip((first, second), states)]
            states = [(e, step[1]) for (e, _), step in zip(states, steps)]
            mean = (steps[0][0].softmax(-1) + steps[1][0].softmax(-1)) / 2
            torch.testing.assert_close(logits, mean.log(), rtol=0, atol=1e-12)
            torch.testing.assert_close(attention, (steps[0][2] + steps[1][2]) / 2, rtol=0, atol=1e-12)
            # What the decoders choose from: the mean, without PAD and BOS, renormalised.
            allowed = mean.clone()
            allowed[:, [PAD_ID, BOS_ID]] = 0
            expected = (allowed / allowed.sum(-1, keepdim=True)).log()
            torch.testing.assert_close(next_token_log_probs(logits), expected, rtol=0, atol=1e-12)


def test_output_logits_on_slices_of_rows_equal_the_whole(first, second, batch):
    ensemble = Seq2SeqEnsemble([first, second])
    src, lengths = batch
    with torch.no_grad():
        source, state = ensemble.encode(src, lengths)
        outs, _, _ = ensemble.decode_step_states(torch.full((src.size(0),), BOS_ID), state, source)
        assert outs.shape == (src.size(0), 32 + 24)  # the members' outputs side by side
        whole = ensemble.output_logits(outs)
        sliced = torch.cat([ensemble.output_logits(part) for part in outs.split(5)])
    torch.testing.assert_close(sliced, whole, rtol=0, atol=1e-12)
    assert whole.logsumexp(-1).allclose(torch.zeros(src.size(0), dtype=whole.dtype), atol=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_beam_size_one_equals_greedy_for_an_ensemble(first, second, batch, alpha):
    ensemble = Seq2SeqEnsemble([first, second])
    greedy = outputs(decode(ensemble, *batch))
    beam = outputs(decode(ensemble, *batch, strategy="beam", beam_size=1, length_penalty=alpha))
    assert beam[0] == greedy[0]
    assert beam[2] == pytest.approx(greedy[2], abs=1e-9)


def test_ensemble_beam_search_does_not_depend_on_the_batch(first, second, batch):
    ensemble = Seq2SeqEnsemble([first, second])
    src, lengths = batch
    together = outputs(decode(ensemble, src, lengths, strategy="beam", beam_size=3))
    alone = [
        decode(ensemble, src[i : i + 1, : int(lengths[i])], lengths[i : i + 1], strategy="beam", beam_size=3)
        for i in range(src.size(0))
    ]
    assert outputs([hyps for result in alone for hyps in result])[0] == together[0]


def test_an_ensemble_differs_from_each_member(first, second, batch):
    ensemble = outputs(decode(Seq2SeqEnsemble([first, second]), *batch))[0]
    assert ensemble != outputs(decode(first, *batch))[0]
    assert ensemble != outputs(decode(second, *batch))[0]


def force(model, batch, rows):
    """Forced decoding of ``rows``, (sentence index, hypothesis) pairs, in ``model``."""
    src, lengths = batch
    pairs = [(src[i, : int(lengths[i])].tolist(), hyp.tokens, "") for i, hyp in rows]
    return forced_decode(model, collate_pairs(pairs), return_attention=True)


@pytest.mark.parametrize("options", STRATEGIES[:2], ids=lambda o: o["strategy"])
def test_forced_decoding_of_an_ensembles_output_gives_the_scores_its_search_reported(first, second, batch, options):
    ensemble = Seq2SeqEnsemble([first, second])
    results = decode(ensemble, *batch, return_attention=True, **options)
    rows = [(i, hyp) for i, hyps in enumerate(results) for hyp in hyps]
    forced = force(ensemble, batch, rows)
    assert forced.tokens == [hyp.tokens for _, hyp in rows]
    ended = 0
    for score, per_step, attention, (_, hyp) in zip(forced.scores, forced.token_log_probs, forced.attention, rows):
        # Forced decoding also scores the EOS that ends a target; a search cut at the length
        # limit has no EOS step, so its steps are compared without that last one.
        steps = len(hyp.token_log_probs)
        # The tolerance of the one-model test (test_token_scores.py): a step at a time and the
        # whole target at once round differently.
        assert per_step[:steps] == pytest.approx(hyp.token_log_probs, abs=1e-6)
        torch.testing.assert_close(attention[:steps], hyp.attention, rtol=0, atol=1e-6)  # float32 on both sides
        if hyp.ended:
            assert score == pytest.approx(hyp.log_prob, abs=1e-5)
            ended += 1
    assert ended >= 2
    # ... and they are the ensemble's, not either member's
    for member in (first, second):
        assert force(member, batch, rows).scores != pytest.approx(forced.scores, abs=1e-3)


def test_forced_decoding_of_an_ensemble_of_one_is_the_models(first, batch):
    rows = [(i, hyp) for i, [hyp] in enumerate(decode(first, *batch))]
    alone, ensemble = force(first, batch, rows), force(Seq2SeqEnsemble([first]), batch, rows)
    assert ensemble.scores == alone.scores and ensemble.token_log_probs == alone.token_log_probs


def test_attention_is_refused_when_a_member_has_none(first, batch):
    plain = tiny_network(2, attention="none", input_feeding=False)
    ensemble = Seq2SeqEnsemble([first, plain])
    assert not ensemble.has_attention
    assert decode(ensemble, *batch)  # decodes without attention
    with pytest.raises(ValueError, match="no attention"):
        decode(ensemble, *batch, return_attention=True)


def test_members_with_different_target_vocabularies_are_refused(first):
    torch.manual_seed(0)
    other = Seq2Seq(VOCAB, VOCAB + 1, embed_size=8, hidden_size=8)
    with pytest.raises(ValueError, match="member 2 has a target vocabulary of 31 tokens, member 1 of 30"):
        Seq2SeqEnsemble([first, other])
    with pytest.raises(ValueError, match="at least one"):
        Seq2SeqEnsemble([])


# -- checkpoints and tools --------------------------------------------------------------------

ALPHABET = "abcdefghijklmnopqrstuvwxyz .,!?'"


def write_checkpoint(path: Path, seed: int, alphabet: str = ALPHABET) -> Path:
    """An untrained character-level translation checkpoint in the real format."""
    from omegaconf import OmegaConf

    from nmt.inference.checkpoint import PAYLOAD_KEY, make_payload

    cfg = compose_config(["experiment=char_bahdanau", "model.embed_size=8", "model.hidden_size=16"])
    config = OmegaConf.to_container(cfg, resolve=True)
    tokenizer = CharTokenizer.train([alphabet])
    torch.manual_seed(seed)
    model = Seq2Seq.from_config(config["model"], config["attention"], tokenizer.vocab_size, tokenizer.vocab_size)
    payload = make_payload("translation", config, {"source": tokenizer, "target": tokenizer})
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}, PAYLOAD_KEY: payload}, path)
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> tuple[Path, Path, Path]:
    """Two checkpoints that share their tokenizers and a third whose tokenizers differ (one
    other character: the same vocabulary size, so only the tokenizer check can tell)."""
    directory = tmp_path_factory.mktemp("ensemble")
    return (
        write_checkpoint(directory / "a.ckpt", 0),
        write_checkpoint(directory / "b.ckpt", 1),
        write_checkpoint(directory / "other.ckpt", 2, alphabet=ALPHABET.replace("z", "é")),
    )


LINES = ["the cat sees a dog.", "", "a big red house!", "hello"]


def test_translator_builds_an_ensemble_only_for_several_checkpoints(checkpoints):
    a, b, _ = checkpoints
    single = Translator.from_checkpoints([a], device="cpu")
    assert isinstance(single.model, Seq2Seq)
    ensemble = Translator.from_checkpoints([a, b], device="cpu")
    assert isinstance(ensemble.model, Seq2SeqEnsemble)
    assert ensemble.parameter_count == 2 * single.parameter_count
    twice = Translator.from_checkpoints([a, a], device="cpu")
    assert [t.text for t in twice.translate(LINES)] == [t.text for t in single.translate(LINES)]
    bf16 = Translator.from_checkpoints([a, b], device="cpu", precision="bf16")
    assert len(bf16.translate(LINES)) == len(LINES)


def test_checkpoints_with_other_tokenizers_are_refused_naming_the_checkpoint(checkpoints):
    a, _, other = checkpoints
    with pytest.raises(ValueError, match=f"^{other} has another source tokenizer than {a}:"):
        Translator.from_checkpoints([a, other], device="cpu")


def test_translate_cli_decodes_an_ensemble_and_refuses_other_tokenizers(checkpoints, tmp_path, capsys):
    from nmt.cli.translate import main

    a, b, other = checkpoints
    source = tmp_path / "in.txt"
    source.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    out = tmp_path / "out.txt"
    args = ["--input", str(source), "--output", str(out), "--threads", "1", "--strategy", "beam", "--beam-size", "3"]
    assert main([str(a), str(a), *args]) == 0
    twice = out.read_text(encoding="utf-8")
    assert main([str(a), *args]) == 0
    assert twice == out.read_text(encoding="utf-8")
    assert len(twice.splitlines()) == len(LINES)
    assert main([str(a), str(b), *args]) == 0
    assert main([str(a), str(b), *args, "--output-format", "jsonl"]) == 0  # token scores, mean-attention alignment
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(records) == len(LINES)
    capsys.readouterr()

    assert main([str(a), str(other), *args]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert str(other) in error and "tokenizer" in error


def test_evaluate_cli_reports_the_members(checkpoints, tmp_path, capsys):
    from nmt.cli.evaluate import main

    a, b, _ = checkpoints
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("the cat.\tle chat.\na dog.\tun chien.\n", encoding="utf-8")
    assert main([str(a), str(b), "--pairs", str(pairs), "--threads", "1"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["checkpoint"] == str(a)
    assert report["ensemble"] == [str(a), str(b)]
    assert report["output_dir"].endswith("pairs-greedy-ensemble2")


def test_server_serves_checkpoints_joined_with_plus_as_one_ensemble(checkpoints, tiny_classification_checkpoint):
    from nmt.inference.loading import WrongTaskError
    from nmt.serve.models import ModelSpec, load_models

    a, b, other = checkpoints
    spec = ModelSpec.parse(f"fr={a}+{b}")
    assert spec.name == "fr" and spec.paths == (a, b)
    assert ModelSpec.parse(str(a)).paths == (a,)
    models = load_models([spec, ModelSpec.parse(str(a))])
    served = models["fr"]
    assert isinstance(served.translator.model, Seq2SeqEnsemble)
    description = served.describe()
    assert description["file"] == "a.ckpt+b.ckpt"
    assert [member["file"] for member in description["ensemble"]] == ["a.ckpt", "b.ckpt"]
    assert len(served.run(LINES, (decode_options(), False))) == len(LINES)
    with pytest.raises(ValueError, match="another source tokenizer"):
        load_models([ModelSpec.parse(f"{a}+{other}")])
    with pytest.raises(WrongTaskError, match="not a 'translation' one"):
        load_models([ModelSpec.parse(f"{a}+{tiny_classification_checkpoint}")])
    with pytest.raises(ValueError, match="empty checkpoint path"):
        ModelSpec.parse(f"{a}+")


@pytest.fixture(scope="module")
def trained_pair(tiny_translation_checkpoint, tmp_path_factory) -> tuple[Path, Path]:
    """The tiny trained checkpoint and a copy with perturbed weights: two members that share
    their tokenizers and, being trained, end their sentences (so scores are comparable)."""
    state = torch.load(tiny_translation_checkpoint, map_location="cpu", weights_only=True)
    generator = torch.Generator().manual_seed(5)
    for tensor in state["state_dict"].values():
        if tensor.is_floating_point():
            tensor.add_(torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype) * 0.05)
    other = tmp_path_factory.mktemp("perturbed") / "perturbed.ckpt"
    torch.save(state, other)
    return tiny_translation_checkpoint, other


def cli_lines(main, argv: list[str], capsys) -> list[dict]:
    status = main([*argv, "--threads", "1", "--device", "cpu"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    return [json.loads(line) for line in captured.out.splitlines()]


@pytest.mark.parametrize("strategy", [["--strategy", "greedy"], ["--strategy", "beam", "--beam-size", "3"]])
def test_score_cli_gives_an_ensembles_output_the_score_its_search_reported(trained_pair, tmp_path, capsys, strategy):
    from nmt.cli.score import main as score_main
    from nmt.cli.translate import main as translate_main

    members = [str(path) for path in trained_pair]
    sources = tmp_path / "src.txt"
    sources.write_text("The cat sees a dog.\nA small red house.\nThe big dog eats.\nthe house sees the cat\n")
    decoded = cli_lines(
        translate_main, [*members, "--input", str(sources), "--output-format", "jsonl", *strategy], capsys
    )
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"{r['source']}\t{r['translation']}\n" for r in decoded), encoding="utf-8")
    scored = cli_lines(score_main, [*members, "--input", str(pairs), "--alignment"], capsys)
    alone = cli_lines(score_main, [members[0], "--input", str(pairs)], capsys)
    compared = 0
    for record, forced, single in zip(decoded, scored, alone):
        [hyp] = record["hypotheses"]
        if forced["tokens"] == hyp["tokens"]:  # the text re-encodes to the search's tokens, EOS included
            assert forced["log_prob"] == pytest.approx(hyp["log_prob"], abs=1e-4)
            assert forced["token_log_probs"] == pytest.approx(hyp["token_log_probs"], abs=1e-4)
            assert forced["alignment"] == hyp["alignment"]
            assert single["log_prob"] != pytest.approx(forced["log_prob"], abs=1e-4)  # the ensemble, not member 1
            compared += 1
    assert compared >= 2


def test_score_cli_refuses_members_with_other_tokenizers_in_one_line(checkpoints, tmp_path, capsys):
    from nmt.cli.score import main as score_main

    a, _, other = checkpoints
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("the cat.\tle chat.\n", encoding="utf-8")
    assert score_main([str(a), str(other), "--input", str(pairs), "--threads", "1"]) == 2
    captured = capsys.readouterr()
    [error] = captured.err.strip().splitlines()
    assert error.startswith("python -m nmt.score: error: ") and f"{other} has another source tokenizer" in error
    assert captured.out == ""


def decode_options():
    from nmt.decoding import DecodingOptions

    return DecodingOptions()


@pytest.mark.skipif(not int8_supported(), reason="needs PyTorch's oneDNN int8 kernels")
def test_int8_quantizes_every_member(checkpoints):
    a, b, _ = checkpoints
    translator = Translator.from_checkpoints([a, b], device="cpu", precision="int8")
    assert all(isinstance(member.output_layer, Int8Linear) for member in translator.model.members)
    assert len(translator.translate(LINES)) == len(LINES)


def test_ensemble_logits_subtract_log_k(first):
    """The mean of K equal distributions is that distribution: logsumexp - log K."""
    with torch.no_grad():
        states = torch.randn(3, 32, dtype=torch.float64)
        triple = Seq2SeqEnsemble([first, first, first]).output_logits(torch.cat([states] * 3, dim=-1))
        single = first.output_logits(states).log_softmax(-1)
    torch.testing.assert_close(triple, single, rtol=0, atol=1e-12)
    assert math.isclose(float(triple.exp().sum(-1)[0]), 1.0, abs_tol=1e-12)


def test_float32_mean_matches_logsumexp_of_log_probabilities_for_sharp_members():
    """Summing probabilities loses nothing that matters: it agrees with ``logsumexp - log K``
    wherever some member gives the token more than 1e-33 (float32's normal numbers end at
    1.2e-38), and is no more than that below."""
    torch.manual_seed(3)
    members = [Seq2Seq(VOCAB, VOCAB, embed_size=8, hidden_size=16, dropout=0.0).eval() for _ in range(2)]
    for member in members:
        with torch.no_grad():
            member.output_layer.weight.normal_(0, 20)  # log-probabilities far below -87
    ensemble = Seq2SeqEnsemble(members)
    states = torch.rand(64, 32) * 2 - 1
    with torch.no_grad():
        logits = ensemble.output_logits(states)
        log_probs = torch.stack(
            [m.output_logits(p).double().log_softmax(-1) for m, p in zip(members, states.split(16, -1))]
        )
    reference = torch.logsumexp(log_probs, dim=0) - math.log(2)
    tiny = math.log(torch.finfo(torch.float32).tiny)
    accurate = log_probs.amax(dim=0) > tiny + 12
    assert bool((~accurate).any())  # the case arises here
    torch.testing.assert_close(logits.double()[accurate], reference[accurate], rtol=0, atol=1e-5)
    assert bool((logits[~accurate] < tiny + 12).all())
