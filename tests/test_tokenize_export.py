"""`export-tokens --format megatron`, read back with a reader written from the published format."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import main as cli_main
from pipeline.tokenize import load_tokenizer, tokenize_phase
from test_tokenize_phase import GPT2_CONFIG, document_tokens, write_parts

pytestmark = pytest.mark.ray

# Megatron-LM's DType codes for the dtypes this export writes.
CODE_TO_DTYPE = {4: np.dtype("<i4"), 8: np.dtype("<u2")}


def read_megatron_index(path: Path) -> dict:
    """Parse an MMIDIDX index: 9-byte magic, <Q version, <B dtype code, <Q sequences, <Q documents,
    then int32 sequence lengths, int64 sequence byte pointers and int64 document indices."""
    data = path.read_bytes()
    magic = data[:9]
    version, code, sequence_count, document_count = struct.unpack_from("<QBQQ", data, 9)
    offset = 9 + 8 + 1 + 8 + 8
    lengths = np.frombuffer(data, dtype="<i4", count=sequence_count, offset=offset)
    offset += lengths.nbytes
    pointers = np.frombuffer(data, dtype="<i8", count=sequence_count, offset=offset)
    offset += pointers.nbytes
    document_indices = np.frombuffer(data, dtype="<i8", count=document_count, offset=offset)
    offset += document_indices.nbytes
    return {"magic": magic, "version": version, "code": code, "lengths": lengths, "pointers": pointers,
            "document_indices": document_indices, "trailing_bytes": len(data) - offset}


@pytest.fixture(scope="module")
def exported_run(tmp_path_factory, shared_data, ray_cluster):
    import gzip

    folder = tmp_path_factory.mktemp("export_run")
    with gzip.open(shared_data / "cc-text" / "cc-main-2019-30-697-docs.jsonl.gz", "rt", encoding="utf-8") as handle:
        documents = [json.loads(line) for line in handle][:80]
    documents = [{"id": doc["id"], "text": doc["text"]} for doc in documents if doc["text"]]
    parts = write_parts(folder / "documents", documents, 2)
    config = {**GPT2_CONFIG, "shard_tokens": 10_000, "val_fraction": 0.2}
    tokenize_phase(parts, str(folder / "run" / "tokens"), config, str(folder / "work"))
    prefix = folder / "megatron" / "cc"
    assert cli_main(["export-tokens", str(folder / "run"), "--format", "megatron", "-o", str(prefix)]) == 0
    return folder / "run", prefix, {doc["id"]: doc["text"] for doc in documents}


@pytest.mark.parametrize("split", ["train", "val"])
def test_megatron_index_header(exported_run, split):
    _, prefix, _ = exported_run
    index = read_megatron_index(Path(f"{prefix}_{split}.idx"))
    assert index["magic"] == b"MMIDIDX\x00\x00"
    assert index["version"] == 1
    assert index["code"] == 8  # uint16
    assert index["trailing_bytes"] == 0


@pytest.mark.parametrize("split", ["train", "val"])
def test_megatron_sequences_are_documents(exported_run, split):
    run_dir, prefix, texts = exported_run
    tokens_dir = run_dir / "tokens"
    index = read_megatron_index(Path(f"{prefix}_{split}.idx"))
    data = np.memmap(f"{prefix}_{split}.bin", dtype=CODE_TO_DTYPE[index["code"]], mode="r")
    tokenizer = load_tokenizer(tokens_dir)
    expected = document_tokens(tokens_dir, split)  # in shard order

    assert len(index["lengths"]) == len(expected)
    assert index["document_indices"].tolist() == list(range(len(expected) + 1))
    assert index["pointers"][0] == 0
    assert np.array_equal(np.diff(index["pointers"]), index["lengths"][:-1].astype(np.int64) * 2)
    assert data.size == int(index["lengths"].sum())
    for (doc_id, ids), pointer, length in zip(expected.items(), index["pointers"], index["lengths"]):
        sequence = data[pointer // 2 : pointer // 2 + length]
        assert np.array_equal(sequence, ids)
        assert sequence[-1] == tokenizer.eos_id
        assert tokenizer.decode(sequence[:-1]) == texts[doc_id]


def test_megatron_bin_equals_shards(exported_run):
    run_dir, prefix, _ = exported_run
    manifest = json.loads((run_dir / "tokens" / "manifest.json").read_text())
    shards = [np.fromfile(run_dir / "tokens" / shard["file"], dtype="<u2") for shard in manifest["shards"]
              if shard["split"] == "train"]
    assert np.array_equal(np.fromfile(f"{prefix}_train.bin", dtype="<u2"), np.concatenate(shards))


def test_megatron_uint32_shards_export_as_int32(tmp_path, shared_data, ray_cluster):
    from test_tokenize_tokenizers import reversed_id_tokenizer_json

    tokenizer_file = reversed_id_tokenizer_json(shared_data / "tokenizer", tmp_path / "reversed.json")
    text = (shared_data / "tokenizer" / "german.txt").read_text(encoding="utf-8")
    parts = write_parts(tmp_path / "documents", [{"id": "de", "text": text}], 1)
    config = {**GPT2_CONFIG, "tokenizer": "hf", "tokenizer_file": str(tokenizer_file), "val_fraction": 0.0}
    tokenize_phase(parts, str(tmp_path / "run" / "tokens"), config, str(tmp_path / "work"))

    assert cli_main(["export-tokens", str(tmp_path / "run"), "--split", "train"]) == 0
    prefix = tmp_path / "run" / "export" / "megatron" / "tokens_train"
    index = read_megatron_index(Path(f"{prefix}.idx"))
    data = np.fromfile(f"{prefix}.bin", dtype=CODE_TO_DTYPE[index["code"]])
    shard = np.fromfile(tmp_path / "run" / "tokens" / "train_000000.bin", dtype="<u4")
    assert index["code"] == 4  # int32: Megatron has no uint32
    assert np.array_equal(data.astype(np.int64), shard.astype(np.int64))
    assert int(data.max()) >= 2**16


def test_export_without_manifest_fails(tmp_path, capsys):
    assert cli_main(["export-tokens", str(tmp_path)]) == 2
    assert "manifest.json not found" in capsys.readouterr().err
