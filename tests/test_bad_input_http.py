"""HTTP transfer and content encodings, read through whole WARC records built in the test."""

import gzip
import uuid
import zlib

import brotli
import pyarrow as pa

from pipeline.process import candidates_to_table
from pipeline.readers.warc import ReadStats, WarcReader
from pipeline.stages.extract import Extract

SENTENCE = "Encoded bodies must come out as clean text for the corpus."
PAGE = f"<html><body><p>{SENTENCE}</p></body></html>".encode()


def warc_response(url: str, http_headers: list[str], body: bytes) -> bytes:
    """Return one uncompressed WARC response record holding the given HTTP message."""
    http = ("HTTP/1.1 200 OK\r\n" + "".join(f"{line}\r\n" for line in http_headers) + "\r\n").encode("latin-1") + body
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


def chunked(body: bytes, size: int = 11) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size]) for i in range(0, len(body), size)]
    return b"".join(parts) + b"0\r\n\r\n"


CASES = [
    # (url, HTTP headers, stored body, expected reader drop reason or None)
    ("http://example.com/chunked", ["Content-Type: text/html", "Transfer-Encoding: chunked"], chunked(PAGE), None),
    ("http://example.com/gzip", ["Content-Type: text/html", "Content-Encoding: gzip"], gzip.compress(PAGE), None),
    ("http://example.com/deflate", ["Content-Type: text/html", "Content-Encoding: deflate"], zlib.compress(PAGE), None),
    ("http://example.com/raw-deflate", ["Content-Type: text/html", "Content-Encoding: deflate"], zlib.compress(PAGE)[2:-4], None),
    ("http://example.com/br", ["Content-Type: text/html", "Content-Encoding: br"], brotli.compress(PAGE), None),
    ("http://example.com/chunked-gzip", ["Content-Type: text/html", "Transfer-Encoding: chunked", "Content-Encoding: gzip"],
     chunked(gzip.compress(PAGE)), None),
    ("http://example.com/stored-decoded", ["Content-Type: text/html", "Content-Encoding: gzip"], PAGE, None),
    ("http://example.com/fake-gzip", ["Content-Type: text/html", "Content-Encoding: gzip"],
     b"\x00\x01\x02 these bytes are not gzip at all", "bad_content_encoding"),
    ("http://example.com/bad-chunks", ["Content-Type: text/html", "Transfer-Encoding: chunked"],
     b"b\r\n<html><body\r\nzz\r\nnot a size\r\n", "bad_chunked_encoding"),
]


def read_cases(tmp_path):
    path = tmp_path / "encodings.warc"
    path.write_bytes(b"".join(warc_response(url, headers, body) for url, headers, body, _ in CASES))
    stats = ReadStats()
    candidates = list(WarcReader(["text/html"]).read(path, stats))
    return candidates, stats


def test_encoded_bodies_read_or_rejected(tmp_path):
    candidates, stats = read_cases(tmp_path)
    assert stats.records == len(CASES)
    assert stats.documents == 7
    assert stats.skipped == {"bad_content_encoding": 1, "bad_chunked_encoding": 1}
    assert [c.reason for c in candidates] == [reason for *_, reason in CASES]
    assert stats.bytes_not_parsed == 0


def test_encoded_bodies_extract_clean_text(tmp_path):
    candidates, _ = read_cases(tmp_path)
    documents = [c for c in candidates if c.reason is None]
    output = Extract(main_content=False)(candidates_to_table(documents))
    assert output.reasons == [None] * 7
    for url, text in zip(output.table.column("url").to_pylist(), output.table.column("text").to_pylist()):
        assert text == SENTENCE, url


def test_decompressed_body_over_limit_rejected(tmp_path):
    path = tmp_path / "bomb.warc"
    bomb = gzip.compress(b"<html><body>" + b"a" * 3_000_000 + b"</body></html>")
    path.write_bytes(warc_response("http://example.com/bomb", ["Content-Type: text/html", "Content-Encoding: gzip"], bomb))
    stats = ReadStats()
    candidates = list(WarcReader(["text/html"], max_body_bytes=1_000_000).read(path, stats))
    assert len(bomb) < 1_000_000
    assert [c.reason for c in candidates] == ["body_too_large"]
    assert stats.skipped == {"body_too_large": 1}


def test_empty_table_through_extract():
    table = pa.table({"html": pa.array([], pa.binary()), "http_charset": pa.array([], pa.string()),
                      "text": pa.array([], pa.string())})
    output = Extract()(table)
    assert output.reasons == []
    assert output.table.num_rows == 0
    assert "text" in output.table.column_names
