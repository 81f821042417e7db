"""Word alignments read off the attention, and unknown-token replacement that uses them.

A *hard alignment* links each target token to the source token it attends to most:
``argmax`` over the source positions of its attention row. The weights handed here are
already cut to the real source (``src_len`` columns, no padding), so padding can never win.
Pharaoh format writes the links as ``i-j`` pairs, source index first, both 0-based
(the format of fast_align and Moses)::

    0-0 1-2 2-1

Unknown-token replacement (Luong et al., 2015, "Addressing the Rare Word Problem") copies,
for each ``<unk>`` the model produced, the surface of the source token it attends to most:
a name or number the vocabulary lacks is usually copied unchanged in translation.
"""

from __future__ import annotations

import torch

from nmt.data.tokenizers import UNK_ID, UNK_SURFACE

WORD_BOUNDARY = "\u2581"
"""SentencePiece's word-boundary mark ("▁"), which starts a piece that follows a space."""


def hard_alignment(attention: torch.Tensor) -> list[int]:
    """The most attended source position of each target step.

    :param attention: (out_len, src_len) weights over the real source positions.
    :return: out_len source indices (0-based); ties go to the first position.
    """
    if attention.size(0) == 0:
        return []
    return attention.argmax(dim=1).tolist()


def pharaoh(alignment: list[int]) -> str:
    """``alignment`` (target position -> source position) as Pharaoh ``src-tgt`` pairs."""
    return " ".join(f"{source}-{target}" for target, source in enumerate(alignment))


def source_surface(piece: str) -> str:
    """What a source token looks like in text: a SentencePiece piece without its word mark."""
    return piece.replace(WORD_BOUNDARY, " ").strip()


def replace_unknowns(text: str, tokens: list[int], alignment: list[int], source_pieces: list[str]) -> str:
    """``text`` with each unknown token's surface replaced by its most attended source token.

    Every tokenizer decodes an unknown token to exactly one :data:`UNK_SURFACE` (``⁇``), in
    token order, so the n-th ``⁇`` of ``text`` is the n-th ``UNK_ID`` of ``tokens``.

    :param text: the detokenised translation of ``tokens``.
    :param tokens: the output ids (without BOS/EOS).
    :param alignment: at least ``len(tokens)`` source positions (:func:`hard_alignment`).
    :param source_pieces: the source tokens the model read, as surface pieces.
    :return: the text, unchanged when it has no unknown token or its count of ``⁇`` does not
        match the token ids (a literal ``⁇`` in the vocabulary: nothing is guessed).
    """
    unknown_at = [position for position, token in enumerate(tokens) if token == UNK_ID]
    parts = text.split(UNK_SURFACE)
    if not unknown_at or len(parts) != len(unknown_at) + 1:
        return text
    copied = [source_surface(source_pieces[alignment[position]]) for position in unknown_at]
    return "".join(part + word for part, word in zip(parts, [*copied, ""]))
