"""Pages that are not HTML, NUL bytes, huge pages, huge lines and a page that stalls the extractor.

Records are built in the test. The stalling page is 12,000 nested <div> elements, on which
resiliparse's extraction time grows with the square of the depth (measured here on a shared
2-core machine: 2,000 levels 0.3 s, 4,000 levels 1.3 s, 8,000 levels 5.6 s); the run abandons
it after `read.record_timeout_s`.
"""

import time
import uuid
import zlib

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import load_config
from pipeline.process import candidates_to_table, process_file
from pipeline.readers.warc import ReadStats, WarcReader
from pipeline.stages.extract import Extract

TEXT = "Plain prose about the weather and the harbour, written for people to read. " * 20
PAGE = f"<html><body><p>{TEXT}</p></body></html>".encode()


def warc_response(url: str, body: bytes, content_type: str = "text/html") -> bytes:
    http = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n\r\n".encode() + body
    header = (
        "WARC/1.0\r\n"
        "WARC-Type: response\r\n"
        f"WARC-Target-URI: {url}\r\n"
        "WARC-Date: 2024-05-01T00:00:00Z\r\n"
        f"WARC-Record-ID: <urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, url)}>\r\n"
        "Content-Type: application/http; msgtype=response\r\n"
        f"Content-Length: {len(http)}\r\n\r\n"
    )
    return header.encode() + http + b"\r\n\r\n"


def png() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


def binary() -> bytes:
    return zlib.compress(TEXT.encode() * 50)[2:]  # deflate output: random-looking bytes


def twenty_mb_page() -> bytes:
    paragraph = f"<p>{TEXT}</p>\n".encode()
    return b"<html><body>" + paragraph * (20_000_000 // len(paragraph)) + b"</body></html>"


def one_line_page() -> bytes:
    return b"<html><body><p>" + b"word " * 1_000_000 + b"</p></body></html>"


CASES = [
    ("http://example.com/pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >>\n" + bytes(300), "binary_body"),
    ("http://example.com/png", png(), "binary_body"),
    ("http://example.com/binary", binary(), "binary_body"),
    ("http://example.com/nul-bytes", PAGE.replace(b"harbour", b"har\x00bour", 3), None),
    ("http://example.com/twenty-mb", twenty_mb_page(), "html_too_large"),
    ("http://example.com/one-line", one_line_page(), "line_too_long"),
    ("http://example.com/normal", PAGE, None),
]


def build(tmp_path, cases) -> str:
    path = tmp_path / "pages.warc"
    path.write_bytes(b"".join(warc_response(url, body) for url, body, *_ in cases))
    return str(path)


def test_pathological_pages_rejected_by_limits(tmp_path):
    path = build(tmp_path, CASES)
    stats = ReadStats()
    candidates = list(WarcReader(["text/html"], max_body_bytes=30_000_000).read(path, stats))
    assert stats.documents == len(CASES)

    start = time.perf_counter()
    output = Extract(max_html_bytes=10_000_000, max_line_bytes=1_000_000)(candidates_to_table(candidates))
    seconds = time.perf_counter() - start
    assert output.reasons == [reason for *_, reason in CASES]
    assert seconds < 5
    texts = dict(zip(output.table.column("url").to_pylist(), output.table.column("text").to_pylist()))
    assert "\x00" not in texts["http://example.com/nul-bytes"]
    assert "harbour" in texts["http://example.com/nul-bytes"]


def test_body_over_read_limit_dropped(tmp_path):
    path = build(tmp_path, CASES)
    stats = ReadStats()
    candidates = list(WarcReader(["text/html"]).read(path, stats))
    assert [c.reason for c in candidates if c.reason] == ["body_too_large"]
    assert stats.skipped == {"body_too_large": 1}
    assert stats.records == len(CASES)


def test_limits_off_still_extracts(tmp_path):
    # Without the limits resiliparse still finishes both pages, in about a second each here.
    html = pa.array([twenty_mb_page(), one_line_page()], pa.binary())
    table = pa.table({"html": html, "http_charset": pa.array([None, None], pa.string()),
                      "text": pa.array([None, None], pa.string())})
    output = Extract(main_content=False, max_html_bytes=10**9, max_line_bytes=10**9)(table)
    assert output.reasons == [None, None]
    assert len(output.table.column("text")[1].as_py()) > 4_000_000


def test_stalled_record_abandoned(tmp_path):
    nested = b"<html><body>" + b"<div>\n" * 12_000 + b"x" + b"</div>\n" * 12_000 + b"</body></html>"
    cases = [("http://example.com/before", PAGE), ("http://example.com/nested", nested), ("http://example.com/after", PAGE)]
    path = build(tmp_path, cases)
    config = load_config()
    config["read"]["record_timeout_s"] = 2
    config["langid"]["languages"] = []
    for section in ("gopher_quality", "gopher_repetition", "c4_quality", "fineweb_quality", "classifiers"):
        config[section]["enabled"] = False
    out = tmp_path / "out"
    out.mkdir()

    start = time.perf_counter()
    result = process_file(path, "k", config, str(out))
    seconds = time.perf_counter() - start
    read = result["read"]
    assert read["records"] == 3
    assert read["skipped"] == {"failed_record": 1}
    assert [entry["error"] for entry in read["failed_records"]] == ["timed out after 2 s"]
    assert read["failed_records"][0]["offset"] == len(warc_response(*cases[0]))
    kept = pq.read_table(out / "k.kept.parquet")
    assert kept.column("url").to_pylist() == ["http://example.com/before", "http://example.com/after"]
    assert seconds < 60
