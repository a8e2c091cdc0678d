"""Token shards: document order, the train/val split, and the writer of .bin + .idx.npy files.

A shard is a flat little-endian array of ids, EOS after each document, cut at exactly
`shard_tokens` tokens. A document that crosses the cut continues at offset 0 of the next
shard; that shard's manifest entry has `continues_document: true`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np


def val_mask(ids: list[str], val_fraction: float, seed: int) -> np.ndarray:
    """Return True for the documents that go to val: a seeded hash of the id below val_fraction."""
    key = str(seed).encode("utf-8")
    threshold = int(val_fraction * 2**64)
    mask = np.empty(len(ids), dtype=bool)
    for index, doc_id in enumerate(ids):
        digest = hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8, key=key).digest()
        mask[index] = int.from_bytes(digest, "little") < threshold
    return mask


def document_order(count: int, shuffle: bool, seed: int, stream: int) -> np.ndarray:
    """Return the order of `count` documents: canonical, or a seeded permutation per split stream."""
    if not shuffle:
        return np.arange(count, dtype=np.int64)
    return np.random.default_rng([seed, stream]).permutation(count)


def replace_atomically(tmp_path: Path, path: Path) -> None:
    os.replace(tmp_path, path)


class ShardWriter:
    """Write one split's token stream as shards of `shard_tokens` tokens each.

    `add_document` streams a document's ids (EOS included) into the open shard and cuts
    it at the shard boundary. Every piece gets one index offset and one row in `pieces`.
    """

    def __init__(self, out_dir: Path, split: str, shard_tokens: int, dtype: np.dtype):
        if shard_tokens < 1:
            raise ValueError(f"tokenize.shard_tokens must be at least 1, got {shard_tokens}")
        self.out_dir = Path(out_dir)
        self.split = split
        self.shard_tokens = shard_tokens
        self.dtype = np.dtype(dtype)
        self.shards: list[dict] = []
        self.pieces: list[dict] = []
        self.tokens = 0
        self._handle = None
        self._filled = 0
        self._offsets: list[int] = []
        self._starts = 0
        self._continues = False

    @property
    def shard_name(self) -> str:
        return f"{self.split}_{len(self.shards):06d}"

    def add_document(self, doc_id: str, tokens: np.ndarray) -> None:
        if tokens.dtype != self.dtype:
            raise TypeError(f"document {doc_id} has {tokens.dtype} ids, but the shards are {self.dtype}")
        position = 0
        while position < len(tokens):
            if self._handle is None:
                self._open(continues=position > 0)
            piece = tokens[position : position + self.shard_tokens - self._filled]
            self._write_piece(doc_id, piece, continued=position > 0)
            position += len(piece)
            if self._filled == self.shard_tokens:
                self._close_shard()

    def close(self) -> None:
        if self._handle is not None:
            self._close_shard()

    def _open(self, continues: bool) -> None:
        self._tmp_path = self.out_dir / f".{self.shard_name}.bin.tmp"
        self._handle = open(self._tmp_path, "wb")
        self._filled = 0
        self._offsets = []
        self._starts = 0
        self._continues = continues

    def _write_piece(self, doc_id: str, piece: np.ndarray, continued: bool) -> None:
        self.pieces.append(
            {"shard": f"{self.shard_name}.bin", "offset": self._filled, "tokens": len(piece), "id": doc_id,
             "split": self.split, "continued": continued}
        )
        self._offsets.append(self._filled)
        self._starts += not continued
        piece.astype(self.dtype.newbyteorder("<"), copy=False).tofile(self._handle)
        self._filled += len(piece)
        self.tokens += len(piece)

    def _close_shard(self) -> None:
        name = self.shard_name
        self._handle.close()
        self._handle = None
        replace_atomically(self._tmp_path, self.out_dir / f"{name}.bin")

        index_tmp = self.out_dir / f".{name}.idx.npy.tmp"
        with open(index_tmp, "wb") as handle:
            np.save(handle, np.asarray(self._offsets, dtype=np.int64))
        replace_atomically(index_tmp, self.out_dir / f"{name}.idx.npy")

        self.shards.append(
            {"file": f"{name}.bin", "index": f"{name}.idx.npy", "split": self.split, "tokens": self._filled,
             "documents": self._starts, "pieces": len(self._offsets), "continues_document": self._continues}
        )
