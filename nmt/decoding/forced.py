"""Forced decoding: the model's log-probability of a *given* target, by teacher forcing.

One forward pass over the whole batch (:meth:`~nmt.models.seq2seq.Seq2Seq.forward`) scores
every target token at once; the result is the decoders' own :class:`Hypotheses`, so the
score of a search's output, forced, is the score the search reported. As in the search,
PAD and BOS are excluded from the distribution (:func:`next_token_log_probs`) and the
EOS that ends the target is scored too.
"""

from __future__ import annotations

import torch

from nmt.data.batching import TranslationBatch
from nmt.data.tokenizers import PAD_ID
from nmt.decoding.greedy import Hypotheses, check_attention_wanted, next_token_log_probs


@torch.inference_mode()
def forced_decode(model, batch: TranslationBatch, *, return_attention: bool = False) -> Hypotheses:
    """Score the given targets, each followed by EOS.

    :param model: a :class:`~nmt.models.seq2seq.Seq2Seq` or an ensemble of them
        (:class:`~nmt.models.ensemble.Seq2SeqEnsemble`: the mean of the members' probabilities
        at every position), in eval mode.
    :param batch: the pairs as training sees them (:func:`~nmt.data.batching.collate_pairs`):
        ``src`` (batch, src_len), ``src_lengths`` (batch,), ``tgt_in`` = BOS + target and
        ``tgt_out`` = target + EOS, (batch, tgt_len + 1).
    :return: per sentence its tokens (the target), score (log-probability of target + EOS),
        ``len + 1`` token log-probabilities and, if asked for, the attention
        (len + 1, src_len) float32 on the CPU.
    """
    check_attention_wanted(model, return_attention)
    logits, attention = model(batch.src, batch.src_lengths, batch.tgt_in)
    rows, steps, vocab = logits.shape
    log_probs = next_token_log_probs(logits.reshape(rows * steps, vocab)).view(rows, steps, vocab)
    real = batch.tgt_out != PAD_ID
    token_lp = log_probs.gather(2, batch.tgt_out.unsqueeze(2)).squeeze(2).masked_fill(~real, 0.0)  # (rows, steps)
    scored = real.sum(dim=1).tolist()  # target tokens + EOS
    attn_list = None
    if return_attention and attention is not None:
        src_lengths = batch.src_lengths.tolist()
        attn_list = [attention[i, : scored[i], : src_lengths[i]].float().cpu() for i in range(rows)]
    per_step = [row[:n] for row, n in zip(token_lp.tolist(), scored)]
    targets = [row[: n - 1] for row, n in zip(batch.tgt_out.tolist(), scored)]
    return Hypotheses(targets, token_lp.sum(dim=1).tolist(), attn_list, per_step)
