"""A tiny model trained on two directions (data.directions=[en-fr,fr-en]) translates both ways
through the translate CLI, the evaluation CLI and the HTTP API, and refuses directions it lacks."""

from __future__ import annotations

import json

import pytest
import torch

from nmt.cli import evaluate as evaluate_cli
from nmt.cli import score as score_cli
from nmt.cli import translate as translate_cli
from nmt.inference.checkpoint import checkpoint_tokenizers, load_checkpoint
from nmt.inference.scorer import Scorer
from nmt.inference.translator import Translator
from tests.conftest import compose_config, tiny_overrides


@pytest.fixture(scope="module")
def two_direction_checkpoint(tiny_corpus, tmp_path_factory):
    from nmt.cli.train import train

    run_dir = tmp_path_factory.mktemp("two_directions")
    cfg = compose_config(
        tiny_overrides(
            tiny_corpus,
            run_dir,
            "data.directions=[en-fr,fr-en]",
            "trainer.max_steps=400",
            "trainer.val_check_interval=200",
            "optim.lr=0.005",
            "test_after_training=false",
        )
    )
    torch.manual_seed(0)
    train(cfg)
    return run_dir / "checkpoints" / "last.ckpt"


def translate(capsys, *args: str, stdin: str = "") -> tuple[int, str, str]:
    import io
    import sys

    old = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin.encode()))
    try:
        status = translate_cli.main([*map(str, args)])
    finally:
        sys.stdin = old
    out, err = capsys.readouterr()
    return status, out, err


def test_the_checkpoint_holds_the_tags_and_the_directions(two_direction_checkpoint):
    checkpoint = load_checkpoint(two_direction_checkpoint)
    source = checkpoint_tokenizers(checkpoint)["source"]
    assert source.tags == ["<2fr>", "<2en>"]
    translator = Translator.from_checkpoint(two_direction_checkpoint, device="cpu")
    assert [str(d) for d in translator.directions] == ["en-fr", "fr-en"]


def test_the_cli_translates_in_both_directions(two_direction_checkpoint, capsys):
    status, french, _ = translate(capsys, two_direction_checkpoint, stdin="The cat sees a dog.\nA small cat.\n")
    assert status == 0
    status, to_french, _ = translate(
        capsys, two_direction_checkpoint, "--to", "fr", stdin="The cat sees a dog.\nA small cat.\n"
    )
    assert status == 0 and to_french == french  # the first direction is the default
    status, english, _ = translate(
        capsys, two_direction_checkpoint, "--direction", "fr-en", stdin="Le chat voit un chien !\nUn petit chat !\n"
    )
    assert status == 0
    assert french.splitlines() == ["Le chat voit un chien !", "Un petit chat !"]
    assert english.splitlines() == ["The cat sees a dog.", "A small cat."]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "de"], "not trained to translate into de: use one of its directions, en-fr, fr-en"),
        (["--direction", "de-en"], "not trained to translate de-en"),
    ],
)
def test_a_direction_the_model_lacks_is_a_one_line_error(two_direction_checkpoint, capsys, args, message):
    status, out, err = translate(capsys, two_direction_checkpoint, *args, stdin="The cat.\n")
    assert status == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_direction_asked_of_a_single_direction_model_is_a_one_line_error(tiny_translation_checkpoint, capsys):
    status, out, err = translate(capsys, tiny_translation_checkpoint, "--to", "fr", stdin="The cat.\n")
    assert status == 2 and out == ""
    assert "translates one direction only" in err and len(err.strip().splitlines()) == 1


def test_evaluate_reports_each_direction_of_the_split_separately(two_direction_checkpoint, tmp_path, capsys):
    status = evaluate_cli.main([str(two_direction_checkpoint), "--split", "test", "--output-dir", str(tmp_path)])
    assert status == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(report["directions"]) == {"en-fr", "fr-en"}
    for name, one in report["directions"].items():
        assert one["direction"] == name and one["bleu"]["multi_ref"]["score"] > 50
        assert one["output_dir"] == str(tmp_path / name)  # each direction writes its own files
        segments = (tmp_path / name / "segments.tsv").read_text(encoding="utf-8").splitlines()
        for segment in segments:
            source, hypothesis, reference = segment.split("\t")[:3]
            assert source.endswith("!") == (name == "fr-en") and reference.endswith("!") == (name == "en-fr")


