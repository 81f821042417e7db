"""The HTTP API of ``nmt.serve``, through an in-process client: what each route answers,
that batching changes no output, and that bad input gets a clear 4xx and never takes the
server down."""

from __future__ import annotations

import json
import re
import threading
import time
import warnings

import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

with warnings.catch_warnings():  # Starlette would rather have httpx2, which is not on PyPI's mirrors here
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

from nmt.decoding import DecodingOptions  # noqa: E402
from nmt.inference.translator import Translator  # noqa: E402
from nmt.serve.app import create_app  # noqa: E402
from nmt.serve.batcher import Batcher  # noqa: E402
from nmt.serve.models import ModelSpec, ServedTranslator, load_models  # noqa: E402
from nmt.serve.schemas import Limits  # noqa: E402

LIMITS = Limits(max_chars=300, max_texts=8, max_beam=6, max_body_bytes=100_000)
SENTENCES = ["The cat sees a dog.", "A small red house.", "The big dog eats.", "Cat.", "The house sees the cat."]


@pytest.fixture(scope="module")
def models(tiny_translation_checkpoint, tiny_classification_checkpoint):
    return load_models(
        [ModelSpec.parse(f"toy={tiny_translation_checkpoint}"), ModelSpec.parse(str(tiny_classification_checkpoint))],
        device="cpu",
        max_batch=16,
    )


@pytest.fixture(scope="module")
def client(models):
    app = create_app(models, LIMITS, Batcher(max_batch=16, max_wait=0.002, max_queue=64))
    with TestClient(app) as client:
        yield client


def post(client, path, body):
    """POST ``body`` as JSON; ASCII escapes, so that lone surrogates can be sent."""
    return client.post(path, content=json.dumps(body), headers={"content-type": "application/json"})


# -- what the routes answer ------------------------------------------------------------------


def test_health_reports_models_and_queue(client):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["models"] == ["toy", "sms_bilstm_attn"]
    assert health["queue"]["capacity"] == 64 and health["queue"]["waiting"] == 0
    assert health["cpu_seconds"] > 0


def test_models_lists_task_sizes_tokenizers_training_figures_and_limits(client, tiny_translation_checkpoint):
    data = client.get("/models").json()
    toy, classifier = data["models"]
    assert toy["name"] == "toy" and toy["task"] == "translation" and toy["experiment"] == "spm_bahdanau"
    assert toy["architecture"]["hidden_size"] == 64 and toy["architecture"]["attention"] == "bahdanau"
    assert toy["tokenizers"]["source"]["type"] == "sentencepiece" and toy["tokenizers"]["target"]["vocab_size"] > 0
    assert toy["parameters"] > 0 and toy["inference_only"] is False
    assert toy["training"]["monitor"] == "val/bleu" and toy["training"]["steps"] > 0
    assert toy["file"] == tiny_translation_checkpoint.name  # a name, never the server's path
    assert str(tiny_translation_checkpoint.parent) not in json.dumps(data)
    assert classifier["task"] == "classification" and classifier["labels"] == ["ham", "spam"]
    assert data["limits"] == LIMITS.as_dict() and data["batching"]["max_batch"] == 16


def test_translate_one_text_gives_the_translators_output(client, tiny_translation_checkpoint):
    expected = Translator.from_checkpoint(tiny_translation_checkpoint, device="cpu").translate(["The cat sees a dog."])
    data = post(client, "/translate", {"text": "The cat sees a dog."}).json()
    [result] = data["translations"]
    assert data["model"] == "toy" and data["options"]["strategy"] == "greedy"
    assert result["text"] == expected[0].text and result["text"]
    assert result["hypotheses"][0]["score"] == pytest.approx(expected[0].hypotheses[0].score, abs=1e-3)
    assert "attention" not in result["hypotheses"][0] and "source_tokens" not in result


