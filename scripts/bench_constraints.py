"""Lexically constrained decoding, measured: the "terminology" setup on a TSV of pairs.

    python scripts/bench_constraints.py CHECKPOINT --input dev.tsv [--limit 500] [--beam-size 5]
        [--threads 1] [--repeats 3] [--seed 0] [--output DIR]

Each of the first ``--limit`` lines of ``--input`` is ``source<TAB>reference``. The sources are
translated with beam search; then each line gets one constraint: a word of its reference that
the unconstrained translation lacks (words are split at spaces, with leading and trailing
punctuation stripped, and hold a letter; one drawn at random with ``--seed``; a line whose
reference has no such word, or only words the target vocabulary cannot spell, gets none).
The sources are translated again with those constraints. A third run constrains each line to
a word its unconstrained translation already holds (drawn the same way) and counts the
translations that stay the same: what a constraint that is already met costs.

Prints, for both runs: BLEU and chrF against the single reference of each line (sacreBLEU),
the share of constrained lines whose output holds the constraint (as a run of tokens, which
the search guarantees, and as a whole word of the text), and the speed (sentences per
second, the best of ``--repeats`` runs, with the process's CPU seconds); then one JSON line.
``--output DIR`` also writes the sources, constraints (``source<TAB>word``, the
``--constraints-from-input`` format) and both translations.
"""

from __future__ import annotations

import json
import random
import sys
import time
import unicodedata
from pathlib import Path

from nmt.cli.common import OneLineArgumentParser, positive_int

PROG = "scripts/bench_constraints.py"


def build_parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(prog=PROG, description="BLEU, coverage and speed of lexically constrained decoding.")
    parser.add_argument("checkpoint", type=Path, metavar="CHECKPOINT")
    parser.add_argument("--input", type=Path, required=True, metavar="FILE", help="source<TAB>reference lines")
    parser.add_argument("--limit", type=positive_int, default=500, metavar="N", help="lines used (default 500)")
    parser.add_argument("--beam-size", type=positive_int, default=5, metavar="K")
    parser.add_argument("--batch-size", type=positive_int, default=64, metavar="B")
    parser.add_argument("--threads", type=positive_int, default=1, metavar="N", help="torch CPU threads (default 1)")
    parser.add_argument("--repeats", type=positive_int, default=3, metavar="R", help="timed runs; the best counts")
    parser.add_argument("--seed", type=int, default=0, help="draws each line's word among its candidates")
    parser.add_argument("--output", type=Path, metavar="DIR", help="write sources, constraints and translations")
    return parser


def strip_punctuation(word: str) -> str:
    """``word`` without leading and trailing punctuation (Unicode categories P*)."""
    start, end = 0, len(word)
    while start < end and unicodedata.category(word[start]).startswith("P"):
        start += 1
    while end > start and unicodedata.category(word[end - 1]).startswith("P"):
        end -= 1
    return word[start:end]


def words(text: str) -> list[str]:
    """The words of ``text`` that hold a letter, punctuation stripped, in order."""
    found = (strip_punctuation(word) for word in text.split())
    return [word for word in found if any(char.isalpha() for char in word)]


def pick_constraint(reference: str, output: str, rng: random.Random, spellable) -> str | None:
    """One word of ``reference`` that ``output`` lacks (None when there is none)."""
    present = set(words(output))
    candidates = [word for word in dict.fromkeys(words(reference)) if word not in present and spellable(word)]
    return rng.choice(candidates) if candidates else None


def pick_present(output: str, rng: random.Random, spellable) -> str | None:
    """One word that ``output`` holds (None when there is none)."""
    candidates = [word for word in dict.fromkeys(words(output)) if spellable(word)]
    return rng.choice(candidates) if candidates else None


def holds_run(pieces: list[str], phrase: list[str]) -> bool:
    """Whether ``phrase`` is a contiguous run of ``pieces``."""
    width = len(phrase)
    return any(pieces[i : i + width] == phrase for i in range(len(pieces) - width + 1))


def timed(translate, repeats: int):
    """The result of ``translate()`` and its best wall and CPU seconds over ``repeats`` runs."""
    best_wall = best_cpu = float("inf")
    result = None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = translate()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return result, best_wall, best_cpu


