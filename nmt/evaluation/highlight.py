"""HTML page of texts whose tokens are shaded by their attention weight."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SPM_SPACE = "\u2581"  # SentencePiece's word-boundary marker "▁"

PAGE_HEAD = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; line-height: 1.6; }}
.row {{ border-bottom: 1px solid #ddd; padding: 0.5em 0; }}
.label {{ font-weight: bold; margin-right: 0.5em; }}
.tok {{ white-space: pre-wrap; border-radius: 2px; }}
</style></head><body>
<h1>{title}</h1>
<p>{shading}</p>
"""
ATTENTION_SHADING = "Each token is shaded by its attention weight relative to the largest weight in its text."
CONTRIBUTION_SHADING = (
    "Each n-gram is shaded by its contribution to the predicted label relative to the largest in its text "
    "(those against it are not shaded; hover for the value)."
)


@dataclass
class HighlightedText:
    """:ivar tokens: display strings, one per attended position. :ivar weights: same length."""

    label: str
    probability: float
    tokens: Sequence[str]
    weights: Sequence[float]


def display_token(piece: str) -> str:
    """A token as it reads in text: SentencePiece's "▁" becomes a space."""
    return piece.replace(SPM_SPACE, " ")


def render_row(row: HighlightedText) -> str:
    top = max(row.weights, default=0.0) or 1.0
    spans = []
    for token, weight in zip(row.tokens, row.weights):
        alpha = min(1.0, max(0.0, weight / top))
        spans.append(
            f'<span class="tok" style="background-color: rgba(255, 99, 71, {alpha:.3f})" '
            f'title="{weight:.4f}">{html.escape(display_token(token))}</span>'
        )
    body = "".join(spans) or "<em>(empty)</em>"
    return f'<div class="row"><span class="label">{html.escape(row.label)} ({row.probability:.3f})</span>{body}</div>\n'


def render_page(rows: Iterable[HighlightedText], title: str = "Attention", shading: str = ATTENTION_SHADING) -> str:
    """A complete, self-contained HTML page; every text is escaped.

    :param shading: the sentence under the title that says what the shades mean.
    """
    parts = [PAGE_HEAD.format(title=html.escape(title), shading=html.escape(shading))]
    parts.extend(render_row(row) for row in rows)
    parts.append("</body></html>\n")
    return "".join(parts)
