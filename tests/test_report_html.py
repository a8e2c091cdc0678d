"""The run report's HTML without a browser: sections, partial runs, escaping and histogram ranges."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.report import plots, rundir, write_report
from pipeline.report.signals import Threshold
from test_report_rundir import HOSTILE_TEXT, HOSTILE_URL, report_run_dir  # noqa: F401  (the run fixture)


class PageParser(HTMLParser):
    """Collect the tags, plot names and sample reasons of a page."""

    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.plots: list[str] = []
        self.sample_reasons: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append(tag)
        if tag == "img":
            self.plots.append(attributes.get("data-plot"))
        if attributes.get("class") == "sample":
            self.sample_reasons.append(attributes.get("data-reason"))


def render(run_dir, out) -> tuple[str, PageParser]:
    write_report(str(run_dir), str(out))
    page = out.read_text(encoding="utf-8")
    parser = PageParser()
    parser.feed(page)
    return page, parser


@pytest.fixture(scope="module")
def full_page(report_run_dir, tmp_path_factory):  # noqa: F811
    """The fixture run's report, rendered once for the tests that only read it."""
    return render(report_run_dir, tmp_path_factory.mktemp("full") / "report.html")


def test_report_empty_run_dir(tmp_path):
    page, parser = render(tmp_path, tmp_path / "report.html")
    assert "no stats.json with stages" in page
    assert parser.plots == []
    assert parser.tags.count("h2") == 10


def test_report_creates_output_folder(tmp_path):
    write_report(str(tmp_path), str(tmp_path / "new" / "folder" / "report.html"))
    assert (tmp_path / "new" / "folder" / "report.html").is_file()
    assert list((tmp_path / "new" / "folder").iterdir()) == [tmp_path / "new" / "folder" / "report.html"]


def test_report_stats_only(tmp_path):
    stats = {"stages": [{"stage": "read", "documents_in": 5, "documents_out": 3, "bytes_in": 0, "bytes_out": 30,
                         "dropped": {"not_html": 2}, "seconds": 0.5}],
             "files": {"a.warc.gz": {"records": 5, "documents": 3, "skipped": {}, "errors": ["bad record"], "seconds": 0.5}}}
    (tmp_path / "stats.json").write_text(json.dumps(stats))
    page, parser = render(tmp_path, tmp_path / "report.html")
    assert parser.plots == ["funnel", "drops", "throughput"]
    assert "no tokens/manifest.json" in page
    assert "no rejected rows" in page
    assert "bad record" in page


def test_report_full_run_sections(full_page, report_run_dir):  # noqa: F811
    page, parser = full_page
    assert {"funnel", "drops", "throughput", "languages", "dedup-clusters", "tokens", "hist-gopher_word_count"} <= set(parser.plots)
    reasons = rundir.value_counts(rundir.parquet_files(report_run_dir, rundir.REJECTED), "reason")
    assert set(parser.sample_reasons) == set(reasons)
    assert "invalid WARC header line" in page
    assert 'class="missing"' not in page.split("<h2>", 1)[1]


def test_report_escapes_url_and_text(tmp_path):
    schema = pa.schema([("id", pa.string()), ("url", pa.string()), ("text", pa.string()), ("stage", pa.string()),
                        ("reason", pa.string()), ("gopher_word_count", pa.int64())])
    (tmp_path / "rejected").mkdir()
    rows = [{"id": "<urn:uuid:1>", "url": HOSTILE_URL, "text": HOSTILE_TEXT, "stage": "gopher_quality",
             "reason": "gopher_min_words<b>", "gopher_word_count": 3}]
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp_path / "rejected" / "k.parquet")
    page, parser = render(tmp_path, tmp_path / "report.html")
    assert "script" not in parser.tags
    assert "b" not in parser.tags
    assert "&lt;script&gt;alert(&#x27;text&#x27;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert parser.sample_reasons == ["gopher_min_words<b>"]


def test_report_makes_no_outside_references(full_page):
    page, _ = full_page
    assert re.findall(r'(?:src|href)="(?!data:)', page) == []
    assert "Content-Security-Policy" in page


def test_histogram_range_far_threshold_off_scale():
    values = np.arange(100, 2000, dtype=float)
    low, high, _ = plots.histogram_range(values, [Threshold("max_doc_words", 100_000, False)])
    assert high < 3000


def test_histogram_range_near_threshold_included():
    values = np.linspace(0.4, 1.0, 500)
    low, high, log_scale = plots.histogram_range(values, [Threshold("min_language_score", 0.2, True)])
    assert low == 0.2
    assert not log_scale


def test_histogram_range_heavy_tail_log_scale():
    values = np.concatenate([np.full(500, 200.0), np.geomspace(1, 50_000, 100)])
    _, high, log_scale = plots.histogram_range(values, [])
    assert log_scale
    assert high > 10_000


def test_histogram_empty_column_renders():
    uri = plots.histogram("x", np.empty(0), np.empty(0), [Threshold("min_x", 0.5, True)])
    assert uri.startswith("data:image/png;base64,")


def test_report_all_zero_stages_no_plots(tmp_path):
    stats = {"stages": [{"stage": "dedup", "documents_in": 0, "documents_out": 0, "bytes_in": 0, "bytes_out": 0,
                         "dropped": {}, "seconds": 0.01}]}
    (tmp_path / "stats.json").write_text(json.dumps(stats))
    page, parser = render(tmp_path, tmp_path / "report.html")
    assert parser.plots == []
    assert "no documents entered any stage" in page
    assert 'data-field="documents_in" data-value="0"' in page
