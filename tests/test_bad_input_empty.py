"""Files and batches where no row survives: no empty Parquet files, no lost columns, no crash."""

import json

import pyarrow.parquet as pq

from pipeline.config import load_config
from pipeline.process import process_file

WARC = "warc/cc-main-2020-34-sample.warc.gz"


def run(tmp_path, path, config):
    out = tmp_path / "out"
    out.mkdir()
    result = process_file(str(path), "k", config, str(out))
    return result, out


def test_every_row_filtered_writes_only_rejected(tmp_path, shared_data):
    config = load_config()
    config["extract"]["min_text_chars"] = 10**9
    result, out = run(tmp_path, shared_data / WARC, config)
    assert result["documents_kept"] == 0
    assert not (out / "k.kept.parquet").exists()
    rejected = pq.read_table(out / "k.rejected.parquet")
    for column in ("id", "url", "source", "source_offset", "text", "stage", "reason"):
        assert column in rejected.column_names
    assert rejected.column("stage").to_pylist().count("extract") == 16
    assert rejected.column("reason").to_pylist().count("empty_text") == 16
    assert (out / "k.done").exists()


def test_stage_counts_with_zero_rows(tmp_path, shared_data):
    config = load_config()
    config["extract"]["min_text_chars"] = 10**9
    result, _ = run(tmp_path, shared_data / WARC, config)
    stages = {stage["stage"]: stage for stage in result["stages"]}
    assert stages["extract"]["documents_in"] == 16
    assert stages["extract"]["documents_out"] == 0
    assert stages["langid"]["documents_in"] == 0
    assert stages["pii"]["documents_out"] == 0


def test_file_without_documents(tmp_path, shared_data):
    result, out = run(tmp_path, shared_data / "warc-malformed" / "warcio-example-digest.warc", load_config())
    assert result["read"]["records"] == 4
    assert result["read"]["skipped"] == {"record_request": 4}
    assert not (out / "k.kept.parquet").exists()
    assert not (out / "k.rejected.parquet").exists()
    assert json.loads((out / "k.stats.json").read_text())["documents_kept"] == 0


def test_empty_input_file(tmp_path):
    path = tmp_path / "empty.warc.gz"
    path.write_bytes(b"")
    result, out = run(tmp_path, path, load_config())
    assert result["read"]["records"] == 0
    assert result["read"]["errors"] == ["empty file"]
    assert list(out.glob("*.parquet")) == []
