"""Averaged word vectors and logistic regression: the word-vector baseline (``model.type=mean_vectors``).

A text is cut into words as the vectors' own run cut them (:class:`~nmt.data.tokenizers.WordTokenizer`'s
rule: ``lowercase``, ``punctuation``), and its document vector is the mean of the vectors of the
words the table has; words it lacks are ignored, and a text with none of them is the zero vector::

    doc(text) = (1 / |K|) sum_{w in K} v_w,   K = the text's words (with repeats) found in the table

A logistic regression (scikit-learn, L2, ``C``) is fitted on the training documents:
``scores = doc @ weight.T + bias``, (classes, dim); two classes keep row 0 at zero so that the
scores are the two logits. The fitted model is plain data (the words, the (words, dim) table,
the weights) and is saved in an ordinary ``nmt`` checkpoint, like :mod:`nmt.baselines.naive_bayes`.

The table is passed in (a higher layer reads the vector file): this module reads no file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from nmt.baselines.naive_bayes import margin_weights
from nmt.data.tokenizers import WordTokenizer

KIND = "mean_vectors"
"""The ``kind`` of a saved description (a :class:`~nmt.baselines.naive_bayes.LinearTextModel` has none)."""


@dataclass
class MeanVectorModel:
    """A fitted word-vector baseline.

    :ivar words: the table's words, in row order. :ivar vectors: (words, dim) float32.
    :ivar weight: (num_classes, dim) float32. :ivar bias: (num_classes,) float32.
    :ivar lowercase, punctuation: how a text is cut into words (``WordTokenizer``'s rule).
    """

    words: list[str]
    vectors: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor
    lowercase: bool = True
    punctuation: str = "split"

    def __post_init__(self) -> None:
        self._rows = {word: row for row, word in enumerate(self.words)}
        self._splitter = WordTokenizer([], lowercase=self.lowercase, punctuation=self.punctuation)

    def split(self, text: str) -> list[str]:
        """The words of ``text``, cut as the table's words were."""
        return self._splitter.split(text)

    def __contains__(self, word: object) -> bool:
        return word in self._rows

    def document_vectors(self, texts: Sequence[str]) -> np.ndarray:
        """(texts, dim) float64: each text's mean found vector (zero when none is found)."""
        return mean_vectors(texts, self._rows, self.vectors.double().numpy(), self._splitter)

    def scores(self, texts: Sequence[str]) -> torch.Tensor:
        """(texts, num_classes) float64 logits."""
        documents = self.document_vectors(texts)
        return torch.from_numpy(documents @ self.weight.double().numpy().T + self.bias.double().numpy())

    def predict(self, texts: Sequence[str]) -> torch.Tensor:
        """(texts,) the highest-scoring class of each text."""
        return self.scores(texts).argmax(dim=-1)

    def contributions(self, text: str, label: int) -> list[tuple[str, float]]:
        """Why ``text`` scores ``label``: each of its words, in order, with ``(W[label] - mean of
        the other classes' W) . v_w / |K|`` (0 for a word the table lacks). With the same
        difference of biases they sum to the margin of ``label`` over the other classes' mean
        logit (two classes: the log-odds)."""
        words = self.split(text)
        found = [word for word in words if word in self._rows]
        if not found:
            return [(word, 0.0) for word in words]
        direction = margin_weights(self.weight.double(), label)
        vectors = self.vectors.double()[[self._rows[word] for word in found]]
        per_word = dict(zip(found, ((vectors @ direction) / len(found)).tolist()))
        return [(word, per_word.get(word, 0.0)) for word in words]

    # -- checkpoint form ----------------------------------------------------------------------
    def to_state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """(plain-type description, tensors) for a checkpoint's payload and state_dict."""
        description = {
            "kind": KIND,
            "words": list(self.words),
            "lowercase": self.lowercase,
            "punctuation": self.punctuation,
        }
        return description, {"vectors": self.vectors, "weight": self.weight, "bias": self.bias}

    @classmethod
    def from_state(cls, description: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> MeanVectorModel:
        vectors, weight, bias = (tensors[key].float() for key in ("vectors", "weight", "bias"))
        words = list(description["words"])
        if vectors.shape[0] != len(words) or weight.shape != (bias.numel(), vectors.shape[1]):
            raise ValueError(
                f"mean-vector baseline: {len(words)} words, vectors {tuple(vectors.shape)}, "
                f"weights {tuple(weight.shape)} and {bias.numel()} classes do not fit together"
            )
        return cls(words, vectors, weight, bias, bool(description["lowercase"]), str(description["punctuation"]))


def mean_vectors(
    texts: Sequence[str], rows: Mapping[str, int], vectors: np.ndarray, splitter: WordTokenizer
) -> np.ndarray:
    """(texts, dim) the mean of ``vectors[rows[w]]`` over each text's words ``w`` found in ``rows``.

    :param vectors: (words, dim). A text without a found word gives the zero vector.
    """
    documents = np.zeros((len(texts), vectors.shape[1]), dtype=np.float64)
    for index, text in enumerate(texts):
        found = [rows[word] for word in splitter.split(text) if word in rows]
        if found:
            documents[index] = vectors[found].mean(axis=0)
    return documents


def fit_mean_vectors(
    texts: Sequence[str],
    labels: Sequence[int],
    num_classes: int,
    words: Sequence[str],
    vectors: np.ndarray,
    C: float,
    *,
    lowercase: bool = True,
    punctuation: str = "split",
    seed: int = 0,
    documents: np.ndarray | None = None,
) -> MeanVectorModel:
    """Fit the logistic regression on the training texts' document vectors.

    :param vectors: (words, dim), the table for ``words``. :param documents: the texts'
        document vectors when already computed (shared across the ``C`` grid).
    """
    from sklearn.linear_model import LogisticRegression

    table = torch.from_numpy(np.asarray(vectors, dtype=np.float32))
    if documents is None:
        model = MeanVectorModel(list(words), table, torch.zeros(0), torch.zeros(0), lowercase, punctuation)
        documents = model.document_vectors(texts)
    y = np.asarray(labels)
    classifier = LogisticRegression(C=C, max_iter=2000, random_state=seed)
    classifier.fit(documents, y)
    dim = table.shape[1]
    weight = np.zeros((num_classes, dim))
    bias = np.zeros(num_classes)
    if len(classifier.classes_) == 2:  # one logit: the score of classes_[1] against classes_[0]
        weight[classifier.classes_[1]] = classifier.coef_[0]
        bias[classifier.classes_[1]] = classifier.intercept_[0]
    else:
        weight[classifier.classes_] = classifier.coef_
        bias[classifier.classes_] = classifier.intercept_
    absent = [c for c in range(num_classes) if c not in classifier.classes_]
    bias[absent] = -np.inf  # a class never seen in training is never predicted
    return MeanVectorModel(
        list(words),
        table,
        torch.from_numpy(weight).float(),
        torch.from_numpy(bias).float(),
        lowercase,
        punctuation,
    )
