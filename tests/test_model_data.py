"""Tests of shard reading: manifest checks and the random-window batch sampler, on shard folders made here.

`write_token_dir` is also used by the other model tests to build tiny token folders in tmp_path.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from model.data import BatchSampler, ShardError, check_same_tokenizer, open_split, read_manifest


@pytest.fixture(autouse=True)
def single_thread():
    """Run each test with one intra-op thread: tiny models gain nothing from more, and on a
    loaded machine OpenMP threads that wait on each other slow a step down many times over."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def write_token_dir(path: Path, train: list[np.ndarray], val: list[np.ndarray] | None = None, vocab_size: int = 256,
                    sha256: str = "test-tokenizer", eos_id: int | None = None, dtype: str = "uint16",
                    tokenizer_files: list[str] | None = None) -> Path:
    """Write shards and a manifest.json in the pipeline's token format (format 1) and return the folder."""
    path.mkdir(parents=True, exist_ok=True)
    shards = []
    for split, arrays in (("train", train), ("val", val or [])):
        for i, tokens in enumerate(arrays):
            name = f"{split}_{i:06d}.bin"
            np.asarray(tokens, dtype=dtype).tofile(path / name)
            shards.append({"file": name, "split": split, "tokens": int(len(tokens)), "documents": 1})
    manifest = {
        "format": 1, "dtype": dtype, "eos_id": vocab_size - 1 if eos_id is None else eos_id, "vocab_size": vocab_size,
        "tokenizer": {"name": "test", "sha256": sha256, "files": tokenizer_files or []},
        "shards": shards,
        "train_tokens": sum(len(t) for t in train), "val_tokens": sum(len(t) for t in val or []), "documents": len(shards),
    }
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


def random_tokens(n: int, vocab_size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, vocab_size, size=n).astype(np.uint16)


def test_manifest_read(tmp_path):
    write_token_dir(tmp_path, [random_tokens(100, 50)], [random_tokens(30, 50)], vocab_size=50, sha256="abc")
    manifest = read_manifest(tmp_path)
    assert manifest.vocab_size == 50
    assert manifest.tokenizer["sha256"] == "abc"
    assert [len(s) for s in open_split(manifest, "train")] == [100]
    assert [len(s) for s in open_split(manifest, "val")] == [30]


def test_shard_opened_as_memmap(tmp_path):
    write_token_dir(tmp_path, [random_tokens(100, 50)])
    (shard,) = open_split(read_manifest(tmp_path), "train")
    assert isinstance(shard, np.memmap)
    assert shard.dtype == np.uint16


def test_uint32_shards(tmp_path):
    tokens = np.array([70000, 1, 2, 69999] * 10, dtype=np.uint32)
    write_token_dir(tmp_path, [tokens], vocab_size=70001, dtype="uint32")
    (shard,) = open_split(read_manifest(tmp_path), "train")
    assert shard[0] == 70000


def test_missing_manifest_named(tmp_path):
    with pytest.raises(ShardError, match="manifest not found"):
        read_manifest(tmp_path)


def test_missing_manifest_key_named(tmp_path):
    write_token_dir(tmp_path, [random_tokens(10, 50)])
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    del manifest["vocab_size"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ShardError, match="missing key 'vocab_size'"):
        read_manifest(tmp_path)


def test_vocab_too_large_for_uint16(tmp_path):
    write_token_dir(tmp_path, [random_tokens(10, 50)], vocab_size=70000)
    with pytest.raises(ShardError, match="does not fit dtype uint16"):
        read_manifest(tmp_path)


def test_missing_shard_named(tmp_path):
    write_token_dir(tmp_path, [random_tokens(10, 50)])
    (tmp_path / "train_000000.bin").unlink()
    with pytest.raises(ShardError, match="shard not found: .*train_000000.bin"):
        open_split(read_manifest(tmp_path), "train")


def test_tokenizer_mismatch_message(tmp_path):
    write_token_dir(tmp_path, [random_tokens(10, 50)], vocab_size=50, sha256="new")
    with pytest.raises(ShardError, match="tokenizer mismatch.*sha256 new.*sha256 old"):
        check_same_tokenizer(read_manifest(tmp_path), {"name": "test", "sha256": "old"}, 50, Path("ckpt.pt"))
    with pytest.raises(ShardError, match="vocab_size mismatch"):
        check_same_tokenizer(read_manifest(tmp_path), {"name": "test", "sha256": "new"}, 64, Path("ckpt.pt"))


def test_targets_are_inputs_shifted_by_one():
    shard = np.arange(1000, dtype=np.uint16)  # token value == position
    sampler = BatchSampler([shard], context_length=16, batch_size=4, seed=0)
    x, y = sampler.next_batch()
    assert x.shape == (4, 16)
    assert x.dtype == torch.int64
    assert torch.equal(y[:, :-1], x[:, 1:])
    assert torch.equal(x[:, 1:] - x[:, :-1], torch.ones(4, 15, dtype=torch.int64))  # contiguous windows
    assert int(y.max()) <= 999


def test_windows_never_cross_shards():
    shards = [np.arange(0, 40, dtype=np.uint16), np.arange(1000, 1100, dtype=np.uint16)]
    sampler = BatchSampler(shards, context_length=8, batch_size=64, seed=0)
    seen = set()
    for _ in range(10):
        x, y = sampler.next_batch()
        full = torch.cat((x, y[:, -1:]), dim=1)  # (B, T + 1)
        assert torch.equal(full[:, 1:] - full[:, :-1], torch.ones(64, 8, dtype=torch.int64))
        seen.update(int(v) // 1000 for v in x[:, 0])
    assert seen == {0, 1}


def test_short_shards_skipped_or_rejected():
    sampler = BatchSampler([np.arange(5, dtype=np.uint16), np.arange(100, dtype=np.uint16)], 8, 2, seed=0)
    assert len(sampler.shards) == 1
    with pytest.raises(ShardError, match="no shard has more than context_length=8"):
        BatchSampler([np.arange(8, dtype=np.uint16)], 8, 2, seed=0)


def test_sampler_state_restores_position():
    shard = random_tokens(5000, 100)
    sampler = BatchSampler([shard], 16, 4, seed=3)
    sampler.next_batch()
    state = sampler.state_dict()
    expected = sampler.next_batch()
    restored = BatchSampler([shard], 16, 4, seed=999)
    restored.load_state_dict(state)
    actual = restored.next_batch()
    assert torch.equal(actual[0], expected[0])
    assert torch.equal(actual[1], expected[1])


def test_ranks_split_the_global_batch():
    shard = random_tokens(5000, 100)
    whole = BatchSampler([shard], 16, 6, seed=5).next_batch()[0]
    rank0 = BatchSampler([shard], 16, 3, seed=5, rank=0, world_size=2).next_batch()[0]
    rank1 = BatchSampler([shard], 16, 3, seed=5, rank=1, world_size=2).next_batch()[0]
    assert torch.equal(torch.cat((rank0, rank1)), whole)
