"""Checkpoint -> translations: what the translate CLI, ``python -m nmt.evaluate`` and
``scripts/bench_decode.py`` share, so none of them repeats it.

:class:`Translator` takes raw lines and returns one :class:`Translation` per line, in order.
On the way it normalises every line (:func:`~nmt.data.text.normalize_text`), passes empty
lines through, truncates sources longer than :attr:`Translator.source_limit` tokens (with a
warning naming the line), sorts by length into batches so that little padding is decoded,
and restores the input order. A target prefix per line (``prefixes``) makes each of its
translations start with that text (:mod:`nmt.decoding.prefix`); lexical constraints per line
(``constraints``) are phrases each of its translations contains (:mod:`nmt.decoding.constraints`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from nmt.data.batching import pad_sequences
from nmt.data.directions import Direction, choose_direction, parse_directions, tagged_source
from nmt.data.text import normalize_text
from nmt.data.tokenizers import EOS, UNK, UNK_ID, Tokenizer
from nmt.decoding import DecodingOptions, Hypothesis, decode
from nmt.decoding.greedy import max_output_lengths
from nmt.inference.alignment import hard_alignment, replace_unknowns
from nmt.inference.loading import LoadedModel, check_task, load_model
from nmt.models.ensemble import Seq2SeqEnsemble
from nmt.models.seq2seq import Seq2Seq
from nmt.ops.quantization import int8_decoding_copy, int8_supported

SOURCE_LIMIT_FACTOR = 3
"""Sources are cut to this many times the training length limit (``data.max_length``): the
model never saw longer ones, and an unbounded line would make one batch arbitrarily slow."""

TASK = "translation"

DEFAULT_SOURCE_LIMIT = 256
"""The source limit, in tokens, when the checkpoint's config has no ``data.max_length``."""


def tag_sources(sources: list[str], chosen: Direction | None) -> list[str]:
    """``sources`` as the model reads them: with the tag of ``chosen``'s target language in
    front (a model trained on several directions), else unchanged. An empty line stays empty:
    it has nothing to tag."""
    if chosen is None:
        return sources
    return [tagged_source(text, chosen.target) if text.strip() else text for text in sources]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; a clear error when CUDA is asked for but absent."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"unknown device {device!r}: use auto, cpu or cuda") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was requested but CUDA is not available here: use --device cpu")
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {device!r}: use auto, cpu or cuda")
    return resolved


DECODING_PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16, "int8": None}
"""Each decoding precision's autocast dtype; ``int8`` runs the decoder's products on int8
kernels (:mod:`nmt.ops.quantization`, CPU only) and everything else in float32."""


def decoding_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``precision`` (None for fp32 and int8); a one-line ValueError
    for an unknown name, fp16 on a CPU, or int8 on a GPU or without PyTorch's int8 kernels."""
    if precision not in DECODING_PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: use {', '.join(DECODING_PRECISIONS)}")
    if precision == "fp16" and device.type == "cpu":
        raise ValueError("fp16 decoding needs a GPU: use --precision bf16, int8 (or fp32) on a CPU")
    if precision == "int8" and device.type != "cpu":
        raise ValueError("int8 decoding runs on a CPU: use --precision bf16 or fp16 (or fp32) on a GPU")
    if precision == "int8" and not int8_supported():
        raise ValueError(
            "int8 decoding needs PyTorch's oneDNN int8 kernels (an x86-64 build of PyTorch), which "
            "this installation lacks: use --precision fp32"
        )
    return DECODING_PRECISIONS[precision]


def warn_on_stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


@dataclass
class TranslatedHypothesis:
    """One output of one line.

    :ivar text: the detokenised translation.
    :ivar score: the ranking score (log-probability, length-penalised for beam search).
    :ivar log_prob: summed log-probability under the model.
    :ivar pieces: target tokens, one per output step (so one per attention row), ending
        with ``<eos>`` when the hypothesis ended.
    :ivar attention: (len(pieces), len(source_pieces)) float32, or None.
    :ivar token_log_probs: each of ``pieces``' log-probability; they sum to ``log_prob``.
    """

    text: str
    score: float
    log_prob: float
    pieces: list[str] = field(default_factory=list)
    attention: torch.Tensor | None = None
    token_log_probs: list[float] = field(default_factory=list)

    @property
    def unknown_tokens(self) -> int:
        """How many output tokens are the unknown token (``--replace-unk`` changes the text, not this)."""
        return self.pieces.count(UNK)


