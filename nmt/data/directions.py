"""Translation directions: which language a model translates from and into.

A Tatoeba pair file (manythings.org ``{lang}-eng.zip``) holds English and one other language,
named by its ISO 639-3 code (``fra``, ``deu``). A direction is written with short codes,
``en-fr``: English is ``en``, the other language its ISO 639-1 code where it has one
(:data:`SHORT_CODES`), else its three-letter code.

A model trained on several directions (``data.directions: [en-fr, fr-en]``) reads a
target-language tag as the first source token, ``<2fr>`` or ``<2en>`` (Johnson et al. 2017,
Google's multilingual NMT); :func:`tagged_source` writes it and the source tokenizer maps
it to one reserved id (:class:`~nmt.data.tokenizers.TaggedTokenizer`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

__all__ = [
    "ENGLISH",
    "SHORT_CODES",
    "Direction",
    "short_code",
    "parse_directions",
    "tag_for",
    "tagged_source",
    "choose_direction",
    "DirectionError",
]

ENGLISH = "en"

SHORT_CODES = {
    "ara": "ar",
    "ces": "cs",
    "cmn": "zh",
    "dan": "da",
    "deu": "de",
    "ell": "el",
    "eng": "en",
    "spa": "es",
    "fin": "fi",
    "fra": "fr",
    "heb": "he",
    "hin": "hi",
    "hun": "hu",
    "ind": "id",
    "ita": "it",
    "jpn": "ja",
    "kor": "ko",
    "nld": "nl",
    "nob": "nb",
    "pol": "pl",
    "por": "pt",
    "ron": "ro",
    "rus": "ru",
    "swe": "sv",
    "tur": "tr",
    "ukr": "uk",
    "vie": "vi",
}
"""ISO 639-3 codes of manythings.org pair files -> ISO 639-1, for those that have one."""

_CODE = re.compile(r"^[a-z]{2,3}$")
TAG_PATTERN = re.compile(r"^<2([a-z]{2,3})>")
"""A target-language tag at the start of a source text."""


class DirectionError(ValueError):
    """A direction the model was not trained on, or one asked of a single-direction model."""


class Direction(NamedTuple):
    """``source``-``target`` short language codes, e.g. ``Direction("en", "fr")``."""

    source: str
    target: str

    def __str__(self) -> str:
        return f"{self.source}-{self.target}"


def short_code(language: str) -> str:
    """``fra`` -> ``fr``; a code without an ISO 639-1 form is kept as it is (``tok``)."""
    return SHORT_CODES.get(language, language)


def tag_for(target: str) -> str:
    """The source tag asking for ``target``: ``<2fr>``."""
    return f"<2{target}>"


def tagged_source(text: str, target: str) -> str:
    """``text`` with the tag of ``target`` in front: ``<2fr> I am here.``"""
    return f"{tag_for(target)} {text}"


def parse_directions(names: Iterable[str], language: str) -> list[Direction]:
    """Check ``names`` (``en-fr``) against the corpus' two languages and parse them.

    :param language: the ISO 639-3 code of the corpus' non-English side (``data.language``).
    :raises DirectionError: a malformed or foreign direction, or one given twice.
    """
    other = short_code(language)
    allowed = {f"{ENGLISH}-{other}", f"{other}-{ENGLISH}"}
    directions: list[Direction] = []
    for name in names:
        source, _, target = str(name).partition("-")
        if not (_CODE.match(source) and _CODE.match(target)) or str(name) not in allowed:
            raise DirectionError(
                f"data.directions: {name!r} is not a direction of the {ENGLISH}/{other} pairs: "
                f"use {' and/or '.join(sorted(allowed))}"
            )
        direction = Direction(source, target)
        if direction in directions:
            raise DirectionError(f"data.directions: {name} is listed twice")
        directions.append(direction)
    if not directions:
        raise DirectionError("data.directions is empty: list at least one direction, or set it to null")
    return directions


def choose_direction(
    directions: Sequence[Direction] | None, direction: str | None = None, to: str | None = None
) -> Direction | None:
    """The direction to translate in: ``direction`` (``en-fr``) or the one into ``to``
    (``fr``), else the model's first; None for a single-direction model asked nothing.

    :raises DirectionError: a direction the model was not trained on, or one asked of a
        single-direction model (the message names the fix).
    """
    asked = direction or (to and f"into {to}")
    if not directions:
        if asked:
            raise DirectionError(
                f"this model translates one direction only and takes no direction ({asked} was asked): "
                f"drop --direction/--to"
            )
        return None
    if direction:
        found = [d for d in directions if str(d) == direction]
    elif to:
        found = [d for d in directions if d.target == to]
    else:
        return directions[0]
    if not found:
        trained = ", ".join(str(d) for d in directions)
        raise DirectionError(f"the model was not trained to translate {asked}: use one of its directions, {trained}")
    return found[0]
