"""n-best reranking: language-model scoring of texts, features, weight tuning and ``nmt-rerank``."""

from __future__ import annotations

import io
import json
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from sacrebleu.metrics import BLEU

from nmt.cli.rerank import FEATURE_NAMES
from nmt.cli.rerank import main as rerank_main
from nmt.cli.translate import main as translate_main
from nmt.data.lm_datamodule import WindowDataset, collate_windows
from nmt.data.tokenizers import BOS_ID, EOS_ID, CharTokenizer
from nmt.evaluation.reranking import (
    FeatureTable,
    bleu_statistics,
    chosen_bleu,
    format_weights,
    load_weights,
    parse_weights,
    save_weights,
    tune_weights,
)
from nmt.inference.checkpoint import PAYLOAD_KEY, make_payload
from nmt.inference.lm_scorer import TextScorer
from nmt.inference.reranking import FEATURES
from nmt.inference.scorer import Scorer
from nmt.inference.translator import Translator
from nmt.models.language_model import LanguageModel
from nmt.tasks.language_model import LanguageModelTask
from tests.conftest import TOY_LEXICON, compose_config

FRENCH = ["Le chat voit un chien !", "Un grand chien rouge !", "Le petit chat mange !", "Maison."]
SOURCES = ["The cat sees a dog.", "", "A big red house.", "a small dog", "The dog eats."]


# -- a language model checkpoint in the real format ------------------------------------------------
def lm_config() -> dict:
    cfg = compose_config(["experiment=char_lm", "model.embed_size=8", "model.hidden_size=12", "model.dropout=0.0"])
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.fixture(scope="module")
def lm_checkpoint(tmp_path_factory) -> Path:
    """An untrained character LM of French toy text (sharpened so that texts differ in score)."""
    config = lm_config()
    tokenizer = CharTokenizer.train([*FRENCH, *TOY_LEXICON.values(), "ÉéèêàçùôîAZaz!?.,'- "])
    torch.manual_seed(0)
    model = LanguageModel.from_config(config["model"], tokenizer.vocab_size)
    with torch.no_grad():
        model.output_layer.weight.mul_(4)
    path = tmp_path_factory.mktemp("tiny_lm") / "lm.ckpt"
    payload = make_payload("lm", config, {"text": tokenizer})
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}, PAYLOAD_KEY: payload}, path)
    return path


@pytest.fixture(scope="module")
def scorer(lm_checkpoint) -> TextScorer:
    return TextScorer.from_checkpoint(lm_checkpoint, device="cpu")


def stepwise_log_prob(model: LanguageModel, ids: list[int]) -> float:
    """log p(ids + EOS), one token at a time through ``step``."""
    state = model.initial_state(1)
    total, previous = 0.0, BOS_ID
    with torch.no_grad():
        for target in [*ids, EOS_ID]:
            logits, state = model.step(torch.tensor([previous]), state)
            total += float(torch.log_softmax(logits.double(), -1)[0, target])
            previous = target
    return total


def test_a_texts_lm_score_equals_stepping_and_the_training_loss(scorer, lm_checkpoint):
    texts = [*FRENCH, "", "le chat  voit\tun chien"]
    scored = scorer.score(texts, batch_size=3)
    config = lm_config()
    task = LanguageModelTask(config, scorer.tokenizer)
    task.model.load_state_dict(scorer.model.state_dict())
    task.eval()
    for result in scored:
        ids = scorer.tokenizer.encode(result.text)
        assert result.tokens == len(ids) + 1
        assert result.log_prob == pytest.approx(stepwise_log_prob(scorer.model, ids), abs=1e-4)
        batch = collate_windows(WindowDataset([result.text], [ids], None).items)
        with torch.no_grad():
            loss, count = task.summed_loss(batch, label_smoothing=0.0)
        assert count == len(ids) + 1
        assert result.log_prob == pytest.approx(-float(loss), abs=1e-4)
    assert scored[-1].text == "le chat voit un chien"  # normalised like the training text


