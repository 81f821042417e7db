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
# # 05 · A Naive Bayes spam filter, worked by hand
#
# Bayes' rule turns "how often does spam contain these words?" into "how likely is this
# message spam?":
#
# $$P(\text{spam} \mid w_1 \dots w_n) = \frac{P(w_1 \dots w_n \mid \text{spam})\,P(\text{spam})}{P(w_1 \dots w_n)}$$
#
# The **naive** assumption is that the words are independent given the class, so the
# likelihood is a product of per-word probabilities:
# `P(w_1 … w_n | c) = P(w_1 | c) · … · P(w_n | c)`. Each `P(w | c)` is counted on the
# training messages of class `c`, with **Laplace smoothing** (`α = 1`) so that a word never
# seen in spam does not make every message containing it impossible as spam:
#
# $$P(w \mid c) = \frac{\text{count}(w, c) + \alpha}{\sum_{w'} \text{count}(w', c) + \alpha\,|V|}$$
#
# The denominator `P(w_1 … w_n)` is the same for both classes, so comparing
# `P(c) · Π P(w_i | c)` is enough; dividing each by their sum gives the posterior.
# This notebook fits the filter with `nmt.baselines.naive_bayes` and works the message
# **"you won a free lottery"** through step by step.

# %%
import math
import tempfile
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import nmt
from nmt.baselines.naive_bayes import fit
from nmt.config.location import CONF_DIR
from nmt.data.classification_datamodule import ClassificationDataModule
from nmt.data.corpora import read_sms
from nmt.data.embedded import embedded_path
from nmt.inference.baseline import evaluate_model

WORK = Path(tempfile.mkdtemp(prefix="nmt-notebook-05-"))
print("nmt from", Path(nmt.__file__).parent, "- files of this notebook in", WORK)


# %% [markdown]
# ## The corpus
#
# The SMS Spam Collection (`ham<TAB>text` or `spam<TAB>text` per line, 5,574 messages, 747 of
# them spam), which ships with `nmt` gzip-compressed; `read_sms` reads it.

# %%
CORPUS = embedded_path("sms")
messages, read_report = read_sms(CORPUS)
print(read_report.summary())
for text, label in messages["all"][:4]:
    print(f"{['ham', 'spam'][label]:5} {text}")

# %% [markdown]
# ## Fitting
#
# `experiment=sms_naive_bayes` is the baseline's recipe (`python -m nmt.train
# experiment=sms_naive_bayes` fits it, picks `α` on dev and saves a checkpoint). Here the same
# config is composed and fitted directly, with single words (`ngram_range=[1,1]`) and `α = 1`
# to match the formulas above. The splits are those of the neural classifier of notebook 02.

# %%
with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
    cfg = compose(
        config_name="config",
        overrides=["experiment=sms_naive_bayes", f"data.path={CORPUS}", "model.ngram_range=[1,1]", "model.alpha=1.0"],
    )
model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
labels = list(cfg.data.labels)  # ["ham", "spam"]: class 0 and class 1
splits = ClassificationDataModule(cfg.data, seed=int(cfg.seed)).prepare_corpus()
train_texts = [text for text, _ in splits["train"]]
train_labels = [label for _, label in splits["train"]]
model = fit(train_texts, train_labels, len(labels), model_cfg, {"alpha": 1.0})
print(f"{len(train_texts)} training messages ({sum(train_labels)} spam), vocabulary of {len(model.vocabulary)} words")

# %% [markdown]
# The fitted model is plain data: `model.bias[c]` is `log P(c)`, the log prior, and
# `model.weight[c, j]` is `log P(w_j | c)` for the `j`-th word of `model.vocabulary`.
#
# ## Step 1: the priors

# %%
prior = model.bias.double().exp()
for c, label in enumerate(labels):
    print(f"P({label}) = {prior[c]:.4f}")

# %% [markdown]
# ## Step 2: the likelihood of each word
#
# The model lower-cases and splits the message the way it was trained (`model.transform`
# counts the message's words); a word outside the training vocabulary has no column and is
# simply left out.

