"""Smoke tests for the benchmark harness on tiny inputs (no peer-tool venv needed)."""

from __future__ import annotations

import json

import pytest

from benchmarks import _machine, bare_limit, extraction_bench, process_bench, run_all


def test_word_f1_partial_overlap():
    precision, recall, f1 = extraction_bench.word_f1("the cat sat on mats", "The cat sat.")
    assert precision == pytest.approx(3 / 5)
    assert recall == pytest.approx(1.0)
    assert f1 == pytest.approx(0.75)


def test_word_f1_empty_extract_scores_zero():
    assert extraction_bench.word_f1("", "some words") == (0.0, 0.0, 0.0)


def test_half_of_is_stable_split():
    ids = [f"page-{number}" for number in range(200)]
    halves = [extraction_bench.half_of(page_id) for page_id in ids]
    assert set(halves) == {"A", "B"}
    assert halves == [extraction_bench.half_of(page_id) for page_id in ids]


def test_summarize_runs_best_and_median():
    runs = [{"documents": 100, "wall_s": 4.0, "cpu_s": 2.0}, {"documents": 100, "wall_s": 2.0, "cpu_s": 1.0},
            {"documents": 100, "wall_s": 5.0, "cpu_s": 4.0}]
    summary = _machine.summarize_runs(runs)
    assert summary["docs_per_cpu_s_best"] == 100.0
    assert summary["docs_per_cpu_s_median"] == 50.0
    assert summary["docs_per_wall_s_best"] == 50.0


def test_bare_loop_real_warc(shared_data):
    warc = shared_data / "warc" / "wget-crawl-en-0000.warc.gz"
    result = bare_limit.bare_loop(warc, _lid_model())
    assert result["documents"] == 22
    assert 0 < result["kept"] <= result["documents"]
    assert result["cpu_s"] > 0


def test_run_ours_counts_child_cpu(shared_data):
    warc = shared_data / "warc" / "wget-crawl-en-0001.warc.gz"
    result = process_bench.run_ours(warc, "full")
    assert result["documents"] == 15
    assert 0 < result["kept"] <= result["documents"]
    assert "pii" in result["stages"]
    if result["isolate"]:
        assert result["child_cpu_s"] > 0


def test_render_page_from_results(tmp_path, monkeypatch):
    results = tmp_path / "bench-results"
    results.mkdir()
    monkeypatch.setattr(_machine, "RESULTS_DIR", results)
    monkeypatch.setattr(run_all, "DOCS_PAGE", tmp_path / "docs" / "benchmarks.md")
    machine = {"cpu_model": "Test CPU", "logical_cpus": 2, "python": "3.11", "load_average_1m": 0.5}
    bare_sides = {side: {"docs_per_cpu_s_best": rate, "docs_per_cpu_s_median": rate, "docs_per_wall_s_best": rate,
                         "documents": 10, "kept": 5} for side, rate in (("bare", 100.0), ("ours-lite", 80.0), ("ours-full", 60.0))}
    _machine.write_result("bare_limit", {
        "command": "python -m benchmarks.bare_limit", "machine": machine, "input": "x.warc.gz",
        "bare_loop_steps": "read -> extract -> langid", "sides": bare_sides,
        "share_of_limit": {"ours-lite": {"best": 0.8, "median": 0.8}, "ours-full": {"best": 0.6, "median": 0.6}},
    })
    (results / "dedup_bench.json").write_text(json.dumps({"signatures": {"ours_docs_per_s": 123.0}}))

    page = run_all.write_page().read_text()

    assert "| process phase >= 70% of the bare-library limit (same work: read, extract, langid) | 0.80 best, 0.80 median | met |" in page
    assert "| ours-lite | 80.0 | 80.0 | 80.0 | 10 | 5 |" in page
    assert "| signatures.ours_docs_per_s | 123.0 |" in page


def _lid_model():
    from pipeline.stages.langid import bundled_lid_model

    return bundled_lid_model()
