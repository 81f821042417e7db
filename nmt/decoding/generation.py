"""Text generation with a language model: continue prompts greedily or by sampling.

Sampling is :mod:`nmt.decoding.sampling`'s: temperature first, then top-k / top-p on the
tempered distribution, and a counter-based random number per ``(seed, prompt, sample,
step)``, so a prompt's continuation does not depend on the batch it is generated in.

No-repeat n-grams and the repetition penalty (:mod:`nmt.decoding.penalties`) see the prompt
as part of the text: a continuation does not repeat the prompt's n-grams either.

The prompt is read with the very step function that generates (one position at a time,
rows whose prompt has ended keep their state), so a prompt of any length in any batch gives
the state that generating it token by token would.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from nmt.data.batching import pad_sequences
from nmt.data.tokenizers import BOS_ID, EOS_ID, PAD_ID
from nmt.decoding.greedy import Hypothesis, next_token_log_probs, trim_at_eos
from nmt.decoding.penalties import RepetitionRules
from nmt.decoding.sampling import GREEDY_TEMPERATURE, Sampler, sample_keys
from nmt.modules.decoder import DecoderState


def _keep_rows(new: DecoderState, old: DecoderState, advance: torch.Tensor) -> DecoderState:
    """``new`` where ``advance`` (batch,) is True, ``old`` elsewhere."""
    rows = advance.view(1, -1, 1)
    cell = None if new.cell is None or old.cell is None else torch.where(rows, new.cell, old.cell)
    return DecoderState(
        torch.where(rows, new.hidden, old.hidden), cell, torch.where(advance.view(-1, 1), new.feed, old.feed)
    )


def read_prompts(model, prompts: torch.Tensor, lengths: torch.Tensor) -> tuple[DecoderState, torch.Tensor]:
    """The state after all but the last token of each prompt, and that last token.

    :param prompts: (batch, len) ids starting with BOS, PAD-padded. :param lengths: (batch,) >= 1.
    :return: the state and (batch,) the last prompt tokens, to be fed to the first step.
    """
    batch = prompts.size(0)
    state = model.initial_state(batch, prompts.device)
    for position in range(int(lengths.max()) - 1):
        advance = position < lengths - 1
        _, stepped = model.step(prompts[:, position], state)
        state = _keep_rows(stepped, state, advance)
    last = prompts.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)
    return state, last


def left_aligned_to_right(sequences: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """PAD-padded rows moved to the right end, so that every row's last id is in the last column.

    :param sequences: (batch, len) ids, PAD at the end. :param lengths: (batch,).
    :return: (batch, len) the same ids, PAD at the start.
    """
    width = sequences.size(1)
    source = torch.arange(width, device=sequences.device) - (width - lengths).unsqueeze(1)
    return torch.where(source >= 0, sequences.gather(1, source.clamp(min=0)), PAD_ID)


@torch.inference_mode()
def generate(
    model,
    prompts: Sequence[Sequence[int]],
    *,
    max_tokens: int = 100,
    num_samples: int = 1,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int = 0,
    repetition: RepetitionRules | None = None,
) -> list[list[Hypothesis]]:
    """Continue each prompt until EOS or ``max_tokens`` new tokens.

    :param model: a :class:`~nmt.models.language_model.LanguageModel` (``initial_state``, ``step``).
    :param prompts: token ids of each prompt, without BOS (it is added); may be empty.
    :param num_samples: continuations per prompt (sampling only).
    :param temperature: divides the log-probabilities before top-k / top-p; <= 1e-5 is greedy.
    :param repetition: no-repeat n-grams and repetition penalty over prompt and continuation;
        None = neither.
    :return: per prompt, ``num_samples`` hypotheses (the new tokens without EOS) sorted by
        log-probability, best first; ``score`` = ``log_prob`` = the continuation's summed
        log-probability under the unfiltered model (EOS included when produced).
    """
    greedy = temperature <= GREEDY_TEMPERATURE
    if max_tokens < 1 or num_samples < 1:
        raise ValueError(f"need max_tokens >= 1 and num_samples >= 1, got {max_tokens} and {num_samples}")
    if greedy and num_samples > 1:
        raise ValueError("several samples per prompt need sampling: give a temperature above 0")
    if temperature < 0 or top_k < 0 or not 0.0 < top_p <= 1.0:
        raise ValueError(f"need temperature >= 0, top_k >= 0 and 0 < top_p <= 1, got {temperature}, {top_k}, {top_p}")
    if not prompts:
        return []
    device = model.output_layer.weight.device
    sequences, lengths = pad_sequences([[BOS_ID, *prompt] for prompt in prompts])
    sequences, lengths = sequences.to(device), lengths.to(device)
    rows, keys = sample_keys(sequences, lengths, seed, num_samples)
    choose = None if greedy else Sampler(keys, temperature, top_k, top_p)

    state, prev = read_prompts(model, sequences[rows], lengths[rows])
    total = rows.numel()
    tokens = torch.full((total, max_tokens), PAD_ID, dtype=torch.long, device=device)
    scores = torch.zeros(total, dtype=torch.float64, device=device)
    active = torch.arange(total, device=device)
    penalised = repetition is not None and repetition.active
    prompt_history = left_aligned_to_right(sequences[rows], lengths[rows]) if penalised else None
    for step in range(max_tokens):
        logits, state = model.step(prev, state)
        history = None
        if prompt_history is not None:
            history = torch.cat([prompt_history[active], tokens[active, :step]], dim=1)
        log_probs = next_token_log_probs(logits, history, repetition)
        if choose is None:
            best = log_probs.argmax(dim=-1)
        else:
            best = choose(log_probs, active, step)
        tokens[active, step] = best
        scores[active] += log_probs.gather(1, best.unsqueeze(1)).squeeze(1).double()
        done = best == EOS_ID
        if bool(done.all()):
            break
        if bool(done.any()):
            keep = (~done).nonzero().squeeze(1)
            active, best, state = active[keep], best[keep], state.select(keep)
        prev = best
    outputs = [Hypothesis(trim_at_eos(row), score, score) for row, score in zip(tokens.tolist(), scores.tolist())]
    return [
        sorted(outputs[i * num_samples : (i + 1) * num_samples], key=lambda h: -h.score) for i in range(len(prompts))
    ]