def test_lm_scores_do_not_depend_on_the_batch(scorer):
    texts = FRENCH * 3
    alone = [r.log_prob for r in scorer.score(texts, batch_size=1)]
    together = [r.log_prob for r in scorer.score(texts, batch_size=64)]
    assert together == pytest.approx(alone, abs=1e-5)
    assert len(set(np.round(alone[:4], 3))) == 4


def test_a_translation_checkpoint_is_not_a_language_model(tiny_translation_checkpoint):
    from nmt.inference.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="'translation' checkpoint, not a 'lm' one"):
        TextScorer.from_checkpoint(tiny_translation_checkpoint, device="cpu")


# -- weights and tuning ---------------------------------------------------------------------------
def test_the_commands_feature_names_are_the_features():
    assert tuple(FEATURES) == FEATURE_NAMES


def test_weights_round_trip_through_text_and_json(tmp_path):
    weights = parse_weights("tm=1, lm=0.3,tokens=-0.25,rev=0", FEATURE_NAMES)
    assert weights == {"tm": 1.0, "lm": 0.3, "tokens": -0.25, "rev": 0.0}
    assert parse_weights(format_weights(weights), FEATURE_NAMES) == {k: v for k, v in weights.items() if v}
    save_weights(tmp_path / "w.json", weights, bleu=12.5)
    assert load_weights(tmp_path / "w.json", FEATURE_NAMES) == weights
    assert json.loads((tmp_path / "w.json").read_text())["bleu"] == 12.5


