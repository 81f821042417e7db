"""Decoding strategies, apart from the model: greedy, sampling and beam search.

All three are batched tensor code driven through ``Seq2Seq.encode`` / ``decode_step``;
:func:`decode` picks one from a :class:`DecodingOptions`::

    hyps = decode(model, src, src_lengths, DecodingOptions(strategy="beam", beam_size=5))
    hyps = decode(model, src, src_lengths, strategy="sample", temperature=0.7, seed=1)
    hyps = decode(model, src, src_lengths, prefixes=[[12, 40], [], [7]])  # outputs start so
    hyps = decode(model, src, src_lengths, strategy="beam", constraints=[[[12, 40], [9]], [], [[7]]])

A target prefix per sentence (:mod:`nmt.decoding.prefix`) constrains all three alike; lexical
constraints, phrases each output must contain anywhere (:mod:`nmt.decoding.constraints`),
constrain beam search.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

from nmt.decoding.beam import beam_search
from nmt.decoding.constraints import constraint_tables
from nmt.decoding.greedy import Hypotheses, Hypothesis, greedy_decode
from nmt.decoding.penalties import RepetitionRules, repetition_problems
from nmt.decoding.prefix import prefix_tensor, repeated_ngram
from nmt.decoding.sampling import sample_decode

__all__ = [
    "STRATEGIES",
    "DecodingOptions",
    "decode",
    "Hypothesis",
    "Hypotheses",
    "RepetitionRules",
    "greedy_decode",
    "sample_decode",
    "beam_search",
]

STRATEGIES = ("greedy", "sample", "beam")


@dataclass(frozen=True)
class DecodingOptions:
    """How to decode; invalid values raise ``ValueError`` when the object is made."""

    strategy: str = "greedy"  # greedy | sample | beam
    beam_size: int = 5  # beam: hypotheses kept per sentence
    n_best: int = 1  # outputs per sentence: beam n-best (<= beam_size) or samples
    length_penalty: float = 1.0  # beam: GNMT alpha in ((5 + len) / 6) ** alpha; 0 = none
    beam_patience: int | None = (
        2  # beam: steps ahead a live beam may still win (stopping rule); None = to the length limit
    )
    temperature: float = 1.0  # sample: divides log-probabilities; <= 1e-5 is greedy
    top_k: int = 0  # sample: only the k most probable tokens; 0 = all
    top_p: float = 1.0  # sample: smallest token set with this probability; 1 = all
    seed: int = 0  # sample: the same seed gives the same samples
    max_len_ratio: float = 2.0  # output limit: ratio * source tokens + offset
    max_len_offset: int = 10
    max_len: int | None = None  # absolute cap on output tokens; None = none
    no_repeat_ngram_size: int = 0  # every strategy: an output never repeats an n-gram of this size; 0 = off
    repetition_penalty: float = 1.0  # every strategy: CTRL penalty on the logits of generated tokens; 1 = off
    coverage_penalty: float = 0.0  # beam: GNMT beta of beta * sum log(min(attention sum, 1)); 0 = none

    def __post_init__(self) -> None:
        problems = []
        if self.strategy not in STRATEGIES:
            problems.append(f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if self.beam_size < 1:
            problems.append(f"beam size must be >= 1, got {self.beam_size}")
        if self.n_best < 1:
            problems.append(f"n-best must be >= 1, got {self.n_best}")
        elif self.strategy == "greedy" and self.n_best > 1:
            problems.append("n-best > 1 needs the beam or sample strategy")
        elif self.strategy == "beam" and self.n_best > self.beam_size:
            problems.append(f"n-best ({self.n_best}) cannot exceed the beam size ({self.beam_size})")
        if self.beam_patience is not None and self.beam_patience < 0:
            problems.append(f"beam patience must be >= 0 (or None: up to the length limit), got {self.beam_patience}")
        if self.temperature < 0:
            problems.append(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            problems.append(f"top-k must be >= 0, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            problems.append(f"top-p must be in (0, 1], got {self.top_p}")
        if self.max_len_ratio <= 0 or self.max_len_offset < 0:
            problems.append("max_len_ratio must be > 0 and max_len_offset >= 0")
        if self.max_len is not None and self.max_len < 1:
            problems.append(f"max_len must be >= 1, got {self.max_len}")
        problems += repetition_problems(self.no_repeat_ngram_size, self.repetition_penalty)
        if not 0.0 <= self.coverage_penalty < float("inf"):
            problems.append(f"coverage penalty must be a finite number >= 0 (0 = none), got {self.coverage_penalty}")
        elif self.coverage_penalty > 0 and self.strategy != "beam":
            problems.append("the coverage penalty needs the beam strategy (it rescores finished beams)")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def repetition(self) -> RepetitionRules:
        """The no-repeat n-gram size and repetition penalty, as the strategies take them."""
        return RepetitionRules(self.no_repeat_ngram_size, self.repetition_penalty)

    def describe(self) -> dict:
        """The options that matter for the chosen strategy (for reports)."""
        keep = {"strategy", "max_len_ratio", "max_len_offset", "max_len", "n_best"}
        keep |= {"no_repeat_ngram_size", "repetition_penalty"}
        keep |= {
            "beam": {"beam_size", "length_penalty", "beam_patience", "coverage_penalty"},
            "sample": {"temperature", "top_k", "top_p", "seed"},
        }.get(self.strategy, set())
        return {name: value for name, value in asdict(self).items() if name in keep}


def decode(
    model,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    options: DecodingOptions | None = None,
    *,
    return_attention: bool = False,
    prefixes: Sequence[Sequence[int]] | None = None,
    constraints: Sequence[Sequence[Sequence[int]]] | None = None,
    **fields,
) -> list[list[Hypothesis]]:
    """Decode a batch with the strategy of ``options`` (fields given here override it).

    :param model: a :class:`~nmt.models.seq2seq.Seq2Seq` in eval mode.
    :param src: (batch, src_len) PAD-padded ids. :param src_lengths: (batch,), each >= 1.
    :param prefixes: per sentence, the target ids its outputs must start with (no BOS or
        EOS; empty = free); their log-probabilities count in the scores. None = none.
    :param constraints: per sentence, its phrases (lists of target ids, no special tokens),
        each of which every output of the sentence contains (beam search only; empty = free);
        None = none.
    :return: per sentence, ``n_best`` hypotheses sorted by score, best first.
    :raises ValueError: a prefix longer than its sentence's output limit, or one that
        repeats an n-gram the no-repeat rule forbids; constraints with another strategy than
        beam, an empty or special-token phrase, constraints (and prefix) longer than the limit.
    """
    options = replace(options or DecodingOptions(), **fields)
    if prefixes is not None and len(prefixes) != src.size(0):
        raise ValueError(f"{len(prefixes)} prefixes for a batch of {src.size(0)} sentences: give one per sentence")
    if constraints is not None and len(constraints) != src.size(0):
        raise ValueError(
            f"{len(constraints)} constraint lists for a batch of {src.size(0)} sentences: give one per sentence"
        )
    if constraints is not None and options.strategy != "beam" and any(constraints):
        raise ValueError(f"lexical constraints need --strategy beam, not {options.strategy}")
    n = options.no_repeat_ngram_size
    if prefixes is not None and n > 0 and any(repeated_ngram(prefix, n) for prefix in prefixes):
        raise ValueError(
            f"a prefix repeats an n-gram of {n} tokens, which --no-repeat-ngram-size {n} forbids: "
            "raise or turn off the no-repeat size, or change the prefix"
        )
    if constraints is not None and n > 0 and any(repeated_ngram(p, n) for phrases in constraints for p in phrases):
        raise ValueError(
            f"a constraint repeats an n-gram of {n} tokens, which --no-repeat-ngram-size {n} forbids: "
            "raise or turn off the no-repeat size, or change the constraint"
        )
    limits: dict[str, Any] = {
        "max_len_ratio": options.max_len_ratio,
        "max_len_offset": options.max_len_offset,
        "max_len": options.max_len,
        "return_attention": return_attention,
        "prefix": None if prefixes is None else prefix_tensor(prefixes, src.device),
    }
    repetition = options.repetition
    if options.strategy == "beam":
        return beam_search(
            model,
            src,
            src_lengths,
            beam_size=options.beam_size,
            n_best=options.n_best,
            length_penalty_alpha=options.length_penalty,
            patience=options.beam_patience,
            repetition=repetition,
            coverage_penalty_beta=options.coverage_penalty,
            constraints=None if constraints is None else constraint_tables(constraints, src.device),
            **limits,
        )
    if options.strategy == "sample":
        return sample_decode(
            model,
            src,
            src_lengths,
            num_samples=options.n_best,
            temperature=options.temperature,
            top_k=options.top_k,
            top_p=options.top_p,
            seed=options.seed,
            repetition=repetition,
            **limits,
        )
    out = greedy_decode(model, src, src_lengths, repetition=repetition, **limits)
    attention: list[torch.Tensor | None] = [*out.attention] if out.attention else [None] * len(out.tokens)
    return [
        [Hypothesis(tokens, score, score, attn, token_scores)]
        for tokens, score, attn, token_scores in zip(out.tokens, out.scores, attention, out.token_log_probs)
    ]
