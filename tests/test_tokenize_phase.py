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


def document_tokens(tokens_dir: Path, split: str) -> dict[str, np.ndarray]:
    """Return each document's ids (EOS included), joining the pieces of a document cut by a shard boundary."""
    manifest = json.loads((tokens_dir / "manifest.json").read_text())
    documents: dict[str, list] = {}
    for piece in pq.read_table(tokens_dir / "documents.parquet").to_pylist():
        if piece["split"] != split:
            continue
        shard = np.memmap(tokens_dir / piece["shard"], dtype=manifest["dtype"], mode="r")
        documents.setdefault(piece["id"], []).append(shard[piece["offset"] : piece["offset"] + piece["tokens"]])
    return {doc_id: np.concatenate(arrays) for doc_id, arrays in documents.items()}


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
        for doc_id, ids_of_document in document_tokens(tokens_dir, split).items():
            assert tokenizer.decode(ids_of_document[:-1]) == texts[doc_id]
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


def test_phase_index_marks_document_starts(gpt2_run):
    folder, _ = gpt2_run
    tokens_dir = folder / "tokens"
    manifest = json.loads((tokens_dir / "manifest.json").read_text())
    pieces = pq.read_table(tokens_dir / "documents.parquet").to_pylist()

    for shard in manifest["shards"]:
        offsets = np.load(tokens_dir / shard["index"])
        rows = [piece for piece in pieces if piece["shard"] == shard["file"]]
        assert offsets.dtype == np.int64
        assert offsets.tolist() == [row["offset"] for row in rows]
        assert offsets[0] == 0
        assert rows[0]["continued"] == shard["continues_document"]
        assert sum(row["tokens"] for row in rows) == shard["tokens"]
        tokens = np.memmap(tokens_dir / shard["file"], dtype=manifest["dtype"], mode="r")
        ends = [row["offset"] + row["tokens"] - 1 for row in rows[:-1]]
        assert all(tokens[end] == manifest["eos_id"] for end in ends)


def test_phase_shards_cut_at_shard_tokens(gpt2_run):
    folder, _ = gpt2_run
    manifest = json.loads((folder / "tokens" / "manifest.json").read_text())
    for split in ("train", "val"):
        sizes = [shard["tokens"] for shard in manifest["shards"] if shard["split"] == split]
        assert all(size == GPT2_CONFIG["shard_tokens"] for size in sizes[:-1])
        assert 0 < sizes[-1] <= GPT2_CONFIG["shard_tokens"]


def test_phase_split_is_seeded_hash_of_id(gpt2_run, tmp_path, cc_documents, ray_cluster):
    folder, _ = gpt2_run
    pieces = pq.read_table(folder / "tokens" / "documents.parquet").to_pylist()
    val = {piece["id"] for piece in pieces if piece["split"] == "val"}
    assert 10 <= len(val) <= 60  # val_fraction 0.1 of 300 documents

    parts = write_parts(tmp_path / "documents", list(reversed(cc_documents)), 2)
    tokenize_phase(parts, str(tmp_path / "tokens"), GPT2_CONFIG, str(tmp_path / "work"))
    other = pq.read_table(tmp_path / "tokens" / "documents.parquet").to_pylist()
    assert {piece["id"] for piece in other if piece["split"] == "val"} == val


def test_phase_rejects_changed_tokenizer_file(gpt2_run, tmp_path):
    folder, _ = gpt2_run
    copy = tmp_path / "tokens"
    copy.mkdir()
    manifest = json.loads((folder / "tokens" / "manifest.json").read_text())
    (copy / "tokenizer").mkdir()
    for name in manifest["tokenizer"]["files"]:
        (copy / name).write_bytes((folder / "tokens" / name).read_bytes())
    (copy / "tokenizer" / "vocab.bpe").write_text("#version: 0.2\nĠ t\n", encoding="utf-8")
    (copy / "manifest.json").write_text(json.dumps(manifest))

    with pytest.raises(ValueError, match="another tokenizer"):
        load_tokenizer(copy)


def run_phase(tmp_path: Path, documents: list[dict], config: dict, parts: int = 1) -> Path:
    paths = write_parts(tmp_path / "documents", documents, parts)
    tokenize_phase(paths, str(tmp_path / "tokens"), config, str(tmp_path / "work"))
    return tmp_path / "tokens"


