"""Subword regularisation: sampled training segmentations, new each epoch, a function of
(seed, epoch, item) alone; dev, test and decoding keep the best segmentation."""

from __future__ import annotations

import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from conftest import REPO, compose_config, toy_pairs, write_pairs
from nmt.config.checks import ConfigError, validate_config
from nmt.data.batching import PairDataset, bucketed_loader, collate_pairs
from nmt.data.subword_sampling import SampledPairDataset, sampling_seed
from nmt.data.tokenizers import SentencePieceTokenizer
from nmt.data.translation_datamodule import TranslationDataModule

PAIRS = toy_pairs(300, seed=3, min_words=3, max_words=8)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_pairs(tmp_path_factory.mktemp("subword") / "pairs.txt", PAIRS)


def datamodule(corpus, *overrides: str) -> TranslationDataModule:
    cfg = compose_config(
        [f"data.path={corpus}", "data.split_cache=null", "tokenizer.vocab_size=80", "data.max_length=null", *overrides]
    )
    container = OmegaConf.to_container(cfg, resolve=True)
    dm = TranslationDataModule(container["data"], container["tokenizer"], seed=5)
    dm.setup()
    return dm


@pytest.fixture(scope="module")
def sampled(corpus) -> TranslationDataModule:
    return datamodule(corpus, "tokenizer.sampling_alpha=0.1")


def test_sampling_off_gives_the_best_segmentation_as_before(corpus):
    dm = datamodule(corpus)
    train = dm.datasets["train"]
    assert type(train) is PairDataset
    source_tok, target_tok = dm.tokenizers
    texts = dm.splits["train"]
    assert train.src_ids == source_tok.encode_batch([s for s, _ in texts])
    assert train.tgt_ids == target_tok.encode_batch([t for _, t in texts])


def test_only_the_training_split_is_sampled(sampled):
    assert isinstance(sampled.datasets["train"], SampledPairDataset)
    for name in ("dev", "test", "dev_bleu"):
        assert type(sampled.datasets[name]) is PairDataset


def test_segmentations_change_between_epochs(sampled):
    train = sampled.datasets["train"]
    epoch0 = [train[(0, i)][:2] for i in range(len(train))]
    epoch1 = [train[(1, i)][:2] for i in range(len(train))]
    changed = sum(a != b for a, b in zip(epoch0, epoch1))
    assert changed > len(train) // 2
    best = [train[i][:2] for i in range(len(train))]
    assert sum(a != b for a, b in zip(epoch0, best)) > len(train) // 2


def test_same_seed_epoch_and_item_give_the_same_segmentation_in_any_order(sampled):
    train = sampled.datasets["train"]
    forward = [train[(2, i)] for i in range(len(train))]
    backward = [train[(2, i)] for i in reversed(range(len(train)))][::-1]
    assert forward == backward


def test_sampled_ids_decode_back_to_the_text(sampled):
    train = sampled.datasets["train"]
    source_tok, target_tok = sampled.tokenizers
    for epoch in range(3):
        for i in range(len(train)):
            src, tgt, text = train[(epoch, i)]
            assert source_tok.decode(src) == train.src_texts[i]
            assert target_tok.decode(tgt) == text


def test_another_process_draws_the_same_segmentation(sampled):
    tokenizer = sampled.tokenizers[0]
    text = max(sampled.datasets["train"].src_texts, key=len)
    seeds = [sampling_seed(5, epoch, 7, 0) for epoch in range(4)]
    here = [tokenizer.sample_encode(text, alpha=0.1, nbest=16, seed=seed) for seed in seeds]
    assert len({tuple(ids) for ids in here}) > 1
    script = (
        "import sys; from nmt.data.tokenizers import SentencePieceTokenizer as S\n"
        "tok = S(sys.stdin.buffer.read())\n"
        f"print([tok.sample_encode({text!r}, alpha=0.1, nbest=16, seed=s) for s in {seeds}])"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        input=tokenizer.model_proto,
        capture_output=True,
        check=True,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": ""},
    ).stdout
    assert out.decode().strip() == str(here)


def test_training_loader_samples_by_its_epoch_also_in_a_worker_process(sampled):
    train = sampled.datasets["train"]

    def loader(**options):
        return bucketed_loader(train, 32, collate_pairs, shuffle=True, seed=5, **options)

    in_process = loader()
    epochs = [[batch.src.tolist() for batch in in_process] for _ in range(2)]
    assert epochs[0] != epochs[1]
    in_worker = loader(num_workers=1)
    worker_batches = [batch.src.tolist() for batch in in_worker]
    assert worker_batches == epochs[in_worker.batch_sampler.pass_epoch]
    resumed = [batch.src.tolist() for batch in loader(start=(1, 3))]
    assert resumed == epochs[1][3:]


def test_a_sample_longer_than_max_length_falls_back_to_the_best_segmentation(sampled):
    full = sampled.datasets["train"]
    limit = max(full.lengths()) - 1  # the best segmentation of every pair fits
    capped = SampledPairDataset(
        full.src_texts,
        full.tgt_texts,
        full.src_ids,
        full.tgt_ids,
        full.tokenizers,
        alpha=0.1,
        nbest=16,
        seed=5,
        max_length=limit,
    )
    for epoch in range(3):
        for i in range(len(capped)):
            src, tgt, _ = capped[(epoch, i)]
            assert len(src) <= limit and len(tgt) <= limit


def test_sample_encode_is_a_function_of_its_seed():
    tokenizer = SentencePieceTokenizer.train([s for s, _ in PAIRS], vocab_size=80)
    text = PAIRS[0][0]
    first = [tokenizer.sample_encode(text, alpha=0.1, nbest=16, seed=seed) for seed in range(20)]
    assert first == [tokenizer.sample_encode(text, alpha=0.1, nbest=16, seed=seed) for seed in range(20)]
    assert tokenizer.encode(text) == tokenizer.encode(text)  # best segmentation untouched by the seeding


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["tokenizer=char", "+tokenizer.sampling_alpha=0.1"],
            "samples SentencePiece segmentations.*tokenizer.type=char",
        ),
        (["tokenizer=word", "+tokenizer.sampling_alpha=0.1"], "tokenizer.type=word: use tokenizer=spm"),
        (["tokenizer.sampling_alpha=0"], "sampling_alpha must be > 0"),
        (["tokenizer.model_type=bpe", "tokenizer.sampling_alpha=0.1"], "use tokenizer.model_type=unigram"),
        (["tokenizer.sampling_alpha=0.1", "tokenizer.sampling_nbest=-1"], "sampling_nbest must be an integer > 1"),
    ],
)
def test_bad_sampling_settings_are_refused_in_one_line(overrides, message):
    with pytest.raises(ConfigError, match=message) as error:
        validate_config(compose_config(overrides))
    assert "\n" not in str(error.value)


def test_good_sampling_settings_validate():
    validate_config(compose_config(["tokenizer.sampling_alpha=0.1", "tokenizer.sampling_nbest=64"]))
