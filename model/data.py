"""Training batches from the pipeline's token shards: manifest checks and a seeded random-window sampler.

Shards are opened once with np.memmap, so only the pages that batches touch are read from disk.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)

MANIFEST_FORMAT = 1
DTYPES = {"uint16": np.uint16, "uint32": np.uint32}


class ShardError(ValueError):
    """A token directory whose manifest or shards cannot be used; the message names the file."""


@dataclass
class Manifest:
    """The parts of `tokens/manifest.json` that the trainer uses."""

    path: Path
    dtype: str
    vocab_size: int
    eos_id: int
    tokenizer: dict[str, Any]  # name, sha256, files (relative to the tokens directory)
    shards: list[dict[str, Any]]  # file, split, tokens, documents

    @property
    def directory(self) -> Path:
        return self.path.parent


def read_manifest(tokens_dir: str | Path) -> Manifest:
    """Read and check `tokens_dir/manifest.json`; raise ShardError naming the file and key on problems."""
    path = Path(tokens_dir) / "manifest.json"
    if not path.is_file():
        raise ShardError(f"manifest not found: {path}; pass --data RUN_DIR/tokens of a finished pipeline run")
    with path.open() as f:
        raw = json.load(f)

    for key in ("format", "dtype", "vocab_size", "eos_id", "tokenizer", "shards"):
        if key not in raw:
            raise ShardError(f"{path}: missing key {key!r}")
    if raw["format"] != MANIFEST_FORMAT:
        raise ShardError(f"{path}: format {raw['format']!r} is not supported; this trainer reads format {MANIFEST_FORMAT}")
    if raw["dtype"] not in DTYPES:
        raise ShardError(f"{path}: dtype {raw['dtype']!r} is invalid; expected one of {sorted(DTYPES)}")
    if raw["dtype"] == "uint16" and raw["vocab_size"] > 2**16:
        raise ShardError(f"{path}: vocab_size {raw['vocab_size']} does not fit dtype uint16")
    for key in ("name", "sha256", "files"):
        if key not in raw["tokenizer"]:
            raise ShardError(f"{path}: missing key 'tokenizer.{key}'")
    return Manifest(
        path=path,
        dtype=raw["dtype"],
        vocab_size=int(raw["vocab_size"]),
        eos_id=int(raw["eos_id"]),
        tokenizer=dict(raw["tokenizer"]),
        shards=list(raw["shards"]),
    )


def check_same_tokenizer(manifest: Manifest, tokenizer: dict[str, Any], vocab_size: int, checkpoint: Path) -> None:
    """Raise ShardError when the shards were encoded with another tokenizer or vocabulary than a checkpoint."""
    if manifest.tokenizer.get("sha256") != tokenizer.get("sha256"):
        raise ShardError(
            f"tokenizer mismatch: {manifest.path} names tokenizer {manifest.tokenizer.get('name')!r} "
            f"with sha256 {manifest.tokenizer.get('sha256')}, but checkpoint {checkpoint} was trained with "
            f"{tokenizer.get('name')!r} sha256 {tokenizer.get('sha256')}; use shards from the same tokenizer "
            "or start a new run in another output directory"
        )
    if manifest.vocab_size != vocab_size:
        raise ShardError(
            f"vocab_size mismatch: {manifest.path} has vocab_size {manifest.vocab_size}, but checkpoint "
            f"{checkpoint} was trained with {vocab_size}; use shards from the same tokenizer"
        )


def open_split(manifest: Manifest, split: str) -> list[np.memmap]:
    """Open the shards of one split ("train" or "val") as read-only memmaps, in manifest order."""
    dtype = DTYPES[manifest.dtype]
    shards = []
    for entry in manifest.shards:
        if entry.get("split") != split:
            continue
        path = manifest.directory / entry["file"]
        if not path.is_file():
            raise ShardError(f"shard not found: {path} (listed in {manifest.path})")
        if path.stat().st_size % np.dtype(dtype).itemsize:
            raise ShardError(f"{path}: size {path.stat().st_size} bytes is not a whole number of {manifest.dtype} tokens")
        if path.stat().st_size == 0:
            continue
        shards.append(np.memmap(path, dtype=dtype, mode="r"))
    return shards


class BatchSampler:
    """Draw (x, y) batches of random windows of `context_length + 1` tokens from a list of shards.

    Every process draws the same global batch of `batch_size * world_size` windows from one
    seeded generator and keeps rows `rank * batch_size` to `(rank + 1) * batch_size`. So the
    generator state is the data position of the whole run, and one process with a batch of
    `batch_size * world_size` reads the same rows as `world_size` processes together.
    Windows start uniformly over all valid positions of all shards (a shard is weighted by length).
    """

    def __init__(self, shards: list[np.memmap], context_length: int, batch_size: int,
                 seed: int, rank: int = 0, world_size: int = 1):
        self.shards = [s for s in shards if len(s) > context_length]
        if not self.shards:
            longest = max((len(s) for s in shards), default=0)
            raise ShardError(
                f"no shard has more than context_length={context_length} tokens (longest: {longest}); "
                "lower model.context_length or tokenize more text"
            )
        self.context_length = context_length
        self.batch_size = batch_size
        self.rank = rank
        self.world_size = world_size
        starts_per_shard = np.array([len(s) - context_length for s in self.shards], dtype=np.int64)
        self._first_start = np.concatenate(([0], np.cumsum(starts_per_shard)))  # (n_shards + 1,)
        self.rng = np.random.default_rng(seed)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return inputs and next-token targets, both int64 (batch_size, context_length)."""
        total = self.batch_size * self.world_size
        starts = self.rng.integers(0, self._first_start[-1], size=total)  # (B * world,)
        mine = starts[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]  # (B,)
        shard_ids = np.searchsorted(self._first_start, mine, side="right") - 1  # (B,)

        T = self.context_length
        windows = np.empty((self.batch_size, T + 1), dtype=np.int64)  # (B, T + 1)
        for row, (shard_id, start) in enumerate(zip(shard_ids, mine)):
            offset = start - self._first_start[shard_id]
            windows[row] = self.shards[shard_id][offset : offset + T + 1]
        batch = torch.from_numpy(windows)
        return batch[:, :-1], batch[:, 1:]  # (B, T) each

    def state_dict(self) -> dict[str, Any]:
        return {"bit_generator": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["bit_generator"]
