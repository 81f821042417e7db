"""Attention heatmaps: readable labels, files that open, sizes that follow the sentence."""

from __future__ import annotations

import struct
from pathlib import Path

import matplotlib
import pytest
import torch

from nmt.evaluation.plots import plot_attention, plot_translations, readable_labels
from nmt.inference.translator import TranslatedHypothesis, Translation

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    return struct.unpack(">II", data[16:24])


def attention(rows: int, cols: int) -> torch.Tensor:
    return torch.softmax(torch.randn(rows, cols, generator=torch.Generator().manual_seed(0)), dim=-1)


def test_sentencepiece_labels_drop_the_word_mark_and_flag_continuations():
    assert readable_labels(["\u2581Le", "\u2581ch", "at", "\u2581", "!", "<eos>"]) == [
        "Le",
        "ch",
        "\u00b7at",
        "\u2423",
        "\u00b7!",
        "<eos>",
    ]


def test_character_labels_show_spaces_and_controls():
    assert readable_labels(["é", " ", "\x07", "\u00a0", ""]) == ["é", "\u2423", "U+0007", "U+00A0", "\u2205"]


def test_long_labels_are_cut():
    [label] = readable_labels(["x" * 500])
    assert len(label) == 24 and label.endswith("\u2026")


def test_plot_attention_writes_a_png_that_grows_with_the_sentence(tmp_path):
    small = plot_attention(attention(3, 4), list("abcd"), ["\u2581Le", "\u2581chat", "<eos>"], tmp_path / "s.png")
    source = ["\u2581" + w for w in "Où est la bibliothèque , s' il vous plaît ? 你好".split()]
    big = plot_attention(
        attention(14, len(source)),
        source,
        [f"\u2581mot{i}" for i in range(14)],
        tmp_path / "deep" / "b.png",
        title="Où est la bibliothèque ?",
    )
    small_w, small_h = png_size(small)
    big_w, big_h = png_size(big)
    assert big_w > small_w and big_h > small_h


def test_very_long_sentences_stay_within_a_bounded_size(tmp_path):
    path = plot_attention(attention(300, 150), ["x"] * 150, ["y"] * 300, tmp_path / "long.png")
    width, height = png_size(path)
    assert max(width, height) <= 4100  # 40 inches at 100 dpi, plus rounding


def test_shape_mismatch_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="2 target and 3 source"):
        plot_attention(attention(3, 3), ["a", "b", "c"], ["x", "y"], tmp_path / "x.png")


def test_plotting_does_not_change_the_pyplot_backend(tmp_path):
    backend = matplotlib.get_backend()
    plot_attention(attention(2, 2), ["a", "b"], ["c", "d"], tmp_path / "x.png")
    assert matplotlib.get_backend() == backend


def test_plot_translations_writes_one_file_per_translated_line(tmp_path):
    hyp = TranslatedHypothesis("le chat", -1.0, -1.0, ["\u2581le", "\u2581chat", "<eos>"], attention(3, 2))
    translations = [
        Translation("the cat", [hyp], ["\u2581the", "\u2581cat"]),
        Translation("", []),
        Translation("the cat", [hyp], ["\u2581the", "\u2581cat"]),
    ]
    written = plot_translations(translations, tmp_path, prefix="line")
    assert [p.name for p in written] == ["line-000001.png", "line-000003.png"]
