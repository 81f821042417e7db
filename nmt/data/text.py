"""Unicode normalisation shared by training data, references and user input.

There is exactly one normaliser so that every string the model, the tokenizer or BLEU sees
went through the same steps. If the training data kept U+202F (narrow no-break space) before
French ``!`` while user input arrived with a plain space, the tokenizer would split them
differently and the model would meet pieces at test time that it never saw in training.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["normalize_text", "fold_for_grouping"]

# Invisible characters that only steer rendering (line breaking, ligatures, byte order).
# They carry no meaning for translation but would make "a\u200bb" and "ab" different tokens.
ZERO_WIDTH_CHARACTERS = frozenset("\u200b\u200c\u200d\u2060\ufeff")

# Control characters that separate words. They become a space; deleting them instead would
# glue the neighbouring words together ("end.\nNext" -> "end.Next").
WORD_SEPARATING_CONTROLS = frozenset("\t\n\v\f\r\x85")

_SPACE_RUN = re.compile(" {2,}")


class _LazyTranslationTable(dict):
    """A ``str.translate`` table that classifies each code point on first sight.

    Unicode has ~1.1M code points, so the table is filled lazily and memoised; ``translate``
    then runs in C for every character already seen, which keeps normalising a 67 MB corpus
    fast.
    """

    def __init__(self, classify):
        super().__init__()
        self._classify = classify

    def __missing__(self, code_point: int):
        value = self._classify(chr(code_point))
        self[code_point] = value
        return value


def _normalized_character(char: str) -> str | None:
    """What ``normalize_text`` turns one character into; None deletes it."""
    if char in ZERO_WIDTH_CHARACTERS:
        return None
    if char in WORD_SEPARATING_CONTROLS:
        return " "
    category = unicodedata.category(char)
    if category in ("Zs", "Zl", "Zp"):  # all Unicode spaces and line/paragraph separators
        return " "
    if category == "Cc":  # the remaining C0/C1 controls
        return None
    return char


def _grouping_character(char: str) -> str | None:
    """What ``fold_for_grouping`` does to one character: drop punctuation (P*) and symbols (S*)."""
    if unicodedata.category(char)[0] in "PS":
        return None
    return char


_NORMALIZATION_TABLE = _LazyTranslationTable(_normalized_character)
_GROUPING_TABLE = _LazyTranslationTable(_grouping_character)


def _collapse_spaces(text: str) -> str:
    return _SPACE_RUN.sub(" ", text).strip(" ")


def normalize_text(text: str) -> str:
    """Canonical form of a sentence, used for corpora, references and user input alike.

    Steps:
      1. Every Unicode space separator (U+00A0 no-break space, U+202F narrow no-break space,
         U+2009 thin space, ...), line separator, tab and newline becomes an ASCII space.
         French typography keeps its space before ``! ? : ;``, only as a plain space:
         ``"Va\u202f!"`` -> ``"Va !"``.
      2. Zero-width characters (U+200B, U+200C, U+200D, U+2060, U+FEFF) and all other C0/C1
         control characters are deleted.
      3. Unicode NFC, so a precomposed "é" and "e" + combining accent are the same string.
         It runs after the deletions because deleting a zero-width character can bring a
         letter and its combining accent together; this order makes the function idempotent.
      4. Runs of spaces collapse to one; leading and trailing spaces are stripped.
    """
    text = unicodedata.normalize("NFC", text.translate(_NORMALIZATION_TABLE))
    return _collapse_spaces(text)


def fold_for_grouping(text: str) -> str:
    """Key under which near-duplicate sources are grouped so a split cannot leak them.

    ``normalize_text``, then case folding, then deletion of all punctuation (Unicode category
    P*) and symbols (S*), then whitespace collapsing. ``"Go."``, ``"go!"`` and ``"Go !"`` all
    fold to ``"go"``. Not for display: the key is lossy on purpose (``"don't"`` -> ``"dont"``).
    """
    folded = normalize_text(text).casefold().translate(_GROUPING_TABLE)
    return _collapse_spaces(folded)