def test_repetition_options_decode_as_the_translator_does(client, tiny_translation_checkpoint):
    options = DecodingOptions(strategy="beam", beam_size=3, no_repeat_ngram_size=2, coverage_penalty=0.3)
    translator = Translator.from_checkpoint(tiny_translation_checkpoint, device="cpu")
    expected = translator.translate(["The cat sees a dog."], options)
    body = {"text": "The cat sees a dog.", "strategy": "beam", "beam_size": 3}
    data = post(client, "/translate", {**body, "no_repeat_ngram_size": 2, "coverage_penalty": 0.3}).json()
    assert data["translations"][0]["text"] == expected[0].text
    assert data["options"]["no_repeat_ngram_size"] == 2 and data["options"]["coverage_penalty"] == 0.3


def test_attention_has_one_row_per_output_token_and_one_column_per_source_token(client):
    data = post(
        client, "/translate", {"text": SENTENCES, "strategy": "beam", "beam_size": 4, "n_best": 2, "attention": True}
    ).json()
    for result in data["translations"]:
        assert len(result["hypotheses"]) == 2
        assert result["hypotheses"][0]["score"] >= result["hypotheses"][1]["score"]
        for hyp in result["hypotheses"]:
            rows = hyp["attention"]
            assert len(rows) == len(hyp["tokens"]) > 0
            assert all(len(row) == len(result["source_tokens"]) for row in rows)
            assert all(sum(row) == pytest.approx(1.0, abs=1e-3) for row in rows)


def test_a_list_decoded_in_one_batch_equals_each_text_decoded_alone(client):
    for options in (
        {},
        {"strategy": "beam", "beam_size": 3, "n_best": 2},
        {"strategy": "sample", "temperature": 0.8, "seed": 7, "n_best": 2},
    ):
        together = post(client, "/translate", {"text": SENTENCES, **options}).json()["translations"]
        alone = [post(client, "/translate", {"text": s, **options}).json()["translations"][0] for s in SENTENCES]
        assert [[h["text"] for h in t["hypotheses"]] for t in together] == [
            [h["text"] for h in t["hypotheses"]] for t in alone
        ]


def test_concurrent_requests_get_their_own_results(client):
    expected = {s: post(client, "/translate", {"text": s}).json()["translations"][0]["text"] for s in SENTENCES}
    results: dict[int, str] = {}

    def worker(i: int) -> None:
        sentence = SENTENCES[i % len(SENTENCES)]
        results[i] = (sentence, post(client, "/translate", {"text": sentence}).json()["translations"][0]["text"])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 12
    assert all(text == expected[sentence] for sentence, text in results.values())


def test_same_seed_gives_the_same_samples(client):
    body = {"text": "The dog eats.", "strategy": "sample", "seed": 3, "n_best": 3, "temperature": 1.5}
    first, again = (post(client, "/translate", body).json() for _ in range(2))
    assert first == again


def test_classify_gives_label_probabilities_and_token_attention(client):
    data = post(client, "/classify", {"text": ["free prize, call now", "see you at lunch"]}).json()
    assert data["model"] == "sms_bilstm_attn"
    for result in data["results"]:
        assert result["label"] in ("ham", "spam")
        assert set(result["probabilities"]) == {"ham", "spam"}
        assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert result["probability"] == max(result["probabilities"].values())
        assert len(result["tokens"]) == len(result["attention"]) > 0
        assert sum(result["attention"]) == pytest.approx(1.0, abs=2e-3)


def test_classify_a_text_longer_than_the_model_reads_says_it_was_truncated(client):
    [result] = post(client, "/classify", {"text": "free prize " * 20}).json()["results"]
    assert result["truncated"] is True and len(result["tokens"]) == 50


def test_the_page_and_its_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="model"' in page.text and "/static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/style.css").headers["content-type"].startswith("text/css")


