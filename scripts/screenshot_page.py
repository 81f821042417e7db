"""Screenshots of the demo page of ``python -m nmt.serve``, taken in headless Chromium.

    python scripts/screenshot_page.py CKPT [CKPT ...] --out-dir docs
        [--translate "Sentence one.\\nSentence two."] [--classify "Some text."] [--chromium PATH]

Starts the server with the checkpoints (``NAME=PATH`` names one) on a free loopback port,
and for the first translation model types ``--translate``, runs beam search, and points at
one cell of the heatmap (``OUT_DIR/serve_translate.png``); for the first classification
model, classifies ``--classify`` (``OUT_DIR/serve_classify.png``). Needs the ``serve``
extra and a Chromium (Debian's ``chromium``; ``playwright install`` is not needed).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from nmt.cli.common import OneLineArgumentParser
from nmt.serve.launch import started_server

PROG = "scripts/screenshot_page.py"


def build_parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(prog=PROG, description="Screenshots of the nmt.serve page.")
    parser.add_argument("checkpoints", nargs="+", metavar="CKPT")
    parser.add_argument("--out-dir", type=Path, default=Path("docs"), help="where the PNGs go (default docs)")
    parser.add_argument(
        "--translate",
        default="I think we should tell her the truth.\nWhere is the train station?",
        help="text for the translation model (lines: sentences)",
    )
    parser.add_argument(
        "--classify",
        default="WINNER!! You have won a free prize. Call now to claim it.\nAre we still meeting for lunch tomorrow?",
        help="text for the classifier",
    )
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--n-best", type=int, default=2)
    parser.add_argument(
        "--chromium",
        default=shutil.which("chromium") or shutil.which("chromium-browser"),
        help="the browser binary (default: chromium on PATH)",
    )
    parser.add_argument("--width", type=int, default=1100, help="window width in CSS pixels (default 1100)")
    return parser


def translation_shot(page, model: str, text: str, beam: int, n_best: int, out: Path) -> None:
    page.select_option("#model", model)
    page.fill("#text", text.replace("\\n", "\n"))
    page.select_option("#strategy", "beam")
    page.fill("#beam_size", str(beam))
    page.fill("#n_best", str(n_best))
    page.click("#run")
    page.locator(".card.translation").first.wait_for()
    rows = page.locator(".card.translation >> nth=0").locator(".heatmap .row").count()
    # point at the strongest cell of a middle output token: what a reader would try first
    i = rows // 2
    row_cells = page.locator(".card.translation >> nth=0").locator(f".heatmap .cell[data-i='{i}']")
    weights = [float(title.rsplit(": ", 1)[-1]) for title in row_cells.evaluate_all("cells => cells.map(c => c.title)")]
    j = max(range(len(weights)), key=weights.__getitem__)
    row_cells.nth(j).hover()
    page.screenshot(path=str(out), full_page=True)


def classification_shot(page, model: str, text: str, out: Path) -> None:
    page.select_option("#model", model)
    page.fill("#text", text.replace("\\n", "\n"))
    page.click("#run")
    page.locator(".card.classification").first.wait_for()
    page.locator(".card.classification >> nth=0").locator(".highlighted .tok").first.hover()
    page.screenshot(path=str(out), full_page=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.chromium:
        print(f"{PROG}: error: no chromium found: apt-get install chromium, or give --chromium PATH", file=sys.stderr)
        return 1
    import httpx
    from playwright.sync_api import sync_playwright

    args.out_dir.mkdir(parents=True, exist_ok=True)
    try:
        with started_server(args.checkpoints, ["--threads", "1"]) as url, sync_playwright() as playwright:
            models = httpx.get(f"{url}/models", timeout=30).json()["models"]
            browser = playwright.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": args.width, "height": 800}, device_scale_factor=1)
            page.set_default_timeout(120_000)
            page.goto(url)
            page.wait_for_selector("#model option", state="attached")
            written = []
            translators = [m["name"] for m in models if m["task"] == "translation"]
            classifiers = [m["name"] for m in models if m["task"] == "classification"]
            if translators:
                out = args.out_dir / "serve_translate.png"
                translation_shot(page, translators[0], args.translate, args.beam_size, args.n_best, out)
                written.append(out)
            if classifiers:
                out = args.out_dir / "serve_classify.png"
                classification_shot(page, classifiers[0], args.classify, out)
                written.append(out)
            browser.close()
    except (RuntimeError, OSError) as error:
        print(f"{PROG}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
