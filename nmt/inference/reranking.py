"""n-best lists of ``nmt-translate --output-format jsonl --n-best N`` -> reranking features.

The features of one hypothesis (:data:`FEATURES`):

* ``tm``: the score the decoder ranked it by (the n-best record's ``score``: the
  log-probability divided by the GNMT length penalty of beam search, or the plain
  log-probability with ``--length-penalty 0`` or sampling), so ``tm=1`` alone keeps the order;
* ``tm_logprob``: the translation model's log p(tokens + EOS | source), the sum of the
  per-token log-probabilities; ``tm_avg``: the same per token (EOS included);
* ``tokens``: its length in target tokens (without EOS); ``words``: in space-separated words;
* ``lm``: a language model's log p(text + EOS) of the detokenised translation, tokenised with
  that model's own tokenizer (:class:`~nmt.inference.lm_scorer.TextScorer`);
* ``rev``: a reverse-direction translation model's log p(source | translation) (the noisy
  channel), by forced decoding (:class:`~nmt.inference.scorer.Scorer`).

A log-probability that is not finite (``null`` in the JSON) counts as ``-inf``: see
:data:`nmt.evaluation.reranking.FLOOR`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from nmt.data.directions import DirectionError
from nmt.data.text import normalize_text
from nmt.data.tokenizers import EOS
from nmt.evaluation.reranking import FeatureTable
from nmt.inference.lm_scorer import TextScorer
from nmt.inference.scorer import Scorer

FEATURES = {
    "tm": "the decoder's score of the hypothesis (the n-best file's 'score')",
    "tm_logprob": "translation model log-probability, summed over tokens and EOS",
    "tm_avg": "translation model log-probability per token (EOS included)",
    "tokens": "target tokens, EOS not counted",
    "words": "space-separated words of the translation",
    "lm": "language model log-probability of the translation (--lm)",
    "rev": "reverse translation model log-probability of the source given the translation (--reverse)",
}
MODEL_FEATURES = {"lm": "--lm", "rev": "--reverse"}
"""Features that need a model, and the option that gives it."""


@dataclass
class Hypothesis:
    """One n-best entry: its text, its target tokens (``<eos>`` last when it ended) and the
    translation model's scores (``-inf`` for a JSON ``null``)."""

    translation: str
    tokens: list[str]
    log_prob: float
    score: float


@dataclass
class NBestEntry:
    """One source line's n-best list, best first as the decoder ranked it."""

    source: str
    hypotheses: list[Hypothesis]


def _number(value, where: str, key: str) -> float:
    if value is None:
        return -math.inf
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}: {key!r} is {value!r}, not a number")
    return float(value)


def parse_hypothesis(record, where: str) -> Hypothesis:
    if not isinstance(record, dict):
        raise ValueError(f"{where}: a hypothesis is not a JSON object")
    missing = [key for key in ("translation", "tokens", "log_prob", "score") if key not in record]
    if missing:
        raise ValueError(f"{where}: no {', '.join(map(repr, missing))}")
    if not isinstance(record["translation"], str) or not isinstance(record["tokens"], list):
        raise ValueError(f"{where}: 'translation' must be a string and 'tokens' a list")
    return Hypothesis(
        record["translation"],
        [str(token) for token in record["tokens"]],
        _number(record["log_prob"], where, "log_prob"),
        _number(record["score"], where, "score"),
    )


def parse_nbest(lines: Sequence[str], name: str = "-") -> list[NBestEntry]:
    """The records of ``nmt-translate --output-format jsonl`` (one JSON object per line).

    :raises ValueError: a line that is not such a record, naming the file, line and key.
    """
    hint = "give the output of nmt-translate --output-format jsonl --n-best N"
    entries = []
    for number, line in enumerate(lines, start=1):
        where = f"{name} line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{where}: not JSON ({error.msg}): {hint}") from None
        if not isinstance(record, dict) or not isinstance(record.get("hypotheses"), list):
            raise ValueError(f"{where}: not an n-best record (no list 'hypotheses'): {hint}")
        if not isinstance(record.get("source"), str):
            raise ValueError(f"{where}: not an n-best record (no string 'source'): {hint}")
        hypotheses = [
            parse_hypothesis(hyp, f"{where}, hypothesis {k}") for k, hyp in enumerate(record["hypotheses"], start=1)
        ]
        entries.append(NBestEntry(record["source"], hypotheses))
    return entries


def check_sources(entries: Sequence[NBestEntry], sources: Sequence[str], name: str = "the source file") -> None:
    """ValueError unless ``sources`` are, line for line, the n-best list's sources."""
    if len(entries) != len(sources):
        raise ValueError(
            f"{name} has {len(sources)} lines but the n-best file has {len(entries)}: "
            "give the source file the n-best list was translated from"
        )
    for number, (entry, source) in enumerate(zip(entries, sources), start=1):
        if normalize_text(source) != entry.source:
            raise ValueError(
                f"line {number}: the n-best list translates {entry.source!r}, not {source!r}: "
                "give the source file the n-best list was translated from"
            )


def needed_models(names: Sequence[str], have: dict[str, object]) -> None:
    """ValueError for a model feature asked for without its model (``have``: feature -> model or None)."""
    for name in names:
        if name in MODEL_FEATURES and have.get(name) is None:
            raise ValueError(f"feature {name!r} needs a model: give it with {MODEL_FEATURES[name]} CHECKPOINT")