def test_every_control_of_the_page_has_a_label(client):
    """The page's fields and buttons are named for a screen reader: a <label for=...>, a label
    around them, or their own text; the completion area (prefix field, its help, live output)
    is there for the script to use."""
    from html.parser import HTMLParser

    class Controls(HTMLParser):
        def __init__(self):
            super().__init__()
            self.controls, self.labelled, self.open_labels, self.ids = [], set(), 0, {}
            self.button_text: dict[str, str] = {}
            self.in_button = None

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if "id" in attrs:
                self.ids[attrs["id"]] = attrs
            if tag == "label":
                self.open_labels += 1
                if attrs.get("for"):
                    self.labelled.add(attrs["for"])
            elif tag in ("input", "select", "textarea"):
                self.controls.append(attrs["id"])
                if self.open_labels:
                    self.labelled.add(attrs["id"])
            elif tag == "button":
                self.in_button = attrs["id"]
                self.button_text[self.in_button] = ""

        def handle_endtag(self, tag):
            if tag == "label":
                self.open_labels -= 1
            elif tag == "button":
                self.in_button = None

        def handle_data(self, data):
            if self.in_button:
                self.button_text[self.in_button] += data.strip()

    page = Controls()
    page.feed(client.get("/").text)
    assert "prefix" in page.controls
    assert [control for control in page.controls if control not in page.labelled] == []
    assert page.button_text["complete"] and page.button_text["accept"] and page.button_text["run"]
    assert page.ids["prefix"]["aria-describedby"] in page.ids
    assert page.ids["completed"]["aria-live"] == "polite" and page.ids["prefix-error"]["role"] == "alert"
    used = set(re.findall(r'\$\("([\w-]+)"\)', client.get("/static/app.js").text))
    assert {"prefix", "complete", "accept", "completed", "prefix-error", "completion"} <= used
    assert sorted(used - set(page.ids)) == []  # every element the script drives is on the page


# -- bad input: a clear 4xx, and the server keeps answering ------------------------------------

BAD_BODIES = [
    ({"text": ""}, 422, "text is empty"),
    ({"text": " \t \n "}, 422, "text is empty"),
    ({"text": ["fine", "  "]}, 422, "text[1] is empty"),
    ({"text": []}, 422, "empty list"),
    ({"text": ["a"] * 9}, 422, "the limit is 8 per request"),
    ({"text": "x" * 301}, 422, "301 characters; the limit is 300"),
    ({"text": 42}, 422, "text: must be a string or a list of strings"),
    ({"text": ["ok", 3]}, 422, "text: must be a string or a list of strings"),
    ({"text": None}, 422, "text: must be a string"),
    ({}, 422, "text: required field is missing"),
    ({"text": "bell \x07 here"}, 422, "control character U+0007 at position 5"),
    ({"text": "nul \x00"}, 422, "control character U+0000"),
    ({"text": "bad\ud800"}, 422, "lone surrogate U+D800"),
    ({"text": "hi", "model": "nope"}, 404, "unknown model 'nope': the loaded models are toy, sms_bilstm_attn"),
    ({"text": "hi", "model": "/etc/passwd"}, 404, "unknown model"),
    ({"text": "hi", "model": "sms_bilstm_attn"}, 422, "is a classification model: send it to POST /classify"),
    ({"text": "hi", "beam": 4}, 422, "beam: unknown field"),
    ({"text": "hi", "beam_size": "4"}, 422, "beam_size: Input should be a valid integer"),
    ({"text": "hi", "attention": "yes"}, 422, "attention:"),
    ({"text": "hi", "strategy": "top"}, 422, "strategy:"),
    ({"text": "hi", "strategy": "beam", "beam_size": 7}, 422, "beam_size 7 is above the limit of 6"),
    ({"text": "hi", "strategy": "sample", "n_best": 7}, 422, "n_best 7 is above the limit of 6"),
    ({"text": "hi", "n_best": 2}, 422, "n-best > 1 needs the beam or sample strategy"),
    ({"text": "hi", "strategy": "beam", "beam_size": 2, "n_best": 3}, 422, "cannot exceed the beam size"),
    ({"text": "hi", "top_p": 0}, 422, "top_p:"),
    ({"text": "hi", "temperature": -1}, 422, "temperature:"),
    ({"text": "hi", "seed": -1}, 422, "seed:"),
    ({"text": "hi", "max_len_ratio": 1e9}, 422, "max_len_ratio:"),
    ({"text": "hi", "no_repeat_ngram_size": -1}, 422, "no_repeat_ngram_size:"),
    ({"text": "hi", "repetition_penalty": 0}, 422, "repetition_penalty:"),
    ({"text": "hi", "strategy": "beam", "coverage_penalty": -0.5}, 422, "coverage_penalty:"),
]


