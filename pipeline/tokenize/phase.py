"""The tokenize phase: kept documents (Parquet parts) to token shards in RUN_DIR/tokens/.

Ray tasks encode one part each into work_dir. The driver then picks each document's split
by a seeded hash of its id, orders each split by a seeded permutation and streams the ids
into shards. The output depends only on the parts, the config and the tokenizer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.tokenize.shards import ShardWriter, document_order, val_mask
from pipeline.tokenize.tokenizer import Tokenizer, files_sha256, load_tokenizer, spec_from_config
from pipeline.tokenize.train import train_bpe

log = logging.getLogger(__name__)

MANIFEST_FORMAT = 1
ENCODE_BATCH_DOCUMENTS = 512
VERIFY_DOCUMENTS = 64


def tokenize_phase(parts: list[str], out_dir: str, config: dict, work_dir: str) -> dict:
    """Encode the kept documents in `parts` into shards in `out_dir` and return the phase's stats.

    `parts` are Parquet files with `id` and `text` columns in the run's canonical order;
    `config` is the `tokenize` section. Per-part ids go to `work_dir/encoded/` and are
    reused by a rerun with the same part files and tokenizer.
    """
    started = time.perf_counter()
    out_dir, work_dir = Path(out_dir), Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    parts = [str(part) for part in parts]

    spec = tokenizer_spec(parts, config, work_dir)
    tokenizer = load_tokenizer(spec)
    if tokenizer.encoder == "tiktoken" and tokenizer.name != "gpt2":
        spec, tokenizer = verify_tiktoken_ids(spec, tokenizer, parts)
    log.info("tokenizing %d parts with %s (%s, vocabulary %d, %s shards)", len(parts), tokenizer.name,
             tokenizer.encoder, tokenizer.vocab_size, tokenizer.dtype)

    encode_started = time.perf_counter()
    encoded = encode_parts(parts, spec, work_dir / "encoded", tokenizer.num_threads, config.get("max_workers"))
    encode_seconds = time.perf_counter() - encode_started

    write_started = time.perf_counter()
    manifest = write_shards(encoded, out_dir, config, tokenizer)
    stats = {
        "documents": manifest["documents"],
        "train_documents": manifest["train_documents"],
        "val_documents": manifest["val_documents"],
        "train_tokens": manifest["train_tokens"],
        "val_tokens": manifest["val_tokens"],
        "tokens": manifest["train_tokens"] + manifest["val_tokens"],
        "shards": len(manifest["shards"]),
        "bytes_in": sum(part["bytes_in"] for part in encoded),
        "tokenizer": tokenizer.name,
        "encoder": tokenizer.encoder,
        "encode_seconds": round(encode_seconds, 3),
        "write_seconds": round(time.perf_counter() - write_started, 3),
        "seconds": round(time.perf_counter() - started, 3),
    }
    log.info("wrote %d train and %d val tokens in %d shards to %s", stats["train_tokens"], stats["val_tokens"],
             stats["shards"], out_dir)
    return stats


def tokenizer_spec(parts: list[str], config: dict, work_dir: Path) -> dict:
    """Return the tokenizer spec for the config, training a BPE on the parts' text for train-bpe."""
    if config.get("tokenizer") != "train-bpe":
        return spec_from_config(config)

    special_tokens = list(config.get("special_tokens") or ["<|endoftext|>"])
    eos_token = config.get("eos_token") or special_tokens[0]
    if eos_token not in special_tokens:
        special_tokens.insert(0, eos_token)
    vocab_size = int(config.get("vocab_size") or 32000)
    max_bytes = config.get("train_max_bytes")
    path = train_bpe(iter_texts(parts, max_bytes), vocab_size, special_tokens, work_dir / "tokenizer" / "tokenizer.json")
    return {"name": "train-bpe", "format": "tokenizer-json", "files": [str(path)], "eos_token": eos_token,
            "num_threads": int(config.get("num_threads") or 1)}


