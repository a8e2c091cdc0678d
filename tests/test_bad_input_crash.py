"""A worker that dies inside one record: the file still finishes and the record is counted failed.

`CrashOnUrl` is a test-only stage that these tests add to the stage registry. When it meets
one URL it kills its own process (SIGSEGV or os._exit) or raises, as a native crash would.
"""

import json
import os
import signal

import pyarrow.parquet as pq
import pytest

import pipeline.process as process
from pipeline.config import load_config
from pipeline.process import process_file
from pipeline.readers.warc import ReadStats, WarcReader
from pipeline.stages.base import StageOutput

WARC = "warc/cc-main-2020-34-sample.warc.gz"


class CrashOnUrl:
    """Passes every row, but ends the process (or raises) on the row whose url is `url`."""

    name = "crash_test"

    def __init__(self, url: str = "", how: str = "segv"):
        self.url = url
        self.how = how  # segv, exit or raise

    def __call__(self, table):
        for url in table.column("url").to_pylist():
            if url != self.url:
                continue
            if self.how == "segv":
                os.kill(os.getpid(), signal.SIGSEGV)
            if self.how == "exit":
                os._exit(3)
            raise RuntimeError(f"test crash on {url}")
        return StageOutput(table, [None] * table.num_rows)


def base_config() -> dict:
    config = load_config()
    config["langid"]["languages"] = []        # keep every language, so many rows reach the last stage
    for section in ("gopher_quality", "gopher_repetition", "c4_quality", "fineweb_quality", "classifiers"):
        config[section]["enabled"] = False
    return config


def run(tmp_path, name, config):
    out = tmp_path / name
    out.mkdir()
    result = process_file(str(tmp_path / "input.warc.gz"), "k", config, str(out))
    kept = pq.read_table(out / "k.kept.parquet") if (out / "k.kept.parquet").exists() else None
    return result, kept, out


@pytest.fixture
def with_crash_stage(monkeypatch):
    registry = process.STAGE_REGISTRY + [("crash_test", CrashOnUrl.__module__, "CrashOnUrl")]
    monkeypatch.setattr(process, "STAGE_REGISTRY", registry)


@pytest.fixture
def input_file(tmp_path, shared_data):
    (tmp_path / "input.warc.gz").write_bytes((shared_data / WARC).read_bytes())
    return tmp_path / "input.warc.gz"


@pytest.mark.parametrize("how,error", [
    ("segv", "worker died with SIGSEGV"),
    ("exit", "worker exited with status 3"),
    ("raise", "RuntimeError: test crash on "),
])
def test_crash_costs_one_record(tmp_path, input_file, with_crash_stage, how, error):
    baseline, baseline_kept, _ = run(tmp_path, "baseline", base_config())
    ids = baseline_kept.column("id").to_pylist()
    urls = baseline_kept.column("url").to_pylist()
    assert len(ids) >= 5
    target = 3
    offset = baseline_kept.column("source_offset").to_pylist()[target]

    config = base_config()
    config["crash_test"] = {"url": urls[target], "how": how}
    result, kept, out = run(tmp_path, "crash", config)

    read = result["read"]
    assert read["records"] == baseline["read"]["records"]
    assert read["documents"] == baseline["read"]["documents"] - 1
    assert read["skipped"]["failed_record"] == 1
    assert len(read["failed_records"]) == 1
    assert read["failed_records"][0]["offset"] == offset
    assert read["failed_records"][0]["error"].startswith(error)
    assert kept.column("id").to_pylist() == ids[:target] + ids[target + 1:]
    assert json.loads((out / "k.stats.json").read_text())["read"] == read


def test_crash_stats_chain_adds_up(tmp_path, input_file, with_crash_stage):
    _, baseline_kept, _ = run(tmp_path, "baseline", base_config())
    config = base_config()
    config["crash_test"] = {"url": baseline_kept.column("url").to_pylist()[0], "how": "segv"}
    result, _, _ = run(tmp_path, "crash", config)
    stages = result["stages"]
    assert stages[0]["documents_in"] == result["read"]["records"]
    for stage in stages:
        assert stage["documents_in"] - stage["documents_out"] == sum(stage["dropped"].values()), stage["stage"]
    for previous, current in zip(stages, stages[1:]):
        assert current["documents_in"] == previous["documents_out"], current["stage"]


def test_isolated_matches_in_place(tmp_path, input_file):
    config = base_config()
    isolated, isolated_kept, _ = run(tmp_path, "isolated", config)
    config["read"]["isolate"] = False
    in_place, in_place_kept, _ = run(tmp_path, "in-place", config)
    assert isolated["read"] == in_place["read"]
    assert isolated_kept.equals(in_place_kept)


def test_reader_offsets_match_failed_offset(tmp_path, input_file, with_crash_stage):
    stats = ReadStats()
    offsets = {c.url: c.source_offset for c in WarcReader(["text/html"]).read(input_file, stats)}
    _, baseline_kept, _ = run(tmp_path, "baseline", base_config())
    url = baseline_kept.column("url").to_pylist()[-1]
    config = base_config()
    config["crash_test"] = {"url": url, "how": "segv"}
    result, _, _ = run(tmp_path, "crash", config)
    assert [entry["offset"] for entry in result["read"]["failed_records"]] == [offsets[url]]
