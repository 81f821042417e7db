"""Stacked ensembles of classification checkpoints: scores in row order, the stacker, the CLI."""

from __future__ import annotations

import importlib
import importlib.util
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import FAST_TRAINER, compose_config
from nmt.inference.classifier import load_classifier
from nmt.inference.classifier_ensemble import (
    STACKER_C_GRID,
    check_members_agree,
    fit_stacker,
    log_probabilities,
    member_scores,
    score_in_order,
)

HAM = "ok see you later at home tonight call me when get there love dinner going now".split()
SPAM = "free win prize cash claim now call txt urgent award guaranteed offer stop reply".split()


def load_script(name: str):
    return importlib.import_module(f"nmt.cli.{name}")


def noisy_messages(count: int, seed: int = 0) -> list[tuple[str, str]]:
    """Messages mostly of their class's words, some of the other's, so no model is perfect."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        spam = rng.random() < 0.35
        own, other = (SPAM, HAM) if spam else (HAM, SPAM)
        words = [rng.choice(own if rng.random() < 0.6 else other) for _ in range(rng.randint(2, 8))]
        rows.append(("spam" if spam else "ham", " ".join(words)))
    return rows


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sms") / "SMSSpamCollection"
    path.write_text("".join(f"{label}\t{text}\n" for label, text in noisy_messages(600)), encoding="utf-8")
    return path


def train_run(run_dir: Path, overrides: list[str]) -> Path:
    from nmt.cli.train import train

    torch.manual_seed(0)
    train(compose_config([*overrides, f"+run_dir={run_dir}"]))
    return run_dir / "checkpoints" / "best.ckpt"


@pytest.fixture(scope="module")
def members(corpus, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("members")
    neural = train_run(
        root / "bilstm",
        [
            "experiment=sms_bilstm_attn",
            f"data.path={corpus}",
            "tokenizer=char",
            "model.embed_size=16",
            "model.hidden_size=32",
            "model.dropout=0.0",
            "trainer.max_steps=40",
            "trainer.max_time=null",
            "optim.lr=0.01",
            *FAST_TRAINER,
        ],
    )
    naive_bayes = train_run(root / "nb", ["experiment=sms_naive_bayes", f"data.path={corpus}"])
    nbsvm = train_run(root / "nbsvm", ["experiment=sms_naive_bayes", "model=nbsvm", f"data.path={corpus}"])
    other_split = train_run(
        root / "nb_seed1", ["experiment=sms_naive_bayes", f"data.path={corpus}", "data.split_seed=7"]
    )
    return {"neural": neural, "nb": naive_bayes, "nbsvm": nbsvm, "other_split": other_split}


# -- scores ---------------------------------------------------------------------------------------
def test_binary_logit_gives_normalised_log_probabilities():
    logits = torch.tensor([[2.0], [-1.0], [0.0]])
    scores = log_probabilities(logits)
    assert scores.dtype == torch.float64 and scores.shape == (3, 2)
    torch.testing.assert_close(scores.exp().sum(-1), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(scores[:, 1].exp(), torch.sigmoid(logits.double()).squeeze(-1))
    multi = log_probabilities(torch.tensor([[1.0, 2.0, 3.0]]))
    torch.testing.assert_close(multi, torch.log_softmax(torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64), -1))


@pytest.mark.needs("sklearn")  # the Naive Bayes members and the stacker
def test_neural_scores_come_back_in_row_order_as_if_scored_alone(members):
    loaded = load_classifier(members["neural"])
    texts = ["free cash", "ok see you at home tonight love", "win", "", "call me later prize now now now"]
    ids = [loaded.tokenizer.encode(text) for text in texts]
    scores = score_in_order(loaded.model, ids, batch_tokens=20)  # forces several batches
    assert scores.shape == (len(texts), 2)
    for row, text_ids in enumerate(ids):
        alone = score_in_order(loaded.model, [text_ids])
        torch.testing.assert_close(scores[row], alone[0], rtol=1e-5, atol=1e-6)


@pytest.mark.needs("sklearn")  # the Naive Bayes members and the stacker
def test_members_score_the_same_rows_and_match_the_evaluator(members):
    evaluator = load_script("evaluate_classifier")
    scored = [member_scores(members[name], ("dev", "test")) for name in ("neural", "nb", "nbsvm")]
    check_members_agree(scored)
    for member, name in zip(scored, ("neural", "nb", "nbsvm")):
        predicted = member.scores["test"].argmax(-1)
        report = evaluator.evaluate(str(members[name]), "test", {}, None)
        assert float((predicted == member.gold["test"]).double().mean()) == pytest.approx(report["accuracy"])
    assert scored[2].kind == "nbsvm" and scored[1].kind == "multinomial_nb"
    torch.testing.assert_close(
        scored[1].scores["dev"].exp().sum(-1), torch.ones(len(scored[1].gold["dev"]), dtype=torch.float64)
    )


@pytest.mark.needs("sklearn")  # the Naive Bayes members and the stacker
def test_members_on_another_split_are_refused(members):
    same = member_scores(members["nb"], ("dev", "test"))
    other = member_scores(members["other_split"], ("dev", "test"))
    with pytest.raises(ValueError, match="different dev texts"):
        check_members_agree([same, other])
    with pytest.raises(ValueError, match="at least two"):
        check_members_agree([same])


# -- the stacker ------------------------------------------------------------------------------------
def synthetic_members(count: int, seed: int = 0):
    """Gold labels and two members, each right ~80% of the time with independent errors,
    plus one that is pure noise."""
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 2, count)
    sign = 2.0 * gold - 1.0

    def member(strength):
        margin = strength * sign + rng.normal(0, 1, count)
        return np.stack([-margin, margin], axis=1)

    return torch.from_numpy(gold), member(0.85), member(0.85), member(0.0)


@pytest.mark.needs("sklearn")  # the Naive Bayes members and the stacker
def test_stacker_combines_independent_members_and_ignores_noise():
    gold, first, second, noise = synthetic_members(4000)
    fit, held = slice(0, 2000), slice(2000, 4000)
    features = np.concatenate([first, second, noise], axis=1)
    stacker = fit_stacker(features[fit], gold[fit], folds=5)
    assert stacker.c in STACKER_C_GRID and 0.5 < stacker.cv_accuracy <= 1.0

    def acc(scores_or_predictions):
        predicted = (
            torch.from_numpy(scores_or_predictions).argmax(-1)
            if scores_or_predictions.ndim == 2
            else torch.from_numpy(scores_or_predictions)
        )
        return float((predicted == gold[held]).double().mean())

    ensemble = float((stacker.predict(features[held]) == gold[held]).double().mean())
    assert ensemble > max(acc(first[held]), acc(second[held])) + 0.02
    weights = np.abs(stacker.pipeline[-1].coef_).reshape(3, 2)
    assert weights[2].sum() < 0.25 * min(weights[0].sum(), weights[1].sum())


@pytest.mark.needs("sklearn")  # the Naive Bayes members and the stacker
def test_stacker_needs_two_texts_of_each_class():
    features = np.zeros((5, 4))
    with pytest.raises(ValueError, match="larger dev split"):
        fit_stacker(features, torch.tensor([0, 0, 0, 0, 1]))


# -- the script ---------------------------------------------------------------------------------------
@pytest.mark.needs("sklearn")  # the Naive Bayes members and the stacker
def test_script_reports_members_and_the_ensemble(members, tmp_path, capsys):
    script = load_script("ensemble_classifiers")
    output = tmp_path / "ensemble.json"
    assert (
        script.main(
            [str(members["neural"]), str(members["nb"]), str(members["nbsvm"]), "--folds", "3", "--output", str(output)]
        )
        == 0
    )
    report = json.loads(output.read_text())
    assert report == json.loads(capsys.readouterr().out)
    assert report["labels"] == ["ham", "spam"] and report["split"] == "test" and report["fit_split"] == "dev"
    assert len(report["members"]) == 3 and report["stacker"]["C"] in STACKER_C_GRID
    assert all(0.5 <= m["test_accuracy"] <= 1.0 for m in report["members"])
    test_size = len(member_scores(members["nb"], ("test",)).gold["test"])
    assert report["n"] == test_size == sum(map(sum, report["confusion_matrix"]))
    assert all(np.array(m["stacker_weights"]).shape == (1, 2) for m in report["members"])


@pytest.mark.parametrize(
    "arguments, message",
    [(["A"], "at least two"), (["A", "B", "--split", "dev"], "both dev"), (["A", "B", "--folds", "1"], "--folds")],
)
def test_script_option_errors_exit_2(arguments, message, capsys):
    script = load_script("ensemble_classifiers")
    with pytest.raises(SystemExit) as exit_info:
        script.main(arguments)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.needs("sklearn")  # the Naive Bayes members and the stacker
def test_script_refuses_other_tasks_and_other_splits_in_one_line(members, tiny_translation_checkpoint, capsys):
    script = load_script("ensemble_classifiers")
    assert script.main([str(members["nb"]), str(tiny_translation_checkpoint)]) == 2
    error = capsys.readouterr().err.strip()
    assert "is a 'translation' checkpoint, not a 'classification' or 'baseline' one" in error and "\n" not in error
    assert script.main([str(members["nb"]), str(members["other_split"])]) == 2
    assert "different dev texts" in capsys.readouterr().err
    assert script.main([str(members["nb"]), str(Path("missing.ckpt"))]) == 2


def test_log_probabilities_are_floored_and_margins_kept():
    from nmt.inference.classifier_ensemble import LOG_PROBABILITY_FLOOR, MemberScores, stack_features

    network = MemberScores(
        "a.ckpt",
        "rnn classifier",
        ["ham", "spam"],
        scores={"dev": torch.tensor([[-250.0, 0.0], [-0.5, -0.9]], dtype=torch.float64)},
    )
    nbsvm = MemberScores(
        "b.ckpt",
        "nbsvm",
        ["ham", "spam"],
        scores={"dev": torch.tensor([[-30.0, 30.0], [0.2, -0.2]], dtype=torch.float64)},
    )
    features = stack_features([network, nbsvm], "dev")
    np.testing.assert_allclose(features, [[LOG_PROBABILITY_FLOOR, 0.0, -30.0, 30.0], [-0.5, -0.9, 0.2, -0.2]])
