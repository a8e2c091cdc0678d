"""The tokenize phase on real crawl text: shards, index, document table, split, shuffle, reruns."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.tokenize import load_tokenizer, tokenize_phase

pytestmark = pytest.mark.ray

GPT2_CONFIG = {"tokenizer": "gpt2", "shard_tokens": 50_000, "val_fraction": 0.1, "seed": 7, "shuffle": True}


def write_parts(folder: Path, documents: list[dict], count: int) -> list[str]:
    """Write the documents as `count` Parquet parts, in canonical order (part by part)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    size = -(-len(documents) // count)
    for number in range(count):
        chunk = documents[number * size : (number + 1) * size]
        path = folder / f"part-{number}.parquet"
        pq.write_table(pa.table({"id": [d["id"] for d in chunk], "text": [d["text"] for d in chunk]}), path)
        paths.append(str(path))
    return paths


def read_split(tokens_dir: Path, split: str) -> tuple[np.ndarray, list[dict]]:
    """Return a split's ids (its shards concatenated) and its document pieces in shard order."""
    manifest = json.loads((tokens_dir / "manifest.json").read_text())
    shards = [shard for shard in manifest["shards"] if shard["split"] == split]
    arrays = [np.memmap(tokens_dir / shard["file"], dtype=manifest["dtype"], mode="r") for shard in shards]
    pieces = pq.read_table(tokens_dir / "documents.parquet").to_pylist()
    pieces = [piece for piece in pieces if piece["split"] == split]
    ids = np.concatenate(arrays) if arrays else np.empty(0, dtype=manifest["dtype"])
    return ids, pieces


@pytest.fixture(scope="module")
def cc_documents(shared_data) -> list[dict]:
    path = shared_data / "cc-text" / "cc-main-2019-30-697-docs.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    return [{"id": row["id"], "text": row["text"]} for row in rows if row["text"]][:300]


@pytest.fixture(scope="module")
def gpt2_run(tmp_path_factory, cc_documents, ray_cluster):
    folder = tmp_path_factory.mktemp("gpt2_run")
    parts = write_parts(folder / "documents", cc_documents, 3)
    stats = tokenize_phase(parts, str(folder / "tokens"), GPT2_CONFIG, str(folder / "work"))
    return folder, stats


def test_phase_shards_decode_to_documents(gpt2_run, cc_documents):
    folder, _ = gpt2_run
    tokens_dir = folder / "tokens"
    tokenizer = load_tokenizer(tokens_dir)
    texts = {doc["id"]: doc["text"] for doc in cc_documents}

    seen = []
    for split in ("train", "val"):
        ids, pieces = read_split(tokens_dir, split)
        starts = [piece for piece in pieces if not piece["continued"]]
        expected = []
        for piece in starts:
            expected.extend(tokenizer.encode_batch([texts[piece["id"]]])[0])
            expected.append(tokenizer.eos_id)
        assert ids.tolist() == expected
        seen.extend(piece["id"] for piece in starts)
    assert sorted(seen) == sorted(texts)


def test_phase_manifest_fields(gpt2_run):
    folder, stats = gpt2_run
    manifest = json.loads((folder / "tokens" / "manifest.json").read_text())
    assert manifest["format"] == 1
    assert manifest["dtype"] == "uint16"
    assert manifest["eos_id"] == 50256
    assert manifest["vocab_size"] == 50257
    assert manifest["tokenizer"]["name"] == "gpt2"
    assert manifest["tokenizer"]["files"] == ["tokenizer/encoder.json", "tokenizer/vocab.bpe"]
    assert manifest["train_tokens"] == stats["train_tokens"]
    assert manifest["val_tokens"] == stats["val_tokens"]
    assert manifest["documents"] == 300
    assert sum(shard["tokens"] for shard in manifest["shards"]) == stats["tokens"]
    assert sum(shard["documents"] for shard in manifest["shards"]) == 300