@pytest.mark.parametrize("body, status, message", BAD_BODIES)
def test_bad_translate_requests_get_a_clear_4xx(client, body, status, message):
    response = post(client, "/translate", body)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    assert "Traceback" not in response.text


RAW_BODIES = [
    (b'{"text": ', "application/json", 400, "not valid JSON"),
    (b"", "application/json", 422, "the request body is empty"),
    (
        b'{"text": "hi", "length_penalty": NaN}',
        "application/json",
        422,
        "length_penalty: Input should be a finite number",
    ),
    (b'{"text": "hi", "length_penalty": Infinity}', "application/json", 422, "finite number"),
    (b'["hi"]', "application/json", 422, "the body must be a JSON object"),
    (b'"hi"', "application/json", 422, "the body must be a JSON object"),
    (b"\xff\xfe{}", "application/json", 400, "not valid JSON"),
    (b'{"text": "hi"}', "text/plain", 415, "Content-Type: application/json"),
    (b"text=hi", "application/x-www-form-urlencoded", 415, "must be JSON"),
]


@pytest.mark.parametrize("body, content_type, status, message", RAW_BODIES)
def test_malformed_bodies_get_a_clear_4xx(client, body, content_type, status, message):
    response = client.post("/translate", content=body, headers={"content-type": content_type})
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


def test_a_one_megabyte_text_is_refused_before_it_is_parsed(client):
    body = json.dumps({"text": "a" * 1_000_000}).encode()
    response = client.post("/translate", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "larger than 100,000 bytes" in response.json()["detail"]

    def chunks():  # no Content-Length: the body is counted as it arrives
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    response = client.post("/translate", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"text": ""}, 422, "text is empty"),
        ({"text": "hi", "model": "toy"}, 422, "is a translation model: send it to POST /translate"),
        ({"text": "hi", "strategy": "beam"}, 422, "strategy: unknown field"),
        ({"text": ["a", "\x1b[31m"]}, 422, "text[1] contains the control character U+001B"),
    ],
)
def test_bad_classify_requests_get_a_clear_4xx(client, body, status, message):
    response = post(client, "/classify", body)
    assert response.status_code == status and message in response.json()["detail"]


def test_the_server_keeps_answering_after_every_kind_of_bad_input(client):
    for body, _, _ in BAD_BODIES:
        post(client, "/translate", body)
    for body, content_type, _, _ in RAW_BODIES:
        client.post("/translate", content=body, headers={"content-type": content_type})
    assert client.get("/health").json()["status"] == "ok"
    assert post(client, "/translate", {"text": "The cat."}).status_code == 200
    assert post(client, "/classify", {"text": "free prize"}).status_code == 200


def test_unknown_routes_and_methods_are_4xx(client):
    assert client.get("/nope").status_code == 404
    assert client.get("/translate").status_code == 405


def test_with_no_model_for_a_task_the_answer_says_what_is_loaded(models):
    only_classifier = {name: model for name, model in models.items() if model.task == "classification"}
    with TestClient(create_app(only_classifier, LIMITS)) as client:
        response = post(client, "/translate", {"text": "hi"})
    assert response.status_code == 404
    assert "no translation model is loaded (loaded: sms_bilstm_attn (classification))" in response.json()["detail"]


# -- overload and failures ---------------------------------------------------------------------


