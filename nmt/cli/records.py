"""The JSON-lines records of ``nmt-translate --output-format jsonl`` and ``nmt-score``.

One JSON object per input line, on one line (``ensure_ascii=False``: UTF-8 text as is).
Numbers that are not finite (a ``-inf`` log-probability) are written as ``null``, so every
line is strict JSON. Token lists hold the model's pieces and end with ``<eos>`` when the
output ended with it; ``token_log_probs`` has one entry per token and sums to ``log_prob``.
``alignment`` has one source index per token (the most attended source token, 0-based);
``pharaoh`` writes the same links without the ``<eos>`` step as ``source-target`` pairs.
"""

from __future__ import annotations

import json
import math
from typing import Any

from nmt.data.tokenizers import EOS
from nmt.inference.alignment import hard_alignment, pharaoh


def finite(value: float | None) -> float | None:
    """``value``, or None for a NaN or an infinity (JSON has neither)."""
    return value if value is not None and math.isfinite(value) else None


def json_line(record: dict[str, Any]) -> str:
    """``record`` as one line of strict JSON."""
    return json.dumps(record, ensure_ascii=False, allow_nan=False)


def alignment_fields(attention, pieces: list[str]) -> dict[str, Any]:
    """``alignment`` and ``pharaoh`` from (len(pieces), src_len) weights (None: both null)."""
    if attention is None:
        return {"alignment": None, "pharaoh": None}
    alignment = hard_alignment(attention)
    words = len(pieces) - (1 if pieces and pieces[-1] == EOS else 0)
    return {"alignment": alignment, "pharaoh": pharaoh(alignment[:words])}


def length_normalisation(options) -> dict[str, Any] | None:
    """How the score relates to the log-probability: beam search divides it by the GNMT
    penalty ``((5 + len) / 6) ** alpha`` (``len`` counts ``<eos>``); None: score = log-prob."""
    if options.strategy != "beam" or options.length_penalty == 0:
        return None
    return {"kind": "gnmt", "alpha": options.length_penalty}


def translation_record(translation, options) -> dict[str, Any]:
    """The record of one translated line: the best translation, then every hypothesis."""
    normalisation = length_normalisation(options)
    hypotheses = [
        {
            "translation": hyp.text,
            "tokens": hyp.pieces,
            "token_log_probs": [finite(lp) for lp in hyp.token_log_probs],
            "log_prob": finite(hyp.log_prob),
            "score": finite(hyp.score),
            "length_normalisation": normalisation,
            **alignment_fields(hyp.attention, hyp.pieces),
        }
        for hyp in translation.hypotheses
    ]
    return {
        "source": translation.source,
        "source_tokens": translation.source_pieces,
        "truncated": translation.truncated,
        "translation": translation.text,
        "hypotheses": hypotheses,
    }


def score_record(scored, alignment: bool) -> dict[str, Any]:
    """The record of one scored pair (:class:`~nmt.inference.scorer.ScoredPair`)."""
    record = {
        "source": scored.source,
        "target": scored.target,
        "source_tokens": scored.source_pieces,
        "truncated": scored.truncated,
        "log_prob": finite(scored.log_prob),
        "tokens": scored.pieces,
        "token_log_probs": [finite(lp) for lp in scored.token_log_probs],
    }
    if alignment:
        record.update(alignment_fields(scored.attention, scored.pieces))
    return record
