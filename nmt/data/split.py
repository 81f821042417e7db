"""Seeded train/dev/test splits that cannot leak a source sentence across splits.

Tatoeba holds many pairs per English sentence ("Go." has several French translations) and
near-duplicates that differ only in case or punctuation ("Go." / "Go!"). A plain random split
puts some of them in train and others in test, and BLEU then rewards memorisation. Grouping by
``fold_for_grouping(source)`` and splitting whole groups prevents that.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["grouped_split", "cached_grouped_split", "stratified_split"]

logger = logging.getLogger("nmt.data")

# Part of the cache key: bump it when the assignment algorithm changes so old caches expire.
SPLIT_ALGORITHM_VERSION = 1
_FRACTION_TOLERANCE = 1e-6


def _checked_fractions(fractions: Mapping[str, float]) -> dict[str, float]:
    fractions = {str(name): float(value) for name, value in fractions.items()}
    if not fractions:
        raise ValueError("split fractions are empty; give e.g. {'train': 0.96, 'dev': 0.02, 'test': 0.02}")
    negative = {name: value for name, value in fractions.items() if value < 0}
    if negative:
        raise ValueError(f"split fractions must not be negative, got {negative}")
    total = sum(fractions.values())
    if abs(total - 1.0) > _FRACTION_TOLERANCE:
        raise ValueError(
            f"split fractions must sum to 1, got {total:.6g} for {fractions}; adjust them, "
            f"e.g. {{'train': 0.96, 'dev': 0.02, 'test': 0.02}}"
        )
    return fractions


def _upper_bounds(n_items: int, fractions: dict[str, float]) -> list[tuple[str, float]]:
    """(split name, end position) with positions measured in items, in the given split order."""
    bounds, cumulative = [], 0.0
    for name, fraction in fractions.items():
        cumulative += fraction
        bounds.append((name, cumulative * n_items))
    return bounds


def grouped_split(keys: Sequence[str], fractions: Mapping[str, float], seed: int) -> dict[str, list[int]]:
    """Split item indices so that all items sharing a key land in the same split.

    :param keys: ``keys[i]`` is the grouping key of item ``i`` (for translation,
        ``fold_for_grouping(source)``).
    :param fractions: target share of items per split, e.g. ``{"train": 0.96, "dev": 0.02,
        "test": 0.02}``; must sum to 1 (within 1e-6).
    :param seed: the same (keys, fractions, seed) always gives the same split.
    :return: split name -> ascending item indices. Each split's size is within one group size
        of ``fraction * len(keys)``.

    The distinct keys are sorted, then shuffled with ``random.Random(seed)``, so the result
    does not depend on the order of the input. Groups are then laid end to end and each is
    assigned to the split whose share of that line holds the group's midpoint.
    """
    fractions = _checked_fractions(fractions)
    members: dict[str, list[int]] = {}
    for index, key in enumerate(keys):
        members.setdefault(key, []).append(index)
    group_order = sorted(members)
    random.Random(seed).shuffle(group_order)

    bounds = _upper_bounds(len(keys), fractions)
    assigned: dict[str, list[int]] = {name: [] for name in fractions}
    filled = 0
    for key in group_order:
        group = members[key]
        midpoint = filled + len(group) / 2
        name = next((name for name, upper in bounds if midpoint < upper), bounds[-1][0])
        assigned[name].extend(group)
        filled += len(group)
    return {name: sorted(indices) for name, indices in assigned.items()}


def _cache_key(keys: Sequence[str], fractions: dict[str, float], seed: int) -> str:
    """sha256 over everything the split depends on, so a stale split is never reused."""
    digest = hashlib.sha256()
    header = {"version": SPLIT_ALGORITHM_VERSION, "fractions": fractions, "seed": seed}
    digest.update(json.dumps(header, sort_keys=True).encode("utf-8"))
    for key in keys:
        # JSON-quoting each key keeps boundaries unambiguous even for keys containing "\n".
        digest.update(b"\n" + json.dumps(key, ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()


def cached_grouped_split(
    keys: Sequence[str], fractions: Mapping[str, float], seed: int, cache_dir: Path | None
) -> dict[str, list[int]]:
    """``grouped_split`` with its result cached as JSON in ``cache_dir`` (None: no cache).

    The file name is a hash of the keys, fractions, seed and algorithm version, so a changed
    corpus or seed computes a fresh split instead of reusing a stale one. A corrupt or
    inconsistent cache file is recomputed (and overwritten) with a warning.
    """
    fractions = _checked_fractions(fractions)
    if cache_dir is None:
        return grouped_split(keys, fractions, seed)
    cache_file = Path(cache_dir) / f"split-{_cache_key(keys, fractions, seed)[:32]}.json"
    if cache_file.exists():
        cached = _load_cached_split(cache_file, len(keys), fractions)
        if cached is not None:
            return cached
    splits = grouped_split(keys, fractions, seed)
    record = {"fractions": fractions, "seed": seed, "splits": splits}
    try:
        _write_atomically(cache_file, json.dumps(record))
    except OSError as error:  # e.g. a read-only data dir: the split is still right, just not cached
        logger.warning("cannot cache the split in %s (%s); set data.split_cache to a writable dir", cache_dir, error)
    return splits


def _load_cached_split(cache_file: Path, n_items: int, fractions: dict[str, float]) -> dict[str, list[int]] | None:
    """The cached split, or None (with a warning) if the file is unreadable or inconsistent."""
    try:
        splits = json.loads(cache_file.read_text(encoding="utf-8"))["splits"]
        indices = sorted(i for name in fractions for i in splits[name])
        if set(splits) == set(fractions) and indices == list(range(n_items)):
            return {name: splits[name] for name in fractions}
        problem = "its indices do not cover the corpus exactly once"
    except (OSError, ValueError, KeyError, TypeError) as error:
        problem = f"it cannot be read ({error})"
    logger.warning("recomputing the split: cache file %s is corrupt, %s", cache_file, problem)
    return None


def _write_atomically(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def stratified_split(labels: Sequence[int], fractions: Mapping[str, float], seed: int) -> dict[str, list[int]]:
    """Split item indices so that every split keeps the label proportions (e.g. 13% spam).

    Each label's items are shuffled with one ``random.Random(seed)`` (labels visited in sorted
    order) and cut at the rounded cumulative fractions.

    :return: split name -> ascending item indices.
    """
    fractions = _checked_fractions(fractions)
    by_label: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_label.setdefault(label, []).append(index)
    rng = random.Random(seed)
    assigned: dict[str, list[int]] = {name: [] for name in fractions}
    for label in sorted(by_label):
        indices = by_label[label]
        rng.shuffle(indices)
        start = 0
        for name, upper in _upper_bounds(len(indices), fractions):
            end = min(round(upper), len(indices))
            assigned[name].extend(indices[start:end])
            start = end
        assigned[name].extend(indices[start:])  # float rounding can leave the last item over
    return {name: sorted(indices) for name, indices in assigned.items()}