def run(args) -> dict:
    import sacrebleu
    import torch

    from nmt.data.text import normalize_text
    from nmt.data.tokenizers import UNK_ID
    from nmt.decoding import DecodingOptions
    from nmt.inference.translator import Translator

    torch.set_num_threads(args.threads)
    pairs = []
    with open(args.input, encoding="utf-8") as stream:
        for line in stream:
            fields = line.rstrip("\n").split("\t")
            if len(fields) >= 2:
                pairs.append((fields[0], fields[1]))
            if len(pairs) == args.limit:
                break
    sources = [source for source, _ in pairs]
    references = [normalize_text(reference) for _, reference in pairs]
    translator = Translator.from_checkpoint(args.checkpoint, device="cpu")
    options = DecodingOptions(strategy="beam", beam_size=args.beam_size)
    translator.translate(sources[: args.batch_size], options, args.batch_size)  # warm-up
    plain, plain_wall, plain_cpu = timed(lambda: translator.translate(sources, options, args.batch_size), args.repeats)

    def spellable(word: str) -> bool:
        return UNK_ID not in translator.target_tokenizer.encode(word)

    rng = random.Random(args.seed)
    chosen = [pick_constraint(ref, t.text, rng, spellable) for ref, t in zip(references, plain)]
    constraints = [[word] if word else [] for word in chosen]
    constrained, constrained_wall, constrained_cpu = timed(
        lambda: translator.translate(sources, options, args.batch_size, constraints=constraints), args.repeats
    )
    with_word = [i for i, word in enumerate(chosen) if word]
    tokenizer = translator.target_tokenizer
    as_run = sum(holds_run(constrained[i].hypotheses[0].pieces, tokenizer.pieces(str(chosen[i]))) for i in with_word)
    as_word = sum(str(chosen[i]) in words(constrained[i].text) for i in with_word)
    unchanged = sum(constrained[i].text == plain[i].text for i in range(len(pairs)) if i not in set(with_word))
    present = [pick_present(t.text, rng, spellable) for t in plain]
    kept = translator.translate(sources, options, args.batch_size, constraints=[[w] if w else [] for w in present])
    with_present = [i for i, word in enumerate(present) if word]
    same = [i for i in with_present if kept[i].text == plain[i].text]
    better = [
        i for i in with_present if i not in set(same) and kept[i].hypotheses[0].score > plain[i].hypotheses[0].score
    ]

    def scores(outputs) -> dict:
        texts = [t.text for t in outputs]
        return {
            "bleu": round(sacrebleu.corpus_bleu(texts, [references]).score, 2),
            "chrf": round(sacrebleu.corpus_chrf(texts, [references]).score, 2),
        }

    report = {
        "checkpoint": str(args.checkpoint),
        "lines": len(pairs),
        "beam_size": args.beam_size,
        "threads": args.threads,
        "lines_with_a_constraint": len(with_word),
        "unconstrained": {
            **scores(plain),
            "sentences_per_second": round(len(pairs) / plain_wall, 1),
            "cpu_seconds": round(plain_cpu, 2),
        },
        "constrained": {
            **scores(constrained),
            "sentences_per_second": round(len(pairs) / constrained_wall, 1),
            "cpu_seconds": round(constrained_cpu, 2),
            "holds_constraint_as_tokens": as_run,
            "holds_constraint_as_word": as_word,
            "lines_without_a_constraint_unchanged": unchanged,
        },
        "already_met": {
            "lines": len(with_present),
            "unchanged": len(same),
            "changed_to_a_higher_score": len(better),
            "changed_to_a_lower_score": len(with_present) - len(same) - len(better),
        },
    }
    if args.output is not None:
        args.output.mkdir(parents=True, exist_ok=True)
        (args.output / "constraints.tsv").write_text(
            "".join(f"{s}\t{w}\n" if w else f"{s}\n" for s, w in zip(sources, chosen)), encoding="utf-8"
        )
        (args.output / "unconstrained.txt").write_text("".join(t.text + "\n" for t in plain), encoding="utf-8")
        (args.output / "constrained.txt").write_text("".join(t.text + "\n" for t in constrained), encoding="utf-8")
        (args.output / "references.txt").write_text("".join(r + "\n" for r in references), encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    report = run(args)
    n = report["lines_with_a_constraint"]
    for name in ("unconstrained", "constrained"):
        row = report[name]
        print(
            f"{name:>13}: BLEU {row['bleu']:6.2f}  chrF {row['chrf']:6.2f}  "
            f"{row['sentences_per_second']:7.1f} sentences/s  ({row['cpu_seconds']} CPU s)"
        )
    row = report["constrained"]
    print(
        f"constraint held by {row['holds_constraint_as_tokens']}/{n} outputs as tokens, "
        f"{row['holds_constraint_as_word']}/{n} as a word"
    )
    met = report["already_met"]
    print(
        f"a word the translation already holds as the constraint: {met['unchanged']}/{met['lines']} unchanged, "
        f"{met['changed_to_a_higher_score']} changed to a higher score, {met['changed_to_a_lower_score']} to a lower"
    )
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