@pytest.mark.parametrize(
    "spec, message",
    [
        ("tm=1,fluency=2", "unknown feature 'fluency': the features are tm, "),
        ("tm=one", "bad weight 'tm=one': write NAME=NUMBER"),
        ("tm", "bad weight 'tm'"),
        ("tm=1,tm=2", "feature 'tm' is given two weights"),
        ("tm=inf", "bad weight 'tm=inf'"),
        (",", "no weights given"),
    ],
)
def test_bad_weights_are_refused_naming_the_problem(spec, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        parse_weights(spec, FEATURE_NAMES)


@pytest.mark.parametrize("content", ["[1, 2]", "not json", '{"weights": {"tm": "high"}}', '{"weights": {"x": 1}}'])
def test_a_file_that_is_not_a_weights_file_is_refused(tmp_path, content):
    (tmp_path / "w.json").write_text(content)
    with pytest.raises(ValueError, match="weights file|unknown feature 'x'"):
        load_weights(tmp_path / "w.json", FEATURE_NAMES)


def random_table(seed: int, sentences: int = 30, width: int = 5):
    """Sentences of toy French, hypotheses that are variants of the reference, and features:
    ``tm`` noise, ``lm`` = 1 on the exact reference only (the oracle), ``tokens``."""
    rng = random.Random(seed)
    words = list(TOY_LEXICON.values())
    references, texts, rows, oracle = [], [], [], []
    for _ in range(sentences):
        reference = " ".join(rng.choice(words) for _ in range(rng.randint(3, 7)))
        variants = [" ".join(rng.sample(reference.split(), k=len(reference.split()))) for _ in range(width - 2)]
        hyps = [*variants, reference.split()[0], reference]
        rng.shuffle(hyps)
        gold = hyps.index(reference)
        references.append([reference])
        texts.append(hyps)
        oracle.append(gold)
        rows.append(
            [{"tm": rng.uniform(-3, 0), "lm": float(n == gold), "tokens": len(h.split())} for n, h in enumerate(hyps)]
        )
    return FeatureTable.from_rows(["tm", "lm", "tokens"], rows, texts), references, oracle


def test_the_statistics_give_sacrebleus_corpus_bleu_for_any_choice():
    table, references, _ = random_table(1)
    references = [[*refs, "le chat"] if i % 3 == 0 else refs for i, refs in enumerate(references)]
    stats = bleu_statistics(table, references)
    rng = np.random.default_rng(0)
    for _ in range(5):
        choice = rng.integers(0, 5, size=len(references))
        hyps = [texts[k] for texts, k in zip(table.texts, choice)]
        streams = [[refs[i] if i < len(refs) else None for refs in references] for i in range(2)]
        assert chosen_bleu(stats, choice) == pytest.approx(BLEU().corpus_score(hyps, streams).score, abs=1e-9)


def test_tuning_finds_the_weights_of_the_oracle_feature():
    table, references, oracle = random_table(2)
    start = chosen_bleu(bleu_statistics(table, references), table.best({"tm": 1.0}))
    result = tune_weights(table, references)
    assert start < 90 and result.start_bleu == pytest.approx(start)
    assert result.bleu == pytest.approx(100.0)
    assert table.best(result.weights).tolist() == oracle
    # The oracle outweighs the largest possible tm difference (3); the permuted variants have the
    # reference's length, so the length weight may take any value that does not favour the short one.
    assert result.weights["lm"] > 3 * abs(result.weights["tm"])
    assert result.weights["tokens"] >= 0
    assert result.oracle_bleu == pytest.approx(100.0)


def test_weights_that_name_no_feature_of_the_table_are_refused():
    table, _, _ = random_table(3, sentences=2)
    with pytest.raises(ValueError, match="no feature rev in this table"):
        table.best({"rev": 1.0})


def test_ties_go_to_the_decoders_order_and_empty_lists_give_empty_lines():
    rows = [[{"tm": -1.0}, {"tm": -1.0}], []]
    table = FeatureTable.from_rows(["tm"], rows, [["a", "b"], []])
    assert table.choose({"tm": 1.0}) == ["a", ""]


# -- the command ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nbest(tiny_translation_checkpoint, tmp_path_factory) -> tuple[Path, Path]:
    """(SOURCE, NBEST) with 4-best beam lists from the tiny translation model."""
    directory = tmp_path_factory.mktemp("nbest")
    source = directory / "source.txt"
    source.write_text("\n".join(SOURCES) + "\n", encoding="utf-8")
    out = directory / "nbest.jsonl"
    status = translate_main(
        [str(tiny_translation_checkpoint), "--strategy", "beam", "--beam-size", "4", "--n-best", "4"]
        + ["--output-format", "jsonl", "--input", str(source), "--output", str(out), "--device", "cpu"]
    )
    assert status == 0
    return source, out


def rerank(args: list, capsys, monkeypatch) -> tuple[int, list[str], str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    try:
        status = rerank_main([str(a) for a in args] + ["--device", "cpu"])
    except SystemExit as exit:
        status = exit.code
    captured = capsys.readouterr()
    return status, captured.out.splitlines(), captured.err


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_tm_alone_reproduces_the_decoders_best(nbest, capsys, monkeypatch):
    source, nbest_file = nbest
    status, out, err = rerank([source, nbest_file, "--weights", "tm=1"], capsys, monkeypatch)
    assert status == 0, err
    assert out == [record["translation"] for record in records(nbest_file)]
    assert out[1] == ""  # the empty source line has no hypotheses


def test_features_equal_the_nbest_records_and_the_models_own_scores(
    nbest, lm_checkpoint, tiny_translation_checkpoint, scorer, tmp_path, capsys, monkeypatch
):
    source, nbest_file = nbest
    weights = "tm=1,tm_logprob=0.5,tm_avg=0.1,tokens=0.2,words=-0.1,lm=0.3,rev=0.2"
    features = tmp_path / "features.jsonl"
    args = [source, nbest_file, "--weights", weights, "--lm", lm_checkpoint, "--features-output", features]
    status, out, err = rerank(
        [*args, "--reverse", tiny_translation_checkpoint, "--batch-size", "3"], capsys, monkeypatch
    )
    assert status == 0, err
    reverse = Scorer(Translator.from_checkpoint(tiny_translation_checkpoint, device="cpu"))
    given = parse_weights(weights, FEATURE_NAMES)
    for number, (expected, got, line) in enumerate(zip(records(nbest_file), records(features), out)):
        assert len(got["hypotheses"]) == len(expected["hypotheses"])
        if not expected["hypotheses"]:
            assert got["chosen"] is None and line == ""
            continue
        sums = []
        for hyp, row in zip(expected["hypotheses"], got["hypotheses"]):
            f = row["features"]
            assert f["tm"] == pytest.approx(hyp["score"], abs=1e-6)
            assert f["tm_logprob"] == pytest.approx(sum(hyp["token_log_probs"]), abs=1e-4)
            assert f["tm_avg"] == pytest.approx(hyp["log_prob"] / len(hyp["tokens"]), abs=1e-6)
            assert f["tokens"] == len(hyp["tokens"]) - (hyp["tokens"][-1] == "<eos>")
            assert f["words"] == len(hyp["translation"].split())
            [lm_score] = scorer.score([hyp["translation"]])
            assert f["lm"] == pytest.approx(lm_score.log_prob, abs=1e-4)
            [rev] = reverse.score([(hyp["translation"], SOURCES[number])])
            assert f["rev"] == pytest.approx(rev.log_prob if rev.log_prob is not None else -1e9, abs=1e-4)
            sums.append(sum(given[name] * f[name] for name in given))
        assert got["chosen"] == int(np.argmax(sums))
        assert line == expected["hypotheses"][got["chosen"]]["translation"]


def test_tuned_weights_are_saved_and_reapplied_to_the_same_choices(nbest, lm_checkpoint, tmp_path, capsys, monkeypatch):
    source, nbest_file = nbest
    # References: for each line, its third hypothesis (or nothing), so tuning has something to find.
    refs = [r["hypotheses"][2]["translation"] if r["hypotheses"] else "x" for r in records(nbest_file)]
    (tmp_path / "refs.txt").write_text("\n".join(refs) + "\n", encoding="utf-8")
    saved = tmp_path / "weights.json"
    args = [source, nbest_file, "--lm", lm_checkpoint, "--tune", tmp_path / "refs.txt", "--save-weights", saved]
    status, tuned_out, err = rerank(args, capsys, monkeypatch)
    assert status == 0, err
    report = json.loads(err.strip().splitlines()[-1])
    assert report["bleu"] >= report["start_bleu"]
    assert set(report["weights"]) == set(FEATURE_NAMES) - {"rev"}
    assert load_weights(saved, FEATURE_NAMES) == report["weights"]
    status, applied_out, err = rerank(
        [source, nbest_file, "--lm", lm_checkpoint, "--weights", saved], capsys, monkeypatch
    )
    assert status == 0, err
    assert applied_out == tuned_out
    # The reported BLEU is sacreBLEU's of the output (the empty line included), to its rounding.
    assert BLEU().corpus_score(tuned_out, [refs]).score == pytest.approx(report["bleu"], abs=0.005 + 1e-9)


def test_features_read_back_give_the_same_choices_without_the_models(
    nbest, lm_checkpoint, tmp_path, capsys, monkeypatch
):
    source, nbest_file = nbest
    features = tmp_path / "features.jsonl"
    weights = "tm=1,lm=0.7,tokens=0.4"
    status, computed, err = rerank(
        [source, nbest_file, "--lm", lm_checkpoint, "--weights", weights, "--features-output", features],
        capsys,
        monkeypatch,
    )
    assert status == 0, err
    again = tmp_path / "again.jsonl"
    args = [source, nbest_file, "--features-input", features, "--weights", weights, "--features-output", again]
    status, read_back, err = rerank(args, capsys, monkeypatch)
    assert status == 0, err
    assert read_back == computed
    assert records(again) == records(features)
    # A feature the file lacks, or the file of other n-best lists, is refused in one line.
    line = one_line_error([source, nbest_file, "--features-input", features, "--weights", "rev=1"], capsys, monkeypatch)
    assert "line 1: no feature rev: compute it, without --features-input" in line
    other = records(features)
    other[0]["hypotheses"] = other[0]["hypotheses"][1:]
    features.write_text("".join(json.dumps(r) + "\n" for r in other))
    line = one_line_error([source, nbest_file, "--features-input", features, "--weights", "tm=1"], capsys, monkeypatch)
    assert "line 1: not the features of this n-best list" in line


def one_line_error(args, capsys, monkeypatch) -> str:
    status, out, err = rerank(args, capsys, monkeypatch)
    assert status == 2 and out == [], err
    [line] = err.strip().splitlines()
    assert line.startswith("python -m nmt.rerank: error: ")
    return line


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json\n", "line 1: not JSON"),
        ('{"source": "a"}\n', "line 1: not an n-best record (no list 'hypotheses')"),
        (
            '{"source": "a", "hypotheses": [{"translation": "b", "tokens": []}]}\n',
            "hypothesis 1: no 'log_prob', 'score'",
        ),
        (
            '{"source": "a", "hypotheses": [{"translation": "b", "tokens": [], "log_prob": "x", "score": 1}]}\n',
            "'log_prob' is 'x', not a number",
        ),
    ],
)
def test_malformed_nbest_lines_are_one_line_errors(tmp_path, capsys, monkeypatch, content, message):
    (tmp_path / "src").write_text("a\n")
    (tmp_path / "nbest").write_text(content)
    line = one_line_error([tmp_path / "src", tmp_path / "nbest", "--weights", "tm=1"], capsys, monkeypatch)
    assert message in line


