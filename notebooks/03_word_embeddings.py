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
# # 03 · Word embeddings: analogies, a map of words, and debiasing
#
# A **word embedding** gives each word a dense vector, learned so that words used in similar
# contexts get similar vectors ("you shall know a word by the company it keeps", Firth 1957).
# **Word2vec** (Mikolov et al. 2013) learns them with a tiny network: *skip-gram* predicts the
# words around a word from its vector (*CBOW* predicts a word from its context), with
# *negative sampling* contrasting the true context words against a few random ones.
#
# Directions in the space carry meaning, which is what analogies test: `king − man + woman`
# lands near `queen`. The same property lets the vectors absorb the stereotypes of their
# corpus (`man : programmer :: woman : homemaker`); **hard debiasing** (Bolukbasi et al.
# 2016) finds a gender direction and removes it from the words that should not have one.
#
# This notebook trains word2vec (gensim, through `nmt.embeddings`) on a small English corpus,
# asks it analogies, draws a t-SNE map and debiases it.

# %%
import tempfile
from pathlib import Path

from hydra import compose, initialize_config_dir
from IPython.display import Image, display

import nmt
from nmt.config.location import CONF_DIR
from nmt.data.corpora import read_translation_pairs
from nmt.data.embedded import embedded_path
from nmt.embeddings.corpus import tokenize_corpus
from nmt.embeddings.debias import debias, direct_bias, gender_direction, projections
from nmt.embeddings.evaluate import nearest_neighbours
from nmt.embeddings.plots import plot_words
from nmt.embeddings.word2vec import train_gensim, vectors_of

WORK = Path(tempfile.mkdtemp(prefix="nmt-notebook-03-"))
print("nmt from", Path(nmt.__file__).parent, "- files of this notebook in", WORK)


# %% [markdown]
# ## The corpus
#
# English sentences: the English side of the slice of Tatoeba that ships with `nmt` (30,000
# short sentences, read with `read_translation_pairs`). It is a small corpus for word2vec,
# about 160,000 words, and a particular one: everyday sentences, many of them about *Tom* and
# *Mary*.

# %%
pairs, read_report = read_translation_pairs(embedded_path("fra"))
TEXTS = [english for english, _ in pairs]
print(read_report.summary())
print(len(TEXTS), "sentences, e.g.", TEXTS[::10000])

# %% [markdown]
# ## Training word2vec
#
# `conf/embeddings.yaml` is the config of `python -m nmt.embeddings`; its `tokenizer` group
# (`word`: lower-cased words, punctuation split off, words seen once dropped) and its `method`
# group (`word2vec`: skip-gram, negative sampling) are used here as they are, with smaller
# vectors and more epochs for a small corpus.

# %%
with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
    cfg = compose(
        config_name="embeddings",
        overrides=["method=word2vec", "method.dim=50", "method.window=5", "method.epochs=30", "method.sample=0"],
    )
corpus = tokenize_corpus(TEXTS, cfg.tokenizer)
print(corpus.summary())
model = train_gensim(corpus, cfg.method, workers=1, seed=int(cfg.seed))
vectors = vectors_of(model, corpus.vocabulary)
print(vectors)

# %% [markdown]
# ## Neighbours and analogies
#
# Similarity is the cosine of two vectors. An analogy `a : b :: c : ?` is answered by the word
# nearest to `b − a + c` (3CosAdd), leaving out the three question words.

# %%
for word, found in nearest_neighbours(vectors, ["father", "girl", "doctor", "monday", "red"], topn=4).items():
    print(f"{word:8} ->", ", ".join(f"{w} {s:.2f}" for w, s in found))
questions = [
    ("man", "boy", "woman"),
    ("he", "brother", "she"),
    ("husband", "wife", "father"),
    ("i", "my", "we"),
    ("is", "was", "are"),
    ("go", "went", "come"),
    ("man", "king", "woman"),
]
for a, b, c in questions:
    if all(w in vectors for w in (a, b, c)):
        print(f"{a} : {b} :: {c} : {vectors.analogy(a, b, c)[0][0]}")

# %% [markdown]
# Words used alike end up together: family members, days of the week, colours, professions.
# Analogies of family and grammar (*brother → sister*, *is → was* as *are → were*,
# *go → went* as *come → came*) mostly come out right; `man : king :: woman : ?` does not,
# because this corpus says *king* nine times and *queen* twice: a vector is only as good as
# the contexts it saw.
#
# On a larger corpus, `python -m nmt.embeddings` also scores the vectors on Mikolov's 19,544
# Google analogy questions and WordSim-353 (`nmt.embeddings.evaluate.evaluate`); a corpus
# this small knows too few of their words for a meaningful score.
#
# ## A map of the words
#
# t-SNE (van der Maaten & Hinton 2008) places the vectors in 2-D so that near neighbours stay
# near; distances between far-apart groups mean little.

# %%
path = plot_words(vectors, WORK / "tsne.png", top=60, projection="tsne", title="word2vec, t-SNE")
display(Image(filename=str(path), width=600))

# %% [markdown]
# ## Measuring and removing the gender bias
#
# The **gender direction** `g` is the main axis of the differences she−he, her−his,
# woman−man, … . A word's projection `cos(w, g)` is positive on the *he* side, negative on the
# *she* side. Professions should sit near 0. The professions below are those that this
# corpus mentions at least eight times.

# %%
direction = gender_direction(vectors)
jobs = [
    w
    for w in [
        "teacher",
        "doctor",
        "student",
        "boss",
        "lawyer",
        "cook",
        "manager",
        "singer",
        "driver",
        "nurse",
        "artist",
    ]
    if w in vectors
]
before = projections(vectors, jobs, direction)
print(f"direct bias (mean |cos(w, g)|): {direct_bias(vectors, jobs, direction):.3f}")

# %% [markdown]
# **Neutralise**: every word that is not gender-specific by definition loses its component
# along `g`. **Equalise**: pairs such as king–queen are moved to be symmetric about the
# neutral words, so that *doctor* is as close to *man* as to *woman*.

# %%
debiased, report = debias(vectors)
after = projections(debiased, jobs, direction)
print(f"neutralised {report['neutralised']} words, equalised {report['equalised']} pairs")
print(f"direct bias after: {direct_bias(debiased, jobs, direction):.3f}")
print(f"{'word':13} {'before':>7} {'after':>7}")
for word, b, a in sorted(zip(jobs, before, after), key=lambda row: row[1]):
    print(f"{word:13} {b:7.3f} {a:7.3f}")

# %% [markdown]
# In these sentences the professions lean little (|cos| of 0.2 at most), and not the way the
# stereotypes go (*doctor* leans to the *she* side, *nurse* to neither): Tatoeba's short,
# everyday sentences say little about who does which job, and a word seen a few dozen times
# gets a noisy direction. Vectors trained on news or web text, those that Bolukbasi et al.
# measured, put *nurse* and *homemaker* far on the *she* side; the same two calls measure and
# remove that bias there.
#
# Debiasing removes the bias that a projection on one direction can see; Gonen & Goldberg
# (2019) show that much of it stays recoverable from the neighbourhoods. It is a repair of the
# symptom, not of the data.
#
# ## Going further
#
# * `python -m nmt.embeddings method=word2vec data=imdb` (or `method=fasttext`,
#   `method=glove`) trains, evaluates, plots and writes the vectors in every common format.
# * `python -m nmt.embeddings.query VECTORS --analogy man king woman` asks a vector file.
# * `model.embeddings.pretrained=VECTORS` starts a classifier's embedding from them.
