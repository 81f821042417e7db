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
# This notebook trains a tiny model for a few hundred steps with `nmt`'s own training command,
# loads the checkpoint, translates a few sentences and draws the attention of one of them.

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
from nmt.evaluation.plots import plot_attention
from nmt.inference.loading import load_model
from nmt.inference.translator import Translator

torch.set_num_threads(1)  # a tiny model: one thread is as fast as several
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
WORK = Path(tempfile.mkdtemp(prefix="nmt-notebook-01-"))
print("nmt from", Path(nmt.__file__).parent, "- files of this notebook in", WORK)


# %% [markdown]
# ## The corpus
#
# English–French sentence pairs, one pair per line: `English<TAB>French` (the format of the
# Tatoeba pairs from manythings.org). The package's embedded slice of Tatoeba is used when this
# installation has it; otherwise the cell writes a tiny corpus of simple sentences, which a
# model this small can learn in a few hundred steps.


# %%
def write_tiny_pairs(path: Path) -> Path:
    """A few hundred simple English-French pairs: subject + verb + object."""
    subjects = [
        ("I", "Je", 0),
        ("You", "Tu", 1),
        ("He", "Il", 2),
        ("She", "Elle", 2),
        ("We", "Nous", 3),
        ("They", "Ils", 4),
    ]
    verbs = [
        (("see", "see", "sees", "see", "see"), ("vois", "vois", "voit", "voyons", "voient")),
        (("like", "like", "likes", "like", "like"), ("aime", "aimes", "aime", "aimons", "aiment")),
        (("want", "want", "wants", "want", "want"), ("veux", "veux", "veut", "voulons", "veulent")),
        (("have", "have", "has", "have", "have"), ("ai", "as", "a", "avons", "ont")),
    ]
    objects = [
        ("the cat", "le chat"),
        ("the dog", "le chien"),
        ("the house", "la maison"),
        ("the car", "la voiture"),
        ("the book", "le livre"),
        ("an apple", "une pomme"),
        ("the bread", "le pain"),
        ("a bike", "un vélo"),
        ("the garden", "le jardin"),
        ("a flower", "une fleur"),
        ("the city", "la ville"),
        ("a friend", "un ami"),
    ]
    lines = []
    for english_subject, french_subject, person in subjects:
        for english_forms, french_forms in verbs:
            for english_object, french_object in objects:
                french_verb = french_forms[person]
                subject = "J'" if french_subject == "Je" and french_verb[0] in "aeiou" else french_subject + " "
                lines.append(
                    f"{english_subject} {english_forms[person]} {english_object}.\t"
                    f"{subject}{french_verb} {french_object}.\n"
                )
    path.write_text("".join(lines), encoding="utf-8")
    return path


try:
    from nmt.data.embedded import embedded_path

    CORPUS = embedded_path("fra")
except ImportError:
    CORPUS = write_tiny_pairs(WORK / "fra.txt")
print(CORPUS)
print("\n".join(Path(CORPUS).read_text(encoding="utf-8").splitlines()[:3]))

# %% [markdown]
# ## The configuration
#
# `nmt` is configured with Hydra: `conf/config.yaml` plus one file per group (`data`,
# `tokenizer`, `model`, `attention`, `trainer`) and named recipes in `conf/experiment/`.
# `experiment=char_bahdanau` picks characters, a bidirectional LSTM encoder and additive
# attention; the other overrides shrink it to seconds on a CPU. On the command line the same
# run is `python -m nmt.train experiment=char_bahdanau data.path=... model.hidden_size=128 ...`.

# %%
RUN = WORK / "run"
overrides = [
    "experiment=char_bahdanau",
    f"data.path={CORPUS}",
    "data.split_cache=null",  # do not cache the split of this throw-away corpus
    "data.batch_size=32",
    "tokenizer.min_freq=1",
    "model.embed_size=32",
    "model.hidden_size=128",
    "model.dropout=0.0",
    "optim.lr=0.005",
    "optim.warmup_steps=0",
    "trainer.max_steps=400",
    "trainer.max_epochs=100",  # the tiny corpus is 9 batches: let max_steps end the run
    "trainer.log_every_n_steps=5",
    "trainer.val_check_interval=100",
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
# trains with cross-entropy and teacher forcing, validates (dev loss and BLEU) every 100 steps
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
# the model never saw.

# %%
loaded = load_model(RUN / "checkpoints" / "best.ckpt", task="translation")
translator = Translator.from_loaded(loaded, device="cpu")
test_pairs = translator.split_pairs("test")[:3]
sentences = [source for source, _ in test_pairs] + ["She likes the bike.", "We want a flower."]
translations = translator.translate(sentences, return_attention=True)
for translation in translations:
    print(f"{translation.source:30} -> {translation.text}")
for source, reference in test_pairs:
    print(f"reference: {source:30} -> {reference}")

# %% [markdown]
# ## Where the decoder looked
#
# Each row is one output character, each column one source character; a row's weights sum
# to 1. A model that has learned to translate shows a roughly diagonal band: each French word
# is written while the decoder reads the English word it translates.

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
