"""The input-feeding decoder loop over a known target, with a hand-written backward pass.

With input feeding each step needs the previous step's attentional state, so training cannot
run the recurrence as one fused ``nn.LSTM`` call. Left to autograd, the loop records some
30 nodes per step, and its backward computes every weight's gradient once per step, as a
small matrix product, then adds the T pieces up one by one. Here the loop is one
:class:`torch.autograd.Function`:

* forward runs the steps (for an LSTM the previous attentional state and hidden state go
  through one matrix product, ``[h~_{t-1}; s_{t-1}] [W_f; W_hh]^T``) and keeps each step's
  activations in preallocated (T, ...) buffers;
* backward walks the steps in reverse computing only what the next (earlier) step needs:
  the gradients wrt the gates, the hidden and cell state and the fed-back state. Every
  weight's gradient is then **one** matrix product over all T steps, and the encoder
  states' gradient one batched product.

For one layer of LSTM, GRU or Elman RNN with ``bahdanau``, ``dot`` or ``general`` attention, float32
or float64, no autocast (:func:`fused_loop_applies`); the decoder takes PyTorch's autograd
through its step loop otherwise (several layers, with dropout between them; bf16/fp16).
Equal to that loop in value and gradients (tested with ``gradcheck`` and against it).

Step t (Luong's order; :mod:`nmt.modules.decoder` has the equations), with
``x_t = E_t + h~_{t-1} W_f^T`` the input product (E: the embedding's part with ``b_ih``,
given) and ``u_t = s_{t-1} W_hh^T + b_hh`` the recurrent one, split into gate blocks:

    LSTM:   c_t = f * c_{t-1} + i * g,  s_t = o * tanh(c_t)   (i, f, o = sigmoid(x + u), g = tanh(x + u))
    GRU:    r, z = sigmoid(x + u),  n = tanh(x_n + r * u_n),  s_t = (1 - z) * n + z * s_{t-1}
    RNN:    s_t = tanh(x + u)   (Elman)
    score_j = v^T tanh(W_q s_t + b_q + k_j)   (bahdanau)   or   s_t^T k_j   (dot, general)
    a_t     = softmax(score) over real source positions;   ctx_t = sum_j a_tj m_j
    h~_t    = tanh(W_c [s_t; ctx_t])
"""

from __future__ import annotations

from typing import Any

import torch

from nmt.config.schema import ATTENTION_MECHANISMS

# The attentions whose scores the loop computes itself, by the ``kind`` their class declares
# (:mod:`nmt.modules.attention`); a subclass that does not declare its own kind keeps autograd's loop.
_ATTENTION_KINDS = ATTENTION_MECHANISMS


def _attention_kind(attention: Any) -> str | None:
    return vars(type(attention)).get("kind")


def fused_loop_applies(decoder: Any, embedded: torch.Tensor) -> bool:
    """Whether :func:`input_feeding_loop` can run ``decoder`` (an
    :class:`~nmt.modules.decoder.AttentionDecoder`) over ``embedded``."""
    return (
        decoder.input_feeding
        and decoder.cell_type in ("lstm", "gru", "rnn")
        and decoder.num_layers == 1
        and _attention_kind(decoder.attention) in _ATTENTION_KINDS
        and embedded.dtype in (torch.float32, torch.float64)
        and not torch.is_autocast_enabled(embedded.device.type)
    )