def iter_texts(parts: list[str], max_bytes: int | None = None):
    """Yield the documents' texts in canonical order, stopping after `max_bytes` of UTF-8 when set."""
    seen_bytes = 0
    for part in parts:
        for batch in pq.ParquetFile(part).iter_batches(batch_size=ENCODE_BATCH_DOCUMENTS, columns=["text"]):
            for text in batch.column("text").to_pylist():
                text = text or ""
                yield text
                seen_bytes += len(text.encode("utf-8"))
                if max_bytes is not None and seen_bytes >= max_bytes:
                    return


def verify_tiktoken_ids(spec: dict, tokenizer: Tokenizer, parts: list[str]) -> tuple[dict, Tokenizer]:
    """Compare tiktoken's ids with `tokenizers`' on the first documents; on a difference use `tokenizers`."""
    texts = []
    for text in iter_texts(parts):
        texts.append(text)
        if len(texts) == VERIFY_DOCUMENTS:
            break
    reference = load_tokenizer({**spec, "encoder": "tokenizers"})
    if tokenizer.encode_batch(texts) == reference.encode_batch(texts):
        return spec, tokenizer
    log.warning("tiktoken's ids differ from tokenizers' for %s; encoding with tokenizers", spec["files"][0])
    spec = {**spec, "encoder": "tokenizers"}
    return spec, reference


def part_key(part: str, tokenizer_sha256: str, spec: dict) -> str:
    """Return the cache key of one part's encoding: its path, size, mtime and the tokenizer."""
    stat = os.stat(part)
    fields = [os.path.abspath(part), stat.st_size, stat.st_mtime_ns, tokenizer_sha256, spec.get("eos_token"),
              spec.get("encoder")]
    return hashlib.sha256(json.dumps(fields).encode("utf-8")).hexdigest()[:20]


def encode_parts(parts: list[str], spec: dict, encoded_dir: Path, num_threads: int, max_workers: int | None) -> list[dict]:
    """Encode every part in a Ray task of its own, at most `max_workers` at a time, and return results in part order."""
    import ray

    encoded_dir.mkdir(parents=True, exist_ok=True)
    tokenizer_sha256 = files_sha256(spec["files"])
    task = ray.remote(encode_part).options(num_cpus=num_threads)
    limit = max_workers or len(parts) or 1

    results: dict = {}
    in_flight: dict = {}
    for number, part in enumerate(parts):
        if len(in_flight) >= limit:
            collect_finished(in_flight, results, wait_for=1)
        prefix = str(encoded_dir / part_key(part, tokenizer_sha256, spec))
        in_flight[task.remote(part, spec, prefix)] = number
    collect_finished(in_flight, results, wait_for=len(in_flight))
    return [results[number] for number in range(len(parts))]


def collect_finished(in_flight: dict, results: dict, wait_for: int) -> None:
    """Move at least `wait_for` finished tasks from `in_flight` (ref -> part number) into `results`."""
    import ray

    done = 0
    while done < wait_for:
        ready, _ = ray.wait(list(in_flight), num_returns=1)
        for ref in ready:
            number = in_flight.pop(ref)
            results[number] = ray.get(ref)
            log.debug("encoded part %d: %s", number, results[number]["part"])
            done += 1


