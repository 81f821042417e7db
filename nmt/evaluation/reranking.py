"""Pick one hypothesis per sentence from an n-best list by a weighted sum of features, and
tune the weights for corpus BLEU.

A :class:`FeatureTable` holds, for ``S`` sentences with at most ``N`` hypotheses each, ``K``
named features per hypothesis. The reranked choice of sentence ``s`` is
``argmax_n sum_k w_k * f[s, n, k]``; a tie goes to the earlier hypothesis, so the weights
``{"tm": 1}`` keep the decoder's order when ``tm`` is the decoder's score.

:func:`tune_weights` is coordinate ascent (as in MERT / Och 2003, but over a fixed grid
instead of an exact line search): one weight at a time takes the grid value that gives the
highest corpus BLEU with the others fixed, until a whole pass changes nothing. Corpus BLEU is
computed from sufficient statistics (n-gram matches and totals, lengths) extracted once per
hypothesis with sacreBLEU, so each trial costs a sum instead of a re-tokenisation; the result
equals sacreBLEU's ``corpus_score`` of the chosen hypotheses.

Weights are saved as JSON (``{"weights": {"tm": 1.0, "lm": 0.3}, ...}``) to be reused.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sacrebleu.metrics import BLEU

FLOOR = -1e9
"""A feature that is not finite (a ``-inf`` log-probability) counts as this: its hypothesis
loses under a positive weight, and a zero weight still ignores it (0 * -inf would be NaN)."""

GRID = (
    0.0,
    *sorted({sign * value for value in (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5) for sign in (1, -1)}),
)
"""The values a tuned weight may take: zero, and both signs on a roughly logarithmic scale,
because features differ in scale (a log-probability in tens, a length in units)."""

MAX_NGRAM = 4  # sacreBLEU's default order


@dataclass
class FeatureTable:
    """Features of every hypothesis of every sentence.

    :ivar names: the K feature names, in column order.
    :ivar values: (S, N, K) float64; padding rows are 0.
    :ivar mask: (S, N) bool, True where sentence ``s`` has a hypothesis ``n``.
    :ivar texts: per sentence, its hypotheses' texts, best first as the decoder ranked them.
    """

    names: list[str]
    values: np.ndarray
    mask: np.ndarray
    texts: list[list[str]]

    @classmethod
    def from_rows(
        cls, names: Sequence[str], rows: Sequence[Sequence[Mapping[str, float]]], texts: list[list[str]]
    ) -> FeatureTable:
        """:param rows: per sentence, per hypothesis, a value for every name."""
        width = max((len(hyps) for hyps in rows), default=0)
        values = np.zeros((len(rows), max(width, 1), len(names)))
        mask = np.zeros((len(rows), max(width, 1)), dtype=bool)
        for s, hyps in enumerate(rows):
            for n, features in enumerate(hyps):
                values[s, n] = [features[name] for name in names]
                mask[s, n] = True
        values = np.nan_to_num(values, nan=FLOOR, neginf=FLOOR, posinf=-FLOOR)
        return cls(list(names), values, mask, texts)

    def scores(self, weights: Mapping[str, float]) -> np.ndarray:
        """(S, N) weighted sums; ``-inf`` where there is no hypothesis."""
        unknown = sorted(set(weights) - set(self.names))
        if unknown:
            raise ValueError(f"no feature {', '.join(unknown)} in this table (it has {', '.join(self.names)})")
        vector = np.array([weights.get(name, 0.0) for name in self.names])
        return np.where(self.mask, self.values @ vector, -np.inf)

    def best(self, weights: Mapping[str, float]) -> np.ndarray:
        """(S,) the index of each sentence's highest weighted sum (0 for a sentence without hypotheses)."""
        return np.argmax(self.scores(weights), axis=1)

    def choose(self, weights: Mapping[str, float]) -> list[str]:
        """Each sentence's chosen text; an empty string for a sentence without hypotheses."""
        return [hyps[i] if hyps else "" for hyps, i in zip(self.texts, self.best(weights).tolist())]


# -- weights as text and as files -----------------------------------------------------------------
def parse_weights(spec: str, known: Sequence[str]) -> dict[str, float]:
    """``"tm=1,lm=0.3"`` -> ``{"tm": 1.0, "lm": 0.3}``; ValueError naming a bad item or name."""
    weights: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, number = item.partition("=")
        name = name.strip()
        try:
            value = float(number) if sep else math.nan
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise ValueError(f"bad weight {item!r}: write NAME=NUMBER pairs separated by commas, e.g. tm=1,lm=0.3")
        check_names([name], known)
        if name in weights:
            raise ValueError(f"feature {name!r} is given two weights: give each feature once")
        weights[name] = value
    if not weights:
        raise ValueError("no weights given: write NAME=NUMBER pairs separated by commas, e.g. tm=1,lm=0.3")
    return weights


def check_names(names: Sequence[str], known: Sequence[str]) -> None:
    """ValueError for a name that is not in ``known``, listing the known ones."""
    for name in names:
        if name not in known:
            raise ValueError(f"unknown feature {name!r}: the features are {', '.join(known)}")


def format_weights(weights: Mapping[str, float]) -> str:
    """The inverse of :func:`parse_weights`, zero weights left out."""
    return ",".join(f"{name}={value:g}" for name, value in weights.items() if value != 0) or "tm=0"


def save_weights(path: str | Path, weights: Mapping[str, float], **details) -> None:
    """Write ``{"weights": ..., **details}`` as JSON (details: the BLEU, the tuning set)."""
    text = json.dumps({"weights": dict(weights), **details}, indent=2, ensure_ascii=False)
    Path(path).write_text(text + "\n", encoding="utf-8")


