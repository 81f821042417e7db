"""Attention heatmaps as PNG files.

Uses matplotlib's object API with the Agg canvas, so it needs no display and never changes
the global pyplot backend of a notebook that imports it. Labels are made readable:
SentencePiece's word-start mark ``▁`` is dropped from the piece it starts and continuation
pieces get a leading ``·`` (``▁chat``, ``on`` -> ``chat``, ``·on``); a bare ``▁`` and
character-level spaces show as ``␣``; control characters show as their code (``U+0007``).
The font is DejaVu Sans (shipped with matplotlib), which has every Latin accent; glyphs it
lacks (e.g. CJK) render as boxes rather than fail.
"""

from __future__ import annotations

import unicodedata
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

SPM_SPACE = "\u2581"  # ▁
VISIBLE_SPACE = "\u2423"  # ␣
CONTINUATION = "\u00b7"  # ·
FONT = "DejaVu Sans"
MAX_INCHES = 40.0


def _visible(text: str) -> str:
    """Spaces as ␣, other invisible characters as their code point."""
    out = []
    for char in text:
        if char == " ":
            out.append(VISIBLE_SPACE)
        elif unicodedata.category(char) in ("Cc", "Cf", "Zs", "Zl", "Zp"):
            out.append(f"U+{ord(char):04X}")
        else:
            out.append(char)
    return "".join(out)


def _shorten(label: str, limit: int = 24) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "\u2026"


def readable_labels(tokens: Sequence[str]) -> list[str]:
    """Display labels for tokens: SentencePiece pieces or characters (see the module doc).
    Labels longer than 24 characters (e.g. a long run of unknown characters) are cut."""
    return [_shorten(label) for label in _labels(tokens)]


def _labels(tokens: Sequence[str]) -> list[str]:
    subwords = any(SPM_SPACE in token for token in tokens)
    labels = []
    for token in tokens:
        if token.startswith("<") and token.endswith(">") and len(token) > 2:
            labels.append(token)  # <eos>, <unk>
        elif subwords:
            if token == SPM_SPACE:
                labels.append(VISIBLE_SPACE)
            elif token.startswith(SPM_SPACE):
                labels.append(_visible(token[1:].replace(SPM_SPACE, " ")))
            else:
                labels.append(CONTINUATION + _visible(token.replace(SPM_SPACE, " ")))
        else:
            labels.append(_visible(token) if token else "\u2205")
    return labels


def plot_attention(
    weights: torch.Tensor | np.ndarray,
    source_tokens: Sequence[str],
    target_tokens: Sequence[str],
    path: str | Path,
    title: str | None = None,
) -> Path:
    """Save a heatmap of ``weights`` with source tokens on the x axis, target tokens on y.

    :param weights: (target_len, source_len) attention, rows summing to 1.
    :return: the path written (parent directories are created).
    """
    matrix = weights.detach().float().cpu().numpy() if isinstance(weights, torch.Tensor) else np.asarray(weights)
    rows, cols = matrix.shape
    if (rows, cols) != (len(target_tokens), len(source_tokens)):
        raise ValueError(
            f"attention is {rows}x{cols} but there are {len(target_tokens)} target and "
            f"{len(source_tokens)} source tokens"
        )
    cell = 0.32  # inches per token, shrunk for long sentences to stay within MAX_INCHES
    scale = min(1.0, MAX_INCHES / max(cell * max(rows, cols) + 2.0, 1.0))
    width = max(4.0, (cell * cols + 2.0) * scale)
    height = max(3.0, (cell * rows + 1.8) * scale)
    fontsize = max(4.0, 10.0 * scale)

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    axes.set_xticks(range(cols))
    axes.set_yticks(range(rows))
    axes.set_xticklabels(readable_labels(source_tokens), rotation=90, fontsize=fontsize, family=FONT)
    axes.set_yticklabels(readable_labels(target_tokens), fontsize=fontsize, family=FONT)
    axes.set_xlabel("source", family=FONT)
    axes.set_ylabel("output", family=FONT)
    if title:
        axes.set_title(title if len(title) <= 120 else title[:117] + "...", fontsize=fontsize, family=FONT)
    figure.colorbar(image, ax=axes, fraction=0.04, pad=0.02)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing")
        warnings.filterwarnings("ignore", message="Tight layout not applied")
        figure.tight_layout()
        figure.savefig(path)
    return path


def plot_translations(
    translations: Iterable, directory: str | Path, prefix: str = "line", start: int = 1
) -> list[Path]:
    """One heatmap per translated item (best hypothesis), named ``{prefix}-000001.png`` by
    position, counted from ``start``; items without a translation or attention are skipped.

    :param translations: :class:`~nmt.inference.translator.Translation` objects made with attention.
    """
    written = []
    for number, translation in enumerate(translations, start=start):
        if not translation.hypotheses or translation.hypotheses[0].attention is None:
            continue
        best = translation.hypotheses[0]
        path = Path(directory) / f"{prefix}-{number:06d}.png"
        written.append(plot_attention(best.attention, translation.source_pieces, best.pieces, path, translation.source))
    return written
