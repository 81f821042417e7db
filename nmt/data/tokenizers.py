"""Tokenizers: text <-> token ids, and the one definition of the special tokens.

Four kinds share the :class:`Tokenizer` interface:

* :class:`CharTokenizer` -- one id per Unicode code point (space included).
* :class:`SentencePieceTokenizer` -- unigram or BPE subwords, trained in memory.
* :class:`WordTokenizer` -- whole words (optionally lower-cased), punctuation split off,
  stripped or kept; the unit of word vectors (word2vec, GloVe, fastText files).
* :class:`MorphemeTokenizer` -- Korean morphemes, from the analyser of :mod:`nmt.data.korean`
  (Kiwi, the ``korean`` extra); the course's Hangul-only cleaning and stopwords as options.

Every tokenizer reserves the same four ids for the special tokens, so padding, masks and
decoding never need to ask which kind they have. ``encode`` never adds BOS/EOS; the
datasets and the decoders decide where those go.

A tokenizer is stored inside a checkpoint as :meth:`Tokenizer.to_state`, a dict of plain
types only (no pickled objects), so ``torch.load(..., weights_only=True)`` can read it.

Unknown tokens decode to :data:`UNK_SURFACE` ("⁇", the symbol SentencePiece uses too):
a single character that cannot be mistaken for text and keeps BLEU tokenisation sane,
whereas a literal ``<unk>`` would be split into ``<``, ``unk``, ``>`` by sacrebleu.
"""

from __future__ import annotations

import io
import itertools
import logging
import math
import random
import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import sentencepiece as spm

from nmt.config.schema import Punctuation, TokenizerType, choices
from nmt.data.korean import analyser, clean_hangul, is_stopword, resolve_stopwords

_log = logging.getLogger(__name__)

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3

UNK_SURFACE = "\u2047"
"""What an unknown token becomes in decoded text ("⁇")."""

STATE_FORMAT_VERSION = 1
"""Bumped whenever the layout of :meth:`Tokenizer.to_state` changes incompatibly."""

TOKENIZER_TYPES = choices(TokenizerType)


def _as_id_list(ids: Iterable[int]) -> list[int]:
    """Accept a list, a 1-d tensor or any iterable of ints."""
    if hasattr(ids, "tolist"):  # torch.Tensor / numpy array: one C call, not n items
        ids = ids.tolist()
    return list(map(int, ids))


def _cut_at_eos(ids: list[int]) -> list[int]:
    try:
        return ids[: ids.index(EOS_ID)]
    except ValueError:
        return ids