def load_weights(path: str | Path, known: Sequence[str]) -> dict[str, float]:
    """The weights of a file written by :func:`save_weights`; ValueError if it is not one."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path} is not a weights file (not JSON: {error.msg}): write one with --save-weights"
        ) from None
    weights = data.get("weights") if isinstance(data, dict) else None
    if not isinstance(weights, dict) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in weights.values()
    ):
        raise ValueError(f"{path} is not a weights file: it needs an object 'weights' of NAME: NUMBER")
    check_names(list(weights), known)
    return {name: float(value) for name, value in weights.items()}


# -- corpus BLEU from per-hypothesis statistics ---------------------------------------------------
def bleu_statistics(table: FeatureTable, references: Sequence[Sequence[str]]) -> np.ndarray:
    """(S, N, 2 * MAX_NGRAM + 2) sacreBLEU statistics of every hypothesis: n-gram matches,
    n-gram totals, hypothesis length, reference length (the closest reference's).

    :param references: per sentence, its references (at least one each).
    """
    if len(references) != len(table.texts):
        raise ValueError(f"{len(references)} reference lines for {len(table.texts)} sentences: they must be parallel")
    # effective_order only affects a sentence's score, not the statistics read here; it
    # keeps sacreBLEU from warning that sentence BLEU wants it.
    metric = BLEU(effective_order=True)
    stats = np.zeros((*table.mask.shape, 2 * MAX_NGRAM + 2))
    for s, (hyps, refs) in enumerate(zip(table.texts, references)):
        if not refs:
            raise ValueError(f"line {s + 1}: no reference: every sentence needs one")
        for n, hyp in enumerate(hyps or [""]):
            score = metric.sentence_score(hyp, list(refs))
            stats[s, n] = [*score.counts, *score.totals, score.sys_len, score.ref_len]
    return stats


def corpus_bleu(stats: np.ndarray) -> float:
    """sacreBLEU's corpus BLEU (default settings) of summed statistics, (2 * MAX_NGRAM + 2,)."""
    counts, totals = stats[:MAX_NGRAM], stats[MAX_NGRAM : 2 * MAX_NGRAM]
    result = BLEU.compute_bleu(
        correct=[int(c) for c in counts],
        total=[int(t) for t in totals],
        sys_len=int(stats[-2]),
        ref_len=int(stats[-1]),
        smooth_method="exp",
    )
    return float(result.score)


def chosen_bleu(stats: np.ndarray, choice: np.ndarray) -> float:
    """Corpus BLEU when sentence ``s`` outputs hypothesis ``choice[s]``."""
    return corpus_bleu(stats[np.arange(len(choice)), choice].sum(axis=0))


# -- tuning -------------------------------------------------------------------------------------
@dataclass
class TuningResult:
    """:ivar weights: the best found. :ivar bleu: their corpus BLEU on the tuning set.
    :ivar start_bleu: the starting weights' BLEU. :ivar oracle_bleu: BLEU of the best
    hypothesis per sentence by sentence statistics (an upper bound's estimate).
    :ivar trials: weight settings scored."""

    weights: dict[str, float]
    bleu: float
    start_bleu: float
    oracle_bleu: float
    trials: int
    history: list[tuple[str, float, float]] = field(default_factory=list)


def tune_weights(
    table: FeatureTable,
    references: Sequence[Sequence[str]],
    features: Sequence[str] | None = None,
    start: Mapping[str, float] | None = None,
    grid: Sequence[float] = GRID,
    max_passes: int = 10,
) -> TuningResult:
    """Coordinate ascent over ``features`` (default: all of the table's) for corpus BLEU.

    :param start: the first weights (default ``tm=1``, or the first feature at 1).
    :param references: per sentence, its references.
    """
    features = list(features or table.names)
    check_names(features, table.names)
    if not features:
        raise ValueError("nothing to tune: name at least one feature")
    first = "tm" if "tm" in features else features[0]
    weights = {name: 0.0 for name in features}
    weights.update(start or {first: 1.0})
    stats = bleu_statistics(table, references)
    best = chosen_bleu(stats, table.best(weights))
    result = TuningResult(dict(weights), best, best, oracle_bleu(stats, table.mask), 1)
    for _ in range(max_passes):
        changed = False
        for name in features:
            for value in grid:
                if value == weights[name]:
                    continue
                trial = {**weights, name: value}
                if not any(trial.values()):
                    continue
                bleu = chosen_bleu(stats, table.best(trial))
                result.trials += 1
                # Strictly better only: ties keep the simpler, earlier setting.
                if bleu > best + 1e-9:
                    best, weights, changed = bleu, trial, True
                    result.history.append((name, value, bleu))
        if not changed:
            break
    result.weights, result.bleu = weights, best
    return result


def oracle_bleu(stats: np.ndarray, mask: np.ndarray) -> float:
    """Corpus BLEU when each sentence takes its hypothesis of highest sentence BLEU (smoothed)."""
    metric_choice = []
    for s in range(stats.shape[0]):
        candidates = [n for n in range(stats.shape[1]) if mask[s, n]] or [0]
        metric_choice.append(max(candidates, key=lambda n: (_sentence_bleu(stats[s, n]), -n)))
    return chosen_bleu(stats, np.array(metric_choice, dtype=int))


def _sentence_bleu(stats: np.ndarray) -> float:
    counts, totals = stats[:MAX_NGRAM], stats[MAX_NGRAM : 2 * MAX_NGRAM]
    return BLEU.compute_bleu(
        correct=[int(c) for c in counts],
        total=[int(t) for t in totals],
        sys_len=int(stats[-2]),
        ref_len=int(stats[-1]),
        smooth_method="add-k",
        smooth_value=1,
    ).score
