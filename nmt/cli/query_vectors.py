"""Ask a vector file questions: ``python -m nmt.embeddings.query VECTORS [options]``.

``VECTORS`` is any file :func:`nmt.embeddings.io.read_vectors` reads (word2vec text or binary,
GloVe text, fastText ``.vec`` or ``.bin``; the format is recognised from the file).

    python -m nmt.embeddings.query vectors.w2v.bin --similar good movie
    python -m nmt.embeddings.query vectors.vec --analogy man king woman      # man : king :: woman : ?
    python -m nmt.embeddings.query vectors.glove.txt --pair cat dog --evaluate
    python -m nmt.embeddings.query vectors.w2v.txt --plot words.png --words king queen man woman paris france
    python -m nmt.embeddings.query vectors.w2v.txt --bias he she doctor nurse engineer --debias debiased.w2v.txt

Each query prints ``word<TAB>cosine`` lines (``--json``: one JSON object). Words are looked up as
given, then lower-cased. Errors (a missing or malformed file, an unknown word) are one line on
stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from nmt.cli.common import OneLineArgumentParser, run_command
from nmt.embeddings.io import FORMATS, read_vectors, write_vectors
from nmt.embeddings.vectors import WordVectors

PROG = "python -m nmt.embeddings.query"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog=PROG, description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("vectors", metavar="VECTORS", help="word2vec text/binary, GloVe text or fastText .vec/.bin")
    parser.add_argument(
        "--format", default="auto", choices=("auto", *FORMATS), help="(default: recognised from the file)"
    )
    parser.add_argument("--similar", nargs="+", metavar="WORD", help="nearest neighbours of each WORD")
    parser.add_argument("--analogy", nargs=3, metavar=("A", "B", "C"), help="A : B :: C : ? (B - A + C, 3CosAdd)")
    parser.add_argument(
        "--pair", nargs=2, action="append", metavar=("W1", "W2"), help="cosine of two words (repeatable)"
    )
    parser.add_argument("--topn", type=int, default=10, metavar="N", help="answers per query (default 10)")
    parser.add_argument(
        "--restrict-vocab",
        type=int,
        default=None,
        metavar="N",
        help="answer among the N most frequent words only (default all)",
    )
    parser.add_argument("--evaluate", action="store_true", help="Google analogies and WordSim-353 (gensim's test data)")
    parser.add_argument("--plot", metavar="PNG", help="write a 2-D picture of --words (default the most frequent)")
    parser.add_argument("--words", nargs="+", metavar="WORD", help="--plot: these words")
    parser.add_argument(
        "--plot-words", type=int, default=300, metavar="N", help="--plot: the N most frequent (default 300)"
    )
    parser.add_argument("--projection", choices=("tsne", "pca"), default="tsne")
    parser.add_argument(
        "--bias",
        nargs="+",
        metavar="WORD",
        help="projection of each WORD on the gender direction (he-she, man-woman, ...)",
    )
    parser.add_argument("--debias", metavar="OUT", help="neutralise and equalise (Bolukbasi et al.) and write OUT")
    parser.add_argument(
        "--out-format",
        default="word2vec",
        choices=[f for f in FORMATS if f != "fasttext_bin"],
        help="--debias: format of OUT (default word2vec text)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object instead of text lines")
    return parser


def lookup(vectors: WordVectors, word: str) -> str:
    """``word`` as given, else lower-cased; a ``KeyError`` naming the word otherwise."""
    for candidate in (word, word.lower()):
        if candidate in vectors:
            return candidate
    raise KeyError(f"{word!r} is not in the vocabulary of {len(vectors):,} words")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Answer every query of ``args``; return the answers (what ``--json`` prints)."""
    if args.topn < 1:
        raise ValueError(f"--topn must be at least 1, got {args.topn}")
    asked = (args.similar, args.analogy, args.pair, args.evaluate, args.plot, args.bias, args.debias)
    if not any(asked):
        raise ValueError("nothing to do: give --similar, --analogy, --pair, --evaluate, --plot, --bias or --debias")
    vectors = read_vectors(args.vectors, args.format)
    answers: dict[str, Any] = {"vectors": args.vectors, "words": len(vectors), "dim": vectors.dim}
    restrict = args.restrict_vocab
    if args.similar:
        answers["similar"] = {
            word: vectors.most_similar([lookup(vectors, word)], topn=args.topn, restrict_vocab=restrict)
            for word in args.similar
        }
    if args.analogy:
        a, b, c = (lookup(vectors, word) for word in args.analogy)
        answers["analogy"] = {"question": [a, b, c], "answers": vectors.analogy(a, b, c, args.topn, restrict)}
    if args.pair:
        answers["pairs"] = [
            [w1, w2, vectors.similarity(lookup(vectors, w1), lookup(vectors, w2))] for w1, w2 in args.pair
        ]
    if args.evaluate:
        from nmt.embeddings.evaluate import evaluate

        answers["evaluation"] = evaluate(vectors, restrict_vocab=restrict or 30000)
    if args.plot:
        from nmt.embeddings.plots import plot_words

        answers["plot"] = str(
            plot_words(vectors, args.plot, args.words, top=args.plot_words, projection=args.projection)
        )
    if args.bias or args.debias:
        answers.update(_debias(vectors, args))
    return answers


