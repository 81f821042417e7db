"""The texts embeddings are trained on: a dataset's splits, read and split exactly as the
training tasks do, then cut into tokens by the ``tokenizer`` group.

The splits are the tasks' own (``data.split``, ``data.split_seed``), so vectors trained on
``corpus.splits=[train, dev]`` (the default) have never seen a test text, and a classifier
or translator of the same ``data`` config can use them without leakage.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nmt.data.tokenizers import Tokenizer, build_tokenizers

log = logging.getLogger("nmt.embeddings")

CLASSIFICATION_DATA = ("imdb", "sms", "nsmc")
SIDES = ("source", "target")


@dataclass
class TokenizedCorpus:
    """:ivar tokenizer: trained on these texts; its vocabulary is the embeddings' vocabulary.
    :ivar sentences: one token list per text, out-of-vocabulary tokens removed (as word2vec
    and GloVe drop words below their count threshold)."""

    tokenizer: Tokenizer
    sentences: list[list[str]]
    texts: int
    tokens: int  # before out-of-vocabulary tokens were removed

    @property
    def vocabulary(self) -> list[str]:
        """The non-special vocabulary, most frequent first."""
        return self.tokenizer.id_to_piece(range(4, self.tokenizer.vocab_size))

    def summary(self) -> str:
        kept = sum(map(len, self.sentences))
        return (
            f"{self.texts:,} texts, {self.tokens:,} tokens, vocabulary {len(self.vocabulary):,} "
            f"({kept / max(self.tokens, 1):.1%} of the tokens are in it)"
        )


def read_texts(data: Mapping[str, Any], splits: Sequence[str], side: str = "source", seed: int = 0) -> list[str]:
    """The texts of ``splits`` of the dataset ``data`` (a ``data`` config group).

    :param side: for the translation corpus (``data=fra``), ``source`` (English) or ``target`` (French).
    """
    unknown = sorted(set(splits) - {"train", "dev", "test"})
    if unknown or not splits:
        raise ValueError(f"corpus.splits={list(splits)}: choose among train, dev and test")
    if "test" in splits:
        log.warning("corpus.splits includes test: do not use these vectors for a model scored on that test split")
    name = data.get("name")
    if name in CLASSIFICATION_DATA:
        from nmt.data.classification_datamodule import ClassificationDataModule

        rows = ClassificationDataModule(data, seed=seed).prepare_corpus()
        return [text for split in splits for text, _ in rows[split]]
    if name == "fra":
        from nmt.data.translation_datamodule import TranslationDataModule

        if side not in SIDES:
            raise ValueError(f"corpus.side={side!r}: use corpus.side=source (English) or corpus.side=target (French)")
        pairs = TranslationDataModule(data, seed=seed).prepare_corpus()
        column = 0 if side == "source" else 1
        return [pair[column] for split in splits for pair in pairs[split]]
    raise ValueError(f"unknown dataset {name!r}: use data=imdb, sms, nsmc or fra")


def tokenize_corpus(texts: Sequence[str], tokenizer_cfg: Mapping[str, Any]) -> TokenizedCorpus:
    """Train the tokenizer (``tokenizer`` group) on ``texts`` and cut them into its tokens."""
    texts = [text for text in texts if text]
    if not texts:
        raise ValueError("no texts to train embeddings on (check data.* and corpus.splits)")
    tokenizer = build_tokenizers({**tokenizer_cfg, "joint": True}, texts, [])[0]
    vocabulary = set(tokenizer.id_to_piece(range(4, tokenizer.vocab_size)))
    sentences, tokens = [], 0
    for text in texts:
        pieces = tokenizer.split(text) if hasattr(tokenizer, "split") else tokenizer.pieces(text)
        tokens += len(pieces)
        kept = [piece for piece in pieces if piece in vocabulary]
        if kept:
            sentences.append(kept)
    return TokenizedCorpus(tokenizer, sentences, len(texts), tokens)
