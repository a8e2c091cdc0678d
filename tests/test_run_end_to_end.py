"""`pipeline run` over the real crawl files on a real Ray local cluster, checked end to end."""

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tokenizers import Tokenizer
from tokenizers.models import BPE
from tokenizers.decoders import ByteLevel as ByteLevelDecoder

from pipeline.config import load_config
from pipeline.engine import run_pipeline

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, shared_data, ray_cluster):
    out = tmp_path_factory.mktemp("run") / "run"
    run_pipeline([str(shared_data / "warc")], str(out), load_config())
    return out


def read_dir(folder: Path) -> pa.Table:
    tables = [pq.read_table(path) for path in sorted(folder.glob("*.parquet"))]
    return pa.concat_tables(tables, promote_options="default")


def reference_tokenizer(shared_data) -> Tokenizer:
    folder = shared_data / "tokenizer"
    tokenizer = Tokenizer(BPE.from_file(str(folder / "gpt2_vocab.json"), str(folder / "gpt2_merges.txt")))
    tokenizer.decoder = ByteLevelDecoder()
    return tokenizer


def test_stage_counts_add_up(run_dir):
    stats = json.loads((run_dir / "stats.json").read_text())
    stages = stats["stages"]
    assert [stage["stage"] for stage in stages] == [
        "read", "extract", "langid", "gopher_quality", "gopher_repetition", "c4_quality", "fineweb_quality",
        "classifiers", "pii", "dedup"]
    for stage in stages:
        assert stage["documents_in"] - stage["documents_out"] == sum(stage["dropped"].values()), stage["stage"]
    for previous, current in zip(stages, stages[1:]):
        assert current["documents_in"] == previous["documents_out"], current["stage"]
        assert current["bytes_in"] == previous["bytes_out"], current["stage"]
    assert stages[0]["documents_in"] == sum(info["records"] for info in stats["files"].values())
    assert stats["run"]["documents_kept"] == stages[-1]["documents_out"]


def test_read_counts_match_the_files(run_dir):
    stats = json.loads((run_dir / "stats.json").read_text())
    files = {Path(path).name: info for path, info in stats["files"].items()}
    assert len(files) == 10
    assert files["cc-main-2020-34-sample.warc.gz"]["records"] == 50
    assert files["cc-main-2020-34-sample.warc.gz"]["documents"] == 16
    assert files["cc-main-2014-35-sample.warc"]["truncated"] == 2
    assert files["archive-org-2008.warc.gz"]["skipped"]["http_status_404"] == 40


def test_every_kept_document_once(run_dir):
    documents = read_dir(run_dir / "documents")
    ids = documents.column("id").to_pylist()
    assert len(ids) == len(set(ids))
    stats = json.loads((run_dir / "stats.json").read_text())
    assert len(ids) == stats["run"]["documents_kept"]
    for column in ("url", "date", "source", "text", "language", "language_score",
                   "pii_email", "pii_phone", "pii_ip_address", "dedup_cluster", "gopher_word_count"):
        assert column in documents.column_names


def test_rejected_rows_match_drop_counts(run_dir):
    rejected = read_dir(run_dir / "rejected")
    stats = json.loads((run_dir / "stats.json").read_text())
    counted = Counter(zip(rejected.column("stage").to_pylist(), rejected.column("reason").to_pylist()))
    for stage in stats["stages"]:
        for reason, count in stage["dropped"].items():
            if reason.startswith("record_"):
                continue  # request, metadata and warcinfo records are counted, not stored
            assert counted[(stage["stage"], reason)] == count, (stage["stage"], reason)


def test_exact_duplicates_removed(run_dir):
    documents = read_dir(run_dir / "documents")
    hashes = documents.column("text_hash").to_pylist()
    assert len(hashes) == len(set(hashes))
    rejected = read_dir(run_dir / "rejected")
    duplicates = rejected.filter(pa.compute.equal(rejected.column("reason"), "exact_duplicate"))
    kept_hashes = set(hashes)
    assert duplicates.num_rows > 0
    assert all(value in kept_hashes for value in duplicates.column("text_hash").to_pylist())


def test_shards_decode_to_kept_documents(run_dir, shared_data):
    manifest = json.loads((run_dir / "tokens" / "manifest.json").read_text())
    order = pq.read_table(run_dir / "tokens" / "documents.parquet").to_pylist()
    documents = read_dir(run_dir / "documents")
    texts = dict(zip(documents.column("id").to_pylist(), documents.column("text").to_pylist()))
    assert sorted(row["id"] for row in order) == sorted(texts)

    tokenizer = reference_tokenizer(shared_data)
    eos = manifest["eos_id"]
    assert manifest["dtype"] == "uint16"
    total = 0
    for shard in manifest["shards"]:
        tokens = np.memmap(run_dir / "tokens" / shard["file"], dtype=np.uint16, mode="r")
        assert len(tokens) == shard["tokens"]
        total += len(tokens)
        rows = [row for row in order if row["shard"] == shard["file"]]
        eos_positions = np.flatnonzero(tokens == eos)
        assert len(eos_positions) == len(rows)
        start = 0
        for row, end in zip(rows, eos_positions):
            assert tokenizer.decode(tokens[start:end].tolist(), skip_special_tokens=False) == texts[row["id"]]
            start = end + 1
    assert total == manifest["train_tokens"] + manifest["val_tokens"]


def test_rerun_resumes_without_changes(run_dir, shared_data):
    before = {path: path.read_bytes() for path in sorted(run_dir.rglob("*.parquet")) if "_state" not in path.parts}
    markers = {path: path.stat().st_mtime_ns for path in (run_dir / "_state" / "process").glob("*.done")}
    run_pipeline([str(shared_data / "warc")], str(run_dir), load_config())
    after = {path: path.read_bytes() for path in sorted(run_dir.rglob("*.parquet")) if "_state" not in path.parts}
    assert after == before
    assert {path: path.stat().st_mtime_ns for path in markers} == markers


def test_cli_run_and_stats_json(tmp_path, shared_data, ray_cluster):
    address = ray_cluster.get_runtime_context().gcs_address
    out = tmp_path / "cli-run"
    command = [sys.executable, "-m", "pipeline", "run", str(shared_data / "warc" / "wget-crawl-en-0000.warc.gz"),
               "-o", str(out), "--address", address]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "gopher_quality" in result.stdout
    stats = subprocess.run([sys.executable, "-m", "pipeline", "stats", str(out), "--json"], cwd=REPO,
                           capture_output=True, text=True, timeout=120)
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["files"][str((shared_data / "warc" / "wget-crawl-en-0000.warc.gz").resolve())]["records"] == 48
