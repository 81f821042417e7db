#!/usr/bin/env bash
# The wheel as a user gets it: build it from the checkout's files, install it into a fresh venv
# outside the checkout, and from an unrelated directory train a few steps with `nmt-train` on a
# tiny corpus written here, translate with `nmt-translate` and score with `nmt-evaluate`.
# It catches what the test suite cannot see from inside the checkout: configs or static files
# missing from the wheel, console scripts that do not start, code that reads the checkout.
#
#   .ci/wheel_smoke.sh            # needs python with torch and nmt's dependencies installed
#   KEEP=1 .ci/wheel_smoke.sh     # keep the work directory for a look afterwards
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKOUT=$(pwd)
PYTHON=${PYTHON:-python}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nmt-wheel-smoke.XXXXXX")
[ -n "${KEEP:-}" ] && echo "work directory: $WORK" || trap 'rm -rf "$WORK"' EXIT
step() { echo "wheel smoke: $*"; }

# Build from a copy of the tracked and unignored files: an in-tree build would reuse build/,
# where files deleted from the package live on and end up in the wheel.
step "building the wheel"
mkdir -p "$WORK/src"
if git -C "$CHECKOUT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$CHECKOUT" ls-files -z --cached --others --exclude-standard \
        | (cd "$CHECKOUT" && xargs -0 sh -c 'for f; do [ -f "$f" ] && printf "%s\0" "$f"; done' _) \
        | (cd "$CHECKOUT" && xargs -0 cp --parents -t "$WORK/src")
else
    tar -C "$CHECKOUT" --exclude=.git --exclude=build --exclude=dist --exclude='*.egg-info' \
        --exclude=outputs --exclude=multirun -cf - . | tar -C "$WORK/src" -xf -
fi
# The installed setuptools when it is recent enough (offline, fast), else an isolated build.
ISOLATION=--no-build-isolation
"$PYTHON" -c 'import setuptools, sys; sys.exit(int(setuptools.__version__.split(".")[0]) < 68)' 2>/dev/null \
    || ISOLATION=
"$PYTHON" -m pip wheel --quiet --disable-pip-version-check --no-deps $ISOLATION -w "$WORK/dist" "$WORK/src"
WHEEL=$(ls "$WORK"/dist/nmt-*.whl)

# What a wheel must carry beside the code: the Hydra configs (conf/ shipped as nmt/conf), the
# serving page, and the corpora shipped for offline training with their attribution.
"$PYTHON" - "$WHEEL" <<'EOF'
import sys
import zipfile

names = set(zipfile.ZipFile(sys.argv[1]).namelist())
required = ["nmt/conf/config.yaml", "nmt/conf/data/fra.yaml", "nmt/conf/experiment/char_bahdanau.yaml",
            "nmt/conf/experiment/quickstart.yaml",
            "nmt/serve/static/index.html", "nmt/serve/static/app.js", "nmt/serve/static/style.css",
            "nmt/data/embedded/fra-sample.txt.xz", "nmt/data/embedded/SMSSpamCollection.gz",
            "nmt/data/embedded/ATTRIBUTION.md"]
missing = [name for name in required if name not in names]
assert not missing, f"the wheel lacks {missing}"
assert not any(name.startswith(("conf/", "tests/", "scripts/")) for name in names), "checkout files at the wheel's top"
print(f"wheel smoke: {len(names)} files in {sys.argv[1].rsplit('/', 1)[-1]}, configs, static files and data present")
EOF

# The venv reuses the installed torch and dependencies, but nmt must come from the wheel:
# PYTHONPATH would put a checkout first, and the current directory must not be a checkout.
step "installing it into a fresh venv"
"$PYTHON" -m venv --system-site-packages "$WORK/venv"
VENV_PYTHON="$WORK/venv/bin/python"
# When $PYTHON is itself a venv's (make's .venv), --system-site-packages reaches the interpreter it
# was made from, not that venv: its site-packages go on the path too, after the venv's own (a plain
# directory in a .pth file; the .pth files there, such as an editable nmt's, are not run).
"$PYTHON" -c 'import site; print("\n".join(site.getsitepackages()))' \
    > "$("$VENV_PYTHON" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/_nmt_smoke_parent.pth"
unset PYTHONPATH
"$VENV_PYTHON" -m pip install --quiet --disable-pip-version-check "$WHEEL"
RUN="$WORK/run"
mkdir -p "$RUN"
cd "$RUN"
"$VENV_PYTHON" - "$WORK/venv" <<'EOF'
import sys
from pathlib import Path