def test_phase_splits_long_document(tmp_path, cc_documents, ray_cluster):
    longest = max(cc_documents, key=lambda doc: len(doc["text"]))
    documents = [{"id": "short", "text": "A short first document."}, longest]
    config = {**GPT2_CONFIG, "shard_tokens": 1000, "val_fraction": 0.0, "shuffle": False}
    tokens_dir = run_phase(tmp_path, documents, config)
    tokenizer = load_tokenizer(tokens_dir)

    ids, pieces = read_split(tokens_dir, "train")
    long_pieces = [piece for piece in pieces if piece["id"] == longest["id"]]
    expected = tokenizer.encode_batch([longest["text"]])[0] + [tokenizer.eos_id]
    assert len(expected) > 3 * config["shard_tokens"]
    assert len(long_pieces) == -(-(len(expected) + 6) // 1000)  # "A short first document." is 5 tokens + EOS
    assert [piece["continued"] for piece in long_pieces] == [False] + [True] * (len(long_pieces) - 1)
    assert all(piece["offset"] == 0 for piece in long_pieces[1:])
    assert sum(piece["tokens"] for piece in long_pieces) == len(expected)
    assert tokenizer.decode(ids[6:-1]) == longest["text"]


def test_phase_terminates_with_tiny_shards(tmp_path, ray_cluster):
    documents = [{"id": f"doc-{n}", "text": f"Document number {n} has some words in it."} for n in range(5)]
    config = {**GPT2_CONFIG, "shard_tokens": 1, "val_fraction": 0.0}
    tokens_dir = run_phase(tmp_path, documents, config)
    manifest = json.loads((tokens_dir / "manifest.json").read_text())
    assert all(shard["tokens"] == 1 for shard in manifest["shards"])
    assert len(manifest["shards"]) == manifest["train_tokens"]


def test_phase_literal_eos_string_is_not_eos(tmp_path, ray_cluster):
    documents = [
        {"id": "a", "text": "Before <|endoftext|> after."},
        {"id": "b", "text": "<|endoftext|>"},
        {"id": "c", "text": "Plain text."},
    ]
    config = {**GPT2_CONFIG, "val_fraction": 0.0}
    tokens_dir = run_phase(tmp_path, documents, config)
    tokenizer = load_tokenizer(tokens_dir)

    ids, _ = read_split(tokens_dir, "train")
    assert int((ids == tokenizer.eos_id).sum()) == 3
    for doc in documents:
        ids_of_document = document_tokens(tokens_dir, "train")[doc["id"]]
        assert ids_of_document[-1] == tokenizer.eos_id
        assert tokenizer.decode(ids_of_document[:-1]) == doc["text"]


def shard_contents(tokens_dir: Path) -> dict[str, bytes]:
    contents = {}
    for path in sorted(tokens_dir.rglob("*")):
        if path.is_file() and path.suffix != ".parquet":
            contents[str(path.relative_to(tokens_dir))] = path.read_bytes()
    contents["documents"] = pq.read_table(tokens_dir / "documents.parquet").to_pylist()
    return contents


def test_phase_same_output_any_worker_count(tmp_path, cc_documents, ray_cluster):
    documents = cc_documents[:120]
    outputs = []
    for name, workers in (("one", 1), ("two", 2), ("rerun", 2)):
        config = {**GPT2_CONFIG, "shard_tokens": 20_000, "max_workers": workers}
        outputs.append(shard_contents(run_phase(tmp_path / name, documents, config, parts=4)))
    assert outputs[0] == outputs[1]
    assert outputs[1] == outputs[2]


def test_phase_rerun_in_place_is_identical(tmp_path, cc_documents, ray_cluster):
    """A rerun reuses the encoded parts in work_dir and rewrites tokens/ with the same bytes."""
    parts = write_parts(tmp_path / "documents", cc_documents[:60], 2)
    config = {**GPT2_CONFIG, "shard_tokens": 5_000}
    tokens_dir = tmp_path / "tokens"

    tokenize_phase(parts, str(tokens_dir), config, str(tmp_path / "work"))
    first = shard_contents(tokens_dir)
    (tokens_dir / "train_000999.bin").write_bytes(b"left by an older run")
    tokenize_phase(parts, str(tokens_dir), config, str(tmp_path / "work"))
    second = shard_contents(tokens_dir)

    assert first == second
    assert len(list((tmp_path / "work" / "encoded").glob("*.tokens"))) == 2


def test_phase_writes_uint32_for_large_vocabulary(tmp_path, shared_data, cc_documents, ray_cluster):
    from test_tokenize_tokenizers import reversed_id_tokenizer_json

    tokenizer_file = reversed_id_tokenizer_json(shared_data / "tokenizer", tmp_path / "reversed.json")
    config = {**GPT2_CONFIG, "tokenizer": "hf", "tokenizer_file": str(tokenizer_file), "val_fraction": 0.0,
              "shuffle": False}
    documents = cc_documents[:20]
    tokens_dir = run_phase(tmp_path, documents, config)
    tokenizer = load_tokenizer(tokens_dir)

    manifest = json.loads((tokens_dir / "manifest.json").read_text())
    ids, _ = read_split(tokens_dir, "train")
    expected = []
    for ids_of_document in tokenizer.encode_batch([doc["text"] for doc in documents]):
        expected.extend(ids_of_document)
        expected.append(tokenizer.eos_id)
    assert manifest["dtype"] == "uint32"
    assert manifest["vocab_size"] == 70_000
    assert ids.dtype == np.uint32
    assert int(ids.max()) >= 2**16
    assert ids.tolist() == expected


def test_write_ids_rejects_id_beyond_dtype(tmp_path):
    from pipeline.tokenize.phase import write_ids

    with open(tmp_path / "ids.bin", "wb") as handle:
        with pytest.raises(ValueError, match="does not fit in uint16"):
            write_ids(handle, [1, 70_000], np.dtype(np.uint16), "part.parquet")


def test_phase_trains_bpe_on_kept_text(tmp_path, cc_documents, ray_cluster):
    documents = cc_documents[:100]
    config = {**GPT2_CONFIG, "tokenizer": "train-bpe", "vocab_size": 1000, "special_tokens": ["<|endoftext|>"]}
    tokens_dir = run_phase(tmp_path, documents, config, parts=2)
    tokenizer = load_tokenizer(tokens_dir)

    manifest = json.loads((tokens_dir / "manifest.json").read_text())
    assert manifest["tokenizer"]["name"] == "train-bpe"
    assert manifest["tokenizer"]["files"] == ["tokenizer/tokenizer.json"]
    assert manifest["tokenizer"]["encoder"] == "tiktoken"
    assert manifest["eos_id"] == 0
    assert manifest["vocab_size"] == 1000
    texts = {doc["id"]: doc["text"] for doc in documents}
    decoded = {doc_id: tokenizer.decode(ids[:-1]) for doc_id, ids in document_tokens(tokens_dir, "train").items()}
    assert len(decoded) == manifest["train_documents"]
    assert all(decoded[doc_id] == texts[doc_id] for doc_id in decoded)