def test_an_nbest_file_of_other_sources_is_refused(nbest, tmp_path, capsys, monkeypatch):
    _, nbest_file = nbest
    (tmp_path / "short").write_text("The cat sees a dog.\n")
    assert "has 1 lines but the n-best file has 5" in one_line_error(
        [tmp_path / "short", nbest_file, "--weights", "tm=1"], capsys, monkeypatch
    )
    (tmp_path / "other").write_text("\n".join(["The dog sees a cat.", *SOURCES[1:]]) + "\n")
    assert "line 1: the n-best list translates 'The cat sees a dog.'" in one_line_error(
        [tmp_path / "other", nbest_file, "--weights", "tm=1"], capsys, monkeypatch
    )


@pytest.mark.parametrize(
    "options, message",
    [
        (["--weights", "tm=1,bleu=3"], "unknown feature 'bleu'"),
        (["--tune", "REFS", "--tune-features", "tm,fluency"], "unknown feature 'fluency'"),
        (["--weights", "tm=1,lm=0.3"], "feature 'lm' needs a model: give it with --lm CHECKPOINT"),
        (["--weights", "tm=1,rev=0.3"], "feature 'rev' needs a model: give it with --reverse CHECKPOINT"),
        (["--weights", "tm=1,lm=0.3", "--lm", "TM"], "'translation' checkpoint, not a 'lm' one"),
        (["--weights", "tm=1,rev=0.3", "--reverse", "LM"], "'lm' checkpoint, not a 'translation' one"),
        (["--weights", "weights.json"], "neither NAME=NUMBER pairs"),
        ([], "give either --weights (to apply) or --tune REFS"),
        (["--weights", "tm=1", "--save-weights", "w.json"], "--tune-features and --save-weights go with --tune"),
        (["--tune", "SHORT"], "has 1 lines but the source has 5"),
    ],
)
def test_bad_options_and_wrong_checkpoints_are_one_line_errors(
    nbest, lm_checkpoint, tiny_translation_checkpoint, tmp_path, capsys, monkeypatch, options, message
):
    source, nbest_file = nbest
    (tmp_path / "refs").write_text("\n".join(SOURCES) + "\n")
    (tmp_path / "short").write_text("le chat\n")
    names = {
        "REFS": tmp_path / "refs",
        "SHORT": tmp_path / "short",
        "TM": tiny_translation_checkpoint,
        "LM": lm_checkpoint,
    }
    line = one_line_error([source, nbest_file, *(names.get(o, o) for o in options)], capsys, monkeypatch)
    assert message in line
