"""Naive Bayes baselines (task=baseline): the models against scikit-learn and the formulas,
checkpoints that load with weights_only, training through nmt.train on the classifiers'
splits, and nmt/cli/evaluate_classifier.py's report."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")

from conftest import compose_config  # noqa: E402
from nmt.baselines.naive_bayes import (  # noqa: E402
    LinearTextModel,
    fit,
    fit_vocabulary,
    log_count_ratio,
    transform_counts,
)
from nmt.config.checks import ConfigError, validate_config  # noqa: E402
from nmt.inference.baseline import baseline_checkpoint  # noqa: E402
from nmt.inference.checkpoint import CheckpointError, atomic_save  # noqa: E402
from nmt.inference.loading import load_model  # noqa: E402

TEXTS = [
    "free prize call now",
    "win a free prize",
    "call me at lunch",
    "see you at lunch",
    "free lunch now",
    "prize draw win now",
    "are you coming home",
    "home at six see you",
]
LABELS = [1, 1, 0, 0, 0, 1, 0, 0]
MODEL = {
    "type": "multinomial_nb",
    "features": "counts",
    "analyzer": "word",
    "ngram_range": [1, 2],
    "lowercase": True,
    "token_pattern": r"(?u)\b\w+\b",
    "min_df": 1,
    "max_features": None,
    "sublinear_tf": False,
    "alpha": [1.0],
    "C": [1.0],
    "beta": 0.25,
}


@pytest.mark.parametrize("features", ["counts", "binary", "tfidf"])
def test_multinomial_nb_scores_are_sklearns_joint_log_likelihoods(features):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.naive_bayes import MultinomialNB

    model = fit(TEXTS, LABELS, 2, {**MODEL, "features": features}, {"alpha": 0.5})
    counts, _ = fit_vocabulary(TEXTS, MODEL)
    if features == "tfidf":
        reference_features = TfidfVectorizer(ngram_range=(1, 2), token_pattern=r"(?u)\b\w+\b").fit_transform(TEXTS)
    else:
        reference_features = transform_counts(counts, features)
    reference = MultinomialNB(alpha=0.5).fit(reference_features, LABELS)
    queries = ["free prize now", "see you at home", "an unseen text"]
    if features == "tfidf":
        expected = reference.predict_joint_log_proba(
            TfidfVectorizer(ngram_range=(1, 2), token_pattern=r"(?u)\b\w+\b").fit(TEXTS).transform(queries)
        )
    else:
        expected = reference.predict_joint_log_proba(transform_counts(model._counts(queries), features))
    np.testing.assert_allclose(model.scores(queries).numpy(), expected, rtol=1e-5, atol=1e-4)
    assert model.predict(queries)[:2].tolist() == [1, 0]


def test_nbsvm_ratio_is_wang_and_mannings_formula():
    binary = transform_counts(fit_vocabulary(TEXTS, MODEL)[0], "binary")
    positive = np.asarray(LABELS) == 1
    dense = binary.toarray()
    p, q = 1.0 + dense[positive].sum(0), 1.0 + dense[~positive].sum(0)
    expected = np.log(p / np.abs(p).sum()) - np.log(q / np.abs(q).sum())
    np.testing.assert_allclose(log_count_ratio(binary, positive, 1.0), expected)


@pytest.mark.parametrize("num_classes", [2, 3])
def test_nbsvm_separates_its_training_texts(num_classes):
    labels = LABELS if num_classes == 2 else [y if i % 4 else 2 for i, y in enumerate(LABELS)]
    model = fit(TEXTS, labels, num_classes, {**MODEL, "type": "nbsvm"}, {"alpha": 1.0, "C": 1.0})
    assert model.weight.shape == (num_classes, len(model.vocabulary)) and model.features == "binary"
    assert model.predict(TEXTS).tolist() == labels


def test_a_saved_baseline_loads_with_weights_only_and_predicts_the_same(tmp_path):
    model = fit(TEXTS, LABELS, 2, {**MODEL, "features": "tfidf", "sublinear_tf": True}, {"alpha": 0.3})
    path = tmp_path / "best.ckpt"
    atomic_save(baseline_checkpoint(model, {"model": MODEL}, ["ham", "spam"], {"alpha": 0.3}), path)
    baseline = load_model(path, task="baseline")
    loaded, labels = baseline.model, baseline.labels
    assert labels == ["ham", "spam"] and isinstance(loaded, LinearTextModel)
    queries = ["free prize", "see you at six", ""]
    torch.testing.assert_close(loaded.scores(queries), model.scores(queries))


def test_other_checkpoints_are_refused_as_baselines(tmp_path):
    model = fit(TEXTS, LABELS, 2, MODEL, {"alpha": 1.0})
    checkpoint = baseline_checkpoint(model, {}, ["ham", "spam"], {"alpha": 1.0})
    checkpoint["nmt"]["task"] = "classification"
    atomic_save(checkpoint, tmp_path / "classifier.ckpt")
    with pytest.raises(CheckpointError, match="is a 'classification' checkpoint, not a 'baseline' one"):
        load_model(tmp_path / "classifier.ckpt", task="baseline")
    checkpoint["nmt"]["task"] = "baseline"
    checkpoint["state_dict"]["model.weight"] = checkpoint["state_dict"]["model.weight"][:, :3]
    atomic_save(checkpoint, tmp_path / "cut.ckpt")
    with pytest.raises(CheckpointError, match="do not match"):
        load_model(tmp_path / "cut.ckpt", task="baseline")


def write_sms(path):
    spam = ["free prize call now {}", "win cash prize text {} now", "urgent claim your free reward {}"]
    ham = ["see you at lunch {}", "are you home yet {}", "ok call me later {}", "running late sorry {}"]
    rows = [("spam", spam[i % 3].format(i)) for i in range(60)] + [("ham", ham[i % 4].format(i)) for i in range(240)]
    path.write_text("".join(f"{label}\t{text}\n" for label, text in rows), encoding="utf-8")
    return path


def test_nmt_train_fits_the_baseline_on_the_classifiers_split_and_the_evaluator_agrees(tmp_path, monkeypatch):
    import importlib

    from nmt.cli.train import train
    from nmt.data.classification_datamodule import ClassificationDataModule

    corpus = write_sms(tmp_path / "SMSSpamCollection")
    run_dir = tmp_path / "run"
    cfg = compose_config(
        ["experiment=sms_naive_bayes", f"data.path={corpus}", f"+run_dir={run_dir}", "model.alpha=[0.1,1.0]"]
    )
    metrics = train(cfg)
    assert metrics["test/acc"] == 1.0 and metrics["val/f1"] == 1.0
    report = json.loads((run_dir / "report_test.json").read_text())
    split = ClassificationDataModule(cfg.data, seed=int(cfg.seed)).prepare_corpus()
    assert report["n"] == len(split["test"]) and report["labels"] == ["ham", "spam"]

    evaluator = importlib.import_module("nmt.cli.evaluate_classifier")
    again = evaluator.evaluate(str(run_dir / "checkpoints" / "best.ckpt"), "test", {}, None)
    assert {k: again[k] for k in ("accuracy", "macro_f1", "confusion_matrix")} == {
        k: report[k] for k in ("accuracy", "macro_f1", "confusion_matrix")
    }


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.type=svm"], "model.type"),
        (["model.ngram_range=[2,1]"], "model.ngram_range"),
        (["model.alpha=[0.5,0]"], "model.alpha"),
        (["model.features=words"], "model.features"),
        (["data=fra"], "data=fra"),
        (["model.beta=2"], "model.beta"),
    ],
)
def test_baseline_configs_are_checked_before_any_data_is_read(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(compose_config(["experiment=sms_naive_bayes", *overrides]))


@pytest.mark.parametrize("experiment", ["sms_naive_bayes", "imdb_naive_bayes", "imdb_nbsvm", "nsmc_naive_bayes"])
def test_baseline_presets_are_valid(experiment):
    validate_config(compose_config([f"experiment={experiment}"]))


def margin(scores: torch.Tensor, label: int) -> float:
    """``label``'s score minus the mean of the other classes' scores."""
    others = torch.cat([scores[:label], scores[label + 1 :]])
    return float(scores[label] - others.mean())


@pytest.mark.parametrize(
    ("model_type", "features", "num_classes"),
    [("multinomial_nb", "counts", 2), ("multinomial_nb", "tfidf", 3), ("nbsvm", "binary", 2), ("nbsvm", "binary", 3)],
)
def test_contributions_sum_to_the_labels_margin_in_reading_order(model_type, features, num_classes):
    labels = LABELS if num_classes == 2 else [y if i % 4 else 2 for i, y in enumerate(LABELS)]
    model = fit(
        TEXTS, labels, num_classes, {**MODEL, "type": model_type, "features": features}, {"alpha": 1.0, "C": 1.0}
    )
    text = "Free prize, call now! Free lunch"
    scores = model.scores([text])[0]
    for label in range(num_classes):
        explained = model.contributions(text, label)
        assert sum(w for _, w in explained) + margin(model.bias.double(), label) == pytest.approx(margin(scores, label))
    terms = [term for term, _ in model.contributions(text, 0)]
    assert terms[:4] == ["free", "prize", "call", "now"] and "free prize" in terms  # unigrams, then bigrams
    assert len(terms) == len(set(terms)) and "lunch" in terms


def test_an_unknown_text_contributes_nothing():
    model = fit(TEXTS, LABELS, 2, MODEL, {"alpha": 1.0})
    assert model.contributions("zzz qqq", 1) == []
    assert model.contributions("", 1) == []


def test_nmt_classify_reads_a_baseline_checkpoint(tmp_path):
    """One line per input line, the posterior, the n-grams that pushed most, and the HTML page."""
    import io

    from nmt.cli.classify import parse_args, run

    model = fit(TEXTS, LABELS, 2, MODEL, {"alpha": 1.0})
    path = tmp_path / "best.ckpt"
    atomic_save(baseline_checkpoint(model, {"model": MODEL, "data": {}}, ["ham", "spam"], {"alpha": 1.0}), path)
    out, page = io.StringIO(), tmp_path / "page.html"
    stdin = io.BytesIO(b"win a free prize now\n\nsee you at lunch\n")
    assert run(parse_args([str(path), "--format", "jsonl", "--html", str(page), "--top-k", "2"]), stdin, out) == 0
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["label"] for r in records] == ["spam", "ham", "ham"]
    posterior = torch.softmax(model.scores(["win a free prize now"])[0], dim=-1)
    assert records[0]["probability"] == pytest.approx(float(posterior[1]), abs=1e-6)
    expected = sorted(model.contributions("win a free prize now", 1), key=lambda item: -item[1])[:2]
    assert [(t["token"], t["weight"]) for t in records[0]["top_tokens"]] == [(t, round(w, 6)) for t, w in expected]
    assert records[1]["top_tokens"] == []  # an empty text has no n-grams: the prior decides
    html = page.read_text(encoding="utf-8")
    assert "contribution to the predicted label" in html and "free prize" in html
