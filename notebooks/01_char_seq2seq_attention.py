# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Character-level translation with attention
#
# An **encoder–decoder** (sequence-to-sequence) network reads an English sentence one
# character at a time and writes its French translation one character at a time.
#
# * The **encoder**, a bidirectional LSTM, turns the source characters into one vector per
#   position.
# * The **decoder**, another LSTM, predicts the next target character from the previous one.
#   During training it is fed the *true* previous character (**teacher forcing**); when
#   translating, its own prediction.
# * **Attention** (Bahdanau et al. 2015): at each output step the decoder scores every
#   encoder position, turns the scores into weights with a softmax, and reads their weighted
#   mean (the *context vector*). Without it the whole sentence has to squeeze through the
#   encoder's last state; with it the decoder looks back at the characters it needs, and the
#   weights show *where* it looked.
#
# This notebook trains a small model for a thousand steps (about two minutes on one CPU thread)
# on the shortest Tatoeba sentences with `nmt`'s own training command, loads the checkpoint,
# translates a few sentences and draws the attention of one of them.

# %%
import logging
import tempfile
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from IPython.display import Image, display

import nmt
from nmt.cli.train import train
from nmt.config.location import CONF_DIR
from nmt.data.corpora import read_translation_pairs
from nmt.data.embedded import embedded_path
from nmt.evaluation.plots import plot_attention
from nmt.inference.loading import load_model
from nmt.inference.translator import Translator

torch.set_num_threads(1)  # a small model: one thread is as fast as several
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
WORK = Path(tempfile.mkdtemp(prefix="nmt-notebook-01-"))
print("nmt from", Path(nmt.__file__).parent, "- files of this notebook in", WORK)


# %% [markdown]
# ## The corpus
#
# English–French sentence pairs, one pair per line: `English<TAB>French` (the format of the
# Tatoeba pairs from manythings.org). `nmt` ships a slice of them, 30,000 pairs whose English
# has at most eight words, as an xz-compressed file; `read_translation_pairs` decompresses,
# normalises and checks it, and says how many lines it read and skipped. The slice runs from
# the shortest sentences to the longest.

# %%
CORPUS = embedded_path("fra")
pairs, read_report = read_translation_pairs(CORPUS)
print(read_report.summary())
for english, french in pairs[:: len(pairs) // 5]:
    print(f"{english:40} {french}")

# %% [markdown]
# ## The configuration
#
# `nmt` is configured with Hydra: `conf/config.yaml` plus one file per group (`data`,
# `tokenizer`, `model`, `attention`, `trainer`) and named recipes in `conf/experiment/`.
# `experiment=char_bahdanau` picks characters, a bidirectional LSTM encoder and additive
# attention; the other overrides shrink it to minutes on a CPU: the first 3,000 pairs of the
# slice (the shortest sentences), a small network, a thousand steps. On the command line the
# same run is `python -m nmt.train experiment=char_bahdanau data.limit=3000 model.hidden_size=128 ...`.

# %%
RUN = WORK / "run"
overrides = [
    "experiment=char_bahdanau",
    f"data.path={CORPUS}",
    "data.limit=3000",  # the first, shortest pairs: what a small model learns in minutes
    "data.split_cache=null",  # do not cache the split of this throw-away run
    "data.batch_size=32",
    "tokenizer.min_freq=1",
    "model.embed_size=32",
    "model.hidden_size=128",
    "model.dropout=0.0",
    "optim.lr=0.005",
    "optim.warmup_steps=0",
    "trainer.max_steps=1000",
    "trainer.max_epochs=100",  # 3,000 pairs are 90 batches: let max_steps end the run
    "trainer.log_every_n_steps=5",
    "trainer.val_check_interval=250",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
    "early_stopping.patience=null",
    "test_after_training=false",
    "threads=1",
    f"+run_dir={RUN}",  # outside a command, train() writes here
]
with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
    cfg = compose(config_name="config", overrides=overrides)
print(cfg.model)

# %% [markdown]
# ## Training
#
# `train(cfg)` is what `python -m nmt.train` runs: it splits the corpus (train / dev / test,
# no English sentence in two splits), trains the character vocabulary on the training split,
# trains with cross-entropy and teacher forcing, validates (dev loss and BLEU) every 250 steps
# and keeps the best checkpoint, with the vocabulary and the config inside it.

# %%
metrics = train(cfg)
{name: round(value, 3) for name, value in metrics.items()}

# %% [markdown]
# ## Translating
#
# `load_model` rebuilds the network from the checkpoint alone; `Translator` normalises the
# input, encodes it, decodes greedily (one most probable character at a time) and turns the
# characters back into text. The first sentences below come from the run's test split, which
# the model never saw, beside a reference translation; the last two are new.

# %%
loaded = load_model(RUN / "checkpoints" / "best.ckpt", task="translation")
translator = Translator.from_loaded(loaded, device="cpu")
test_pairs = list(dict(translator.split_pairs("test")).items())[:8]  # one reference per sentence
own_pairs = [("I'm hungry.", ""), ("Where is the cat?", "")]
translations = translator.translate([source for source, _ in test_pairs + own_pairs], return_attention=True)
print(f"{'English':20} {'model':30} reference")
for translation, (_, reference) in zip(translations, test_pairs + own_pairs):
    print(f"{translation.source:20} {translation.text:30} {reference}")

# %% [markdown]
# After a thousand steps on some 2,850 short sentences the model writes well-formed French and gets
# the most frequent patterns right (*Je suis …*, *Attrapez Tom.*), but where it has seen a word
# too rarely it invents one that merely looks French. The full run (below) learns much more.
#
# ## Where the decoder looked
#
# Each row is one output character, each column one source character; a row's weights sum
# to 1. A model that has learned to align shows a roughly diagonal band: each French word is
# written while the decoder reads the English word it translates (here *Où* while reading
# *Where*, *est* while reading *is*, the question mark while reading the question mark), even
# where the word it writes is wrong.

# %%
best = translations[-1].hypotheses[0]
path = plot_attention(
    best.attention, translations[-1].source_pieces, best.pieces, WORK / "attention.png", title=translations[-1].source
)
display(Image(filename=str(path)))

# %% [markdown]
# ## Going further
#
# * The course's full run: `python -m nmt.train experiment=char_bahdanau` on the whole
#   Tatoeba corpus (see `docs/results.md` for its BLEU and training time).
# * `attention=dot` or `attention=general` swaps the scoring function (Luong et al. 2015),
#   `attention=none` removes attention; `model.decoder_style=bahdanau` reads the context
#   before the cell instead of after it.
# * `python -m nmt.translate CHECKPOINT --strategy beam --plot-attention plots/` translates
#   stdin with beam search and writes one heatmap per sentence.