def encode_part(part: str, spec: dict, prefix: str) -> dict:
    """Encode one Parquet part into `<prefix>.tokens` (ids, EOS after each document) and `<prefix>.docs.parquet`.

    Returns the file names and counts; a finished part (its `<prefix>.json` exists) is not
    encoded again.
    """
    done_path = Path(f"{prefix}.json")
    if done_path.exists():
        return json.loads(done_path.read_text(encoding="utf-8"))

    tokenizer = load_tokenizer(spec)
    dtype = tokenizer.dtype
    tokens_path, docs_path = Path(f"{prefix}.tokens"), Path(f"{prefix}.docs.parquet")
    ids, lengths, bytes_in = [], [], 0
    with open(f"{tokens_path}.tmp", "wb") as handle:
        parquet = pq.ParquetFile(part)
        for batch in parquet.iter_batches(batch_size=ENCODE_BATCH_DOCUMENTS, columns=["id", "text"]):
            texts = [text or "" for text in batch.column("text").to_pylist()]
            bytes_in += int(pc.sum(pc.binary_length(batch.column("text"))).as_py() or 0)
            flat, batch_lengths = tokenizer.encode_flat(texts, tokenizer.eos_id)
            lengths.extend(batch_lengths)
            write_ids(handle, flat, dtype, part)
            ids.extend(str(doc_id) for doc_id in batch.column("id").to_pylist())
    os.replace(f"{tokens_path}.tmp", tokens_path)

    table = pa.table({"id": pa.array(ids, pa.string()), "tokens": pa.array(lengths, pa.int64())})
    pq.write_table(table, f"{docs_path}.tmp")
    os.replace(f"{docs_path}.tmp", docs_path)

    result = {"part": part, "tokens_file": str(tokens_path), "documents_file": str(docs_path), "dtype": dtype.name,
              "documents": len(ids), "tokens": int(sum(lengths)), "bytes_in": bytes_in}
    done_path.write_text(json.dumps(result), encoding="utf-8")
    return result


def write_ids(handle, flat: np.ndarray, dtype: np.dtype, part: str) -> None:
    """Write ids as `dtype`, raising instead of truncating an id that does not fit."""
    array = np.asarray(flat, dtype=np.int64)
    if array.size and int(array.max()) > np.iinfo(dtype).max:
        raise ValueError(f"{part}: id {int(array.max())} does not fit in {dtype}; the vocabulary size is wrong")
    array.astype(dtype.newbyteorder("<")).tofile(handle)


def write_shards(encoded: list[dict], out_dir: Path, config: dict, tokenizer: Tokenizer) -> dict:
    """Order the encoded documents, write the shards, the document table and the tokenizer, then manifest.json."""
    seed = int(config.get("seed", 0))
    shuffle = bool(config.get("shuffle", True))
    val_fraction = float(config.get("val_fraction", 0.0))
    shard_tokens = int(config.get("shard_tokens", 100_000_000))

    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / "manifest.json"
    manifest_path.unlink(missing_ok=True)  # a folder without a manifest is never mistaken for finished output

    documents = load_document_table(encoded)
    in_val = val_mask(documents["id"], val_fraction, seed)
    token_files = [np.memmap(part["tokens_file"], dtype=np.dtype(part["dtype"]).newbyteorder("<"), mode="r")
                   if part["tokens"] else np.empty(0, dtype=tokenizer.dtype) for part in encoded]

    writers = {}
    for stream, split in enumerate(("train", "val")):
        members = np.flatnonzero(in_val if split == "val" else ~in_val)
        writer = ShardWriter(out_dir, split, shard_tokens, tokenizer.dtype)
        for row in members[document_order(len(members), shuffle, seed, stream)]:
            start, length = documents["start"][row], documents["tokens"][row]
            tokens = token_files[documents["part"][row]][start : start + length]
            writer.add_document(documents["id"][row], np.asarray(tokens, dtype=tokenizer.dtype))
        writer.close()
        writers[split] = writer

    shards = writers["train"].shards + writers["val"].shards
    write_document_table(out_dir, writers["train"].pieces + writers["val"].pieces)
    tokenizer_entry = copy_tokenizer_files(tokenizer, out_dir)
    remove_stale_shards(out_dir, {shard["file"] for shard in shards} | {shard["index"] for shard in shards})

    manifest = {
        "format": MANIFEST_FORMAT,
        "dtype": tokenizer.dtype.name,
        "eos_id": tokenizer.eos_id,
        "vocab_size": tokenizer.vocab_size,
        "tokenizer": tokenizer_entry,
        "shards": shards,
        "train_tokens": writers["train"].tokens,
        "val_tokens": writers["val"].tokens,
        "documents": len(documents["id"]),
        "train_documents": int((~in_val).sum()),
        "val_documents": int(in_val.sum()),
        "documents_file": "documents.parquet",
        "shard_tokens": shard_tokens,
        "shuffle": shuffle,
        "seed": seed,
        "val_fraction": val_fraction,
    }
    write_json_atomically(manifest_path, manifest)
    return manifest


