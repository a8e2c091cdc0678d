"""Run-wide exact dedup, line dedup wiring and JSONL input through the engine."""

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import load_config
from pipeline.engine import exact_duplicates_in_partition, run_pipeline
from pipeline.readers.warc import ReadStats, WarcReader


def test_exact_survivor_is_earliest_then_smallest_id():
    piece = pa.table({
        "id": ["b", "a", "c", "d", "e"],
        "date": ["2020-01-02", "2020-01-02", "2019-12-31", "2021-01-01", "2021-01-01"],
        "text_hash": ["h1", "h1", "h1", "h2", "h3"],
    })
    result = exact_duplicates_in_partition(piece.slice(0, 2), piece.slice(2))
    assert sorted(zip(result.column("id").to_pylist(), result.column("duplicate_of").to_pylist())) == [("a", "c"), ("b", "c")]


def test_jsonl_reader_counts_bad_lines(tmp_path):
    path = tmp_path / "docs.jsonl.gz"
    lines = [
        json.dumps({"id": "one", "text": "First document.", "metadata": {"warc_url": "http://a.example/", "warc_date": "2019-07-17T12:15:59Z"}}),
        "{not json",
        json.dumps({"id": "two", "text": ""}),
        json.dumps({"text": "No id here.", "url": "http://b.example/"}),
    ]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    stats = ReadStats()
    candidates = list(WarcReader(["text/html"]).read(path, stats))
    assert stats.records == 4
    assert stats.documents == 2
    assert dict(stats.skipped) == {"invalid_json": 1, "empty_body": 1}
    kept = [c for c in candidates if c.reason is None]
    assert (kept[0].id, kept[0].url, kept[0].date) == ("one", "http://a.example/", "2019-07-17T12:15:59Z")
    assert kept[1].id.startswith("<urn:jsonl:docs.jsonl.gz:")
    assert kept[1].url == "http://b.example/"


@pytest.fixture(scope="module")
def cc_text_run(tmp_path_factory, shared_data, ray_cluster):
    out = tmp_path_factory.mktemp("cc-text") / "run"
    overrides = {
        "langid": {"languages": []},
        "classifiers": {"enabled": False},
        "dedup": {"lines": {"enabled": True, "max_line_count": 5, "min_words_after": 50}},
        "tokenize": {"enabled": False},
    }
    stats = run_pipeline([str(shared_data / "cc-text")], str(out), load_config(overrides=overrides))
    return out, stats


def test_cc_text_counts_chain(cc_text_run):
    _, stats = cc_text_run
    stages = stats["stages"]
    assert stages[0]["documents_in"] == 697
    assert stages[0]["dropped"]["empty_body"] == 27
    assert [stage["stage"] for stage in stages][-2:] == ["dedup", "line_dedup"]
    for previous, current in zip(stages, stages[1:]):
        assert current["documents_in"] == previous["documents_out"]
    for stage in stages:
        assert stage["documents_in"] - stage["documents_out"] == sum(stage["dropped"].values())


def test_cc_text_line_dedup_applied(cc_text_run):
    out, stats = cc_text_run
    documents = pa.concat_tables([pq.read_table(path) for path in sorted((out / "documents").glob("*.parquet"))])
    assert "line_dedup_lines_removed" in documents.column_names
    assert sum(documents.column("line_dedup_lines_removed").to_pylist()) > 0
    line_stage = stats["stages"][-1]
    assert line_stage["documents_out"] == documents.num_rows
