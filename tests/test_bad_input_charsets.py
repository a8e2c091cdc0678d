"""Wrong, missing and conflicting charsets, read through whole WARC records built in the test."""

import unicodedata
import uuid

from pipeline.process import candidates_to_table
from pipeline.readers.warc import ReadStats, WarcReader
from pipeline.stages.extract import Extract

FRENCH = "Café crème, brûlée à la française, déjà vu et façade. " * 8
CHINESE = "中华人民共和国是世界上人口最多的国家之一，首都是北京。我们今天讨论经济发展和文化交流的问题。" * 8
RUSSIAN = "Компания предлагает услуги по доставке товаров в любой город России. " * 8


def warc_response(url: str, http_head: bytes, body: bytes) -> bytes:
    http = b"HTTP/1.1 200 OK\r\n" + http_head + b"\r\n" + body
    header = (
        "WARC/1.0\r\n"
        "WARC-Type: response\r\n"
        f"WARC-Target-URI: {url}\r\n"
        "WARC-Date: 2024-05-01T00:00:00Z\r\n"
        f"WARC-Record-ID: <urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, url)}>\r\n"
        "Content-Type: application/http; msgtype=response\r\n"
        f"Content-Length: {len(http)}\r\n\r\n"
    )
    return header.encode("utf-8") + http + b"\r\n\r\n"


def page(text: str, head: str = "") -> str:
    return f"<html><head>{head}<title>t</title></head><body><p>{text}</p></body></html>"


CASES = [
    ("http://example.com/utf8-over-1252", b"Content-Type: text/html; charset=utf-8\r\n", page(FRENCH).encode("cp1252")),
    ("http://example.com/gb2312-undeclared", b"Content-Type: text/html\r\n", page(CHINESE).encode("gb2312")),
    ("http://example.com/meta-disagrees", b"Content-Type: text/html; charset=iso-8859-1\r\n",
     page(RUSSIAN, '<meta charset="windows-1251">').encode("cp1251")),
    # Raw latin-1 and UTF-8 bytes in HTTP header values, as some servers send them.
    ("http://example.com/non-ascii-headers",
     b"Content-Type: text/html; charset=utf-8\r\nX-Title: caf\xe9\r\nLocation: /na\xc3\xafve\r\n", page(FRENCH).encode("utf-8")),
    ("http://example.com/\u00fcber-uri", b"Content-Type: text/html; charset=utf-8\r\n", page(FRENCH).encode("utf-8")),
]


def share_of_script(text: str, script: str) -> float:
    letters = [char for char in text if char.isalpha()]
    return sum(script in unicodedata.name(char, "") for char in letters) / max(1, len(letters))


def extracted(tmp_path):
    path = tmp_path / "charsets.warc"
    path.write_bytes(b"".join(warc_response(url, head, body) for url, head, body in CASES))
    stats = ReadStats()
    candidates = list(WarcReader(["text/html"]).read(path, stats))
    output = Extract(main_content=False)(candidates_to_table(candidates))
    rows = {row["url"]: row for row in output.table.to_pylist()}
    return stats, output.reasons, rows


def test_charset_records_all_read(tmp_path):
    stats, reasons, rows = extracted(tmp_path)
    assert stats.records == len(CASES)
    assert stats.documents == len(CASES)
    assert reasons == [None] * len(CASES)
    assert len(rows) == len(CASES)


def test_utf8_header_over_windows_1252(tmp_path):
    _, _, rows = extracted(tmp_path)
    row = rows["http://example.com/utf8-over-1252"]
    assert "Café crème, brûlée à la française" in row["text"]
    assert "\ufffd" not in row["text"]


def test_undeclared_gb2312_is_chinese(tmp_path):
    _, _, rows = extracted(tmp_path)
    row = rows["http://example.com/gb2312-undeclared"]
    assert row["charset"] in ("gbk", "gb18030")  # both decode gb2312 bytes
    assert share_of_script(row["text"], "CJK") > 0.9
    assert "中华人民共和国" in row["text"]


def test_meta_charset_beats_default_header(tmp_path):
    _, _, rows = extracted(tmp_path)
    row = rows["http://example.com/meta-disagrees"]
    assert row["charset"] == "cp1251"
    assert row["charset_source"] == "meta"
    assert share_of_script(row["text"], "CYRILLIC") > 0.9


def test_non_ascii_http_headers_and_uri(tmp_path):
    _, _, rows = extracted(tmp_path)
    assert "déjà vu" in rows["http://example.com/non-ascii-headers"]["text"]
    assert "déjà vu" in rows["http://example.com/\u00fcber-uri"]["text"]


def test_extracted_text_round_trips_utf8(tmp_path):
    _, _, rows = extracted(tmp_path)
    for url, row in rows.items():
        assert row["text"].encode("utf-8").decode("utf-8") == row["text"], url
        assert "\x00" not in row["text"], url
