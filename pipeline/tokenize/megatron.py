"""Export token shards as a Megatron-LM indexed dataset (`PREFIX.bin` + `PREFIX.idx`).

Megatron-LM and NeMo read this format (its `MMIDIDX` index, version 1). Each document,
EOS included, is one sequence and one document, like Megatron's preprocess_data.py
with --append-eod.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

INDEX_MAGIC = b"MMIDIDX\x00\x00"
INDEX_VERSION = 1
# Megatron-LM's DType codes (megatron/core/datasets/indexed_dataset.py); it has no uint32.
DTYPE_CODES = {
    np.dtype(np.uint8): 1,
    np.dtype(np.int8): 2,
    np.dtype(np.int16): 3,
    np.dtype(np.int32): 4,
    np.dtype(np.int64): 5,
    np.dtype(np.float64): 6,
    np.dtype(np.float32): 7,
    np.dtype(np.uint16): 8,
}
COPY_CHUNK_TOKENS = 1 << 24


def megatron_dtype(shard_dtype: np.dtype) -> np.dtype:
    """Return the Megatron dtype for shard ids: uint16 stays, uint32 becomes int32 (ids must stay below 2**31)."""
    shard_dtype = np.dtype(shard_dtype)
    if shard_dtype == np.uint16:
        return shard_dtype
    if shard_dtype == np.uint32:
        return np.dtype(np.int32)
    raise ValueError(f"shards of dtype {shard_dtype} cannot be exported; expected uint16 or uint32")


def export_megatron(tokens_dir: str | Path, prefix: str | Path, split: str) -> tuple[Path, Path]:
    """Write one split of the shards in `tokens_dir` to `<prefix>.bin` and `<prefix>.idx`; return both paths."""
    tokens_dir = Path(tokens_dir)
    manifest = json.loads((tokens_dir / "manifest.json").read_text(encoding="utf-8"))
    shard_dtype = np.dtype(manifest["dtype"])
    dtype = megatron_dtype(shard_dtype)
    shards = [shard for shard in manifest["shards"] if shard["split"] == split]

    lengths = document_lengths(tokens_dir / manifest.get("documents_file", "documents.parquet"), split)
    if int(lengths.sum()) != sum(shard["tokens"] for shard in shards):
        raise ValueError(f"{tokens_dir}: documents.parquet and manifest.json disagree on the {split} token count")

    bin_path, idx_path = Path(f"{prefix}.bin"), Path(f"{prefix}.idx")
    bin_path.parent.mkdir(parents=True, exist_ok=True)
    write_data(tokens_dir, shards, shard_dtype, dtype, bin_path)
    write_index(lengths, dtype, idx_path)
    log.info("wrote %d %s documents (%d tokens) to %s", len(lengths), split, int(lengths.sum()), bin_path)
    return bin_path, idx_path


def document_lengths(documents_file: Path, split: str) -> np.ndarray:
    """Return each document's token count (EOS included) in shard order, joining pieces cut by a shard boundary."""
    table = pq.read_table(documents_file, columns=["split", "tokens", "continued"]).to_pydict()
    lengths: list[int] = []
    for piece_split, tokens, continued in zip(table["split"], table["tokens"], table["continued"]):
        if piece_split != split:
            continue
        if continued:
            lengths[-1] += tokens
        else:
            lengths.append(tokens)
    return np.asarray(lengths, dtype=np.int64)


def write_data(tokens_dir: Path, shards: list[dict], shard_dtype: np.dtype, dtype: np.dtype, path: Path) -> None:
    """Concatenate the shards into `path` as `dtype`, raising on an id that does not fit."""
    tmp_path = path.with_name(f".{path.name}.tmp")
    limit = np.iinfo(dtype).max
    with open(tmp_path, "wb") as handle:
        for shard in shards:
            ids = np.memmap(tokens_dir / shard["file"], dtype=shard_dtype.newbyteorder("<"), mode="r")
            for start in range(0, len(ids), COPY_CHUNK_TOKENS):
                chunk = np.asarray(ids[start : start + COPY_CHUNK_TOKENS])
                if chunk.size and int(chunk.max()) > limit:
                    raise ValueError(f"{shard['file']}: id {int(chunk.max())} does not fit in Megatron's {dtype}")
                chunk.astype(dtype.newbyteorder("<")).tofile(handle)
    os.replace(tmp_path, path)


def write_index(lengths: np.ndarray, dtype: np.dtype, path: Path) -> None:
    """Write the MMIDIDX index: header, sequence lengths, byte pointers, document indices."""
    if lengths.size and int(lengths.max()) > np.iinfo(np.int32).max:
        raise ValueError(f"a document of {int(lengths.max())} tokens exceeds Megatron's int32 sequence length")
    pointers = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1] * dtype.itemsize, out=pointers[1:])
    document_indices = np.arange(len(lengths) + 1, dtype=np.int64)  # one sequence per document

    tmp_path = path.with_name(f".{path.name}.tmp")
    with open(tmp_path, "wb") as handle:
        handle.write(INDEX_MAGIC)
        handle.write(struct.pack("<Q", INDEX_VERSION))
        handle.write(struct.pack("<B", DTYPE_CODES[dtype]))
        handle.write(struct.pack("<Q", len(lengths)))
        handle.write(struct.pack("<Q", len(document_indices)))
        handle.write(lengths.astype("<i4").tobytes())
        handle.write(pointers.astype("<i8").tobytes())
        handle.write(document_indices.astype("<i8").tobytes())
    os.replace(tmp_path, path)
