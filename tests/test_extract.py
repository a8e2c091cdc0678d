"""HTML extraction and language ID on the real multilingual Common Crawl sample."""

import unicodedata
from collections import Counter

import pyarrow as pa

from pipeline.process import candidates_to_table
from pipeline.readers.warc import ReadStats, WarcReader
from pipeline.stages.extract import Extract, choose_charset
from pipeline.stages.langid import LanguageId


def extracted(shared_data):
    stats = ReadStats()
    path = shared_data / "warc" / "cc-main-2020-34-sample.warc.gz"
    candidates = [c for c in WarcReader(["text/html"]).read(path, stats) if c.reason is None]
    output = Extract()(candidates_to_table(candidates))
    return output.table, output.reasons


def share_of_script(text: str, script: str) -> float:
    letters = [char for char in text if char.isalpha()]
    return sum(script in unicodedata.name(char, "") for char in letters) / max(1, len(letters))


def test_gb2312_pages_are_chinese(shared_data):
    table, _ = extracted(shared_data)
    rows = [row for row in table.to_pylist() if row["http_charset"] == "gb2312"]
    assert len(rows) == 2
    chinese = [row for row in rows if share_of_script(row["text"], "CJK") > 0.5]
    # One of the two gb2312 pages is an English trading-company page.
    assert len(chinese) == 1
    assert all(row["charset"] == "gbk" for row in rows)


def test_windows_1251_page_is_cyrillic(shared_data):
    table, _ = extracted(shared_data)
    rows = [row for row in table.to_pylist() if row["http_charset"] == "windows-1251"]
    assert len(rows) == 1
    assert share_of_script(rows[0]["text"], "CYRILLIC") > 0.9
    assert "пожарной безопасности" in rows[0]["text"]


def test_extracted_text_is_valid_utf8(shared_data):
    table, reasons = extracted(shared_data)
    assert reasons.count(None) == 16
    for text in table.column("text").to_pylist():
        assert text.encode("utf-8").decode("utf-8") == text
        assert not text.startswith("\ufeff")


def test_langid_finds_zh_for_most_pages(shared_data):
    table, _ = extracted(shared_data)
    output = LanguageId(languages=[], min_language_score=0.0)(table)
    languages = Counter(output.table.column("language").to_pylist())
    assert languages["zh"] == 11
    assert languages["de"] == 2
    assert output.reasons.count(None) == 16


def test_langid_drops_other_languages():
    table = pa.table({"text": ["This is a plain English sentence about the weather today.",
                               "Ceci est une phrase française sur la météo d'aujourd'hui."]})
    output = LanguageId(languages=["en"], min_language_score=0.5)(table)
    assert output.table.column("language").to_pylist() == ["en", "fr"]
    assert output.reasons == [None, "language_not_kept"]


def test_langid_ignores_newlines():
    table = pa.table({"text": ["This is English\ntext split\nover lines."]})
    assert LanguageId(languages=[])(table).table.column("language").to_pylist() == ["en"]


def test_charset_header_wrong_falls_back():
    body = "<html><body>Café crème brûlée</body></html>".encode("cp1252")
    charset, source = choose_charset(body, "utf-8")
    assert source != "http"
    assert body.decode(charset) == "<html><body>Café crème brûlée</body></html>"


def test_charset_from_meta_tag():
    body = '<html><head><meta charset="windows-1251"></head><body>Привет, мир</body></html>'.encode("cp1251")
    assert choose_charset(body, None) == ("cp1251", "meta")


def test_binary_body_rejected():
    table = pa.table({"html": [b"%PDF-1.4 binary \x00\x01"], "http_charset": [None], "text": pa.array([None], pa.string())})
    assert Extract()(table).reasons == ["binary_body"]