def text_features(hyp: Hypothesis) -> dict[str, float]:
    """The features that the n-best record itself gives."""
    ended = bool(hyp.tokens) and hyp.tokens[-1] == EOS
    predicted = max(len(hyp.tokens), 1)
    return {
        "tm": hyp.score,
        "tm_logprob": hyp.log_prob,
        "tm_avg": hyp.log_prob / predicted,
        "tokens": float(len(hyp.tokens) - int(ended)),
        "words": float(len(hyp.translation.split())),
    }


def feature_table(
    entries: Sequence[NBestEntry],
    sources: Sequence[str],
    names: Sequence[str],
    *,
    lm: TextScorer | None = None,
    reverse: Scorer | None = None,
    reverse_to: str | None = None,
    batch_size: int = 64,
) -> FeatureTable:
    """The features ``names`` of every hypothesis.

    :param sources: the raw source lines (the reverse model reads them as its targets).
    :param lm: scores ``lm``; :param reverse: a target-to-source translation model, scores ``rev``.
    :param reverse_to: the language of ``sources``: the direction a reverse model trained on
        several directions scores in (required for such a model; refused for any other).
    """
    needed_models(names, {"lm": lm, "rev": reverse})
    if "rev" in names and reverse is not None:
        check_reverse_direction(reverse, reverse_to)
    rows = [[text_features(hyp) for hyp in entry.hypotheses] for entry in entries]
    flat = [(s, n) for s, entry in enumerate(entries) for n in range(len(entry.hypotheses))]
    if "lm" in names and lm is not None:
        unique = sorted({entries[s].hypotheses[n].translation for s, n in flat})
        scored = dict(zip(unique, (text.log_prob for text in lm.score(unique, batch_size))))
        for s, n in flat:
            rows[s][n]["lm"] = scored[entries[s].hypotheses[n].translation]
    if "rev" in names and reverse is not None:
        pairs = [(entries[s].hypotheses[n].translation, sources[s]) for s, n in flat]
        for (s, n), pair in zip(flat, reverse.score(pairs, batch_size, to=reverse_to)):
            rows[s][n]["rev"] = -math.inf if pair.log_prob is None else pair.log_prob
    texts = [[hyp.translation for hyp in entry.hypotheses] for entry in entries]
    return FeatureTable.from_rows(names, rows, texts)


def check_reverse_direction(reverse: Scorer, reverse_to: str | None) -> None:
    """A reverse model trained on several directions cannot guess which one reads the
    translations back into the source language: ``reverse_to`` must say (a default would
    score in the wrong direction without a word).

    :raises DirectionError: ``reverse_to`` missing for such a model, or not one of its targets.
    """
    directions = reverse.translator.directions
    if directions is None:
        if reverse_to is not None:
            raise DirectionError("the reverse model translates one direction only: drop --reverse-to")
        return
    targets = [direction.target for direction in directions]
    if reverse_to not in targets:
        trained = ", ".join(str(direction) for direction in directions)
        asked = "" if reverse_to is None else f" into {reverse_to!r}, which it does not translate into"
        raise DirectionError(
            f"the reverse model was trained on several directions ({trained}){asked}: give the language of "
            f"the source lines with --reverse-to, one of {', '.join(targets)}"
        )


def feature_records(entries: Sequence[NBestEntry], table: FeatureTable, choice: Sequence[int]) -> list[dict]:
    """One record per source line: each hypothesis's features and the index chosen (None: none)."""
    records = []
    for s, (entry, k) in enumerate(zip(entries, choice)):
        hyps = [
            {"translation": hyp.translation, "features": dict(zip(table.names, table.values[s, n].tolist()))}
            for n, hyp in enumerate(entry.hypotheses)
        ]
        records.append({"source": entry.source, "chosen": k if entry.hypotheses else None, "hypotheses": hyps})
    return records


def table_from_records(
    lines: Sequence[str], entries: Sequence[NBestEntry], names: Sequence[str], name: str = "-"
) -> FeatureTable:
    """The features ``names`` read back from :func:`feature_records` lines of the same n-best lists.

    :raises ValueError: a line that is not such a record, is of another n-best list, or lacks a feature.
    """
    if len(lines) != len(entries):
        raise ValueError(f"{name} has {len(lines)} lines but the n-best file has {len(entries)}: give its own features")
    rows = []
    for number, (line, entry) in enumerate(zip(lines, entries), start=1):
        where = f"{name} line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{where}: not JSON ({error.msg}): give a file written by --features-output") from None
        hyps = record.get("hypotheses") if isinstance(record, dict) else None
        if not isinstance(hyps, list) or [h.get("translation") for h in hyps] != [
            h.translation for h in entry.hypotheses
        ]:
            raise ValueError(
                f"{where}: not the features of this n-best list: give the file --features-output wrote for it"
            )
        row = []
        for hyp in hyps:
            features = hyp.get("features") or {}
            missing = [key for key in names if key not in features]
            if missing:
                raise ValueError(f"{where}: no feature {', '.join(missing)}: compute it, without --features-input")
            row.append({key: float(features[key]) for key in names})
        rows.append(row)
    return FeatureTable.from_rows(names, rows, [[hyp.translation for hyp in entry.hypotheses] for entry in entries])
