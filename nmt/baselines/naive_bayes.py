"""Naive Bayes baselines for text classification (scikit-learn), as linear models over n-grams.

Two models (``model.type``):

- ``multinomial_nb``: multinomial Naive Bayes over word or character n-gram ``counts``,
  ``binary`` presence or ``tfidf`` weights; the class score is
  ``log P(c) + sum_i x_i log theta_ci`` (``MultinomialNB``, Laplace/Lidstone ``alpha``).
- ``nbsvm``: NB-SVM (Wang & Manning 2012). Features are binarised n-grams ``f`` scaled by
  the Naive Bayes log-count ratio ``r = log((p / |p|_1) / (q / |q|_1))``, ``p = alpha + sum
  of f over the positive texts``, ``q`` likewise over the others; a linear SVM (``LinearSVC``,
  squared hinge, ``C``) is trained on ``r * f`` and its weights are interpolated towards their
  mean magnitude, ``w' = (1 - beta) mean|w| + beta w``. More than two classes: one against
  the rest, each with its own ratio.

Both end as ``scores = features(text) @ weight.T + bias``, (classes, n_features) tensors, so a
fitted model is plain data (vocabulary, idf, weights): it is saved in an ordinary ``nmt``
checkpoint that loads with ``torch.load(weights_only=True)``; scikit-learn only builds the
n-gram counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch

from nmt.config.schema import BaselineAnalyzer, BaselineFeatures, BaselineType, choices

MODEL_TYPES = choices(BaselineType)
FEATURES = choices(BaselineFeatures)
ANALYZERS = choices(BaselineAnalyzer)


def _sklearn():
    try:
        import sklearn  # noqa: F401
    except ImportError as error:  # one line, with the fix
        raise ImportError("the Naive Bayes baselines need scikit-learn: pip install -e '.[baselines]'") from error


@dataclass
class LinearTextModel:
    """A fitted baseline: n-gram features of a text, then linear class scores.

    :ivar vocabulary: the n-grams, in feature (column) order.
    :ivar vectorizer: ``CountVectorizer`` options (analyzer, ngram_range, lowercase, token_pattern).
    :ivar features: ``counts`` | ``binary`` | ``tfidf`` (with ``idf`` and ``sublinear_tf``).
    :ivar weight: (num_classes, num_features) float32. :ivar bias: (num_classes,) float32.
    """

    vocabulary: list[str]
    vectorizer: dict[str, Any]
    features: str
    weight: torch.Tensor
    bias: torch.Tensor
    idf: torch.Tensor | None = None
    sublinear_tf: bool = False

    def _counts(self, texts: Sequence[str]):
        from sklearn.feature_extraction.text import CountVectorizer

        vocabulary = {term: index for index, term in enumerate(self.vocabulary)}
        return CountVectorizer(vocabulary=vocabulary, dtype=np.float64, **self.vectorizer).transform(list(texts))

    def transform(self, texts: Sequence[str]):
        """(texts, num_features) scipy CSR matrix of the model's features."""
        return transform_counts(self._counts(texts), self.features, self.idf, self.sublinear_tf)

    def scores(self, texts: Sequence[str]) -> torch.Tensor:
        """(texts, num_classes) float64 class scores (log joint probabilities for NB, margins for NB-SVM)."""
        features = self.transform(texts)
        weight = self.weight.double().numpy()
        scores = np.asarray(features @ weight.T) + self.bias.double().numpy()
        return torch.from_numpy(scores)

    def predict(self, texts: Sequence[str]) -> torch.Tensor:
        """(texts,) the highest-scoring class of each text."""
        return self.scores(texts).argmax(dim=-1)

    def contributions(self, text: str, label: int) -> list[tuple[str, float]]:
        """Why ``text`` scores ``label``: each of its n-grams with ``x_j * (W[label, j] - mean
        of the other classes' W[k, j])``, in the order the analyser meets them. With the same
        difference of biases they sum to the margin of ``label`` over the other classes' mean
        score (two classes: the log-odds of Naive Bayes, the margin of NB-SVM)."""
        features = self.transform([text])
        columns, values = features.indices, features.data
        # Only the text's columns: converting the whole (classes, n-grams) matrix per text is the cost.
        weights = margin_weights(self.weight[:, torch.from_numpy(columns)].double(), label).numpy()
        by_column = dict(zip(columns.tolist(), (values * weights).tolist()))
        seen: dict[str, float] = {}
        for term in self._analyser(text):
            column = self._columns.get(term)
            if column is not None and term not in seen:
                seen[term] = by_column.get(column, 0.0)
        return list(seen.items())

    @cached_property
    def _columns(self) -> dict[str, int]:
        return {term: column for column, term in enumerate(self.vocabulary)}

    @cached_property
    def _analyser(self):
        """text -> its n-grams in reading order, as the features were counted."""
        from sklearn.feature_extraction.text import CountVectorizer

        return CountVectorizer(**self.vectorizer).build_analyzer()

    # -- checkpoint form ----------------------------------------------------------------------
    def to_state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """(plain-type description, tensors) for a checkpoint's payload and state_dict."""
        description = {
            "vocabulary": list(self.vocabulary),
            "vectorizer": _plain(self.vectorizer),
            "features": self.features,
            "sublinear_tf": self.sublinear_tf,
        }
        tensors = {"weight": self.weight, "bias": self.bias}
        if self.idf is not None:
            tensors["idf"] = self.idf
        return description, tensors

    @classmethod
    def from_state(cls, description: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> LinearTextModel:
        vectorizer = dict(description["vectorizer"])
        vectorizer["ngram_range"] = tuple(vectorizer["ngram_range"])
        weight, bias = tensors["weight"].float(), tensors["bias"].float()
        if weight.shape != (bias.numel(), len(description["vocabulary"])):
            raise ValueError(
                f"baseline weights {tuple(weight.shape)} do not match {bias.numel()} classes and "
                f"{len(description['vocabulary'])} n-grams"
            )
        return cls(
            list(description["vocabulary"]),
            vectorizer,
            description["features"],
            weight,
            bias,
            tensors.get("idf"),
            bool(description.get("sublinear_tf", False)),
        )


def margin_weights(weight: torch.Tensor, label: int) -> torch.Tensor:
    """(features,) ``weight[label]`` minus the mean of the other classes' rows (the row itself
    for a one-class model): what one unit of each feature adds to ``label``'s margin.

    :param weight: (num_classes, features).
    """
    if weight.size(0) == 1:
        return weight[0]
    others = torch.cat([weight[:label], weight[label + 1 :]])
    return weight[label] - others.mean(dim=0)


def _plain(options: Mapping[str, Any]) -> dict[str, Any]:
    return {key: list(value) if isinstance(value, tuple) else value for key, value in options.items()}


def transform_counts(counts, features: str, idf: torch.Tensor | None = None, sublinear_tf: bool = False):
    """Counts (CSR) -> the model's features: as they are, binarised, or l2-normalised tf-idf."""
    counts = counts.tocsr().astype(np.float64)
    if features == "counts":
        return counts
    if features == "binary":
        counts.data[:] = 1.0
        return counts
    if features == "tfidf":
        from sklearn.preprocessing import normalize

        if sublinear_tf:
            counts.data = 1.0 + np.log(counts.data)
        assert idf is not None, "tf-idf features need the idf weights"
        return normalize(counts.multiply(idf.double().numpy()).tocsr(), norm="l2")
    raise ValueError(f"model.features={features!r} is not supported: use one of {', '.join(FEATURES)}")


def vectorizer_options(model: Mapping[str, Any]) -> dict[str, Any]:
    """``CountVectorizer`` arguments from the ``model`` group (conf/model/naive_bayes.yaml)."""
    options = {
        "analyzer": model["analyzer"],
        "ngram_range": tuple(int(n) for n in model["ngram_range"]),
        "lowercase": bool(model["lowercase"]),
    }
    if model["analyzer"] == "word":
        options["token_pattern"] = model["token_pattern"]
    return options


def fit_vocabulary(texts: Sequence[str], model: Mapping[str, Any]):
    """The training split's n-gram counts (CSR) and the vocabulary, in column order."""
    _sklearn()
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(
        min_df=int(model["min_df"]),
        max_features=model.get("max_features"),
        dtype=np.float64,
        **vectorizer_options(model),
    )
    counts = vectorizer.fit_transform(list(texts))
    vocabulary = [None] * len(vectorizer.vocabulary_)
    for term, index in vectorizer.vocabulary_.items():
        vocabulary[index] = term
    return counts.tocsr(), vocabulary


def fit_idf(counts) -> torch.Tensor:
    """Smoothed idf of the training counts, ``1 + ln((1 + n) / (1 + df))`` (scikit-learn's)."""
    documents = counts.shape[0]
    frequency = np.bincount(counts.indices, minlength=counts.shape[1])
    return torch.from_numpy(1.0 + np.log((1.0 + documents) / (1.0 + frequency)))


def fit_multinomial_nb(
    features, labels: np.ndarray, num_classes: int, alpha: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, bias) = (log theta, log prior) of a multinomial NB; every class gets a prior
    even if absent from training (its counts are then alpha alone)."""
    from sklearn.naive_bayes import MultinomialNB

    classifier = MultinomialNB(alpha=alpha)
    classifier.fit(features, labels)
    weight = torch.full((num_classes, features.shape[1]), 0.0, dtype=torch.float64)
    bias = torch.full((num_classes,), float("-inf"), dtype=torch.float64)
    weight[classifier.classes_] = torch.from_numpy(classifier.feature_log_prob_)
    bias[classifier.classes_] = torch.from_numpy(classifier.class_log_prior_)
    return weight.float(), bias.float()


def log_count_ratio(binary, positive: np.ndarray, alpha: float) -> np.ndarray:
    """Wang & Manning's ``r`` (n_features,) for the texts where ``positive`` is True."""
    p = alpha + np.asarray(binary[positive].sum(axis=0)).ravel()
    q = alpha + np.asarray(binary[~positive].sum(axis=0)).ravel()
    return np.log(p / p.sum()) - np.log(q / q.sum())


def fit_nbsvm(
    binary, labels: np.ndarray, num_classes: int, alpha: float, C: float, beta: float, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, bias) of NB-SVM on binarised features; one-vs-rest beyond two classes."""
    from scipy.sparse import diags
    from sklearn.svm import LinearSVC

    def one(positive: np.ndarray) -> tuple[np.ndarray, float]:
        if positive.all() or not positive.any():  # a class absent from (or alone in) training
            return np.zeros(binary.shape[1]), (1.0 if positive.all() else -1.0)
        r = log_count_ratio(binary, positive, alpha)
        svm = LinearSVC(C=C, loss="squared_hinge", random_state=seed, max_iter=10_000)
        svm.fit(binary @ diags(r), positive.astype(int))
        w, b = svm.coef_.ravel(), float(svm.intercept_[0])
        w = (1 - beta) * np.abs(w).mean() + beta * w
        return w * r, b

    if num_classes == 2:
        w, b = one(labels == 1)
        weight = np.stack([np.zeros_like(w), w])
        bias = np.array([0.0, b])
    else:
        pairs = [one(labels == c) for c in range(num_classes)]
        weight = np.stack([w for w, _ in pairs])
        bias = np.array([b for _, b in pairs])
    return torch.from_numpy(weight).float(), torch.from_numpy(bias).float()


def candidates(model: Mapping[str, Any]) -> list[dict[str, float]]:
    """The hyper-parameter settings to try (lists in ``alpha`` / ``C`` are a grid)."""

    def values(key: str) -> list[float]:
        value: Any = model.get(key)
        return [float(v) for v in (value if isinstance(value, (list, tuple)) else [value])]

    if model["type"] == "nbsvm":
        return [{"alpha": a, "C": c} for a in values("alpha") for c in values("C")]
    return [{"alpha": a} for a in values("alpha")]


def fit(
    texts: Sequence[str],
    labels: Sequence[int],
    num_classes: int,
    model: Mapping[str, Any],
    setting: Mapping[str, float],
    seed: int = 0,
    counts=None,
    vocabulary: list[str] | None = None,
) -> LinearTextModel:
    """Fit one setting of the ``model`` group on the training texts.

    ``counts``/``vocabulary``: :func:`fit_vocabulary`'s result, to share it across settings.
    """
    _sklearn()
    if counts is None or vocabulary is None:
        counts, vocabulary = fit_vocabulary(texts, model)
    y = np.asarray(labels)
    features_kind = "binary" if model["type"] == "nbsvm" else model["features"]
    idf = fit_idf(counts).float() if features_kind == "tfidf" else None  # float32, as saved
    sublinear = bool(model.get("sublinear_tf", False))
    features = transform_counts(counts, features_kind, idf, sublinear)
    if model["type"] == "nbsvm":
        weight, bias = fit_nbsvm(features, y, num_classes, setting["alpha"], setting["C"], float(model["beta"]), seed)
    else:
        weight, bias = fit_multinomial_nb(features, y, num_classes, setting["alpha"])
    return LinearTextModel(vocabulary, vectorizer_options(model), features_kind, weight, bias, idf, sublinear)