@dataclass
class Translation:
    """The result for one input line.

    :ivar source: the normalised line. :ivar source_pieces: the source tokens the model
        read (after truncation).
    :ivar hypotheses: best first; empty for an empty line.
    :ivar truncated: the source was longer than the model's limit and was cut.
    """

    source: str
    hypotheses: list[TranslatedHypothesis]
    source_pieces: list[str] = field(default_factory=list)
    truncated: bool = False

    @property
    def text(self) -> str:
        """The best translation ("" for an empty line)."""
        return self.hypotheses[0].text if self.hypotheses else ""


def check_shared_tokenizers(members: Sequence[LoadedModel]) -> None:
    """A one-line ValueError naming the first member whose source or target tokenizer differs
    from the first member's: an ensemble averages distributions over the same token ids."""
    first = members[0]
    for member in members[1:]:
        for role in ("source", "target"):
            if member.tokenizers[role].to_state() != first.tokenizers[role].to_state():
                raise ValueError(
                    f"{member.path} has another {role} tokenizer than {first.path}: the checkpoints of an "
                    "ensemble must share both tokenizers (the same data and tokenizer settings)"
                )


class Translator:
    """A trained translation model with its tokenizers, ready to translate text.

    :param model: one network, or several decoded as one (:class:`Seq2SeqEnsemble`,
        :meth:`from_checkpoints`).
    :param config: the run config stored in the checkpoint (for ``data.max_length``).
    :param warn: called with one message per truncated line (default: stderr).
    :param precision: ``fp32``; ``bf16`` / ``fp16`` to run the matrix products under
        autocast (recurrent states, attention scores and the output softmax stay float32,
        see :mod:`nmt.ops.precision`); or ``int8`` (CPU) to run the output layer and the
        LSTM decoder's step products on int8 kernels (:mod:`nmt.ops.quantization`), on a
        copy of ``model`` (of each member of an ensemble).
    """

    def __init__(
        self,
        model: Seq2Seq | Seq2SeqEnsemble,
        source_tokenizer: Tokenizer,
        target_tokenizer: Tokenizer,
        config: Mapping[str, Any] | None = None,
        device: str | torch.device = "cpu",
        warn: Callable[[str], None] = warn_on_stderr,
        precision: str = "fp32",
    ) -> None:
        self.device = resolve_device(device)
        self.autocast_dtype = decoding_dtype(precision, self.device)
        self.precision = precision
        self.model = model.to(self.device).eval()
        self.parameter_count = sum(p.numel() for p in model.parameters())
        """The trained network's parameters (an int8 copy holds some of them as packed buffers)."""
        if precision == "int8":
            model = self.model
            self.model = (
                model.map_members(int8_decoding_copy)
                if isinstance(model, Seq2SeqEnsemble)
                else int8_decoding_copy(model)
            )
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        self.config = dict(config or {})
        self.warn = warn
        max_length = (self.config.get("data") or {}).get("max_length")
        self.source_limit = SOURCE_LIMIT_FACTOR * int(max_length) if max_length else DEFAULT_SOURCE_LIMIT
        data = self.config.get("data") or {}
        names = data.get("directions")
        self.directions: list[Direction] | None = (
            parse_directions(names, data.get("language") or "fra") if names is not None else None
        )
        """The directions of a model trained on several (``data.directions``), else None."""

    def direction(self, direction: str | None = None, to: str | None = None) -> Direction | None:
        """The direction a call translates in (:func:`~nmt.data.directions.choose_direction`):
        ``direction`` (``en-fr``) or the one into ``to`` (``fr``), else the model's first.

        :raises DirectionError: one the model was not trained on, or any asked of a single-direction model.
        """
        return choose_direction(self.directions, direction, to)

    @property
    def has_attention(self) -> bool:
        """False for the plain encoder-decoder (``attention=none``): no weights, no alignments."""
        return bool(getattr(self.model, "has_attention", True))

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "auto", **kwargs: Any) -> Translator:
        """Load a translation checkpoint safely (``weights_only``); needs nothing else.

        :raises CheckpointError: missing, unreadable or not a translation checkpoint.
        :raises ValueError: an unusable device.
        """
        device = resolve_device(device)  # a missing GPU fails before the file is read
        return cls.from_loaded(load_model(path, task=TASK), device, **kwargs)

    @classmethod
    def from_loaded(cls, loaded: LoadedModel, device: str | torch.device = "auto", **kwargs: Any) -> Translator:
        """A translator around an already loaded translation checkpoint (:func:`load_model`)."""
        check_task(loaded.path, loaded.task, TASK)
        tokenizers = loaded.tokenizers
        return cls(loaded.model, tokenizers["source"], tokenizers["target"], loaded.config, device, **kwargs)

    @classmethod
    def from_checkpoints(
        cls, paths: Sequence[str | Path], device: str | torch.device = "auto", **kwargs: Any
    ) -> Translator:
        """One checkpoint (:meth:`from_checkpoint`), or several decoded as one ensemble
        (:class:`Seq2SeqEnsemble`: the mean of their step probabilities).

        :raises CheckpointError: a missing, damaged or non-translation checkpoint.
        :raises ValueError: checkpoints whose tokenizers differ; an unusable device.
        """
        device = resolve_device(device)
        return cls.from_members([load_model(path, task=TASK) for path in paths], device, **kwargs)

    @classmethod
    def from_members(
        cls, members: Sequence[LoadedModel], device: str | torch.device = "auto", **kwargs: Any
    ) -> Translator:
        """A translator around one loaded translation checkpoint, or an ensemble of several
        that share their tokenizers; the first one's config sets the source length limit."""
        if not members:
            raise ValueError("no checkpoint to translate with")
        for member in members:
            check_task(member.path, member.task, TASK)
        if len(members) == 1:
            return cls.from_loaded(members[0], device, **kwargs)
        check_shared_tokenizers(members)
        first = members[0]
        model = Seq2SeqEnsemble([member.model for member in members])
        return cls(model, first.tokenizers["source"], first.tokenizers["target"], first.config, device, **kwargs)

    def split_pairs(
        self, split: str = "test", data_path: str | Path | None = None, *, direction: str | None = None
    ) -> list[tuple[str, str]]:
        """The ``(source, target)`` pairs of the run's own ``split`` (train | dev | test),
        rebuilt from the corpus and split settings stored in the checkpoint.

        :param data_path: the corpus file, when it is no longer where training found it.
        :param direction: a model trained on several directions: the pairs of this one
            (untagged, its source language first); default the first.
        """
        from nmt.data.translation_datamodule import TranslationDataModule  # imports Lightning

        data = dict(self.config["data"])
        if data_path is not None:
            data["path"] = str(data_path)
        datamodule = TranslationDataModule(
            data, tokenizers=(self.source_tokenizer, self.target_tokenizer), seed=int(self.config.get("seed", 0))
        )
        splits = datamodule.prepare_corpus()
        if split not in splits:
            raise ValueError(f"unknown split {split!r}: use one of {', '.join(splits)}")
        chosen = self.direction(direction)
        if chosen is None:
            return splits[split]
        return datamodule.direction_pairs(split)[chosen]

    def translate(
        self,
        lines: Iterable[str],
        options: DecodingOptions | None = None,
        batch_size: int = 64,
        *,
        return_attention: bool = False,
        replace_unk: bool = False,
        first_line: int = 1,
        progress: bool = False,
        prefixes: Sequence[str] | None = None,
        direction: str | None = None,
        to: str | None = None,
        constraints: Sequence[Sequence[str]] | None = None,
    ) -> list[Translation]:
        """Translate raw lines; returns exactly one :class:`Translation` per line, in order.

        :param batch_size: sentences decoded together (beam search decodes K times as many rows).
        :param replace_unk: replace each ``<unk>`` in the text by the surface of the source
            token it attends to most (:func:`~nmt.inference.alignment.replace_unknowns`);
            needs a model with attention (ValueError otherwise).
        :param first_line: number of the first line, for warnings about truncated lines.
        :param progress: show a progress bar on stderr.
        :param prefixes: per line, target text its translations must start with ("" = free),
            normalised and tokenised like targets, without EOS; an empty line stays empty.
        :param direction: a model trained on several directions: the one to translate in
            (``en-fr``); :param to: or its target language (``fr``); default the first.
        :param constraints: per line, phrases each of its translations must contain (beam
            search only; an empty list = free), tokenised as :meth:`encode_constraints` says.
        :raises ValueError: a prefix longer than its line's output limit; a constraint that is
            empty or holds a character the target vocabulary lacks; constraints (with the
            prefix) longer than the output limit; constraints with greedy search or sampling
            (each naming the line).
        :raises DirectionError: a direction the model was not trained on, or a direction
            asked of a single-direction model.
        """
        if batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {batch_size}")
        if replace_unk and not self.has_attention:
            raise ValueError("--replace-unk copies the most attended source token, but this model has no attention")
        return_attention = return_attention or replace_unk
        options = options or DecodingOptions()
        chosen = self.direction(direction, to)
        sources = [normalize_text(line) for line in lines]
        model_sources = tag_sources(sources, chosen)
        ids, truncated = self.encode_sources(model_sources, first_line)
        prefix_ids = self.encode_prefixes(prefixes, ids, options, first_line)
        constraint_ids = self.encode_constraints(constraints, ids, options, first_line, prefix_ids=prefix_ids)
        results = [Translation(text, [], truncated=cut) for text, cut in zip(sources, truncated)]
        # Longest first: similar lengths share a batch, and memory peaks at once, not late.
        order = sorted((i for i in range(len(ids)) if ids[i]), key=lambda i: -len(ids[i]))
        with tqdm(total=len(order), disable=not progress, unit="sent", file=sys.stderr) as bar:
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                src, lengths = pad_sequences([ids[i] for i in batch])
                with torch.autocast(
                    self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None
                ):
                    hypotheses = decode(
                        self.model,
                        src.to(self.device),
                        lengths.to(self.device),
                        options,
                        return_attention=return_attention,
                        prefixes=None if prefix_ids is None else [prefix_ids[i] for i in batch],
                        constraints=None if constraint_ids is None else [constraint_ids[i] for i in batch],
                    )
                texts = iter(self.target_tokenizer.decode_batch([h.tokens for hyps in hypotheses for h in hyps]))
                for i, hyps in zip(batch, hypotheses):
                    results[i].source_pieces = self.source_pieces(model_sources[i], ids[i])
                    copy_from = results[i].source_pieces if replace_unk else None
                    results[i].hypotheses = [self._finish(hyp, next(texts), copy_from) for hyp in hyps]
                bar.update(len(batch))
        return results

    def encode_sources(self, sources: list[str], first_line: int = 1) -> tuple[list[list[int]], list[bool]]:
        """Source ids of normalised lines, each cut to :attr:`source_limit` (with a warning
        naming the line), and whether it was cut."""
        ids = self.source_tokenizer.encode_batch(sources)
        truncated = [len(row) > self.source_limit for row in ids]
        for i, cut in enumerate(truncated):
            if cut:
                self.warn(
                    f"line {first_line + i}: {len(ids[i])} source tokens, truncated to the "
                    f"model's limit of {self.source_limit}"
                )
                ids[i] = ids[i][: self.source_limit]
        return ids, truncated

    def encode_prefixes(
        self,
        prefixes: Sequence[str] | None,
        source_ids: list[list[int]],
        options: DecodingOptions,
        first_line: int = 1,
        *,
        label: str = "line {}",
        ratio_option: str = "--max-len-ratio",
    ) -> list[list[int]] | None:
        """Target ids of each line's prefix (None when no line has one); a one-line ValueError
        naming the first line whose prefix does not fit its output limit.

        :param source_ids: each line's source ids (after truncation).
        :param label: how the error names line ``first_line + i``; :param ratio_option: how it
            names the length-ratio setting (the server's field differs from the CLI's flag).
        """
        if prefixes is None:
            return None
        if len(prefixes) != len(source_ids):
            raise ValueError(f"{len(prefixes)} prefixes for {len(source_ids)} lines: give one prefix per line")
        ids = self.target_tokenizer.encode_batch([normalize_text(prefix) for prefix in prefixes])
        lengths = torch.tensor([max(len(row), 1) for row in source_ids])
        limits = max_output_lengths(lengths, options.max_len_ratio, options.max_len_offset, options.max_len)
        for i, (row, limit) in enumerate(zip(ids, limits.tolist())):
            if source_ids[i] and len(row) > limit:
                raise ValueError(
                    f"{label.format(first_line + i)}: the prefix has {len(row)} target tokens, more than the "
                    f"output limit of {limit} for its {len(source_ids[i])} source tokens: shorten the prefix "
                    f"or raise {ratio_option}"
                )
        return ids if any(ids) else None

    def encode_constraints(
        self,
        constraints: Sequence[Sequence[str]] | None,
        source_ids: list[list[int]],
        options: DecodingOptions,
        first_line: int = 1,
        *,
        prefix_ids: Sequence[Sequence[int]] | None = None,
        label: str = "line {}",
        strategy_option: str = "--strategy beam",
        ratio_option: str = "--max-len-ratio",
    ) -> list[list[list[int]]] | None:
        """Target ids of each line's constraint phrases (None when no line has one).

        A phrase is normalised like any text and tokenised alone with the target tokenizer,
        so it is spelt as it is inside a sentence after a space: a SentencePiece phrase begins
        with a word-initial piece (``▁``), and matches where a word begins. Lines that are
        empty (nothing to translate) keep no constraints.

        :param prefix_ids: each line's prefix ids, which count against the output limit too.
        :param label, strategy_option, ratio_option: how errors name a line and the options
            (the server's fields differ from the CLI's flags).
        :raises ValueError: one line naming the first problem: constraints with a strategy
            other than beam, a phrase that is empty or holds a character the target vocabulary
            lacks (``<unk>``), constraints (and prefix) longer than the line's output limit.
        """
        if constraints is None:
            return None
        if len(constraints) != len(source_ids):
            raise ValueError(f"{len(constraints)} constraint lists for {len(source_ids)} lines: give one per line")
        if options.strategy != "beam" and any(constraints):
            raise ValueError(f"lexical constraints need {strategy_option}, not {options.strategy}")
        texts = [[normalize_text(phrase) for phrase in phrases] for phrases in constraints]
        flat = self.target_tokenizer.encode_batch([text for phrases in texts for text in phrases])
        lengths = torch.tensor([max(len(row), 1) for row in source_ids])
        limits = max_output_lengths(lengths, options.max_len_ratio, options.max_len_offset, options.max_len).tolist()
        encoded: list[list[list[int]]] = []
        position = 0
        for i, (phrases, originals) in enumerate(zip(texts, constraints)):
            ids = flat[position : position + len(phrases)]
            position += len(phrases)
            where = label.format(first_line + i)
            for original, row in zip(originals, ids):
                if not row:
                    raise ValueError(
                        f"{where}: the constraint {original!r} is empty once normalised: give a word or phrase of "
                        "the target language"
                    )
                if UNK_ID in row:
                    raise ValueError(
                        f"{where}: the constraint {original!r} holds a character the target vocabulary lacks "
                        "(it would be <unk>): drop or respell it"
                    )
            if not source_ids[i]:
                ids = []  # an empty line is not translated: nothing to constrain
            needed = sum(map(len, ids)) + (len(prefix_ids[i]) if prefix_ids is not None and ids else 0)
            if needed > limits[i]:
                prefix_part = " with the prefix" if prefix_ids is not None and prefix_ids[i] else ""
                raise ValueError(
                    f"{where}: the constraints{prefix_part} have {needed} target tokens, more than the output "
                    f"limit of {limits[i]} for its {len(source_ids[i])} source tokens: drop or shorten "
                    f"constraints or raise {ratio_option}"
                )
            encoded.append(ids)
        return encoded if any(encoded) else None

    def target_pieces(self, tokens: list[int], ended: bool) -> list[str]:
        """One target token per output step: ``tokens``' pieces, then ``<eos>`` if it ended."""
        return [*self.target_tokenizer.id_to_piece(tokens), *([EOS] if ended else [])]

    def _finish(self, hyp: Hypothesis, text: str, copy_from: list[str] | None) -> TranslatedHypothesis:
        """:param copy_from: the source pieces to replace unknown tokens from, or None."""
        if copy_from is not None and hyp.attention is not None:
            text = replace_unknowns(text, hyp.tokens, hard_alignment(hyp.attention), copy_from)
        pieces = self.target_pieces(hyp.tokens, hyp.ended)
        return TranslatedHypothesis(text, hyp.score, hyp.log_prob, pieces, hyp.attention, hyp.token_log_probs)

    def source_pieces(self, text: str, ids: list[int]) -> list[str]:
        """Surface pieces (unknown characters shown as themselves) aligned with ``ids``."""
        pieces = self.source_tokenizer.pieces(text)
        if len(pieces) >= len(ids):
            return pieces[: len(ids)]
        return self.source_tokenizer.id_to_piece(ids)