class Tokenizer(ABC):
    """Maps text to ids and back. Ids ``0..3`` are always ``PAD, UNK, BOS, EOS``."""

    kind: ClassVar[str]

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Number of ids, specials included; valid ids are ``0 .. vocab_size - 1``."""

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Ids of ``text``, without BOS/EOS. Unknown symbols become ``UNK_ID``."""

    def encode_batch(self, texts: Iterable[str]) -> list[list[int]]:
        return [self.encode(text) for text in texts]

    @abstractmethod
    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``: PAD and BOS are dropped, everything from the first EOS on is
        ignored, UNK and out-of-range ids become :data:`UNK_SURFACE`. Never raises on ids."""

    def decode_batch(self, batch: Iterable[Iterable[int]]) -> list[str]:
        """Decode each row, e.g. of a ``(batch_size, length)`` tensor of hypotheses."""
        return [self.decode(ids) for ids in batch]

    @abstractmethod
    def pieces(self, text: str) -> list[str]:
        """Token strings of ``text``, one per id of ``encode(text)`` (attention plot labels).
        Unknown symbols show their original surface, not ``<unk>``."""

    @abstractmethod
    def id_to_piece(self, ids: Iterable[int]) -> list[str]:
        """Vocabulary entry of each id; out-of-range ids give ``UNK``."""

    @abstractmethod
    def to_state(self) -> dict[str, Any]:
        """Plain-type dict (``kind``, ``format_version``, ...) for checkpoints."""

    @classmethod
    @abstractmethod
    def _from_valid_state(cls, state: Mapping[str, Any]) -> Tokenizer:
        """Rebuild from a state whose kind and version were already checked."""

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Tokenizer:
        """Inverse of :meth:`to_state`. On the base class it dispatches on ``state["kind"]``;
        on a subclass it also checks the state is of that kind."""
        tokenizer = tokenizer_from_state(state)
        if not isinstance(tokenizer, cls):
            raise TypeError(f"{cls.__name__}.from_state got a state of kind {state['kind']!r}")
        return tokenizer

    def _new_state(self, **fields: Any) -> dict[str, Any]:
        return {"kind": self.kind, "format_version": STATE_FORMAT_VERSION, **fields}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


class CharTokenizer(Tokenizer):
    """One id per character. Vocabulary: the specials, then characters by descending
    frequency, ties broken by code point, so training is deterministic."""

    kind = "char"

    def __init__(self, chars: Iterable[str]) -> None:
        """:param chars: the non-special vocabulary in id order (ids start at 4)."""
        self._itos: list[str] = [*SPECIAL_TOKENS, *chars]
        self._stoi: dict[str, int] = {c: i for i, c in enumerate(self._itos) if i >= len(SPECIAL_TOKENS)}
        if any(len(c) != 1 for c in self._itos[len(SPECIAL_TOKENS) :]):
            raise ValueError("CharTokenizer vocabulary entries must be single characters")
        if len(self._stoi) != len(self._itos) - len(SPECIAL_TOKENS):
            raise ValueError("CharTokenizer vocabulary contains a character twice")
        # decode table: specials that must vanish map to "", UNK to its visible surface
        self._surface = [*("", UNK_SURFACE, "", ""), *self._itos[len(SPECIAL_TOKENS) :]]

    @classmethod
    def train(cls, texts: Iterable[str], *, min_freq: int = 1, max_size: int | None = None) -> CharTokenizer:
        """Count characters in ``texts``.

        :param min_freq: characters seen fewer times are left out (they encode to UNK).
        :param max_size: cap on ``vocab_size``, specials included; the rarest go first.
        """
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        if max_size is not None and max_size < len(SPECIAL_TOKENS):
            raise ValueError(f"max_size must be >= {len(SPECIAL_TOKENS)} (the specials), got {max_size}")
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(text)
        ranked = sorted((c for c, n in counts.items() if n >= min_freq), key=lambda c: (-counts[c], c))
        if max_size is not None:
            ranked = ranked[: max_size - len(SPECIAL_TOKENS)]
        return cls(ranked)

    @property
    def vocab_size(self) -> int:
        return len(self._itos)

    def encode(self, text: str) -> list[int]:
        # map() with a repeated default runs dict.get in C: far faster than a Python loop
        return list(map(self._stoi.get, text, itertools.repeat(UNK_ID)))

    def encode_batch(self, texts: Iterable[str]) -> list[list[int]]:
        get, unk = self._stoi.get, itertools.repeat(UNK_ID)
        return [list(map(get, text, unk)) for text in texts]

    def decode(self, ids: Iterable[int]) -> str:
        ids = _cut_at_eos(_as_id_list(ids))
        if ids and (min(ids) < 0 or max(ids) >= len(self._surface)):
            ids = [i if 0 <= i < len(self._surface) else UNK_ID for i in ids]
        return "".join(map(self._surface.__getitem__, ids))

    def pieces(self, text: str) -> list[str]:
        return list(text)

    def id_to_piece(self, ids: Iterable[int]) -> list[str]:
        n = len(self._itos)
        return [self._itos[i] if 0 <= i < n else UNK for i in _as_id_list(ids)]

    def to_state(self) -> dict[str, Any]:
        return self._new_state(chars=self._itos[len(SPECIAL_TOKENS) :])

    @classmethod
    def _from_valid_state(cls, state: Mapping[str, Any]) -> CharTokenizer:
        return cls(state["chars"])


class SentencePieceTokenizer(Tokenizer):
    """Subword tokenizer backed by a SentencePiece model held in memory as proto bytes."""

    kind = "sentencepiece"

    def __init__(self, model_proto: bytes) -> None:
        self._model_proto = bytes(model_proto)
        self._sp = spm.SentencePieceProcessor(model_proto=self._model_proto)
        self._log_probs: list[float] | None = None  # per id, built on the first sample_encode
        found = (self._sp.pad_id(), self._sp.unk_id(), self._sp.bos_id(), self._sp.eos_id())
        if found != (PAD_ID, UNK_ID, BOS_ID, EOS_ID):
            raise ValueError(
                f"SentencePiece model has special ids (pad, unk, bos, eos) = {found}; "
                f"nmt needs {(PAD_ID, UNK_ID, BOS_ID, EOS_ID)}. Train it with SentencePieceTokenizer.train."
            )

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        *,
        vocab_size: int,
        model_type: Literal["unigram", "bpe"] = "unigram",
        character_coverage: float = 1.0,
        max_sentences: int | None = None,
        byte_fallback: bool = False,
        seed: int = 0,
        num_threads: int = 2,
    ) -> SentencePieceTokenizer:
        """Train in memory; no files are written.

        :param vocab_size: target size, specials included. A soft limit: a corpus too
            small to fill it yields a smaller vocabulary instead of an error.
        :param max_sentences: train on a random sample of this many sentences (drawn with
            ``seed``); ``None`` uses them all.
        :param byte_fallback: spell unknown characters as UTF-8 byte pieces instead of UNK.
        :param seed: seeds SentencePiece's global generator (sampling, shuffling), so the
            same texts and settings give the same model.
        """
        if model_type not in ("unigram", "bpe"):
            raise ValueError(f"model_type must be 'unigram' or 'bpe', got {model_type!r}")
        n_seen = 0

        def sentences() -> Iterator[str]:
            nonlocal n_seen
            for text in texts:
                n_seen += 1
                yield text

        spm.set_random_generator_seed(seed)
        model = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=sentences(),
                model_writer=model,
                vocab_size=vocab_size,
                model_type=model_type,
                character_coverage=character_coverage,
                byte_fallback=byte_fallback,
                hard_vocab_limit=False,
                pad_id=PAD_ID,
                unk_id=UNK_ID,
                bos_id=BOS_ID,
                eos_id=EOS_ID,
                pad_piece=PAD,
                unk_piece=UNK,
                bos_piece=BOS,
                eos_piece=EOS,
                unk_surface=UNK_SURFACE,
                # Our own normalize_text has already run on the corpus; a second, NFKC
                # normalisation here would silently change text (e.g. "…" -> "...") and
                # break the exact decode(encode(t)) == t round trip.
                normalization_rule_name="identity",
                remove_extra_whitespaces=False,
                input_sentence_size=max_sentences or 0,
                shuffle_input_sentence=True,
                num_threads=num_threads,
                minloglevel=2,
            )
        except RuntimeError as error:
            if n_seen == 0:
                raise ValueError("SentencePieceTokenizer.train got no texts") from error
            raise
        return cls(model.getvalue())

    @property
    def vocab_size(self) -> int:
        return self._sp.get_piece_size()

    @property
    def model_proto(self) -> bytes:
        """The serialized SentencePiece model (what a ``.model`` file contains)."""
        return self._model_proto

    def encode(self, text: str) -> list[int]:
        return self._sp.encode(text, out_type=int)

    def encode_batch(self, texts: Iterable[str]) -> list[list[int]]:
        return self._sp.encode(list(texts), out_type=int)

    def sample_encode(self, text: str, *, alpha: float, nbest: int, seed: int) -> list[int]:
        """Ids of one segmentation of ``text`` drawn at random (subword regularisation, Kudo
        2018): one of the ``nbest`` best unigram segmentations ``x``, with probability
        proportional to ``P(x) ** alpha``. Decodes back to ``text``.

        :param seed: the draw is a function of ``(text, alpha, nbest, seed)`` alone.
            SentencePiece's own sampling cannot promise that: its generator is process-wide
            and, re-seeded, still gives other draws in another process. Its n-best search is
            deterministic, so the draw among the n best is made here, with Python's generator.
        """
        candidates = self._sp.nbest_encode(text, nbest_size=nbest, out_type=int)
        if len(candidates) < 2:
            return candidates[0] if candidates else []
        if self._log_probs is None:  # a piece's score is its unigram log-probability
            self._log_probs = self._sp.get_score(list(range(self.vocab_size)))
        log_probs = [alpha * sum(map(self._log_probs.__getitem__, ids)) for ids in candidates]
        top = max(log_probs)
        weights = [math.exp(value - top) for value in log_probs]
        return random.Random(seed).choices(candidates, weights)[0]

    def _valid_ids(self, ids: Iterable[int]) -> list[int]:
        n = self._sp.get_piece_size()
        return [i if 0 <= i < n else UNK_ID for i in _as_id_list(ids)]

    def decode(self, ids: Iterable[int]) -> str:
        # pad/bos/eos are control pieces, which SentencePiece already decodes to ""
        return self._sp.decode(_cut_at_eos(self._valid_ids(ids)))

    def decode_batch(self, batch: Iterable[Iterable[int]]) -> list[str]:
        return self._sp.decode([_cut_at_eos(self._valid_ids(ids)) for ids in batch])

    def pieces(self, text: str) -> list[str]:
        return self._sp.encode(text, out_type=str)

    def id_to_piece(self, ids: Iterable[int]) -> list[str]:
        return self._sp.id_to_piece(self._valid_ids(ids))

    def to_state(self) -> dict[str, Any]:
        return self._new_state(model_proto=self._model_proto)

    @classmethod
    def _from_valid_state(cls, state: Mapping[str, Any]) -> SentencePieceTokenizer:
        return cls(state["model_proto"])

    def save(self, path: str | Path) -> None:
        """Write a standard ``.model`` file, usable by any SentencePiece tool."""
        Path(path).write_bytes(self._model_proto)

    @classmethod
    def load(cls, path: str | Path) -> SentencePieceTokenizer:
        return cls(Path(path).read_bytes())


PUNCTUATION_MODES = choices(Punctuation)

# A word: letters/digits (any script) with inner apostrophes or hyphens ("don't", "l'été",
# "well-made"); everything else that is not a space is one punctuation token.
_WORD = r"\w+(?:[-'\u2019]\w+)*"
_SPLITTERS = {
    "split": re.compile(rf"{_WORD}|[^\w\s]"),
    "strip": re.compile(_WORD),
    "keep": re.compile(r"\S+"),
}
# Decoding: no space before closing punctuation, none after opening brackets and quotes.
_SPACE_BEFORE_CLOSING = re.compile(r" ([.,!?;:%)\]}\u00bb\u201d\u2026])")
_SPACE_AFTER_OPENING = re.compile(r"([(\[{\u00ab\u201c]) ")


class _TokenVocabulary(Tokenizer):
    """Shared by the tokenizers with one id per token of a ``split`` (words, morphemes): the
    vocabulary (the specials, then the tokens in id order), its frequency ranking, and the
    lookups that only need ``split``."""

    def _set_vocabulary(self, tokens: Iterable[str], what: str) -> None:
        self._itos: list[str] = [*SPECIAL_TOKENS, *tokens]
        self._stoi: dict[str, int] = {t: i for i, t in enumerate(self._itos) if i >= len(SPECIAL_TOKENS)}
        name = type(self).__name__
        if len(self._stoi) != len(self._itos) - len(SPECIAL_TOKENS):
            raise ValueError(f"{name} vocabulary contains a {what} twice")
        if any(not t or t != t.strip() or " " in t for t in self._itos[len(SPECIAL_TOKENS) :]):
            raise ValueError(f"{name} vocabulary entries must be non-empty and contain no spaces")
        self._surface = [*("", UNK_SURFACE, "", ""), *self._itos[len(SPECIAL_TOKENS) :]]

    @staticmethod
    def _check_training_limits(vocab_size: int | None, min_freq: int) -> None:
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        if vocab_size is not None and vocab_size < len(SPECIAL_TOKENS):
            raise ValueError(f"vocab_size must be >= {len(SPECIAL_TOKENS)} (the specials), got {vocab_size}")

    @staticmethod
    def _ranked(counts: Counter[str], vocab_size: int | None, min_freq: int) -> list[str]:
        """Tokens seen at least ``min_freq`` times by descending count, ties by code point,
        cut to ``vocab_size`` with the specials."""
        ranked = sorted((t for t, n in counts.items() if n >= min_freq), key=lambda t: (-counts[t], t))
        return ranked if vocab_size is None else ranked[: vocab_size - len(SPECIAL_TOKENS)]

    def split(self, text: str) -> list[str]:
        raise NotImplementedError

    @property
    def vocab_size(self) -> int:
        return len(self._itos)

    def encode(self, text: str) -> list[int]:
        return list(map(self._stoi.get, self.split(text), itertools.repeat(UNK_ID)))

    def pieces(self, text: str) -> list[str]:
        return self.split(text)

    def id_to_piece(self, ids: Iterable[int]) -> list[str]:
        n = len(self._itos)
        return [self._itos[i] if 0 <= i < n else UNK for i in _as_id_list(ids)]


class WordTokenizer(_TokenVocabulary):
    """One id per word. Vocabulary: the specials, then words by descending frequency in the
    training texts (ties broken alphabetically), so training is deterministic and ids are
    frequency-ranked (what an adaptive softmax wants).

    :param words: the non-special vocabulary in id order (ids start at 4).
    :param lowercase: lower-case text before splitting (what most word vectors assume).
    :param punctuation: ``split`` (each punctuation mark is a token), ``strip`` (dropped,
        as in word2vec's text8), ``keep`` (split on spaces only, marks stay on the words).

    Decoding joins words with spaces, without a space before closing punctuation; case and
    the original spacing are not recoverable, so ``decode(encode(t))`` is a normalised ``t``.
    """

    kind = "word"

    def __init__(self, words: Iterable[str], *, lowercase: bool = True, punctuation: str = "split") -> None:
        if punctuation not in PUNCTUATION_MODES:
            raise ValueError(
                f"unknown punctuation mode {punctuation!r}: use tokenizer.punctuation=split, strip or keep"
            )
        self.lowercase = bool(lowercase)
        self.punctuation = punctuation
        self._split = _SPLITTERS[punctuation].findall
        self._set_vocabulary(words, "word")

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        *,
        vocab_size: int | None = None,
        min_freq: int = 1,
        lowercase: bool = True,
        punctuation: str = "split",
    ) -> WordTokenizer:
        """Count words in ``texts``.

        :param vocab_size: cap on ``vocab_size``, specials included; the rarest words go first.
        :param min_freq: words seen fewer times are left out (they encode to UNK).
        """
        cls._check_training_limits(vocab_size, min_freq)
        splitter = cls([], lowercase=lowercase, punctuation=punctuation)
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(splitter.split(text))
        for special in SPECIAL_TOKENS:  # "<unk>" in a text is three tokens, never these
            counts.pop(special, None)
        return cls(cls._ranked(counts, vocab_size, min_freq), lowercase=lowercase, punctuation=punctuation)

    def split(self, text: str) -> list[str]:
        """The word strings of ``text`` (lower-cased if so configured), before the vocabulary."""
        return self._split(text.lower() if self.lowercase else text)

    def encode_batch(self, texts: Iterable[str]) -> list[list[int]]:
        get, unk = self._stoi.get, itertools.repeat(UNK_ID)
        return [list(map(get, self.split(text), unk)) for text in texts]

    def decode(self, ids: Iterable[int]) -> str:
        ids = _cut_at_eos(_as_id_list(ids))
        n = len(self._surface)
        words = [self._surface[i] if 0 <= i < n else UNK_SURFACE for i in ids]
        text = " ".join(w for w in words if w)
        return _SPACE_AFTER_OPENING.sub(r"\1", _SPACE_BEFORE_CLOSING.sub(r"\1", text))

    def to_state(self) -> dict[str, Any]:
        return self._new_state(
            words=self._itos[len(SPECIAL_TOKENS) :], lowercase=self.lowercase, punctuation=self.punctuation
        )

    @classmethod
    def _from_valid_state(cls, state: Mapping[str, Any]) -> WordTokenizer:
        return cls(state["words"], lowercase=state["lowercase"], punctuation=state["punctuation"])


class MorphemeTokenizer(_TokenVocabulary):
    """One id per Korean morpheme, the NSMC course's recipe (Hangul-only cleaning, analysis,
    stopwords) with Kiwi as the analyser: ``"재밌었어요 ㅋㅋ!!"`` -> ``재밌 었 어요 ㅋㅋ``, with
    ``tags=True`` ``재밌/VA 었/EP 어요/EF ㅋㅋ/SW``. Korean words glue particles and endings to
    their stems, so whole words are sparse; morphemes share a stem across its inflections.

    Vocabulary: the specials, then morphemes by descending frequency in the training texts,
    ties broken by code point (deterministic, frequency-ranked ids).

    :param morphemes: the non-special vocabulary in id order (ids start at 4).
    :param analyser: the analyser's name (``kiwi``); its package must be installed.
    :param hangul_only: analyse :func:`~nmt.data.korean.clean_hangul` of the text (Hangul, jamo,
        digits, spaces) instead of the text itself.
    :param stopwords: morphemes left out; a predicate's dictionary form ("하다") also drops its stem.
    :param tags: tokens are ``form/TAG`` (``하/XSV``, ``하/VV``) instead of the form alone.
    :param analyser_version: the analyser's version the vocabulary was built with; another
        version may segment differently, which is logged, not refused.

    Decoding joins the morphemes with spaces: the original text is not recoverable.
    """

    kind = "morpheme"

    def __init__(
        self,
        morphemes: Iterable[str],
        *,
        analyser: str = "kiwi",
        hangul_only: bool = True,
        stopwords: Iterable[str] = (),
        tags: bool = False,
        analyser_version: str | None = None,
    ) -> None:
        self.analyser_name = analyser
        self._analyser = _load_analyser(analyser, analyser_version)
        self.hangul_only = bool(hangul_only)
        self.stopwords = tuple(stopwords)
        self._stopwords = frozenset(self.stopwords)
        self.tags = bool(tags)
        self._set_vocabulary(morphemes, "morpheme")
        # The training texts' morphemes, kept from train() for the first encode_batch, which in
        # a run encodes those same texts: analysing them twice would double the slowest step.
        self._from_training: dict[str, list[str]] = {}

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        *,
        vocab_size: int | None = None,
        min_freq: int = 1,
        analyser: str = "kiwi",
        hangul_only: bool = True,
        stopwords: str | Iterable[str] | None = None,
        tags: bool = False,
    ) -> MorphemeTokenizer:
        """Count morphemes in ``texts``.

        :param vocab_size: cap on ``vocab_size``, specials included; the rarest morphemes go first.
        :param min_freq: morphemes seen fewer times are left out (they encode to UNK).
        :param stopwords: None, a built-in list's name (``course``) or the morphemes.
        """
        cls._check_training_limits(vocab_size, min_freq)
        splitter = cls(
            [], analyser=analyser, hangul_only=hangul_only, stopwords=resolve_stopwords(stopwords), tags=tags
        )
        texts = list(texts)
        split = splitter.split_batch(texts)
        counts: Counter[str] = Counter(itertools.chain.from_iterable(split))
        tokenizer = cls(
            cls._ranked(counts, vocab_size, min_freq),
            analyser=analyser,
            hangul_only=hangul_only,
            stopwords=splitter.stopwords,
            tags=tags,
            analyser_version=splitter.analyser_version,
        )
        tokenizer._from_training = dict(zip(texts, split))
        return tokenizer

    @property
    def analyser_version(self) -> str:
        return self._analyser.version

    def _prepare(self, text: str) -> str:
        return clean_hangul(text) if self.hangul_only else text

    def _tokens(self, morphemes: list[tuple[str, str]]) -> list[str]:
        stop = self._stopwords
        kept = [(form, tag) for form, tag in morphemes if not (stop and is_stopword(form, tag, stop))]
        # A form never holds a space in Kiwi's output; guard the vocabulary's invariant anyway.
        if self.tags:
            return [f"{form}/{tag}".replace(" ", "_") for form, tag in kept]
        return [form.replace(" ", "_") for form, _ in kept]

    def split(self, text: str) -> list[str]:
        """The morpheme strings of ``text`` (stopwords dropped), before the vocabulary."""
        return self._tokens(self._analyser.analyse(self._prepare(text)))

    def split_batch(self, texts: Sequence[str]) -> list[list[str]]:
        """:meth:`split` of each text, analysed in one batch."""
        analysed = self._analyser.analyse_batch([self._prepare(text) for text in texts])
        return [self._tokens(morphemes) for morphemes in analysed]

    def encode_batch(self, texts: Iterable[str]) -> list[list[int]]:
        texts = list(texts)
        known, self._from_training = self._from_training, {}
        missing = list(dict.fromkeys(text for text in texts if text not in known))
        known.update(zip(missing, self.split_batch(missing)))
        get, unk = self._stoi.get, itertools.repeat(UNK_ID)
        return [list(map(get, known[text], unk)) for text in texts]

    def decode(self, ids: Iterable[int]) -> str:
        ids = _cut_at_eos(_as_id_list(ids))
        n = len(self._surface)
        return " ".join(w for w in (self._surface[i] if 0 <= i < n else UNK_SURFACE for i in ids) if w)

    def to_state(self) -> dict[str, Any]:
        return self._new_state(
            morphemes=self._itos[len(SPECIAL_TOKENS) :],
            analyser=self.analyser_name,
            analyser_version=self.analyser_version,
            hangul_only=self.hangul_only,
            stopwords=list(self.stopwords),
            tags=self.tags,
        )

    @classmethod
    def _from_valid_state(cls, state: Mapping[str, Any]) -> MorphemeTokenizer:
        return cls(
            state["morphemes"],
            analyser=state["analyser"],
            hangul_only=state["hangul_only"],
            stopwords=state["stopwords"],
            tags=state["tags"],
            analyser_version=state["analyser_version"],
        )


def _load_analyser(name: str, version: str | None) -> Any:
    loaded = analyser(name)
    if version is not None and version != loaded.version:
        _log.warning(
            "this morpheme vocabulary was built with %s %s; %s is installed and may segment some texts "
            "differently (more unknown morphemes)",
            name,
            version,
            loaded.version,
        )
    return loaded


class TaggedTokenizer(Tokenizer):
    """A source tokenizer that also knows target-language tags (``<2fr>``, ``<2en>``).

    Each tag gets its own id after the wrapped tokenizer's vocabulary, whatever its kind (char,
    word or SentencePiece), so a tag is always one token that no text can produce or split: a
    text starting with a tag encodes to the tag's id followed by the ids of the rest.
    Decoding drops tag ids. The tags are stored in :meth:`to_state`, hence in the checkpoint.
    """

    kind = "tagged"

    def __init__(self, inner: Tokenizer, tags: Iterable[str]) -> None:
        self.inner = inner
        self.tags = list(tags)
        if not self.tags or len(set(self.tags)) != len(self.tags):
            raise ValueError(f"TaggedTokenizer needs distinct tags, got {self.tags}")
        self._tag_ids = {tag: inner.vocab_size + i for i, tag in enumerate(self.tags)}

    def tag_id(self, tag: str) -> int:
        """The id of ``tag``; a KeyError names the tags there are."""
        if tag not in self._tag_ids:
            raise KeyError(f"unknown tag {tag!r}; this tokenizer has {', '.join(self.tags)}")
        return self._tag_ids[tag]

    def _split_tag(self, text: str) -> tuple[list[int], str]:
        for tag, tag_id in self._tag_ids.items():
            if text.startswith(tag):
                return [tag_id], text[len(tag) :].lstrip(" ")
        return [], text

    @property
    def vocab_size(self) -> int:
        return self.inner.vocab_size + len(self.tags)

    def encode(self, text: str) -> list[int]:
        tag, rest = self._split_tag(text)
        return tag + self.inner.encode(rest)

    def encode_batch(self, texts: Iterable[str]) -> list[list[int]]:
        split = [self._split_tag(text) for text in texts]
        rest = self.inner.encode_batch([text for _, text in split])
        return [tag + ids for (tag, _), ids in zip(split, rest)]

    def decode(self, ids: Iterable[int]) -> str:
        return self.inner.decode([i for i in _as_id_list(ids) if i < self.inner.vocab_size])

    def pieces(self, text: str) -> list[str]:
        tag, rest = self._split_tag(text)
        return [self.tags[tag[0] - self.inner.vocab_size]] * len(tag) + self.inner.pieces(rest)

    def id_to_piece(self, ids: Iterable[int]) -> list[str]:
        ids = _as_id_list(ids)
        inner = iter(self.inner.id_to_piece([i for i in ids if i < self.inner.vocab_size]))
        return [next(inner) if i < self.inner.vocab_size else self._tag_piece(i) for i in ids]

    def _tag_piece(self, token_id: int) -> str:
        index = token_id - self.inner.vocab_size
        return self.tags[index] if index < len(self.tags) else UNK

    def to_state(self) -> dict[str, Any]:
        return self._new_state(inner=self.inner.to_state(), tags=list(self.tags))

    @classmethod
    def _from_valid_state(cls, state: Mapping[str, Any]) -> TaggedTokenizer:
        return cls(tokenizer_from_state(state["inner"]), state["tags"])


_TOKENIZER_CLASSES: dict[str, type[Tokenizer]] = {
    CharTokenizer.kind: CharTokenizer,
    SentencePieceTokenizer.kind: SentencePieceTokenizer,
    WordTokenizer.kind: WordTokenizer,
    MorphemeTokenizer.kind: MorphemeTokenizer,
    TaggedTokenizer.kind: TaggedTokenizer,
}


def tokenizer_from_state(state: Mapping[str, Any]) -> Tokenizer:
    """Rebuild any tokenizer from :meth:`Tokenizer.to_state` output."""
    kind = state.get("kind")
    if kind not in _TOKENIZER_CLASSES:
        raise ValueError(f"unknown tokenizer kind {kind!r} in state; expected one of {TOKENIZER_TYPES}")
    version = state.get("format_version")
    if not isinstance(version, int) or version > STATE_FORMAT_VERSION:
        raise ValueError(f"tokenizer state has format_version {version!r}; this nmt reads up to {STATE_FORMAT_VERSION}")
    return _TOKENIZER_CLASSES[kind]._from_valid_state(state)


def build_tokenizers(
    cfg: Mapping[str, Any], source_texts: Iterable[str], target_texts: Iterable[str]
) -> tuple[Tokenizer, Tokenizer]:
    """Train the (source, target) tokenizers described by the ``tokenizer`` config group.

    ``cfg`` keys: ``type`` ("char" | "sentencepiece" | "word"), ``joint`` (one model on both
    sides, returned twice), ``min_freq`` and optional ``max_size`` (char), ``vocab_size`` (per
    side unless joint), ``model_type``, ``character_coverage``, ``max_sentences`` (spm),
    ``min_freq``, ``vocab_size``, ``lowercase``, ``punctuation`` (word), ``min_freq``,
    ``vocab_size``, ``analyser``, ``hangul_only``, ``stopwords``, ``tags`` (morpheme).
    """
    kind = cfg.get("type")
    if kind == "spm":  # the config group file is called spm.yaml; accept its name too
        kind = "sentencepiece"
    if kind == "char":

        def train(texts: Iterable[str]) -> Tokenizer:
            return CharTokenizer.train(texts, min_freq=cfg.get("min_freq", 1), max_size=cfg.get("max_size"))
    elif kind == "sentencepiece":

        def train(texts: Iterable[str]) -> Tokenizer:
            return SentencePieceTokenizer.train(
                texts,
                vocab_size=cfg["vocab_size"],
                model_type=cfg.get("model_type", "unigram"),
                character_coverage=cfg.get("character_coverage", 1.0),
                max_sentences=cfg.get("max_sentences"),
            )
    elif kind == "word":

        def train(texts: Iterable[str]) -> Tokenizer:
            return WordTokenizer.train(
                texts,
                vocab_size=cfg.get("vocab_size"),
                min_freq=cfg.get("min_freq", 1),
                lowercase=cfg.get("lowercase", True),
                punctuation=cfg.get("punctuation", "split"),
            )
    elif kind == "morpheme":

        def train(texts: Iterable[str]) -> Tokenizer:
            return MorphemeTokenizer.train(
                texts,
                vocab_size=cfg.get("vocab_size"),
                min_freq=cfg.get("min_freq", 1),
                analyser=cfg.get("analyser", "kiwi"),
                hangul_only=cfg.get("hangul_only", True),
                stopwords=cfg.get("stopwords"),
                tags=cfg.get("tags", False),
            )
    else:
        raise ValueError(
            f"unknown tokenizer type {kind!r}; expected one of {TOKENIZER_TYPES} "
            "(select one with the override tokenizer=char, tokenizer=spm, tokenizer=word or tokenizer=morpheme)"
        )
    if cfg.get("joint", False):
        shared = train(itertools.chain(source_texts, target_texts))
        return shared, shared
    return train(source_texts), train(target_texts)
