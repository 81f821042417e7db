"""Intrinsic evaluation on the standard English sets that gensim ships with its test data.

* **Analogies**: Mikolov et al.'s Google set (``questions-words.txt``, 19,544 questions in 14
  sections: 5 semantic such as capital-world and family, 9 syntactic such as gram3-comparative),
  answered by 3CosAdd among the ``restrict_vocab`` most frequent words, case-insensitively
  (gensim's ``evaluate_word_analogies``). Questions with a word outside that vocabulary are
  skipped, so the **coverage** (share of questions answered) matters as much as the accuracy.
* **Similarity**: WordSim-353 (``wordsim353.tsv``): Pearson and Spearman correlation of cosine
  similarity with human ratings over the pairs both of whose words are known.
* **Nearest neighbours** of chosen words.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nmt.embeddings.vectors import WordVectors

SYNTACTIC_PREFIX = "gram"  # questions-words.txt: 5 semantic sections, then 9 named gram1-... (syntactic)


def gensim_test_file(name: str) -> Path:
    """A file of gensim's test data (``questions-words.txt``, ``wordsim353.tsv``)."""
    try:
        import gensim
    except ImportError as error:
        raise RuntimeError("the evaluation sets come with gensim: pip install 'nmt[embeddings]'") from error
    # where gensim.test.utils.datapath looks (importing that module builds a demo corpus)
    path = Path(gensim.__file__).parent / "test" / "test_data" / name
    if not path.is_file():
        raise FileNotFoundError(f"gensim's test data has no {name} at {path}: reinstall gensim")
    return path


def _count_questions(path: Path) -> int:
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip() and not line.startswith(":"))


def analogy_accuracy(
    vectors: WordVectors, path: str | Path | None = None, restrict_vocab: int = 30000
) -> dict[str, Any]:
    """Accuracy on the analogy questions whose four words are among the ``restrict_vocab``
    most frequent ones (case-insensitive), and the share of questions that were.

    :return: ``accuracy``, ``correct``, ``answered``, ``questions``, ``coverage``,
        ``semantic`` and ``syntactic`` accuracies (None when no question was answered), and
        ``sections`` (name -> [correct, answered]).
    """
    import logging

    path = Path(path) if path else gensim_test_file("questions-words.txt")
    keyed = vectors.to_keyed_vectors()
    gensim_log = logging.getLogger("gensim.models.keyedvectors")
    level = gensim_log.level
    gensim_log.setLevel(logging.WARNING)  # it logs every section at INFO
    try:
        _, sections = keyed.evaluate_word_analogies(str(path), restrict_vocab=restrict_vocab, case_insensitive=True)
    finally:
        gensim_log.setLevel(level)
    parts = [s for s in sections if s["section"] != "Total accuracy"]

    def score(group: Sequence[dict]) -> tuple[int, int]:
        return sum(len(s["correct"]) for s in group), sum(len(s["correct"]) + len(s["incorrect"]) for s in group)

    correct, answered = score(parts)
    syntactic_parts = [s for s in parts if s["section"].startswith(SYNTACTIC_PREFIX)]
    semantic = score([s for s in parts if not s["section"].startswith(SYNTACTIC_PREFIX)])
    syntactic = score(syntactic_parts)
    questions = _count_questions(path)
    return {
        "accuracy": correct / answered if answered else None,
        "correct": correct,
        "answered": answered,
        "questions": questions,
        "coverage": answered / questions if questions else 0.0,
        "semantic": semantic[0] / semantic[1] if semantic[1] else None,
        "syntactic": syntactic[0] / syntactic[1] if syntactic[1] else None,
        "sections": {s["section"]: list(score([s])) for s in parts},
    }


def similarity_correlation(vectors: WordVectors, path: str | Path | None = None) -> dict[str, Any]:
    """Pearson and Spearman correlation with the human ratings of WordSim-353 (or ``path``,
    lines ``word1<TAB>word2<TAB>score``), over the pairs whose two words are known.

    :return: ``pearson``, ``spearman``, ``pairs`` (used), ``oov`` (share of pairs skipped).
    """
    import logging

    path = Path(path) if path else gensim_test_file("wordsim353.tsv")
    keyed = vectors.to_keyed_vectors()
    gensim_log = logging.getLogger("gensim.models.keyedvectors")
    level = gensim_log.level
    gensim_log.setLevel(logging.WARNING)
    with open(path, encoding="utf-8") as handle:
        total = sum(1 for line in handle if line.strip() and not line.startswith("#"))
    try:
        pearson, spearman, oov_percent = keyed.evaluate_word_pairs(
            str(path), restrict_vocab=len(vectors), case_insensitive=True
        )
    except ValueError:  # gensim's answer when no pair is known (e.g. Korean vectors)
        return {"pearson": None, "spearman": None, "pairs": 0, "oov": 1.0}
    finally:
        gensim_log.setLevel(level)
    used = round(total * (1 - oov_percent / 100))
    valid = used >= 3
    return {
        "pearson": float(pearson[0]) if valid else None,
        "spearman": float(spearman.statistic if hasattr(spearman, "statistic") else spearman[0]) if valid else None,
        "pairs": used,
        "oov": oov_percent / 100,
    }


def nearest_neighbours(vectors: WordVectors, words: Sequence[str], topn: int = 8) -> dict[str, list[tuple[str, float]]]:
    """The ``topn`` nearest words (cosine) of each of ``words`` that is in the vocabulary."""
    return {word: vectors.most_similar([word], topn=topn) for word in words if word in vectors}


def evaluate(vectors: WordVectors, *, restrict_vocab: int = 30000, neighbours: Sequence[str] = ()) -> dict[str, Any]:
    """Analogies, WordSim-353 and the neighbours of ``neighbours``, as one JSON-ready dict."""
    return {
        "analogies": analogy_accuracy(vectors, restrict_vocab=restrict_vocab),
        "wordsim353": similarity_correlation(vectors),
        "neighbours": {
            w: [[n, round(s, 4)] for n, s in found] for w, found in nearest_neighbours(vectors, neighbours).items()
        },
    }


def summary(report: dict[str, Any]) -> str:
    """One line: analogy accuracy and coverage, WordSim-353 Spearman."""
    analogies, wordsim = report["analogies"], report["wordsim353"]

    def percent(value):
        return "n/a" if value is None else f"{100 * value:.1f}%"

    spearman = "n/a" if wordsim["spearman"] is None else f"{wordsim['spearman']:.3f}"
    return (
        f"analogies {percent(analogies['accuracy'])} of {analogies['answered']:,} answered "
        f"({percent(analogies['coverage'])} of {analogies['questions']:,}; semantic {percent(analogies['semantic'])}, "
        f"syntactic {percent(analogies['syntactic'])}); WordSim-353 Spearman {spearman} "
        f"({wordsim['pairs']} pairs, {percent(wordsim['oov'])} unknown)"
    )
