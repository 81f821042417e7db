"""A set of word vectors: the words, their matrix, and the queries everyone asks of them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class WordVectors:
    """Words and their vectors, row ``i`` of :attr:`vectors` belonging to ``words[i]``.

    Files list words by descending frequency (every tool writes them so), and so does
    everything here: "the 30,000 most frequent words" is ``words[:30000]``.

    :ivar words: distinct words.
    :ivar vectors: (len(words), dim) float32.
    """

    words: list[str]
    vectors: np.ndarray
    _index: dict[str, int] = field(init=False, repr=False)
    _unit: np.ndarray | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        self.vectors = np.asarray(self.vectors, dtype=np.float32)
        if self.vectors.ndim != 2 or self.vectors.shape[0] != len(self.words):
            raise ValueError(
                f"WordVectors needs a (words, dim) matrix for {len(self.words)} words, got {self.vectors.shape}"
            )
        self._index = {word: i for i, word in enumerate(self.words)}
        if len(self._index) != len(self.words):
            raise ValueError("WordVectors got a word twice")

    def __repr__(self) -> str:
        return f"WordVectors({len(self)} words, dim={self.dim})"

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self._index

    def index(self, word: str) -> int:
        try:
            return self._index[word]
        except KeyError:
            raise KeyError(f"{word!r} is not in the vocabulary ({len(self)} words)") from None

    def get(self, word: str) -> np.ndarray | None:
        i = self._index.get(word)
        return None if i is None else self.vectors[i]

    def __getitem__(self, word: str) -> np.ndarray:
        return self.vectors[self.index(word)]

    def unit_vectors(self) -> np.ndarray:
        """Rows scaled to length 1 (zero rows stay zero); cached until :meth:`invalidate`."""
        if self._unit is None:
            norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
            self._unit = self.vectors / np.maximum(norms, 1e-12)
        return self._unit

    def invalidate(self) -> None:
        """Forget cached unit vectors after :attr:`vectors` was changed in place."""
        self._unit = None

    def subset(self, words: Iterable[str]) -> WordVectors:
        """The given words (those present), in the given order."""
        keep = [w for w in dict.fromkeys(words) if w in self._index]
        return WordVectors(keep, self.vectors[[self._index[w] for w in keep]])

    def similarity(self, a: str, b: str) -> float:
        unit = self.unit_vectors()
        return float(unit[self.index(a)] @ unit[self.index(b)])

    def most_similar(
        self,
        positive: Sequence[str] = (),
        negative: Sequence[str] = (),
        topn: int = 10,
        restrict_vocab: int | None = None,
    ) -> list[tuple[str, float]]:
        """Nearest words by cosine to the mean of the unit ``positive`` vectors minus the
        ``negative`` ones (3CosAdd, Mikolov et al. 2013; what gensim's ``most_similar`` does).
        The query words themselves are never returned.

        ``most_similar(["king", "woman"], ["man"])`` answers "man : king :: woman : ?".

        :param restrict_vocab: search only the first (most frequent) N words.
        """
        if not positive and not negative:
            raise ValueError("most_similar needs at least one word")
        unit = self.unit_vectors()
        query = np.zeros(self.dim, dtype=np.float32)
        for word in positive:
            query += unit[self.index(word)]
        for word in negative:
            query -= unit[self.index(word)]
        query /= max(float(np.linalg.norm(query)), 1e-12)
        candidates = unit if restrict_vocab is None else unit[:restrict_vocab]
        scores = candidates @ query
        for word in (*positive, *negative):
            i = self._index[word]
            if i < len(scores):
                scores[i] = -np.inf
        topn = min(topn, int(np.isfinite(scores).sum()))
        best = np.argpartition(-scores, topn - 1)[:topn] if topn else np.array([], dtype=int)
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(self.words[i], float(scores[i])) for i in best]

    def analogy(
        self, a: str, b: str, c: str, topn: int = 1, restrict_vocab: int | None = None
    ) -> list[tuple[str, float]]:
        """``a : b :: c : ?`` (e.g. ``man king woman`` -> queen): ``b - a + c``."""
        return self.most_similar([b, c], [a], topn=topn, restrict_vocab=restrict_vocab)

    def to_keyed_vectors(self):
        """The same vectors as a gensim ``KeyedVectors`` (for its benchmark evaluations)."""
        from gensim.models import KeyedVectors

        keyed = KeyedVectors(self.dim, count=0, dtype=np.float32)
        keyed.add_vectors(self.words, self.vectors)
        return keyed

    @classmethod
    def from_keyed_vectors(cls, keyed) -> WordVectors:
        return cls(list(keyed.index_to_key), np.asarray(keyed.vectors, dtype=np.float32))
