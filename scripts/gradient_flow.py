"""Vanishing and exploding gradients, measured: how much of a loss at the last position reaches
each earlier input, for a tanh RNN, a GRU and an LSTM (``nmt.evaluation.gradient_flow``).

    python scripts/gradient_flow.py [--corpus fra.txt.xz] [--length 120] [--sequences 256]
        [--hidden-size 128] [--seeds 3] [--figure docs/gradient_flow.png] [--json FILE]

The text is real: the English side of the Tatoeba pairs shipped with nmt (or ``--corpus``),
joined and cut into ``--sequences`` character sequences of ``--length``. Each network is a
one-layer, one-direction encoder (embedding 64, ``--hidden-size`` units) at its
initialisation; the curves are the mean over ``--seeds`` networks:

* ``rnn``, ``gru``, ``lstm``: PyTorch's own initialisation (uniform in +-1/sqrt(hidden));
* ``lstm, forget bias 1`` / ``3``: the same LSTM with b_f = 1 (the presets' ``init.forget_bias``)
  or 3, so the cell path starts out keeping ~73% / ~95% of the cell per step;
* ``rnn, W_hh x 4``: a tanh RNN whose recurrent matrix is scaled up, on inputs scaled by 0.1,
  to show the other failure, exploding gradients (what gradient clipping is for).

Prints one row per network (the gradient norm 1, 10, 20, 40 and 80 steps back) and writes the
figure and, with ``--json``, the curves.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from nmt.data.corpora import read_translation_pairs
from nmt.data.embedded import embedded_path
from nmt.data.tokenizers import CharTokenizer
from nmt.evaluation.gradient_flow import gradient_norm_by_distance, plot_gradient_flow
from nmt.modules.encoder import RNNEncoder
from nmt.modules.initialization import set_forget_bias_

EMBED_SIZE = 64
# label -> (cell, forget-gate bias or None, recurrent-matrix scale, input scale)
NETWORKS = {
    "rnn": ("rnn", None, 1.0, 1.0),
    "gru": ("gru", None, 1.0, 1.0),
    "lstm": ("lstm", None, 1.0, 1.0),
    "lstm, forget bias 1": ("lstm", 1.0, 1.0, 1.0),
    "lstm, forget bias 3": ("lstm", 3.0, 1.0, 1.0),
    "rnn, W_hh x 4 (inputs x 0.1)": ("rnn", None, 4.0, 0.1),
}
SHOWN_DISTANCES = (1, 10, 20, 40, 80)


def character_sequences(corpus: Path, length: int, count: int) -> tuple[list[str], CharTokenizer]:
    """``count`` consecutive ``length``-character pieces of the corpus's English side, joined by spaces."""
    pairs, _ = read_translation_pairs(corpus)
    text = " ".join(source for source, _ in pairs)
    if len(text) < length * count:
        raise SystemExit(f"{corpus} holds {len(text)} characters of English, fewer than {length} x {count}")
    pieces = [text[start : start + length] for start in range(0, length * count, length)]
    return pieces, CharTokenizer.train(pieces)


def network(cell: str, forget_bias: float | None, scale: float, hidden_size: int, seed: int) -> RNNEncoder:
    torch.manual_seed(seed)
    encoder = RNNEncoder(EMBED_SIZE, hidden_size, 1, cell, bidirectional=False).eval()
    with torch.no_grad():
        if forget_bias is not None:
            set_forget_bias_(encoder.rnn, forget_bias)
        encoder.rnn.weight_hh_l0.mul_(scale)
    return encoder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=embedded_path("fra"), help="a Tatoeba pair file")
    parser.add_argument("--length", type=int, default=120, help="characters per sequence (default 120)")
    parser.add_argument("--sequences", type=int, default=256, help="sequences (default 256)")
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--seeds", type=int, default=3, help="networks per curve, averaged (default 3)")
    parser.add_argument("--figure", type=Path, default=Path("gradient_flow.png"))
    parser.add_argument("--json", type=Path, help="also write the curves here")
    args = parser.parse_args(argv)

    texts, tokenizer = character_sequences(args.corpus, args.length, args.sequences)
    ids = torch.tensor(tokenizer.encode_batch(texts))  # (sequences, length): no BOS/EOS
    torch.manual_seed(0)
    embedded = torch.nn.Embedding(tokenizer.vocab_size, EMBED_SIZE)(ids).detach()  # N(0, 1) vectors

    curves: dict[str, torch.Tensor] = {}
    for label, (cell, forget_bias, scale, input_scale) in NETWORKS.items():
        runs = [
            gradient_norm_by_distance(network(cell, forget_bias, scale, args.hidden_size, seed), embedded * input_scale)
            for seed in range(args.seeds)
        ]
        curves[label] = torch.stack(runs).mean(dim=0)

    print(f"{'network':32}" + "".join(f"{f'{d} back':>11}" for d in SHOWN_DISTANCES))
    for label, norms in curves.items():
        print(f"{label:32}" + "".join(f"{norms[d].item():11.2e}" for d in SHOWN_DISTANCES if d < norms.numel()))
    title = f"Gradient reaching each input ({args.sequences} x {args.length} characters, hidden {args.hidden_size})"
    print(f"figure: {plot_gradient_flow(curves, args.figure, title)}")
    if args.json:
        args.json.write_text(json.dumps({label: norms.tolist() for label, norms in curves.items()}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