def wait_for(condition, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_full_queue_answers_503_with_retry_after_and_the_server_recovers(models, monkeypatch):
    toy = models["toy"]
    gate = threading.Event()
    original = toy.run

    def held_run(texts, options):
        gate.wait(60)
        return original(texts, options)

    monkeypatch.setattr(toy, "run", held_run)
    app = create_app(models, LIMITS, Batcher(max_batch=1, max_wait=0.0, max_queue=2))
    with TestClient(app) as client:
        answers: list[int] = []

        def send(text: str) -> None:
            answers.append(post(client, "/translate", {"text": text}).status_code)

        threads = [threading.Thread(target=send, args=("The cat.",))]
        threads[0].start()
        wait_for(lambda: client.get("/health").json()["queue"]["running"] == 1)
        threads.append(threading.Thread(target=send, args=(["The dog.", "A house."],)))
        threads[1].start()
        wait_for(lambda: client.get("/health").json()["queue"]["waiting"] == 2)

        busy = post(client, "/translate", {"text": "One too many."})
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert "the server is busy" in busy.json()["detail"]
        assert client.get("/health").json()["batches"]["rejected_requests"] == 1

        gate.set()
        for thread in threads:
            thread.join(60)
        assert answers == [200, 200]
        assert post(client, "/translate", {"text": "The cat."}).status_code == 200


def test_a_model_failure_is_a_500_for_that_request_only(models, monkeypatch):
    toy = models["toy"]

    def broken(texts, options):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(toy, "run", broken)
    with TestClient(create_app(models, LIMITS)) as client:
        response = post(client, "/translate", {"text": "The cat."})
        assert response.status_code == 500 and "out of memory" in response.json()["detail"]
        assert post(client, "/classify", {"text": "free prize"}).status_code == 200
    monkeypatch.undo()
    with TestClient(create_app(models, LIMITS)) as client:
        assert post(client, "/translate", {"text": "The cat."}).status_code == 200


def test_decoding_options_ignore_fields_the_strategy_does_not_use():
    from nmt.serve.app import decoding_options
    from nmt.serve.schemas import TranslateRequest

    greedy = decoding_options(TranslateRequest(text="x", temperature=0.3, beam_size=9, top_k=4))
    assert greedy == DecodingOptions()
    beam = decoding_options(TranslateRequest(text="x", strategy="beam", beam_size=3, seed=5))
    assert beam == DecodingOptions(strategy="beam", beam_size=3)
    greedy = decoding_options(TranslateRequest(text="x", coverage_penalty=0.4, no_repeat_ngram_size=3))
    assert greedy == DecodingOptions(no_repeat_ngram_size=3)
    beam = decoding_options(
        TranslateRequest(text="x", strategy="beam", coverage_penalty=0.4, repetition_penalty=1.2, top_p=0.5)
    )
    assert beam == DecodingOptions(strategy="beam", coverage_penalty=0.4, repetition_penalty=1.2)


def test_translate_with_a_prefix_starts_every_translation_with_it(client):
    body = {"text": SENTENCES[:3], "prefix": "Le chien", "strategy": "beam", "beam_size": 3}
    data = post(client, "/translate", body).json()
    assert all(result["text"].startswith("Le chien") for result in data["translations"])
    plain = post(client, "/translate", {"text": SENTENCES[:2]}).json()
    blank = post(client, "/translate", {"text": SENTENCES[:2], "prefix": " "}).json()
    assert [r["text"] for r in blank["translations"]] == [r["text"] for r in plain["translations"]]


def test_a_prefix_longer_than_the_output_limit_is_a_422_naming_the_text_and_the_fix(client):
    response = post(client, "/translate", {"text": ["The cat.", "Cat."], "prefix": "chien " * 40})
    assert response.status_code == 422
    assert "text[0]: the prefix has" in response.text and "max_len_ratio" in response.text
    bad = post(client, "/translate", {"text": "Cat.", "prefix": "x" * 400})
    assert bad.status_code == 422 and "prefix has 400 characters" in bad.text


def test_replace_unk_copies_the_most_attended_source_token(client, monkeypatch):
    from nmt.data.tokenizers import UNK_ID, UNK_SURFACE
    from nmt.decoding import Hypothesis

    def constructed(model, src, lengths, options, return_attention=False, prefixes=None, constraints=None):
        """Every output: one known token, then an unknown one attending to the source's first token."""
        results = []
        for length in lengths.tolist():
            attention = torch.zeros(3, length)
            attention[:, 0] = 1.0
            results.append([Hypothesis([7, UNK_ID], -1.0, -1.0, attention if return_attention else None, [-0.5] * 3)])
        return results

    monkeypatch.setattr("nmt.inference.translator.decode", constructed)
    plain = post(client, "/translate", {"text": "Zorglub sees a dog."}).json()
    replaced = post(client, "/translate", {"text": "Zorglub sees a dog.", "replace_unk": True, "attention": True})
    assert replaced.status_code == 200, replaced.text
    data = replaced.json()
    [result] = data["translations"]
    first_source_word = result["source_tokens"][0].lstrip("\u2581")
    assert plain["translations"][0]["text"].endswith(UNK_SURFACE)
    assert result["text"] == plain["translations"][0]["text"][: -len(UNK_SURFACE)] + first_source_word
    assert result["hypotheses"][0]["tokens"][-2] == "<unk>"  # the tokens stay the model's
    assert data["options"]["replace_unk"] is True and "replace_unk" not in plain["options"]


def test_replace_unk_for_a_model_without_attention_is_a_422_naming_the_model():
    from nmt.data.tokenizers import CharTokenizer
    from nmt.models.seq2seq import Seq2Seq

    tokenizer = CharTokenizer("abcdefgh ")
    torch.manual_seed(0)
    network = Seq2Seq(
        tokenizer.vocab_size, tokenizer.vocab_size, embed_size=8, hidden_size=8, attention="none", input_feeding=False
    )
    served = ServedTranslator("plain", Translator(network, tokenizer, tokenizer, device="cpu"), {}, 4)
    with TestClient(create_app({"plain": served}, LIMITS, Batcher(max_batch=4, max_wait=0.0))) as plain_client:
        response = post(plain_client, "/translate", {"text": "abc", "replace_unk": True})
        assert response.status_code == 422
        assert response.json()["detail"] == (
            "model 'plain' has no attention, and replace_unk copies the most attended source token: "
            "leave replace_unk out for this model"
        )
        assert post(plain_client, "/translate", {"text": "abc"}).status_code == 200


def test_translate_with_constraints_puts_every_phrase_in_every_translation(client):
    body = {"text": SENTENCES[:3], "constraints": ["maison", "rouge"], "strategy": "beam", "beam_size": 3, "n_best": 2}
    data = post(client, "/translate", body).json()
    assert data["options"]["constraints"] == ["maison", "rouge"]
    for result in data["translations"]:
        assert len(result["hypotheses"]) == 2
        assert all("maison" in hyp["text"] and "rouge" in hyp["text"] for hyp in result["hypotheses"])
    beam = {"text": SENTENCES[:2], "strategy": "beam", "beam_size": 3}
    plain = post(client, "/translate", beam).json()
    empty = post(client, "/translate", {**beam, "constraints": []}).json()
    assert [r["text"] for r in empty["translations"]] == [r["text"] for r in plain["translations"]]
    with_prefix = post(client, "/translate", {**beam, "prefix": "Un", "constraints": ["chat"]}).json()
    assert all(r["text"].startswith("Un") and "chat" in r["text"] for r in with_prefix["translations"])


@pytest.mark.parametrize(
    "body, message",
    [
        ({"constraints": ["maison"]}, 'lexical constraints need "strategy": "beam", not "greedy"'),
        ({"strategy": "sample", "constraints": ["maison"]}, 'need "strategy": "beam", not "sample"'),
        ({"strategy": "beam", "constraints": [" "]}, "constraints[0] is empty"),
        ({"strategy": "beam", "constraints": ["le", "x" * 301]}, "constraints[1] has 301 characters"),
        ({"strategy": "beam", "constraints": ["日本"]}, "text[0]: the constraint '日本' holds a character the target"),
        ({"strategy": "beam", "constraints": ["chien " * 40]}, "text[0]: the constraints have"),
        ({"strategy": "beam", "constraints": "maison"}, "constraints: Input should be a valid list"),
    ],
)
def test_constraints_that_cannot_be_met_are_a_422_naming_the_problem_and_the_fix(client, body, message):
    response = post(client, "/translate", {"text": ["Cat.", "The cat."], **body})
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]
