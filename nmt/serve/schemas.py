"""What the API accepts and returns (pydantic models, also the OpenAPI schema at
``/openapi.json``), the server's input limits, and the checks on texts.

Requests are strict: a field of the wrong type (``"beam_size": "5"``) or an unknown field
(``"beam": 5``) is a 422 naming the field, not silently coerced or ignored.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat

from nmt.data.text import normalize_text
from nmt.decoding import DecodingOptions

_DEFAULTS = DecodingOptions()  # the server decodes as nmt.translate does unless a request says otherwise


@dataclass(frozen=True)
class Limits:
    """Caps on what one request may ask (``python -m nmt.serve --max-chars ...``)."""

    max_chars: int = 2000  # characters in one text
    max_texts: int = 64  # texts in one request
    max_beam: int = 16  # beam size, and n-best for beam search and sampling
    max_body_bytes: int = 1_000_000  # request body

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


_STRICT = ConfigDict(strict=True, extra="forbid")

Texts = str | list[str]


class TranslateRequest(BaseModel):
    """``POST /translate``: one text or a list of texts, and how to decode them."""

    model_config = _STRICT

    text: Texts = Field(description="a sentence, or a list of sentences translated independently")
    model: str | None = Field(None, description="a name from GET /models; default: the first translation model")
    strategy: Literal["greedy", "beam", "sample"] = "greedy"
    beam_size: int = Field(_DEFAULTS.beam_size, ge=1, description="beam: hypotheses kept per sentence")
    n_best: int = Field(_DEFAULTS.n_best, ge=1, description="beam or sample: hypotheses returned per sentence")
    length_penalty: FiniteFloat = Field(_DEFAULTS.length_penalty, ge=0, description="beam: GNMT alpha; 0 = none")
    coverage_penalty: FiniteFloat = Field(
        _DEFAULTS.coverage_penalty, ge=0, description="beam: GNMT coverage penalty beta; 0 = none"
    )
    no_repeat_ngram_size: int = Field(
        _DEFAULTS.no_repeat_ngram_size, ge=0, description="an output never repeats an n-gram of this size; 0 = off"
    )
    repetition_penalty: FiniteFloat = Field(
        _DEFAULTS.repetition_penalty, gt=0, description="CTRL penalty on tokens already generated; 1 = off"
    )
    temperature: FiniteFloat = Field(_DEFAULTS.temperature, ge=0, description="sample: <= 1e-5 is greedy")
    top_k: int = Field(_DEFAULTS.top_k, ge=0, description="sample: keep the k most probable tokens; 0 = all")
    top_p: FiniteFloat = Field(_DEFAULTS.top_p, gt=0, le=1, description="sample: nucleus mass; 1 = all")
    seed: int = Field(_DEFAULTS.seed, ge=0, le=2**32 - 1, description="sample: the same seed gives the same samples")
    max_len_ratio: FiniteFloat = Field(
        _DEFAULTS.max_len_ratio, gt=0, le=10, description="output limit: ratio x source tokens + 10"
    )
    prefix: str | None = Field(
        None,
        description="target text every translation must start with (decoding continues after it; "
        "its tokens count in the scores); empty or absent: none",
    )
    replace_unk: bool = Field(
        False,
        description="replace each unknown token of the output by the source token it attends to most "
        "(as nmt-translate --replace-unk; models with attention)",
    )
    constraints: list[str] | None = Field(
        None,
        description="beam: phrases (target text) every translation must contain somewhere, each tokenised "
        "alone as it would be after a space inside a sentence; empty or absent: none",
    )
    attention: bool = Field(False, description="return tokens and attention weights for every hypothesis")
    to: str | None = Field(
        None,
        description="a model trained on several directions: the language to translate into (e.g. fr); "
        "default its first direction. Refused (422) by a single-direction model",
    )


class ClassifyRequest(BaseModel):
    """``POST /classify``: one text or a list of texts."""

    model_config = _STRICT

    text: Texts = Field(description="a text, or a list of texts classified independently")
    model: str | None = Field(None, description="a name from GET /models; default: the first classification model")


class Hypothesis(BaseModel):
    text: str
    score: float | None = Field(description="ranking score: log-probability, length-penalised for beam search")
    log_prob: float | None
    tokens: list[str] | None = Field(None, description="target tokens, one per attention row (ends with <eos>)")
    attention: list[list[float]] | None = Field(None, description="(tokens, source_tokens) weights; rows sum to 1")


class TranslationResult(BaseModel):
    source: str = Field(description="the text as the model read it (normalised)")
    text: str = Field(description="the best translation")
    truncated: bool = Field(description="the source was longer than the model's limit and was cut")
    hypotheses: list[Hypothesis]
    source_tokens: list[str] | None = None


class TranslateResponse(BaseModel):
    model: str
    options: dict
    translations: list[TranslationResult]


class ClassificationResult(BaseModel):
    text: str = Field(description="the text as the model read it (normalised)")
    label: str
    probability: float
    probabilities: dict[str, float]
    tokens: list[str] = Field(description="the tokens the model read (after truncation)")
    attention: list[float] = Field(description="one weight per token; they sum to 1")
    truncated: bool


class ClassifyResponse(BaseModel):
    model: str
    results: list[ClassificationResult]


# C0 and C1 control characters other than tab, line feed and carriage return (which read
# as spaces), and lone surrogates (JSON "\ud800"), which no tokenizer can encode.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def text_problems(texts: Texts, limits: Limits) -> list[str]:
    """What is wrong with the texts of a request, one message per problem (empty: fine)."""
    single = isinstance(texts, str)
    items = [texts] if isinstance(texts, str) else texts
    if not items:
        return ["text is an empty list: send one text or a list of at least one"]
    if len(items) > limits.max_texts:
        return [
            f"text holds {len(items)} texts; the limit is {limits.max_texts} per request (--max-texts): "
            "split the list over several requests"
        ]
    problems = []
    for index, text in enumerate(items):
        where = "text" if single else f"text[{index}]"
        if len(text) > limits.max_chars:
            problems.append(
                f"{where} has {len(text):,} characters; the limit is {limits.max_chars:,} (--max-chars): "
                "send shorter texts, e.g. one sentence each"
            )
        elif (bad := _FORBIDDEN.search(text)) is not None:
            char = bad.group()
            kind = "a lone surrogate" if "\ud800" <= char <= "\udfff" else "the control character"
            problems.append(
                f"{where} contains {kind} U+{ord(char):04X} at position {bad.start()}: "
                "remove it (tab, newline and carriage return are allowed)"
            )
        elif not normalize_text(text).strip():
            problems.append(f"{where} is empty: send at least one character that is not a space")
    return problems