def load_document_table(encoded: list[dict]) -> dict:
    """Return every document's id, token count, part number and start offset in its part's ids."""
    ids, lengths, part_numbers = [], [], []
    for number, part in enumerate(encoded):
        table = pq.read_table(part["documents_file"])
        ids.extend(table.column("id").to_pylist())
        lengths.append(table.column("tokens").to_numpy())
        part_numbers.append(np.full(table.num_rows, number, dtype=np.int64))
    lengths_array = np.concatenate(lengths) if lengths else np.empty(0, dtype=np.int64)
    starts = []
    for number, part in enumerate(encoded):
        part_lengths = lengths[number]
        starts.append(np.concatenate([[0], np.cumsum(part_lengths)[:-1]]).astype(np.int64) if len(part_lengths) else part_lengths)
    return {
        "id": ids,
        "tokens": lengths_array,
        "part": np.concatenate(part_numbers) if part_numbers else np.empty(0, dtype=np.int64),
        "start": np.concatenate(starts) if starts else np.empty(0, dtype=np.int64),
    }


def write_document_table(out_dir: Path, pieces: list[dict]) -> None:
    """Write documents.parquet: one row per document piece, in shard order then offset order."""
    table = pa.table({
        "shard": pa.array([piece["shard"] for piece in pieces], pa.string()),
        "offset": pa.array([piece["offset"] for piece in pieces], pa.int64()),
        "tokens": pa.array([piece["tokens"] for piece in pieces], pa.int64()),
        "id": pa.array([piece["id"] for piece in pieces], pa.string()),
        "split": pa.array([piece["split"] for piece in pieces], pa.string()),
        "continued": pa.array([piece["continued"] for piece in pieces], pa.bool_()),
    })
    tmp_path = out_dir / ".documents.parquet.tmp"
    pq.write_table(table, tmp_path)
    os.replace(tmp_path, out_dir / "documents.parquet")


def copy_tokenizer_files(tokenizer: Tokenizer, out_dir: Path) -> dict:
    """Copy the tokenizer files into tokens/tokenizer/ and return the manifest's tokenizer entry."""
    folder = out_dir / "tokenizer"
    folder.mkdir(exist_ok=True)
    names = []
    for source in tokenizer.files:
        name = Path(source).name
        tmp_path = folder / f".{name}.tmp"
        shutil.copyfile(source, tmp_path)
        os.replace(tmp_path, folder / name)
        names.append(f"tokenizer/{name}")
    if len(set(names)) != len(names):
        raise ValueError(f"tokenizer files {tokenizer.files} share a file name; rename one of them")
    return {
        "name": tokenizer.name,
        "format": tokenizer.format,
        "sha256": files_sha256([out_dir / name for name in names]),
        "files": names,
        "eos_token": tokenizer.eos_token,
        "encoder": tokenizer.encoder,
    }


def remove_stale_shards(out_dir: Path, keep: set[str]) -> None:
    """Delete shard and index files that an earlier run left and this one did not write."""
    for path in out_dir.iterdir():
        is_shard_file = path.name.endswith(".bin") or path.name.endswith(".idx.npy")
        if is_shard_file and path.name.startswith(("train_", "val_")) and path.name not in keep:
            path.unlink()


def write_json_atomically(path: Path, data: dict) -> None:
    tmp_path = path.with_name(f".{path.name}.tmp")
    tmp_path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp_path, path)
