"""A classification checkpoint in use: load it, then text -> tokens -> label, probability and
the attended tokens."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import torch

from nmt.data.classification_batching import collate_labelled, truncate
from nmt.inference.loading import BASELINE_TASK, LoadedModel, check_task, load_model
from nmt.inference.translator import resolve_device
from nmt.models.classifier_output import class_probabilities

TASK = "classification"


def load_classifier(path: str | Path, map_location: str | torch.device = "cpu") -> LoadedModel:
    """A classification checkpoint through :func:`~nmt.inference.loading.load_model`: the
    network (eval mode), its ``tokenizer``, ``labels`` and ``config``. The translation or
    biLM checkpoint it may have been initialised from is not needed. No Lightning."""
    return load_model(path, task=TASK, map_location=map_location)


def load_any_classifier(path: str | Path, device: str | torch.device = "cpu") -> Classifier | BaselineClassifier:
    """A classification network or a baseline (Naive Bayes, NB-SVM, mean word vectors),
    ready to predict; any other checkpoint is a :class:`~nmt.inference.loading.WrongTaskError`."""
    loaded = load_model(path, task=(TASK, BASELINE_TASK))
    return BaselineClassifier(loaded) if loaded.task == BASELINE_TASK else Classifier(loaded, device)


@dataclass
class Prediction:
    """:ivar tokens: the attended tokens (after truncation) and :ivar weights: their weights.
    :ivar probabilities: of every label, in the checkpoint's label order.
    :ivar truncated: the text was longer than ``data.max_tokens`` and was cut."""

    label: str
    probability: float
    tokens: list[str]
    weights: list[float]
    probabilities: list[float] = field(default_factory=list)
    truncated: bool = False

    def top_tokens(self, k: int) -> list[tuple[str, float]]:
        order = sorted(range(len(self.tokens)), key=lambda i: (-self.weights[i], i))[:k]
        return [(self.tokens[i], self.weights[i]) for i in order]


class Classifier:
    """A loaded checkpoint plus the text -> tokens -> prediction steps around it.

    :param device: where the network runs (``loaded.model`` is moved there); results are
        on the CPU whatever it is.
    """

    def __init__(self, loaded: LoadedModel, device: str | torch.device = "cpu") -> None:
        check_task(loaded.path, loaded.task, TASK)
        self.loaded = loaded
        self.device = resolve_device(device)
        loaded.model.to(self.device)
        data = loaded.config["data"]
        self.max_tokens = data.get("max_tokens")
        self.truncation = data.get("truncation", "head")
        self.head_tokens = data.get("head_tokens")

    def _cut(self, items: list) -> list:
        return truncate(items, self.max_tokens, self.truncation, self.head_tokens)

    def _pieces(self, text: str, ids: list[int]) -> list[str]:
        """Surface tokens aligned with ``ids`` (vocabulary entries if the two ever differ)."""
        pieces = self._cut(self.loaded.tokenizer.pieces(text))
        return pieces if len(pieces) == len(ids) else self.loaded.tokenizer.id_to_piece(ids)

    @torch.inference_mode()
    def predict(self, texts: list[str]) -> list[Prediction]:
        tokenizer, model = self.loaded.tokenizer, self.loaded.model
        full = tokenizer.encode_batch(texts)
        ids = [self._cut(seq) for seq in full]
        pieces = [self._pieces(text, seq) for text, seq in zip(texts, ids)]
        batch = collate_labelled([(seq, 0) for seq in ids])
        output = model(batch.src.to(self.device), batch.src_lengths.to(self.device))
        probabilities = class_probabilities(output.logits).cpu()
        attention = output.attention.cpu() if output.attention is not None else None
        predictions = []
        for row, seq in enumerate(ids):
            best = int(probabilities[row].argmax())
            weights = attention[row, : len(seq)].tolist() if seq and attention is not None else []
            predictions.append(
                Prediction(
                    self.loaded.labels[best],
                    float(probabilities[row, best]),
                    pieces[row],
                    weights,
                    probabilities[row].tolist(),
                    len(seq) < len(full[row]),
                )
            )
        return predictions

    def predict_stream(self, lines: Iterator[str], batch_size: int) -> Iterator[tuple[str, Prediction]]:
        """Predictions in input order, ``batch_size`` texts at a time (the encoder packs the
        batch, so padding costs no recurrent steps)."""
        while chunk := list(islice(lines, batch_size)):
            yield from zip(chunk, self.predict(chunk))


class BaselineClassifier:
    """A baseline checkpoint with the :class:`Classifier` interface. A prediction's tokens are
    the text's n-grams (or words) and its weights their contributions to the predicted label's
    margin (``contributions`` of the model), in reading order; they can be negative. The
    probabilities are the softmax of the class scores: the posterior for Naive Bayes and the
    logistic regression of the mean-vector baseline, an uncalibrated one for NB-SVM's margins.
    It runs on the CPU (scikit-learn counts the n-grams) and reads whole texts.
    """

    def __init__(self, loaded: LoadedModel) -> None:
        check_task(loaded.path, loaded.task, BASELINE_TASK)
        self.loaded = loaded

    def predict(self, texts: list[str]) -> list[Prediction]:
        model = self.loaded.model
        probabilities = torch.softmax(model.scores(texts), dim=-1)
        predictions = []
        for text, row in zip(texts, probabilities):
            best = int(row.argmax())
            explained = model.contributions(text, best)
            predictions.append(
                Prediction(
                    self.loaded.labels[best],
                    float(row[best]),
                    [term for term, _ in explained],
                    [weight for _, weight in explained],
                    row.tolist(),
                )
            )
        return predictions

    def predict_stream(self, lines: Iterator[str], batch_size: int) -> Iterator[tuple[str, Prediction]]:
        """Predictions in input order, ``batch_size`` texts at a time."""
        while chunk := list(islice(lines, batch_size)):
            yield from zip(chunk, self.predict(chunk))
