"""``load_checkpoint``: files that are not ours, or not safe, fail with a CheckpointError."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nmt.data.tokenizers import CharTokenizer
from nmt.inference.checkpoint import FORMAT_VERSION, PAYLOAD_KEY, CheckpointError, load_checkpoint, make_payload


class CreatesAFileWhenUnpickled:
    """A pickle payload that runs code: unpickling calls ``open(marker, "w")``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def valid_checkpoint(**payload_changes) -> dict:
    payload = make_payload("translation", {"model": {"hidden_size": 8}}, {"source": CharTokenizer.train(["ab"])})
    payload.update(payload_changes)
    return {"state_dict": {"model.weight": torch.zeros(2)}, PAYLOAD_KEY: payload}


def test_a_valid_checkpoint_loads(tmp_path):
    path = tmp_path / "ok.ckpt"
    torch.save(valid_checkpoint(), path)
    assert load_checkpoint(path)[PAYLOAD_KEY]["task"] == "translation"


@pytest.mark.parametrize("where", ["whole file", "inside the nmt payload"])
def test_a_pickle_that_would_run_code_is_refused_without_running_it(where, tmp_path):
    marker = tmp_path / "code-ran"
    exploit = CreatesAFileWhenUnpickled(marker)
    obj = exploit if where == "whole file" else valid_checkpoint(config={"model": exploit})
    path = tmp_path / "evil.ckpt"
    torch.save(obj, path)
    assert not marker.exists()

    with pytest.raises(CheckpointError, match="pickled Python objects, which could run code") as error:
        load_checkpoint(path)
    assert not marker.exists()
    assert "weights_only" not in str(error.value) and "\x1b" not in str(error.value)  # no unsafe advice

    torch.load(path, weights_only=False)  # the payload is live: an unsafe load runs it
    assert marker.exists()


def test_a_newer_format_version_asks_for_an_upgrade(tmp_path):
    path = tmp_path / "future.ckpt"
    torch.save(valid_checkpoint(format_version=FORMAT_VERSION + 1), path)
    with pytest.raises(CheckpointError, match=rf"format {FORMAT_VERSION + 1}, newer than .*upgrade nmt"):
        load_checkpoint(path)


@pytest.mark.parametrize("version", ["2", 1.5, None, [1]])
def test_a_format_version_that_is_not_an_integer_is_a_checkpoint_error(version, tmp_path):
    path = tmp_path / "odd.ckpt"
    torch.save(valid_checkpoint(format_version=version), path)
    with pytest.raises(CheckpointError, match=r"\.ckpt has an invalid checkpoint format_version"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    "content",
    [
        {"state_dict": {"model.weight": torch.zeros(2)}},  # a plain Lightning checkpoint
        {"state_dict": {}, PAYLOAD_KEY: "not a dict"},
        {"state_dict": {}, PAYLOAD_KEY: {"format_version": 1}},  # no task
        [torch.zeros(2)],  # not even a dict
        torch.zeros(3),
    ],
    ids=["lightning only", "payload not a dict", "payload without task", "a list", "a tensor"],
)
def test_a_file_without_the_nmt_payload_is_not_an_nmt_checkpoint(content, tmp_path):
    path = tmp_path / "other.ckpt"
    torch.save(content, path)
    with pytest.raises(CheckpointError, match="not an nmt checkpoint"):
        load_checkpoint(path)


@pytest.mark.parametrize("missing", ["config", "tokenizers"])
def test_a_payload_without_config_or_tokenizers_is_incomplete(missing, tmp_path):
    checkpoint = valid_checkpoint()
    del checkpoint[PAYLOAD_KEY][missing]
    path = tmp_path / "partial.ckpt"
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointError, match=f"no {missing!r}"):
        load_checkpoint(path)


def test_a_missing_a_damaged_and_an_empty_file(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.ckpt")
    damaged = tmp_path / "damaged.ckpt"
    damaged.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(damaged)
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(empty)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path)  # a directory
