"""Word2Vec and FastText through gensim, the field's standard implementation.

Word2Vec (Mikolov et al. 2013): ``architecture: cbow`` predicts a word from the mean of its
context, ``skipgram`` each context word from the word; ``loss: negative`` is negative
sampling (``negative`` noise words drawn from the unigram distribution to the 3/4), and
``hierarchical`` the hierarchical softmax over a Huffman tree. FastText (Bojanowski et al.
2017) is skip-gram or CBOW over a word and its character n-grams (``min_n`` .. ``max_n``,
hashed into ``bucket`` rows), so it also has vectors for words it never saw.

gensim trains with ``workers`` threads and logs its progress (percent of the epoch, words/s)
through the ``gensim`` logger, which ``python -m nmt.embeddings`` shows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from nmt.config.schema import Word2VecArchitecture, Word2VecLoss, choices
from nmt.embeddings.corpus import TokenizedCorpus
from nmt.embeddings.vectors import WordVectors

log = logging.getLogger("nmt.embeddings")

ARCHITECTURES = choices(Word2VecArchitecture)
LOSSES = choices(Word2VecLoss)


def _gensim_arguments(method: Mapping[str, Any], workers: int, seed: int) -> dict[str, Any]:
    architecture, loss = method.get("architecture", "skipgram"), method.get("loss", "negative")
    if architecture not in ARCHITECTURES:
        raise ValueError(f"method.architecture={architecture!r}: use skipgram or cbow")
    if loss not in LOSSES:
        raise ValueError(f"method.loss={loss!r}: use negative (sampling) or hierarchical (softmax)")
    negative = int(method.get("negative", 5))
    if loss == "negative" and negative < 1:
        raise ValueError(f"method.negative={negative}: negative sampling needs at least 1 noise word")
    return dict(
        vector_size=int(method["dim"]),
        window=int(method.get("window", 5)),
        sg=int(architecture == "skipgram"),
        hs=int(loss == "hierarchical"),
        negative=negative if loss == "negative" else 0,
        sample=float(method.get("sample", 1e-3)),
        alpha=float(method.get("alpha", 0.025)),
        min_alpha=float(method.get("min_alpha", 1e-4)),
        cbow_mean=int(bool(method.get("cbow_mean", True))),
        min_count=1,  # the corpus already holds only vocabulary words
        workers=max(1, int(workers)),
        seed=int(seed),
    )


def _epoch_log(epochs: int):
    """A gensim callback that logs one line per finished epoch, with the time to go."""
    from gensim.models.callbacks import CallbackAny2Vec

    class EpochLog(CallbackAny2Vec):
        def __init__(self) -> None:
            self.start, self.done = time.monotonic(), 0

        def on_epoch_end(self, model) -> None:
            self.done += 1
            elapsed = time.monotonic() - self.start
            log.info(
                "epoch %d/%d done, %.0f s elapsed, ETA %.0f s",
                self.done,
                epochs,
                elapsed,
                elapsed / self.done * (epochs - self.done),
            )

    return EpochLog()


def train_gensim(corpus: TokenizedCorpus, method: Mapping[str, Any], *, workers: int = 2, seed: int = 0):
    """Train ``method.name`` (``word2vec`` or ``fasttext``) on ``corpus``; return the gensim model."""
    from gensim.models import FastText, Word2Vec

    arguments = _gensim_arguments(method, workers, seed)
    epochs = arguments["epochs"] = int(method.get("epochs", 5))
    if method["name"] == "fasttext":
        min_n, max_n = int(method.get("min_n", 3)), int(method.get("max_n", 6))
        if not 0 < min_n <= max_n:
            raise ValueError(f"method.min_n={min_n}, method.max_n={max_n}: need 0 < min_n <= max_n")
        model = FastText(min_n=min_n, max_n=max_n, bucket=int(method.get("bucket", 2_000_000)), **arguments)
    elif method["name"] == "word2vec":
        model = Word2Vec(**arguments)
    else:
        raise ValueError(f"train_gensim trains word2vec or fasttext, not {method['name']!r}")
    model.build_vocab(corpus.sentences)
    words = sum(map(len, corpus.sentences))
    log.info(
        "%s %s/%s, dim %d, window %d, %d epochs over %s words, %d threads",
        method["name"],
        method.get("architecture", "skipgram"),
        method.get("loss", "negative"),
        arguments["vector_size"],
        arguments["window"],
        epochs,
        f"{words:,}",
        arguments["workers"],
    )
    model.train(
        corpus.sentences,
        total_examples=len(corpus.sentences),
        total_words=words,
        epochs=epochs,
        callbacks=[_epoch_log(epochs)],
        report_delay=10.0,
    )
    return model


def vectors_of(model, vocabulary: list[str]) -> WordVectors:
    """The model's vectors for ``vocabulary``, in that order (most frequent first)."""
    keyed = model.wv
    return WordVectors(vocabulary, np.stack([keyed.get_vector(word) for word in vocabulary]))