def test_the_api_takes_the_target_language(two_direction_checkpoint, tiny_translation_checkpoint):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from nmt.serve.app import create_app
    from nmt.serve.batcher import Batcher
    from nmt.serve.models import ModelSpec, load_models
    from nmt.serve.schemas import Limits

    models = load_models(
        [ModelSpec.parse(f"both={two_direction_checkpoint}"), ModelSpec.parse(f"one={tiny_translation_checkpoint}")],
        device="cpu",
        max_batch=8,
    )
    app = create_app(models, Limits(max_chars=300, max_texts=8, max_beam=6, max_body_bytes=100_000), Batcher())
    with TestClient(app) as client:
        english = client.post("/translate", json={"model": "both", "text": "Un petit chat !", "to": "en"}).json()
        assert english["translations"][0]["text"] == "A small cat." and english["options"]["direction"] == "fr-en"
        french = client.post("/translate", json={"model": "both", "text": "A small cat."}).json()
        assert french["translations"][0]["text"] == "Un petit chat !"
        lacking = client.post("/translate", json={"model": "both", "text": "A cat.", "to": "de"})
        assert lacking.status_code == 422 and "en-fr, fr-en" in lacking.json()["detail"]
        single = client.post("/translate", json={"model": "one", "text": "A cat.", "to": "fr"})
        assert single.status_code == 422 and "the to field" in single.json()["detail"]


@pytest.mark.parametrize(
    ("direction", "source", "tag"), [("en-fr", "The cat sees a dog.", "<2fr>"), ("fr-en", "Un petit chat !", "<2en>")]
)
def test_scoring_tags_the_source_as_translation_does(two_direction_checkpoint, direction, source, tag):
    """The forced score of the model's own greedy output is the score its search reported."""
    translator = Translator.from_checkpoint(two_direction_checkpoint, device="cpu")
    best = translator.translate([source], direction=direction)[0].hypotheses[0]
    scored = Scorer(translator).score([(source, best.text)], direction=direction)[0]
    assert scored.source_pieces[0] == tag and scored.source == source
    assert scored.log_prob == pytest.approx(best.log_prob, abs=1e-4)
    untagged = Scorer(translator).score([(f"{tag} {source}", best.text)], direction=direction)[0]
    assert untagged.log_prob != pytest.approx(scored.log_prob, abs=1e-4)  # the tag is read once, not twice


def test_the_score_cli_takes_a_direction_and_refuses_one_the_model_lacks(two_direction_checkpoint, tmp_path, capsys):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("Un petit chat !\tA small cat.\n", encoding="utf-8")
    assert score_cli.main([str(two_direction_checkpoint), "--input", str(pairs), "--to", "en"]) == 0
    into_english = json.loads(capsys.readouterr().out)
    assert into_english["source_tokens"][0] == "<2en>"
    assert score_cli.main([str(two_direction_checkpoint), "--input", str(pairs), "--to", "de"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "not trained to translate into de" in err and len(err.strip().splitlines()) == 1


def test_reranking_with_a_two_direction_reverse_model_needs_the_source_language(
    two_direction_checkpoint, tiny_translation_checkpoint
):
    from nmt.data.directions import DirectionError
    from nmt.inference.reranking import check_reverse_direction

    both = Scorer(Translator.from_checkpoint(two_direction_checkpoint, device="cpu"))
    with pytest.raises(
        DirectionError, match=r"several directions \(en-fr, fr-en\): give .* --reverse-to, one of fr, en"
    ):
        check_reverse_direction(both, None)
    with pytest.raises(DirectionError, match="into 'de', which it does not translate into"):
        check_reverse_direction(both, "de")
    check_reverse_direction(both, "en")
    one = Scorer(Translator.from_checkpoint(tiny_translation_checkpoint, device="cpu"))
    with pytest.raises(DirectionError, match="one direction only: drop --reverse-to"):
        check_reverse_direction(one, "en")
    check_reverse_direction(one, None)
