"""Hydra entry point: ``python -m nmt.embeddings method=word2vec|fasttext|glove|sgns|lsa data=... [overrides]``.

Reads the dataset's splits (``corpus.splits``, the training tasks' own), trains the tokenizer
(``tokenizer`` group, ``word`` by default) on those texts, trains the method, and writes into
``outputs/embeddings/<data>-<method>/<date_time>/``:

| file | what |
|---|---|
| ``vectors.w2v.txt``, ``vectors.w2v.bin``, ``vectors.glove.txt``, ``vectors.vec``, ``vectors.fasttext.bin`` | the vectors in each of ``output.formats`` |
| ``report.json`` | corpus size, training time (wall and CPU), analogy and WordSim-353 scores, neighbours |
| ``plot.png`` | t-SNE (or PCA) of the most frequent words |
| ``config.yaml``, ``embeddings.log`` | the resolved config and the log |

Errors in the config or the data are one line on stderr and exit status 2.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from nmt.cli.common import EXIT_USER_ERROR
from nmt.config.checks import ConfigError, validate_embeddings_config

log = logging.getLogger("nmt.embeddings")

PROG = "python -m nmt.embeddings"
from nmt.config.location import CONF_DIR  # noqa: E402


def run_directory(cfg: DictConfig) -> Path:
    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path(cfg.get("run_dir") or "outputs/embeddings/run")


def resolve_device(name: str) -> str:
    import torch

    return ("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name


def train_vectors(cfg: DictConfig, corpus) -> tuple[Any, Any]:
    """Train word2vec, fasttext, glove, sgns or lsa; return (WordVectors, the gensim model or None)."""
    method = cfg.method
    if method.name in ("word2vec", "fasttext"):
        from nmt.embeddings.word2vec import train_gensim, vectors_of

        model = train_gensim(corpus, method, workers=int(cfg.threads), seed=int(cfg.seed))
        return vectors_of(model, corpus.vocabulary), model
    from nmt.embeddings.glove import count_cooccurrences, train_glove
    from nmt.embeddings.vectors import WordVectors

    vocabulary = corpus.vocabulary
    index = {word: i for i, word in enumerate(vocabulary)}
    sentences = [[index[w] for w in s] for s in corpus.sentences]
    if method.name == "sgns":
        from nmt.embeddings.sgns import train_sgns

        sgns, _ = train_sgns(
            sentences,
            len(vocabulary),
            int(method.dim),
            window=int(method.window),
            negative=int(method.negative),
            sample=float(method.sample),
            epochs=int(method.epochs),
            lr=float(method.lr),
            batch_size=int(method.batch_size),
            seed=int(cfg.seed),
        )
        return WordVectors(vocabulary, sgns.target.weight.detach().numpy()), None
    started = time.monotonic()
    if method.name == "lsa":
        from nmt.embeddings.lsa import lsa_vectors, ppmi

        counts = count_cooccurrences(sentences, len(vocabulary), int(method.window), distance_weighting=False)
        matrix = ppmi(counts, float(method.context_alpha))
        log.info("PPMI: %s positive entries of %s co-occurrences", f"{len(matrix):,}", f"{len(counts):,}")
        return WordVectors(
            vocabulary, lsa_vectors(matrix, int(method.dim), power=float(method.power), seed=int(cfg.seed))
        ), None
    cooccurrences = count_cooccurrences(sentences, len(vocabulary), int(method.window))
    log.info(
        "%s non-zero co-occurrences (window %d) counted in %.0f s",
        f"{len(cooccurrences):,}",
        method.window,
        time.monotonic() - started,
    )
    model, _ = train_glove(
        cooccurrences,
        int(method.dim),
        epochs=int(method.epochs),
        lr=float(method.lr),
        x_max=float(method.x_max),
        alpha=float(method.alpha),
        batch_size=int(method.batch_size),
        device=resolve_device(cfg.device),
        seed=int(cfg.seed),
    )
    return WordVectors(vocabulary, model.vectors().cpu().numpy()), None


def write_outputs(cfg: DictConfig, vectors, model, run_dir: Path) -> dict[str, str]:
    from nmt.embeddings.io import SUFFIXES, write_vectors

    written = {}
    for format in cfg.output.formats:
        path = run_dir / f"vectors{SUFFIXES[format]}"
        if format == "fasttext_bin":
            from gensim.models.fasttext import save_facebook_model

            save_facebook_model(model, str(path))
        else:
            write_vectors(vectors, path, format)
        written[format] = str(path)
        log.info("wrote %s (%s)", path, format)
    return written


def run(cfg: DictConfig) -> dict[str, Any]:
    """Train and write what ``cfg`` asks for; return the report (also in report.json)."""
    validate_embeddings_config(cfg)
    import torch

    from nmt.embeddings.corpus import read_texts, tokenize_corpus

    torch.set_num_threads(int(cfg.threads))
    run_dir = run_directory(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    splits = list(cfg.corpus.splits)
    texts = read_texts(cfg.data, splits, cfg.corpus.side, int(cfg.seed))
    corpus = tokenize_corpus(texts, cfg.tokenizer)
    log.info("corpus %s (%s): %s", cfg.data.name, "+".join(splits), corpus.summary())
    wall, cpu = time.monotonic(), time.process_time()
    vectors, model = train_vectors(cfg, corpus)
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    log.info("trained %s in %.0f s (%.0f s CPU)", cfg.method.name, wall, cpu)
    report: dict[str, Any] = {
        "method": OmegaConf.to_container(cfg.method, resolve=True),
        "data": cfg.data.name,
        "splits": splits,
        "texts": corpus.texts,
        "tokens": corpus.tokens,
        "vocabulary": len(vectors),
        "dim": vectors.dim,
        "train_seconds": round(wall, 1),
        "train_cpu_seconds": round(cpu, 1),
        "threads": int(cfg.threads),
        "files": write_outputs(cfg, vectors, model, run_dir),
    }
    if cfg.evaluate.enabled:
        from nmt.embeddings.evaluate import evaluate, summary

        report["evaluation"] = evaluate(
            vectors, restrict_vocab=int(cfg.evaluate.restrict_vocab), neighbours=list(cfg.evaluate.neighbours or [])
        )
        log.info("%s", summary(report["evaluation"]))
        for word, found in report["evaluation"]["neighbours"].items():
            log.info("neighbours of %s: %s", word, ", ".join(n for n, _ in found))
    if cfg.evaluate.plot:
        from nmt.embeddings.plots import plot_words

        path = plot_words(
            vectors,
            run_dir / "plot.png",
            top=int(cfg.evaluate.plot_words),
            projection=cfg.evaluate.plot,
            seed=int(cfg.seed),
            title=f"{cfg.method.name} on {cfg.data.name}: {cfg.evaluate.plot_words} most frequent words",
        )
        report["files"]["plot"] = str(path)
    (run_dir / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    log.info("run directory: %s", run_dir)
    return report


def fail(error: BaseException) -> None:
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise error
    from nmt.cli.train import one_line

    print(f"{PROG}: error: {one_line(error)}", file=sys.stderr, flush=True)
    sys.exit(EXIT_USER_ERROR)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="embeddings")
def hydra_main(cfg: DictConfig) -> None:
    try:
        run(cfg)
    except (ConfigError, ValueError, OSError, RuntimeError) as error:
        fail(error)


def check_overrides(argv: list[str]) -> None:
    """Compose the config before Hydra does, so a bad override is one line and exit status 2."""
    from nmt.cli.train import HYDRA_FLAGS

    if any(arg.split("=")[0] in HYDRA_FLAGS for arg in argv):
        return
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with hydra.initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = hydra.compose(config_name="embeddings", overrides=list(argv))
        validate_embeddings_config(cfg)
    except (HydraException, OmegaConfBaseException, ValueError) as error:
        fail(error)


def main() -> None:
    check_overrides(sys.argv[1:])
    hydra_main()


if __name__ == "__main__":
    main()
