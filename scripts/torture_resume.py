"""Kill a real training run N times at random moments, resume it each time, and check that
its final weights equal those of a run that was never interrupted.

    python scripts/torture_resume.py --kills 10
    python scripts/torture_resume.py --kills 20 --steps 400 --corpus ../shared/data/fra.txt.xz --limit 20000

Each kill is ``SIGKILL`` (no chance to clean up) at a random moment once the run has written
its first checkpoint; the next attempt is ``python -m nmt.train ckpt_path=RUN/checkpoints/last.ckpt``
alone. Dropout is on and the plateau schedule cuts at every stalled validation, so that any
state a resume loses (RNG, data position, schedule) changes the weights. By default the
corpus is a small synthetic one written here, and the model is tiny so that a run lasts
seconds. Prints one line per attempt and a JSON summary as the last line; exit status 1 if
the weights differ.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]  # the runs start here, so that conf/ and outputs/ are the checkout's

from nmt.inference.checkpoint import TEMPORARY_MARK, model_state_dict  # noqa: E402

WORDS = {
    "cat": "chat",
    "dog": "chien",
    "house": "maison",
    "red": "rouge",
    "big": "grand",
    "small": "petit",
    "the": "le",
    "sees": "voit",
    "eats": "mange",
    "a": "un",
}


def write_toy_corpus(path: Path, pairs: int = 2000, seed: int = 0) -> Path:
    rng = random.Random(seed)
    lines = []
    for _ in range(pairs):
        sentence = [rng.choice(list(WORDS)) for _ in range(rng.randint(2, 8))]
        lines.append(f"{' '.join(sentence).capitalize()}.\t{' '.join(WORDS[w] for w in sentence).capitalize()} !\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


def overrides(args: argparse.Namespace, corpus: Path, run_dir: Path) -> list[str]:
    return [
        f"data.path={corpus}",
        "data.split_cache=null",
        "data.bleu_sentences=200",
        f"data.batch_size={args.batch_size}",
        *([f"data.limit={args.limit}"] if args.limit else []),
        "tokenizer.vocab_size=200",
        "model.embed_size=64",
        "model.hidden_size=128",
        "model.dropout=0.2",
        f"trainer.max_steps={args.steps}",
        "trainer.val_check_interval=25",
        "trainer.num_sanity_val_steps=0",
        f"training.save_every_minutes={args.save_every_minutes}",
        "trainer.enable_progress_bar=false",
        "optim.schedule=plateau",
        "optim.plateau_patience=0",
        "early_stopping.patience=null",
        "test_after_training=false",
        "threads=1",
        f"hydra.run.dir={run_dir}",
    ]


def train(command: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)


def weights(last: Path) -> tuple[int, dict[str, torch.Tensor]]:
    checkpoint = torch.load(last, map_location="cpu", weights_only=True)
    return checkpoint["global_step"], model_state_dict(checkpoint)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=10, help="how many times to kill the run (N)")
    parser.add_argument("--steps", type=int, default=300, help="training steps of the whole run")
    parser.add_argument("--corpus", type=Path, help="a fra.txt-style corpus (default: a synthetic one)")
    parser.add_argument("--limit", type=int, help="use only the first pairs of --corpus")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--save-every-minutes", type=float, default=0.005, help="timed save interval")
    parser.add_argument("--max-delay", type=float, default=2.0, help="longest wait before a kill, seconds")
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill moments")
    parser.add_argument("--workdir", type=Path, help="where runs are written (default: a temporary dir)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="torture_resume_"))
    work.mkdir(parents=True, exist_ok=True)
    corpus = args.corpus or write_toy_corpus(work / "fra.txt")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    entry = [sys.executable, "-m", "nmt.train"]

    start = time.monotonic()
    reference_dir = work / "uninterrupted"
    result = train(entry + overrides(args, corpus, reference_dir), env)
    if result.returncode:
        print(result.stderr[-3000:], file=sys.stderr)
        return 2
    reference_seconds = time.monotonic() - start
    print(f"uninterrupted run: {args.steps} steps in {reference_seconds:.1f} s")

    run_dir = work / "tortured"
    last = run_dir / "checkpoints" / "last.ckpt"
    command = entry + overrides(args, corpus, run_dir)
    kills, attempts = [], 0
    while True:
        attempts += 1
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if len(kills) < args.kills:
            before = weights(last)[0] if last.exists() else -1
            while process.poll() is None and (not last.exists() or weights(last)[0] == before):
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, args.max_delay))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait()
                step = weights(last)[0]
                leftovers = len(list(last.parent.glob(f".*{TEMPORARY_MARK}*")))
                kills.append({"attempt": attempts, "last_ckpt_step": step, "temporary_files": leftovers})
                print(f"attempt {attempts}: killed; last.ckpt holds step {step}")
                command = entry + [f"ckpt_path={last}"]
                continue
        _, stderr = process.communicate()
        if process.returncode:
            print(stderr[-3000:], file=sys.stderr)
            return 2
        print(f"attempt {attempts}: finished")
        break

    expected_step, expected = weights(reference_dir / "checkpoints" / "last.ckpt")
    final_step, actual = weights(last)
    difference = max(float((actual[k] - v).abs().max()) for k, v in expected.items())
    same = final_step == expected_step and difference <= 1e-6
    summary = {
        "kills": len(kills),
        "attempts": attempts,
        "steps": final_step,
        "max_abs_weight_difference": difference,
        "identical": same,
        "kill_steps": [k["last_ckpt_step"] for k in kills],
        "temporary_files_left_at_kills": sum(k["temporary_files"] for k in kills),
        "temporary_files_left_at_end": len(list(last.parent.glob(f".*{TEMPORARY_MARK}*"))),
        "workdir": str(work),
    }
    print(
        f"final weights {'equal' if same else 'DIFFER from'} the uninterrupted run's "
        f"(max |difference| {difference:.3g}) after {len(kills)} kills"
    )
    print(json.dumps(summary))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