import nmt
from nmt.config.location import CONF_DIR

venv = Path(sys.argv[1]).resolve()
for what, path in (("nmt", Path(nmt.__file__)), ("its configs", CONF_DIR)):
    assert venv in path.resolve().parents, f"{what} imported from {path}, not from the wheel in {venv}"
print(f"wheel smoke: nmt imported from {Path(nmt.__file__).parent}")
EOF

# 200 word-by-word English-French pairs in the manythings fra.txt format (source TAB target),
# the same toy language as tests/conftest.py.
"$VENV_PYTHON" - <<'EOF'
import random

lexicon = {"cat": "chat", "dog": "chien", "house": "maison", "red": "rouge", "big": "grand",
           "small": "petit", "the": "le", "sees": "voit", "eats": "mange", "a": "un"}
rng = random.Random(0)
with open("fra.txt", "w", encoding="utf-8") as corpus, open("pairs.tsv", "w", encoding="utf-8") as held_out:
    for index in range(220):
        words = [rng.choice(list(lexicon)) for _ in range(rng.randint(2, 6))]
        line = " ".join(words).capitalize() + ".\t" + " ".join(lexicon[w] for w in words).capitalize() + " !\n"
        (corpus if index < 200 else held_out).write(line)
EOF

export OMP_NUM_THREADS=1
step "nmt-train"
"$WORK/venv/bin/nmt-train" experiment=char_bahdanau data.path="$RUN/fra.txt" data.download=false \
    data.split_cache=null data.batch_size=16 data.bleu_sentences=null \
    model.embed_size=32 model.hidden_size=32 model.tie_embeddings=false model.dropout=0.0 \
    trainer.max_steps=20 trainer.val_check_interval=10 trainer.num_sanity_val_steps=0 \
    trainer.enable_progress_bar=false trainer.log_every_n_steps=10 early_stopping.patience=null \
    optim.warmup_steps=0 hydra.run.dir="$RUN/train" > train.log 2>&1 || { tail -n 40 train.log; exit 1; }
CKPT="$RUN/train/checkpoints/best.ckpt"
[ -f "$CKPT" ] || { tail -n 40 train.log; echo "wheel smoke: no $CKPT" >&2; exit 1; }

step "nmt-train on the corpus shipped in the wheel (offline, nothing on disk)"
NMT_DATA_DIR="$WORK/empty" "$WORK/venv/bin/nmt-train" experiment=quickstart data.split_cache=null \
    data.bleu_sentences=8 trainer.max_steps=3 trainer.val_check_interval=3 trainer.limit_val_batches=1 \
    trainer.num_sanity_val_steps=0 trainer.enable_progress_bar=false test_after_training=false \
    hydra.run.dir="$RUN/quickstart" > quickstart.log 2>&1 || { tail -n 40 quickstart.log; exit 1; }
grep -q "copy shipped with nmt, $WORK/venv/.*/nmt/data/embedded/fra-sample.txt.xz" quickstart.log \
    || { tail -n 40 quickstart.log; echo "wheel smoke: the shipped corpus was not used" >&2; exit 1; }

step "nmt-translate"
cut -f1 pairs.tsv > sources.txt
"$WORK/venv/bin/nmt-translate" "$CKPT" --input sources.txt --output translations.txt --device cpu
[ "$(wc -l < translations.txt)" -eq "$(wc -l < sources.txt)" ] \
    || { echo "wheel smoke: $(wc -l < translations.txt) translations for $(wc -l < sources.txt) sources" >&2; exit 1; }

step "nmt-evaluate"
"$WORK/venv/bin/nmt-evaluate" "$CKPT" --pairs pairs.tsv --output-dir "$RUN/eval" --device cpu > evaluate.log
"$VENV_PYTHON" - <<'EOF'
import json

report = json.load(open("eval/report.json", encoding="utf-8"))
sources = {line.split("\t")[0] for line in open("pairs.tsv", encoding="utf-8")}  # a repeated source is one segment
assert report["segments"] == len(sources), (len(sources), report)
bleu, chrf = report["bleu"]["multi_ref"]["score"], report["chrf"]["multi_ref"]["score"]
print(f"wheel smoke: passed (BLEU {bleu}, chrF {chrf} on {len(sources)} segments after 20 steps)")
EOF