def _debias(vectors: WordVectors, args: argparse.Namespace) -> dict[str, Any]:
    from nmt.embeddings.debias import DEFAULT_NEUTRAL, debias, gender_direction, projections

    direction = gender_direction(vectors)
    words = [lookup(vectors, w) for w in args.bias] if args.bias else [w for w in DEFAULT_NEUTRAL if w in vectors]
    result: dict[str, Any] = {"bias": dict(zip(words, projections(vectors, words, direction)))}
    if args.debias:
        debiased, report = debias(vectors)
        write_vectors(debiased, args.debias, args.out_format)
        result["debiased"] = {
            "path": args.debias,
            **report,
            "bias_after": dict(zip(words, projections(debiased, words, report["direction"]))),
        }
        del result["debiased"]["direction"]
    return result


def print_text(answers: dict[str, Any], out=None) -> None:
    out = out or sys.stdout  # looked up now: the stream may have been replaced since import
    for word, found in answers.get("similar", {}).items():
        print(f"# nearest to {word}", file=out)
        for neighbour, score in found:
            print(f"{neighbour}\t{score:.4f}", file=out)
    if "analogy" in answers:
        a, b, c = answers["analogy"]["question"]
        print(f"# {a} : {b} :: {c} : ?", file=out)
        for word, score in answers["analogy"]["answers"]:
            print(f"{word}\t{score:.4f}", file=out)
    for w1, w2, score in answers.get("pairs", []):
        print(f"{w1}\t{w2}\t{score:.4f}", file=out)
    if "evaluation" in answers:
        from nmt.embeddings.evaluate import summary

        print(summary(answers["evaluation"]), file=out)
    if "plot" in answers:
        print(f"# wrote {answers['plot']}", file=out)
    if "bias" in answers:
        after = answers.get("debiased", {}).get("bias_after", {})
        print("# projection on the gender direction" + (" (before, after debiasing)" if after else ""), file=out)
        for word, value in answers["bias"].items():
            print(f"{word}\t{value:+.4f}" + (f"\t{after[word]:+.4f}" if word in after else ""), file=out)
    if "debiased" in answers:
        report = answers["debiased"]
        print(
            f"# wrote {report['path']}: {report['neutralised']} words neutralised, "
            f"{report['equalised']} pairs equalised",
            file=out,
        )


def answer(args: argparse.Namespace) -> None:
    """Run the queries and print the answers (JSON with ``--json``)."""
    try:
        answers = run(args)
    except KeyError as error:  # an unknown word: its message is the first argument
        raise ValueError(error.args[0] if error.args else str(error)) from error
    if args.json:
        print(json.dumps(answers, ensure_ascii=False))
    else:
        print_text(answers)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(PROG, lambda: answer(args))


if __name__ == "__main__":
    sys.exit(main())