# %%
message = "you won a free lottery"
counts = model.transform([message]).tocoo()
words = [(model.vocabulary[j], int(n)) for j, n in zip(counts.col, counts.data)]  # (word, times in the message)
words.sort(key=lambda item: message.lower().find(item[0]))  # in the message's order
likelihood = model.weight.double().exp()
print(f"{'word':10} {'P(word|ham)':>12} {'P(word|spam)':>13} {'ratio spam/ham':>15}")
for word, _ in words:
    j = model.vocabulary.index(word)
    print(f"{word:10} {likelihood[0, j]:12.5f} {likelihood[1, j]:13.5f} {likelihood[1, j] / likelihood[0, j]:15.2f}")
missing = [w for w in message.split() if w not in {word for word, _ in words}]
if missing:
    print("not in the training vocabulary:", ", ".join(missing))

# %% [markdown]
# ## Step 3: multiply, then normalise
#
# `P(c) · Π P(w | c)` for each class (each word counted as often as it occurs), then the
# posterior: each product divided by their sum. Products of many small probabilities
# underflow, which is why the model adds logarithms instead; for a few words the plain
# product is fine.

# %%
joint = []
for c, label in enumerate(labels):
    product = prior[c].item()
    factors = [f"{prior[c]:.4f}"]
    for word, n in words:
        p = likelihood[c, model.vocabulary.index(word)].item()
        product *= p**n
        factors.append(f"{p:.5f}" + (f"^{n}" if n > 1 else ""))
    joint.append(product)
    print(f"P({label}) · Π P(w|{label}) = {' × '.join(factors)} = {product:.3e}")
for c, label in enumerate(labels):
    print(f"P({label} | {message!r}) = {joint[c] / sum(joint):.4f}")

# %% [markdown]
# The prior favours ham more than six to one; *won* and *free* each make the message about ten
# times likelier under spam than under ham, *you* halves that and *a* changes little; *lottery*,
# which no training message contains, counts for nothing. Together they outweigh the prior.
#
# ## Step 4: the model's own answer
#
# `model.scores` computes the same thing in log space, `log P(c) + Σ count(w) · log P(w | c)`,
# and `model.predict` takes the larger. A softmax of the scores is the posterior of step 3.

# %%
scores = model.scores([message])
posterior = torch.softmax(scores, dim=-1)[0]
print("log scores:", [round(s, 3) for s in scores[0].tolist()], " check:", [round(math.log(j), 3) for j in joint])
print("posterior:", {label: round(p, 4) for label, p in zip(labels, posterior.tolist())})
print("prediction:", labels[int(model.predict([message])[0])])

# %% [markdown]
# ## The course's own message: "you free lottery"
#
# The course works **"you free lottery"** on a toy table of word counts, where it comes out as
# spam. On the real collection it does not: *lottery* never occurs in the training split, so it
# drops out (no evidence either way), and *you*, frequent in personal messages, pulls towards ham
# about as hard as *free* pulls towards spam. What decides is the evidence the corpus holds,
# not how a message sounds; *won* tips the message above into spam.

# %%
course_message = "you free lottery"
course_posterior = torch.softmax(model.scores([course_message]), dim=-1)[0]
print("in the vocabulary:", [word for word in course_message.split() if word in model.vocabulary])
print("posterior:", {label: round(p, 4) for label, p in zip(labels, course_posterior.tolist())})
print("prediction:", labels[int(model.predict([course_message])[0])])

# %% [markdown]
# ## How good is the filter?
#
# Scored on the test split the model never saw (`nmt.inference.baseline.evaluate_model`, the
# report of `python -m nmt.cli.evaluate_classifier`).
# A strong baseline: on the same test split it does about as well as notebook 02's BiLSTM,
# after a fraction of a second of fitting.

# %%
report = evaluate_model(model, splits["test"], labels)
print(f"{report['n']} test messages, accuracy {report['accuracy']:.3f}, macro-F1 {report['macro_f1']:.3f}")
for label, scores in report["per_class"].items():
    print(f"  {label:5} precision {scores['precision']:.3f}  recall {scores['recall']:.3f}")
for text in ["Call now to claim your free prize", "See you at the station after work"]:
    print(f"{labels[int(model.predict([text])[0])]:5} <- {text}")

# %% [markdown]
# ## Going further
#
# * Word pairs as well as words (`model.ngram_range=[1,2]`, the recipe's default) and `α`
#   chosen on dev: `python -m nmt.train experiment=sms_naive_bayes`.
# * NB-SVM (Wang & Manning 2012), an SVM on Naive Bayes log-count ratios:
#   `experiment=imdb_nbsvm`.