def input_feeding_loop(
    decoder: Any,
    embedding_gates: torch.Tensor,
    hidden: torch.Tensor,
    cell: torch.Tensor | None,
    feed: torch.Tensor,
    keys: torch.Tensor,
    memory: torch.Tensor,
    mask: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a one-layer LSTM, GRU or Elman RNN input-feeding decoder over all target positions.

    :param decoder: an :class:`~nmt.modules.decoder.AttentionDecoder` for which
        :func:`fused_loop_applies`.
    :param embedding_gates: (batch, tgt_len, gates * hidden) the embedding's share of the
        input product, ``b_ih`` included (:meth:`AttentionDecoder.embedding_gates`).
    :param hidden: (batch, hidden) the initial state; :param cell: the LSTM's initial cell
        (batch, hidden), None for a GRU or RNN. :param feed: (batch, hidden) the initial
        attentional state (zeros).
    :param keys: (batch, src_len, key_size) and :param memory: (batch, src_len, memory_size)
        from :meth:`Attention.prepare`. :param mask: (batch, src_len) bool, True at real tokens.
    :return: attentional states (batch, tgt_len, hidden) and attention weights
        (batch, tgt_len, src_len) (not differentiable).
    """
    weight_ih, weight_hh, _, bias_hh = decoder.layer_weights(0)
    attention = decoder.attention
    if _attention_kind(attention) == "bahdanau":
        scorer = (attention.query_layer.weight, attention.query_layer.bias, attention.energy_layer.weight)
    else:
        scorer = (None, None, None)
    return _InputFeedingLoop.apply(
        embedding_gates,
        hidden,
        cell,
        feed,
        keys,
        memory,
        mask,
        weight_ih[:, decoder.embed_size :],
        weight_hh,
        bias_hh,
        decoder.combine.weight,
        *scorer,
    )


def _rows(steps_first: torch.Tensor) -> torch.Tensor:
    """(T, batch, features) -> (T * batch, features), to sum products over all steps at once."""
    return steps_first.reshape(-1, steps_first.size(-1))


class _InputFeedingLoop(torch.autograd.Function):
    """Arguments as :func:`input_feeding_loop` passes them; the weights are those of the
    equations in the module docstring (``weight_energy`` is v, (1, A)). ``c0`` is None for
    a GRU or RNN (told apart by their gate count: 3 blocks of H, or 1); the saved ``recurrent``
    buffer holds the LSTM's cells (T + 1, batch, H), the GRU's ``u_n`` (T, batch, H), or
    nothing for the RNN."""

    @staticmethod
    def forward(
        ctx,
        gates_in,
        h0,
        c0,
        feed0,
        keys,
        memory,
        mask,
        weight_feed,
        weight_hh,
        bias_hh,
        weight_combine,
        weight_query,
        bias_query,
        weight_energy,
    ):
        lstm, additive = c0 is not None, weight_query is not None
        batch, steps, gate_size = gates_in.shape
        size = h0.size(-1)
        elman = not lstm and gate_size == size
        gates_in = gates_in.transpose(0, 1)  # (T, batch, gates * H)
        if lstm or elman:  # b_hh folded in; [W_f; W_hh] so one product takes [h~; s]
            gates_in = (gates_in + bias_hh).contiguous()
            recurrent_weight_t = torch.cat([weight_feed, weight_hh], dim=1).t()
            recurrent = h0.new_empty(steps + 1 if lstm else 0, batch, size)
            if lstm:
                recurrent[0] = c0
        else:
            recurrent = h0.new_empty(steps, batch, size)
        blocked = ~mask
        activations = gates_in.new_empty(steps, batch, gate_size)  # the gates after their nonlinearity
        hiddens = h0.new_empty(steps + 1, batch, size)
        feeds = h0.new_empty(steps + 1, batch, size)
        contexts = memory.new_empty(steps, batch, memory.size(-1))
        weights = memory.new_empty(steps, batch, memory.size(1))
        # Additive attention's (batch, src_len, A) energies are recomputed in backward, not
        # kept: T of them would be written once and read once, a new page fault per 4 kB.
        queries = keys.new_empty(steps, batch, keys.size(-1)) if additive else None
        work = torch.empty_like(keys) if additive else None
        hiddens[0], feeds[0] = h0, feed0
        for t in range(steps):
            act = activations[t]
            if lstm:
                gates = torch.addmm(gates_in[t], torch.cat([feeds[t], hiddens[t]], dim=1), recurrent_weight_t)
                torch.sigmoid(gates, out=act)
                torch.tanh(gates[:, 2 * size : 3 * size], out=act[:, 2 * size : 3 * size])
                i, f, g, o = act.chunk(4, dim=1)
                c = torch.addcmul(f * recurrent[t], i, g, out=recurrent[t + 1])
                h = torch.mul(o, torch.tanh(c), out=hiddens[t + 1])
            elif elman:
                gates = torch.addmm(gates_in[t], torch.cat([feeds[t], hiddens[t]], dim=1), recurrent_weight_t)
                h = torch.tanh(gates, out=hiddens[t + 1])
            else:
                x = torch.addmm(gates_in[t], feeds[t], weight_feed.t())
                u = torch.addmm(bias_hh, hiddens[t], weight_hh.t())
                recurrent[t] = u[:, 2 * size :]
                torch.sigmoid(x[:, : 2 * size] + u[:, : 2 * size], out=act[:, : 2 * size])
                r, z, n = act.chunk(3, dim=1)
                torch.tanh(torch.addcmul(x[:, 2 * size :], r, recurrent[t]), out=n)
                h = torch.addcmul(n, z, hiddens[t] - n, out=hiddens[t + 1])
            if additive:
                query = torch.addmm(bias_query, h, weight_query.t(), out=queries[t])
                energy = torch.add(keys, query.unsqueeze(1), out=work).tanh_()
                scores = torch.matmul(energy, weight_energy[0])
            else:
                scores = torch.bmm(keys, h.unsqueeze(2)).squeeze(2)
            alpha = weights[t].copy_(torch.softmax(scores.masked_fill_(blocked, float("-inf")), dim=-1))
            context = contexts[t].copy_(torch.bmm(alpha.unsqueeze(1), memory).squeeze(1))
            torch.tanh(torch.cat([h, context], dim=1) @ weight_combine.t(), out=feeds[t + 1])
        ctx.lstm, ctx.elman = lstm, elman
        ctx.save_for_backward(
            activations,
            hiddens,
            recurrent,
            feeds,
            contexts,
            weights,
            queries,
            keys,
            memory,
            weight_feed,
            weight_hh,
            weight_combine,
            weight_query,
            weight_energy,
        )
        outputs = feeds[1:].transpose(0, 1)
        attention = weights.transpose(0, 1)
        ctx.mark_non_differentiable(attention)
        return outputs, attention

    @staticmethod
    def backward(ctx, grad_outputs, _grad_attention):
        (
            activations,
            hiddens,
            recurrent,
            feeds,
            contexts,
            weights,
            queries,
            keys,
            memory,
            weight_feed,
            weight_hh,
            weight_combine,
            weight_query,
            weight_energy,
        ) = ctx.saved_tensors
        lstm, elman, additive = ctx.lstm, ctx.elman, weight_query is not None
        one_product = lstm or elman  # x and u share their gradient: [h~; s] went through one product
        steps, batch, gate_size = activations.shape
        size = hiddens.size(-1)
        grad_outputs = grad_outputs.transpose(0, 1)  # (T, batch, H)
        # (gates * H, 2H)
        recurrent_weight = torch.cat([weight_feed, weight_hh], dim=1) if one_product else None
        grad_gates = activations.new_empty(steps, batch, gate_size)  # wrt x_t (and, LSTM/RNN, u_t)
        grad_recurrent_gates = None if one_product else activations.new_empty(steps, batch, gate_size)  # GRU: wrt u_t
        grad_combined = feeds.new_empty(steps, batch, size)  # wrt W_c [s; ctx], before tanh
        grad_contexts = contexts.new_empty(contexts.shape)
        grad_scores = weights.new_empty(weights.shape)
        grad_queries = hiddens.new_empty(steps, batch, weight_query.size(0)) if additive else None
        grad_keys_scaled = torch.zeros_like(keys) if additive else None  # without v, see below
        work = torch.empty_like(keys) if additive else None
        grad_weight_energy = weight_energy.new_zeros(weight_energy.size(-1)) if additive else None
        grad_hidden = torch.zeros_like(hiddens[0])
        grad_cell = torch.zeros_like(hiddens[0]) if lstm else None
        grad_feed = torch.zeros_like(feeds[0])
        for t in range(steps - 1, -1, -1):
            feed = feeds[t + 1]
            grad_u = torch.mul(grad_outputs[t] + grad_feed, 1 - feed * feed, out=grad_combined[t])
            grad_state_context = grad_u @ weight_combine  # (batch, H + M)
            grad_h = grad_hidden + grad_state_context[:, :size]
            grad_context = grad_contexts[t].copy_(grad_state_context[:, size:])
            alpha = weights[t]
            grad_alpha = torch.bmm(memory, grad_context.unsqueeze(2)).squeeze(2)
            grad_score = grad_alpha.sub_((grad_alpha * alpha).sum(dim=1, keepdim=True)).mul_(alpha)
            grad_scores[t] = grad_score
            if additive:
                # d/d(W_q s + k_j) = dscore_j * v * (1 - e_j^2); v is applied once, at the end,
                # and the dscore_j * 1 part of the keys' gradient is summed over steps at the end.
                energy = torch.add(keys, queries[t].unsqueeze(1), out=work).tanh_()
                # dv = sum over steps, sentences, positions of dscore * energy
                grad_weight_energy.addmv_(energy.view(-1, energy.size(-1)).t(), grad_score.view(-1))
                squared = energy.mul_(energy)
                grad_keys_scaled.addcmul_(squared, grad_score.unsqueeze(2), value=-1)
                grad_query = (
                    torch.baddbmm(
                        grad_score.sum(dim=1, keepdim=True).unsqueeze(2), grad_score.unsqueeze(1), squared, alpha=-1
                    )
                    .squeeze(1)
                    .mul_(weight_energy[0])
                )
                grad_queries[t] = grad_query
                grad_h = grad_h.addmm_(grad_query, weight_query)
            else:
                grad_h = grad_h + torch.bmm(grad_score.unsqueeze(1), keys).squeeze(1)
            if lstm:
                grad_cell = _lstm_step_backward(
                    grad_h, grad_cell, activations[t], recurrent[t], recurrent[t + 1], grad_gates[t]
                )
                grad_feed_hidden = grad_gates[t] @ recurrent_weight  # (batch, 2H)
                grad_feed, grad_hidden = grad_feed_hidden[:, :size], grad_feed_hidden[:, size:]
            elif elman:
                hidden = hiddens[t + 1]
                torch.mul(grad_h, 1 - hidden * hidden, out=grad_gates[t])
                grad_feed_hidden = grad_gates[t] @ recurrent_weight  # (batch, 2H)
                grad_feed, grad_hidden = grad_feed_hidden[:, :size], grad_feed_hidden[:, size:]
            else:
                grad_hidden = _gru_step_backward(
                    grad_h, activations[t], recurrent[t], hiddens[t], grad_gates[t], grad_recurrent_gates[t]
                )
                grad_feed = grad_gates[t] @ weight_feed
                grad_hidden = grad_hidden.addmm_(grad_recurrent_gates[t], weight_hh)

        # Weight gradients: one product over all steps each.
        grad_gates_flat = _rows(grad_gates)
        grad_recurrent_flat = grad_gates_flat if one_product else _rows(grad_recurrent_gates)
        grad_weight_feed = grad_gates_flat.t() @ _rows(feeds[:-1])
        grad_weight_hh = grad_recurrent_flat.t() @ _rows(hiddens[:-1])
        grad_bias_hh = grad_recurrent_flat.sum(dim=0)
        grad_combined_flat = _rows(grad_combined).t()
        grad_weight_combine = torch.cat(
            [grad_combined_flat @ _rows(hiddens[1:]), grad_combined_flat @ _rows(contexts)], dim=1
        )
        # (batch, src, T) x (batch, T, M): the values' gradient from every step at once.
        grad_memory = torch.bmm(weights.permute(1, 2, 0), grad_contexts.transpose(0, 1))
        grad_weight_query = grad_bias_query = None
        if additive:
            grad_queries_flat = _rows(grad_queries)
            grad_weight_query = grad_queries_flat.t() @ _rows(hiddens[1:])
            grad_bias_query = grad_queries_flat.sum(dim=0)
            grad_weight_energy = grad_weight_energy.unsqueeze(0)
            grad_keys = grad_keys_scaled.add_(grad_scores.sum(dim=0).unsqueeze(2)).mul_(weight_energy[0])
        else:
            # (batch, src, T) x (batch, T, H)
            grad_keys = torch.bmm(grad_scores.permute(1, 2, 0), hiddens[1:].transpose(0, 1))
        return (
            grad_gates.transpose(0, 1),
            grad_hidden,
            grad_cell,
            grad_feed,
            grad_keys,
            grad_memory,
            None,
            grad_weight_feed,
            grad_weight_hh,
            grad_bias_hh,
            grad_weight_combine,
            grad_weight_query,
            grad_bias_query,
            grad_weight_energy,
        )


def _lstm_step_backward(grad_h, grad_cell, act, cell_before, cell, grad_gates) -> torch.Tensor:
    """One LSTM step back: writes the gates' gradient (batch, 4H) into ``grad_gates`` and
    returns the previous cell's. ``act``: sigmoid(i, f), tanh(g), sigmoid(o), (batch, 4H)."""
    size = grad_h.size(-1)
    i, f, g, o = act.chunk(4, dim=1)
    tanh_c = torch.tanh(cell)
    grad_c = torch.addcmul(grad_cell, grad_h * o, 1 - tanh_c * tanh_c)
    torch.mul(grad_c * g, i * (1 - i), out=grad_gates[:, :size])
    torch.mul(grad_c * cell_before, f * (1 - f), out=grad_gates[:, size : 2 * size])
    torch.mul(grad_c * i, 1 - g * g, out=grad_gates[:, 2 * size : 3 * size])
    torch.mul(grad_h * tanh_c, o * (1 - o), out=grad_gates[:, 3 * size :])
    return grad_c * f


def _gru_step_backward(grad_h, act, recurrent_n, hidden_before, grad_input_gates, grad_recurrent_gates) -> torch.Tensor:
    """One GRU step back: writes the gradients wrt the input product x and the recurrent
    product u (batch, 3H each) and returns the part of the previous state's gradient that
    does not go through u. ``act``: r, z, n (batch, 3H); ``recurrent_n``: u_n (batch, H)."""
    size = grad_h.size(-1)
    r, z, n = act.chunk(3, dim=1)
    grad_n = torch.mul(grad_h * (1 - z), 1 - n * n, out=grad_input_gates[:, 2 * size :])
    torch.mul(grad_n * recurrent_n, r * (1 - r), out=grad_input_gates[:, :size])
    torch.mul(grad_h * (hidden_before - n), z * (1 - z), out=grad_input_gates[:, size : 2 * size])
    grad_recurrent_gates[:, : 2 * size] = grad_input_gates[:, : 2 * size]
    torch.mul(grad_n, r, out=grad_recurrent_gates[:, 2 * size :])
    return grad_h * z
