"""Small copies of the default corpora that ship inside the package, so that the main command
trains offline on a fresh machine (licences and attribution in ``ATTRIBUTION.md`` beside them).

``nmt.data.download.resolve_dataset`` falls back to them when neither ``data.path`` nor the data
directory has the corpus and downloading was not asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["EMBEDDED", "EMBEDDED_DIR", "EmbeddedCorpus", "embedded_path"]

EMBEDDED_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class EmbeddedCorpus:
    """One corpus file shipped in ``EMBEDDED_DIR``.

    :param filename: the file's name in ``EMBEDDED_DIR``.
    :param sha256: sha256 of the file as shipped (tests check it).
    :param contents: what it holds, for the log line that says it is used.
    """

    filename: str
    sha256: str
    contents: str


# Keyed like nmt.data.download.DATASETS.
EMBEDDED: dict[str, EmbeddedCorpus] = {
    "fra": EmbeddedCorpus(
        filename="fra-sample.txt.xz",
        sha256="90b40f1a72fb5c984c52178ff63dbaea10a61a81d1dbe7ae790d5540213f42db",
        contents="30,000 of the 167,130 Tatoeba English-French pairs, English of at most 8 words",
    ),
    "sms": EmbeddedCorpus(
        filename="SMSSpamCollection.gz",
        sha256="8fd20918904042e5104c4d5d22642f1332b0bc670c55df3a8688a1ea7b2e9e8d",
        contents="the whole SMS Spam Collection v.1 (5,574 messages)",
    ),
}


def embedded_path(name: str) -> Path:
    """The shipped copy of dataset ``name`` (e.g. ``"fra"``, ``"sms"``).

    :raises KeyError: no copy of ``name`` ships with nmt (the message lists those that do).
    """
    if name not in EMBEDDED:
        raise KeyError(f"no embedded copy of dataset {name!r}; embedded: {', '.join(sorted(EMBEDDED))}")
    return EMBEDDED_DIR / EMBEDDED[name].filename
