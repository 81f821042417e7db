"""Padding, collation and the length-bucketed batch sampler."""

from __future__ import annotations

import random

import pytest
import torch

from nmt.data.batching import BucketBatchSampler, PairDataset, collate_pairs, pad_sequences
from nmt.data.tokenizers import BOS_ID, EOS_ID, PAD_ID


def lengths(n=500, seed=0):
    rng = random.Random(seed)
    return [rng.randint(1, 40) for _ in range(n)]


def test_pad_sequences_pads_with_pad_id_and_reports_lengths():
    padded, lens = pad_sequences([[5, 6, 7], [8]])
    assert padded.tolist() == [[5, 6, 7], [8, PAD_ID, PAD_ID]] and lens.tolist() == [3, 1]


def test_collate_adds_bos_to_decoder_input_and_eos_to_targets():
    batch = collate_pairs([([5, 6], [7, 8, 9], "a b c"), ([5], [7], "a")])
    assert batch.tgt_in.tolist() == [[BOS_ID, 7, 8, 9], [BOS_ID, 7, PAD_ID, PAD_ID]]
    assert batch.tgt_out.tolist() == [[7, 8, 9, EOS_ID], [7, EOS_ID, PAD_ID, PAD_ID]]
    assert batch.src_lengths.tolist() == [2, 1] and batch.references == ["a b c", "a"]
    assert batch.num_target_tokens == 6


@pytest.mark.parametrize("unit,size", [("sentences", 16), ("tokens", 200)])
def test_every_item_appears_exactly_once_per_epoch(unit, size):
    sampler = BucketBatchSampler(lengths(), size, unit=unit, seed=3)
    for _ in range(2):
        seen = sorted(i for batch in sampler for i in batch)
        assert seen == list(range(500))


def test_token_budget_is_respected():
    lens = lengths()
    for batch in BucketBatchSampler(lens, 200, unit="tokens"):
        assert max(lens[i] for i in batch) * len(batch) <= 200


def test_buckets_keep_padding_small_compared_to_random_batches():
    lens = lengths(2000)

    def waste(batches):
        return sum(max(lens[i] for i in b) * len(b) - sum(lens[i] for i in b) for b in batches)

    bucketed = list(BucketBatchSampler(lens, 32, seed=1))
    order = list(range(2000))
    random.Random(1).shuffle(order)
    unbucketed = [order[i : i + 32] for i in range(0, 2000, 32)]
    assert waste(bucketed) < 0.2 * waste(unbucketed)


def test_order_is_seeded_and_changes_from_epoch_to_epoch():
    first = list(BucketBatchSampler(lengths(), 16, seed=7))
    again = BucketBatchSampler(lengths(), 16, seed=7)
    assert list(again) == first
    assert list(again) != first  # the second pass is the next epoch


def test_set_epoch_reproduces_that_epochs_order():
    sampler = BucketBatchSampler(lengths(), 16, seed=7)
    epochs = [list(sampler) for _ in range(3)]
    resumed = BucketBatchSampler(lengths(), 16, seed=7)
    resumed.set_epoch(2)
    assert list(resumed) == epochs[2]


def test_skip_drops_batches_already_trained_on_then_continues_normally():
    sampler = BucketBatchSampler(lengths(), 16, seed=7)
    full = list(sampler)
    resumed = BucketBatchSampler(lengths(), 16, seed=7)
    resumed.skip(5)
    assert list(resumed) == full[5:]
    assert len(list(resumed)) == len(full)


class _Indices(torch.utils.data.Dataset):
    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> int:
        return index


@pytest.mark.parametrize("num_workers", [0, 1, 2])
def test_a_loader_with_workers_serves_the_same_epochs_and_resume_skip(num_workers):
    """A DataLoader with workers calls iter() on its batch sampler twice when it starts them:
    that must neither count an extra epoch nor use up a resume's skip."""

    def passes(sampler: BucketBatchSampler, count: int) -> list[list[list[int]]]:
        loader = torch.utils.data.DataLoader(
            _Indices(500), batch_sampler=sampler, num_workers=num_workers, collate_fn=list
        )
        return [list(loader) for _ in range(count)]

    reference = BucketBatchSampler(lengths(), 16, seed=7)
    expected = [list(reference) for _ in range(3)]
    assert passes(BucketBatchSampler(lengths(), 16, seed=7), 3) == expected
    resumed = BucketBatchSampler(lengths(), 16, seed=7)
    resumed.set_position(1, 4)
    assert passes(resumed, 2) == [expected[1][4:], expected[2]]


def test_evaluation_order_is_sorted_and_stable():
    lens = lengths()
    sampler = BucketBatchSampler(lens, 16, shuffle=False)
    batches = list(sampler)
    assert batches == list(sampler)
    flat = [lens[i] for b in batches for i in b]
    assert flat == sorted(flat)


def test_replicas_get_disjoint_equal_shares():
    shards = [list(BucketBatchSampler(lengths(), 16, seed=2, num_replicas=2, rank=r)) for r in range(2)]
    assert len(shards[0]) == len(shards[1])
    assert not {i for b in shards[0] for i in b} & {i for b in shards[1] for i in b}


def test_too_small_token_budget_names_the_fix():
    with pytest.raises(ValueError, match="data.batch_size"):
        BucketBatchSampler([5, 50], 20, unit="tokens")


def test_pair_dataset_lengths_count_the_longer_side_plus_one():
    assert PairDataset([[1, 2]], [[3, 4, 5]], ["x"]).lengths() == [4]
