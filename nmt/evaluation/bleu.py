"""sacreBLEU wrappers: corpus BLEU, chrF and TER, with one or several references per segment.

TER (translation edit rate, Snover et al. 2006) is the number of edits (insertions,
deletions, substitutions, shifts of word sequences) that turn a hypothesis into its closest
reference, per reference word, in percent: lower is better, unlike BLEU and chrF. With
several references sacreBLEU takes each segment's fewest edits over the average reference
length.

Several references of one segment arrive as several ``(source, reference)`` pairs with the
same source (Tatoeba has many English sentences with more than one French translation);
:func:`group_by_source` turns them into :class:`Segment` objects. sacreBLEU wants
references as *streams* (stream ``i`` holds every segment's ``i``-th reference) of equal
length, so :func:`reference_streams` pads the shorter lists with ``None``, which sacreBLEU
2.x skips per segment (and reports as ``nrefs:var`` in the signature).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sacrebleu.metrics import BLEU, CHRF, TER

from nmt.data.text import normalize_text


@dataclass
class Segment:
    """One source sentence and all its references, normalised."""

    source: str
    references: list[str] = field(default_factory=list)


def group_by_source(pairs: Iterable[tuple[str, str]]) -> list[Segment]:
    """One segment per distinct (normalised) source, in order of first appearance;
    a reference given twice for the same source counts once."""
    segments: dict[str, Segment] = {}
    for source, reference in pairs:
        source, reference = normalize_text(source), normalize_text(reference)
        segment = segments.setdefault(source, Segment(source))
        if reference not in segment.references:
            segment.references.append(reference)
    return list(segments.values())


def reference_streams(references: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """Per-segment reference lists -> sacreBLEU's equal-length streams, padded with None.

    :param references: for each segment, its references (at least one).
    """
    if any(not refs for refs in references):
        raise ValueError("every segment needs at least one reference")
    width = max((len(refs) for refs in references), default=0)
    return [[refs[i] if i < len(refs) else None for refs in references] for i in range(width)]


def _score(metric, hypotheses: Sequence[str], streams: list) -> dict:
    result = metric.corpus_score(list(hypotheses), streams)
    return {"score": round(result.score, 2), "signature": str(metric.get_signature()), "detail": str(result)}


def corpus_scores(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> dict:
    """BLEU, chrF and TER of ``hypotheses`` against all references (``multi_ref``) and
    against each segment's first reference only (``single_ref``), with sacreBLEU signatures
    (each metric with sacreBLEU's default settings).

    :return: ``{"bleu": {"multi_ref": {score, signature, detail}, "single_ref": {...}},
        "chrf": {...}, "ter": {...}, "segments": n, "references": total}``
    """
    if not hypotheses:
        raise ValueError("nothing to score: no segments")
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference lists")
    multi = reference_streams(references)
    single = [[refs[0] for refs in references]]
    return {
        "bleu": {"multi_ref": _score(BLEU(), hypotheses, multi), "single_ref": _score(BLEU(), hypotheses, single)},
        "chrf": {"multi_ref": _score(CHRF(), hypotheses, multi), "single_ref": _score(CHRF(), hypotheses, single)},
        "ter": {"multi_ref": _score(TER(), hypotheses, multi), "single_ref": _score(TER(), hypotheses, single)},
        "segments": len(hypotheses),
        "references": sum(len(refs) for refs in references),
    }
