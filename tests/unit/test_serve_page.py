"""The demo page at ``/``, in a real headless Chromium (Debian's ``chromium``, driven by
Playwright; ``playwright install`` is never needed): a person picks a model, types a
sentence, gets the translation and its attention heatmap, points at it, completes a
translation from its first words, and classifies a text. Skipped when no browser is installed (``apt-get install chromium``); set
``NMT_CHROMIUM`` to use another Chromium binary."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")  # the page is served by the real server
httpx = pytest.importorskip("httpx")
playwright_api = pytest.importorskip("playwright.sync_api")

from conftest import REPO  # noqa: E402

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("NMT_CHROMIUM") or next(
    (found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))), None
)
MAX_CHARS = 300


@pytest.fixture(scope="module")
def server_url(tiny_translation_checkpoint, tiny_classification_checkpoint):
    command = [
        sys.executable,
        "-m",
        "nmt.serve",
        f"toy={tiny_translation_checkpoint}",
        f"spam={tiny_classification_checkpoint}",
        "--port",
        "0",
        "--threads",
        "1",
        "--log-level",
        "warning",
        "--max-chars",
        str(MAX_CHARS),
    ]
    server = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = next((line for line in server.stdout if line.startswith("serving ")), None)
        assert line is not None, "the server did not start"
        yield line.split()[-1]
    finally:
        server.terminate()
        server.wait(30)
        server.stdout.close()


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no Chromium installed (apt-get install chromium, or set NMT_CHROMIUM)")
    with playwright_api.sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        except playwright_api.Error as error:
            pytest.skip(f"{CHROMIUM} does not start: {str(error).splitlines()[0]}")
        yield launched
        launched.close()


@pytest.fixture
def page(browser, server_url):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: (
            errors.append(message.text)
            if message.type == "error" and "Failed to load resource" not in message.text
            else None
        ),
    )  # 4xx by design
    page.set_default_timeout(60_000)
    page.goto(server_url)
    page.wait_for_selector("#model option[value='toy']", state="attached")
    yield page
    context.close()
    assert errors == [], "the page logged errors"


def test_typing_a_sentence_shows_the_translation_and_its_heatmap(page, server_url):
    sentence = "The cat sees a dog."
    expected = httpx.post(f"{server_url}translate", json={"text": sentence, "attention": True}, timeout=60).json()
    [translation] = expected["translations"]
    rows, cols = len(translation["hypotheses"][0]["tokens"]), len(translation["source_tokens"])

    assert page.locator("#run").inner_text() == "Translate"
    page.fill("#text", sentence)
    page.click("#run")
    card = page.locator(".card.translation")
    card.wait_for()
    assert card.locator(".source").inner_text() == translation["source"]
    assert card.locator(".hyp-text").first.inner_text() == translation["text"]
    assert page.locator(".heatmap .cell").count() == rows * cols
    assert page.locator(".heatmap .row").count() == rows and page.locator(".heatmap .col").count() == cols
    assert "1 text in" in page.locator("#status").inner_text()

    # the heatmap follows the mouse: a cell names its two tokens and its weight ...
    weights = translation["hypotheses"][0]["attention"]
    page.hover(".heatmap .cell[data-i='0'][data-j='0']")
    assert f"{weights[0][0]:.3f}" in page.locator(".readout").first.inner_text()
    assert page.locator(".heatmap .cell.active").count() == 1
    # ... and an output token shades the source tokens by where it looked
    page.locator(".attention .strip").nth(1).locator(".tok").first.hover()
    shaded = (
        page.locator(".attention .strip")
        .first.locator(".tok")
        .evaluate_all("spans => spans.map(s => s.style.background)")
    )
    assert len(shaded) == cols and all(s.startswith("rgba(") for s in shaded)
    assert "looked most at" in page.locator(".readout").first.inner_text()


def test_beam_search_with_n_best_lists_every_hypothesis(page):
    page.fill("#text", "A small red house.\nThe big dog eats.")
    page.select_option("#strategy", "beam")
    assert page.locator("#beam_size").is_visible() and not page.locator("#temperature").is_visible()
    page.fill("#beam_size", "4")
    page.fill("#n_best", "3")
    page.press("#text", "Control+Enter")  # the shortcut of the text box
    page.locator(".card.translation >> nth=1").wait_for()
    assert page.locator(".card.translation").count() == 2
    assert page.locator(".card.translation >> nth=0").locator(".hyps li").count() == 3
    page.locator(".card.translation >> nth=0").locator(".hyps li >> nth=2").click()
    assert "selected" in page.locator(".card.translation >> nth=0").locator(".hyps li >> nth=2").get_attribute("class")


def test_the_classifier_highlights_the_tokens_it_attended(page, server_url):
    page.select_option("#model", "spam")
    assert page.locator("#run").inner_text() == "Classify" and page.locator("#decoding").is_hidden()
    assert "labels: ham, spam" in page.locator("#model-info").inner_text()
    text = "free prize call now"
    expected = httpx.post(f"{server_url}classify", json={"text": text, "model": "spam"}, timeout=60).json()["results"][
        0
    ]
    page.fill("#text", text)
    page.click("#run")
    page.locator(".card.classification").wait_for()
    assert page.locator(".card .label").inner_text() == expected["label"]
    assert page.locator(".prob").count() == 2
    assert page.locator(".highlighted .tok").count() == len(expected["tokens"])
    page.hover(".highlighted .tok >> nth=0")
    assert "attention" in page.locator(".card.classification .readout").inner_text()


def test_bad_input_shows_the_servers_message_and_the_page_keeps_working(page):
    page.click("#run")
    assert page.locator("#error").inner_text() == "type a sentence first"
    page.fill("#text", "x" * (MAX_CHARS + 1))
    page.click("#run")
    page.locator("#error").wait_for()
    page.wait_for_function("document.getElementById('error').textContent.includes('characters')")
    assert f"the limit is {MAX_CHARS}" in page.locator("#error").inner_text()
    page.fill("#text", "The dog.")
    page.click("#run")
    page.locator(".card.translation").wait_for()
    assert page.locator("#error").is_hidden()


def completion_text(page) -> str:
    return page.locator("#completed").inner_text()


def test_typing_a_prefix_shows_its_completion_and_tab_takes_the_next_word(page, server_url):
    sentence, prefix = "The cat sees a dog.", "Le"
    expected = httpx.post(f"{server_url}translate", json={"text": sentence, "prefix": prefix}, timeout=60).json()
    completed = expected["translations"][0]["text"]
    assert completed.startswith(prefix) and len(completed.split()) >= 3

    assert page.locator("#completion").is_visible()
    page.fill("#text", sentence)
    page.locator("#prefix").press_sequentially(prefix, delay=20)  # typing: the page asks after a pause
    page.wait_for_function(f"document.getElementById('completed').textContent === {completed!r}")
    assert page.locator("#completed .typed").inner_text() == prefix
    assert prefix + page.locator("#completed .generated").inner_text() == completed

    # Tab takes the next generated word into the prefix, and the completion follows it.
    page.press("#prefix", "Tab")
    taken = prefix + " " + completed[len(prefix) :].split()[0]
    assert page.locator("#prefix").input_value() == taken
    assert page.evaluate("document.activeElement.id") == "prefix"  # Tab did not leave the field
    page.wait_for_function(f"document.querySelector('#completed .typed').textContent === {taken!r}")
    assert completion_text(page).startswith(taken)
    # ... as does the button, which leaves the focus in the field
    page.click("#accept")
    assert len(page.locator("#prefix").input_value().split()) == 3
    assert page.evaluate("document.activeElement.id") == "prefix"


def test_the_complete_button_and_a_prefix_error_shown_inline(page):
    page.fill("#text", "A small red house.")
    page.fill("#prefix", "Un")
    page.click("#complete")
    page.wait_for_function("document.querySelector('#completed .typed').textContent === 'Un'")
    assert completion_text(page).startswith("Un")
    page.fill("#prefix", "chien " * 40)  # more target tokens than the output limit of a short source
    page.click("#complete")
    page.locator("#prefix-error").wait_for()
    assert "the prefix has" in page.locator("#prefix-error").inner_text()
    assert completion_text(page) == "" and page.locator("#accept").is_disabled()
    assert page.locator("#error").is_hidden()  # the translate area's own error stays as it was
    page.fill("#prefix", "")
    page.fill("#text", "")
    page.click("#complete")
    assert "type a sentence" in page.locator("#prefix-error").inner_text()
    page.select_option("#model", "spam")
    assert page.locator("#completion").is_hidden()  # classifiers complete nothing
