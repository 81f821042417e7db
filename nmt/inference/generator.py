"""Language-model checkpoint -> text continuations: what ``python -m nmt.generate`` and
other tools share.

:class:`TextGenerator` takes raw prompts and returns one :class:`Generation` per prompt, in
order. Prompts are normalised like the training data (:func:`~nmt.data.text.normalize_text`),
except that a trailing space is kept (``"Je "`` asks for the next word, ``"Je"`` may
continue the word); an empty prompt generates from the start of a text. Prompts are batched,
longest first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from nmt.data.text import normalize_text
from nmt.data.tokenizers import Tokenizer
from nmt.decoding.generation import generate
from nmt.decoding.penalties import RepetitionRules, repetition_problems
from nmt.inference.loading import LoadedModel, check_task, load_model
from nmt.inference.translator import resolve_device
from nmt.models.language_model import LanguageModel

TASK = "lm"


@dataclass(frozen=True)
class GenerationOptions:
    """How to continue a prompt; invalid values raise ``ValueError`` when the object is made."""

    max_tokens: int = 100  # new tokens at most (characters for a character-level model)
    strategy: str = "sample"  # sample | greedy
    temperature: float = 1.0  # sample: divides the log-probabilities, before top-k / top-p
    top_k: int = 0  # sample: only the k most probable tokens; 0 = all
    top_p: float = 1.0  # sample: smallest set of tokens with this tempered probability; 1 = all
    seed: int = 0  # sample: the same seed gives the same text
    num_samples: int = 1  # sample: continuations per prompt
    no_repeat_ngram_size: int = 0  # a text never repeats an n-gram of this size (prompt included); 0 = off
    repetition_penalty: float = 1.0  # CTRL penalty on the logits of tokens already in the text; 1 = off

    def __post_init__(self) -> None:
        problems = []
        if self.strategy not in ("sample", "greedy"):
            problems.append(f"strategy must be sample or greedy, got {self.strategy!r}")
        if self.max_tokens < 1:
            problems.append(f"max tokens must be >= 1, got {self.max_tokens}")
        if self.temperature < 0:
            problems.append(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            problems.append(f"top-k must be >= 0, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            problems.append(f"top-p must be in (0, 1], got {self.top_p}")
        if self.num_samples < 1:
            problems.append(f"num samples must be >= 1, got {self.num_samples}")
        elif self.num_samples > 1 and self.strategy == "greedy":
            problems.append("several samples per prompt need the sample strategy")
        problems += repetition_problems(self.no_repeat_ngram_size, self.repetition_penalty)
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def repetition(self) -> RepetitionRules:
        return RepetitionRules(self.no_repeat_ngram_size, self.repetition_penalty)

    @property
    def effective_temperature(self) -> float:
        return 0.0 if self.strategy == "greedy" else self.temperature


@dataclass
class Continuation:
    """:ivar text: the prompt followed by the generated text. :ivar continuation: the
    generated text alone. :ivar log_prob: its summed log-probability under the model.
    :ivar ended: the model ended the text (EOS) before the token limit."""

    text: str
    continuation: str
    log_prob: float
    ended: bool


@dataclass
class Generation:
    """The result for one prompt: ``samples`` best first."""

    prompt: str
    samples: list[Continuation] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.samples[0].text


def prompt_text(prompt: str) -> str:
    """The normalised prompt, keeping one trailing space if it had one."""
    text = normalize_text(prompt)
    return text + " " if text and prompt[-1:].isspace() else text


def continuation_text(tokenizer: Tokenizer, prompt: str, prompt_ids: list[int], new_ids: list[int]) -> str:
    """The generated text as it continues ``prompt``: decoded together with the prompt's ids,
    so that subword spacing at the seam is right, then cut after the decoded prompt."""
    whole = tokenizer.decode(prompt_ids + new_ids)
    head = tokenizer.decode(prompt_ids)
    new = whole[len(head) :] if whole.startswith(head) else tokenizer.decode(new_ids)
    if prompt.endswith(" ") and new.startswith(" "):  # the tokenizer dropped the prompt's trailing space
        new = new[1:]
    return new


class TextGenerator:
    """A trained language model with its tokenizer, ready to continue prompts.

    :param config: the run config stored in the checkpoint.
    """

    def __init__(
        self,
        model: LanguageModel,
        tokenizer: Tokenizer,
        config: Mapping[str, Any] | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.config = dict(config or {})

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "auto") -> TextGenerator:
        """Load a language-model checkpoint safely (``weights_only``); needs nothing else.

        :raises CheckpointError: missing, unreadable or not a language-model checkpoint.
        """
        device = resolve_device(device)  # a missing GPU fails before the file is read
        return cls.from_loaded(load_model(path, task=TASK), device)

    @classmethod
    def from_loaded(cls, loaded: LoadedModel, device: str | torch.device = "auto") -> TextGenerator:
        """A generator around an already loaded language-model checkpoint (:func:`load_model`)."""
        check_task(loaded.path, loaded.task, TASK)
        return cls(loaded.model, loaded.tokenizer, loaded.config, device)

    def generate(
        self, prompts: Iterable[str], options: GenerationOptions | None = None, batch_size: int = 64
    ) -> list[Generation]:
        """Continue raw prompts; exactly one :class:`Generation` per prompt, in order."""
        if batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {batch_size}")
        options = options or GenerationOptions()
        texts = [prompt_text(prompt) for prompt in prompts]
        ids = self.tokenizer.encode_batch(texts)
        results = [Generation(text) for text in texts]
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            hypotheses = generate(
                self.model,
                [ids[i] for i in batch],
                max_tokens=options.max_tokens,
                num_samples=options.num_samples,
                temperature=options.effective_temperature,
                top_k=options.top_k,
                top_p=options.top_p,
                seed=options.seed,
                repetition=options.repetition,
            )
            for i, hyps in zip(batch, hypotheses):
                for hyp in hyps:
                    new = continuation_text(self.tokenizer, texts[i], ids[i], hyp.tokens)
                    ended = len(hyp.tokens) < options.max_tokens
                    results[i].samples.append(Continuation(texts[i] + new, new, hyp.log_prob, ended))
        return results
