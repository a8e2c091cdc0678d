"""A full run over every malformed archive on a real Ray local cluster: it finishes and accounts for each file."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.config import load_config
from pipeline.engine import run_pipeline
from test_malformed_files import EXPECTED


@pytest.fixture(scope="module")
def malformed_run(tmp_path_factory, shared_data, ray_cluster):
    out = tmp_path_factory.mktemp("malformed") / "run"
    # Files are listed one by one: a folder input skips `warcio-example-bad.warc.gz.bad`.
    inputs = sorted(str(path) for path in (shared_data / "warc-malformed").iterdir())
    stats = run_pipeline(inputs, str(out), load_config())
    return out, stats


def test_every_file_in_stats(malformed_run):
    _, stats = malformed_run
    files = {Path(path).name: info for path, info in stats["files"].items()}
    assert sorted(files) == [name for name, *_ in EXPECTED]


@pytest.mark.parametrize("name,records,documents,not_parsed,damage", EXPECTED, ids=[row[0] for row in EXPECTED])
def test_file_read_errors_recorded(malformed_run, name, records, documents, not_parsed, damage):
    _, stats = malformed_run
    info = {Path(path).name: info for path, info in stats["files"].items()}[name]
    assert info["records"] == records
    assert info["documents"] == documents
    assert info["bytes_not_parsed"] == not_parsed
    assert [entry["reason"] for entry in info["damaged"]] == damage
    assert info["failed_records"] == []
    assert info["records"] == info["documents"] + sum(info["skipped"].values())


def test_malformed_stage_counts_add_up(malformed_run):
    _, stats = malformed_run
    stages = stats["stages"]
    assert stages[0]["documents_in"] == sum(row[1] for row in EXPECTED)
    for stage in stages:
        assert stage["documents_in"] - stage["documents_out"] == sum(stage["dropped"].values()), stage["stage"]
    for previous, current in zip(stages, stages[1:]):
        assert current["documents_in"] == previous["documents_out"], current["stage"]


def test_no_empty_parquet_files(malformed_run):
    out, stats = malformed_run
    for path in list((out / "documents").glob("*.parquet")) + list((out / "rejected").glob("*.parquet")):
        assert pq.read_metadata(path).num_rows > 0, path.name
    assert json.loads((out / "stats.json").read_text())["run"]["documents_kept"] == stats["run"]["documents_kept"]
