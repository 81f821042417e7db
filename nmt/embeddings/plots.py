"""2-D pictures of word vectors: t-SNE (van der Maaten & Hinton 2008) or PCA, one labelled
point per word, as PNG.

Hangul (NSMC) and other CJK scripts need a font that has them. Debian's ``fonts-nanum``
(NanumGothic) is used when installed, else any Noto CJK font found; without one the picture
is still written, with a warning, and those labels show as boxes.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nmt.embeddings.vectors import WordVectors

log = logging.getLogger("nmt.embeddings")

PROJECTIONS = ("tsne", "pca")
# Preferred fonts with Hangul, best first (file names, so a font installed after matplotlib
# built its font cache is still found).
CJK_FONT_FILES = (
    "NanumGothic.ttf",
    "NanumBarunGothic.ttf",
    "NotoSansCJK-Regular.ttc",
    "NotoSansKR-Regular.otf",
    "NotoSansCJKkr-Regular.otf",
    "UnDotum.ttf",
)
_CJK = re.compile(r"[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_WORDLIKE = re.compile(r"\w", re.UNICODE)


def needs_cjk_font(words: Sequence[str]) -> bool:
    return any(_CJK.search(word) for word in words)


def cjk_font() -> str | None:
    """The family name of an installed font with Hangul (see :data:`CJK_FONT_FILES`), or None."""
    found = {Path(path).name: path for path in font_manager.findSystemFonts()}
    for name in CJK_FONT_FILES:
        if name in found:
            font_manager.fontManager.addfont(found[name])
            return font_manager.FontProperties(fname=found[name]).get_name()
    return None


def project(matrix: np.ndarray, projection: str = "tsne", seed: int = 0) -> np.ndarray:
    """(n, dim) -> (n, 2) by t-SNE (perplexity min(30, (n-1)/3), PCA initialisation) or PCA."""
    if projection not in PROJECTIONS:
        raise ValueError(f"unknown projection {projection!r}: use tsne or pca")
    if len(matrix) < 3:
        raise ValueError(f"a 2-D picture needs at least 3 words, got {len(matrix)}")
    if projection == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(matrix)
    from sklearn.manifold import TSNE

    perplexity = max(2.0, min(30.0, (len(matrix) - 1) / 3))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", metric="cosine", random_state=seed).fit_transform(
        matrix
    )


def frequent_words(vectors: WordVectors, count: int) -> list[str]:
    """The ``count`` most frequent words that contain a letter or digit (no bare punctuation)."""
    return [word for word in vectors.words if _WORDLIKE.search(word)][:count]


def plot_words(
    vectors: WordVectors,
    path: str | Path,
    words: Sequence[str] | None = None,
    *,
    top: int = 300,
    projection: str = "tsne",
    title: str | None = None,
    seed: int = 0,
) -> Path:
    """Write a PNG of ``words`` (default: the ``top`` most frequent) projected to 2-D.

    Unknown words are left out with a warning; the picture needs at least 3 known ones.
    """
    chosen = list(words) if words else frequent_words(vectors, top)
    missing = [word for word in chosen if word not in vectors]
    if missing:
        log.warning("not in the vocabulary, left out of the picture: %s", " ".join(missing[:20]))
    chosen = [word for word in dict.fromkeys(chosen) if word in vectors]
    points = project(vectors.subset(chosen).vectors, projection, seed)
    family = ["DejaVu Sans"]
    if needs_cjk_font(chosen):
        font = cjk_font()
        if font:
            family = [font, "DejaVu Sans"]
        else:
            log.warning(
                "no font with Hangul found: labels will show as boxes; install one, e.g. apt-get install fonts-nanum"
            )
    size = float(np.clip(np.sqrt(len(chosen)) * 1.2, 6, 24))
    figure = Figure(figsize=(size, size), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.scatter(points[:, 0], points[:, 1], s=6, alpha=0.6)
    for (x, y), word in zip(points, chosen):
        axes.annotate(word, (x, y), fontsize=8, family=family, xytext=(2, 2), textcoords="offset points")
    axes.set_title(title or f"{projection.upper()} of {len(chosen)} words", family=family)
    axes.set_xticks([])
    axes.set_yticks([])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from")  # boxes, warned about above
        figure.savefig(path, bbox_inches="tight")
    return path
