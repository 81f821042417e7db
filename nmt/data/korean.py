"""Korean text for the morpheme tokenizer: Hangul-only cleaning, stopword lists, and the analyser.

The analyser is Kiwi (``kiwipiepy``, the ``korean`` extra): a morphological analyser with its model
on PyPI, no Java and no system library. It is imported when an analyser is first needed, so
this module imports without it; a missing package raises ``ModuleNotFoundError`` naming
``kiwipiepy``, which the commands turn into a one-line "install the korean extra" error.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Iterable, Sequence
from typing import Any

from nmt.config.schema import MorphemeAnalyser, StopwordList, choices

ANALYSERS = choices(MorphemeAnalyser)

# Hangul syllables, compatibility jamo (ㅋㅋ, ㅠㅠ: sentiment in NSMC), digits and spaces.
# Digits stay, unlike the course's [^ㄱ-ㅎㅏ-ㅣ가-힣 ]: NSMC reviews give ratings in words
# ("10점", "1점도 아깝다"), and with Naive Bayes over whitespace words keeping them scored
# 82.62% against 82.40% on the official test set.
_NOT_HANGUL = re.compile(r"[^\uac00-\ud7a3\u3131-\u3163\u1100-\u11ff0-9 ]+")
_SPACES = re.compile(r" {2,}")

STOPWORD_LISTS: dict[str, tuple[str, ...]] = {
    # The course's list for NSMC (Okt with stemming), verbatim.
    StopwordList.course.value: (
        "의",
        "가",
        "이",
        "은",
        "들",
        "는",
        "좀",
        "잘",
        "걍",
        "과",
        "도",
        "를",
        "으로",
        "자",
        "에",
        "와",
        "한",
        "하다",
    ),
}
"""Built-in stopword lists, selected by name (``tokenizer.stopwords=course``)."""

# Kiwi's predicate tags (with its irregular-conjugation suffixes -I, -R): their forms are stems,
# so a dictionary-form stopword ("하다") matches the stem ("하") plus "다".
_PREDICATE_TAGS = ("VV", "VA", "VX", "VCP", "VCN", "XSV", "XSA")


def clean_hangul(text: str) -> str:
    """``text`` with everything but Hangul, jamo, digits and spaces replaced by a space, spaces
    collapsed: ``"굳 ㅋ!! 10점"`` -> ``"굳 ㅋ 10점"``."""
    return _SPACES.sub(" ", _NOT_HANGUL.sub(" ", text)).strip()


def resolve_stopwords(stopwords: str | Iterable[str] | None) -> tuple[str, ...]:
    """The stopwords of a config value: None (none), a built-in list's name, or the words."""
    if stopwords is None:
        return ()
    if isinstance(stopwords, str):
        if stopwords not in STOPWORD_LISTS:
            names = " or ".join(f"tokenizer.stopwords={name}" for name in STOPWORD_LISTS)
            raise ValueError(f"unknown stopword list {stopwords!r}: use {names}, a list of words, or null")
        return STOPWORD_LISTS[stopwords]
    return tuple(dict.fromkeys(str(word) for word in stopwords))


def is_stopword(form: str, tag: str, stopwords: frozenset[str]) -> bool:
    """Whether the morpheme ``form/tag`` is a stopword: its form, or for a predicate stem its
    dictionary form (stem + 다), is in ``stopwords``."""
    return form in stopwords or (tag.split("-")[0] in _PREDICATE_TAGS and f"{form}다" in stopwords)


class KiwiAnalyser:
    """Kiwi morphological analysis, one worker thread, deterministic for a given Kiwi version.

    :ivar version: ``kiwipiepy``'s version, saved with the tokenizer.
    :ivar model_type: the language model Kiwi uses (its default for that version).
    """

    name = MorphemeAnalyser.kiwi.value

    def __init__(self) -> None:
        kiwipiepy = importlib.import_module("kiwipiepy")
        self.version: str = kiwipiepy.__version__
        # One worker: batched calls run in Kiwi's own thread, in input order; 0 would refuse batches.
        self._kiwi: Any = kiwipiepy.Kiwi(num_workers=1)
        self.model_type: str = str(self._kiwi.model_type)

    def analyse(self, text: str) -> list[tuple[str, str]]:
        """``(form, tag)`` of each morpheme of ``text``; ``[]`` for an empty text."""
        return [(token.form, token.tag) for token in self._kiwi.tokenize(text)] if text else []

    def analyse_batch(self, texts: Sequence[str]) -> list[list[tuple[str, str]]]:
        """:meth:`analyse` of each text, in one call to Kiwi."""
        return [[(token.form, token.tag) for token in tokens] for tokens in self._kiwi.tokenize(list(texts))]


@functools.cache
def analyser(name: str) -> KiwiAnalyser:
    """The process's one analyser called ``name`` (loading Kiwi's model takes a second and ~100 MB)."""
    if name != KiwiAnalyser.name:
        raise ValueError(f"unknown morpheme analyser {name!r}: use tokenizer.analyser={' or '.join(ANALYSERS)}")
    return KiwiAnalyser()
