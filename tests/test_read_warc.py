"""The archive reader on real crawl files, checked against warcio as an independent reader."""

from collections import Counter

import pytest
from warcio.archiveiterator import ArchiveIterator

from pipeline.readers.warc import ReadStats, WarcReader

HTML = ["text/html", "application/xhtml+xml"]


def read_all(path):
    stats = ReadStats()
    candidates = list(WarcReader(HTML).read(path, stats))
    return candidates, stats


def warcio_html_200(path):
    """(record id, url) of every HTTP 200 HTML response, as warcio reads them."""
    found = []
    with open(path, "rb") as stream:
        for record in ArchiveIterator(stream):
            if record.rec_type != "response" or record.http_headers is None:
                continue
            content_type = (record.http_headers.get_header("Content-Type") or "").split(";")[0].strip().lower()
            if record.http_headers.get_statuscode() == "200" and content_type in HTML:
                found.append((record.rec_headers.get_header("WARC-Record-ID"), record.rec_headers.get_header("WARC-Target-URI")))
    return found


def test_cc_2020_sample_yields_16_html_pages(shared_data):
    path = shared_data / "warc" / "cc-main-2020-34-sample.warc.gz"
    candidates, stats = read_all(path)
    documents = [c for c in candidates if c.reason is None]
    assert stats.records == 50
    assert len(documents) == 16
    assert [(c.id, c.url) for c in documents] == warcio_html_200(path)
    assert all(c.id.startswith("<urn:uuid:") for c in documents)
    assert all(c.date.startswith("2020-08") for c in documents)
    assert stats.skipped == {"record_warcinfo": 1, "record_request": 17, "record_metadata": 16}


def test_cc_2020_sample_offsets_point_at_records(shared_data):
    path = shared_data / "warc" / "cc-main-2020-34-sample.warc.gz"
    candidates, _ = read_all(path)
    offsets = {}
    with open(path, "rb") as stream:
        iterator = ArchiveIterator(stream)
        for record in iterator:
            offsets[record.rec_headers.get_header("WARC-Record-ID")] = iterator.get_record_offset()
    for candidate in candidates:
        assert candidate.source_offset == offsets[candidate.id]


def test_cc_2014_truncated_and_empty_body(shared_data):
    candidates, stats = read_all(shared_data / "warc" / "cc-main-2014-35-sample.warc")
    documents = [c for c in candidates if c.reason is None]
    assert stats.records == 13
    assert len(documents) == 3
    assert sum(c.truncated for c in documents) == 2
    assert stats.truncated == 2
    assert stats.skipped["empty_body"] == 1
    assert [c.reason for c in candidates if c.reason] == ["empty_body"]


def test_archive_org_2008_keeps_only_html_200(shared_data):
    path = shared_data / "warc" / "archive-org-2008.warc.gz"
    candidates, stats = read_all(path)
    documents = [c for c in candidates if c.reason is None]
    reference = warcio_html_200(path)
    assert [(c.id, c.url) for c in documents] == reference
    assert stats.records == 822
    assert stats.skipped["record_request"] == 261
    assert stats.skipped["http_status_404"] == 40
    assert stats.skipped["not_html"] == 119
    assert stats.records == stats.documents + sum(stats.skipped.values())


def test_wet_conversions_are_documents(shared_data):
    candidates, stats = read_all(shared_data / "warc" / "cc-main-2024-22-whirlwind.warc.wet.gz")
    documents = [c for c in candidates if c.reason is None]
    assert len(documents) == 1
    assert documents[0].url == "https://an.wikipedia.org/wiki/Escopete"
    assert documents[0].html is None
    assert "Escopete" in documents[0].text


def test_arc_file_read_through_warcio(shared_data):
    candidates, stats = read_all(shared_data / "warc-malformed" / "warcio-example.arc")
    documents = [c for c in candidates if c.reason is None]
    assert [c.url for c in documents] == ["http://example.com/"]
    assert documents[0].id == "<urn:arc:warcio-example.arc:" + str(documents[0].source_offset) + ">"
    assert b"Example Domain" in documents[0].html


@pytest.mark.parametrize("name", ["cc-main-2020-34-sample.warc.gz", "wget-crawl-en-0000.warc.gz", "redirects-and-ru.warc.gz"])
def test_every_record_accounted_for(shared_data, name):
    path = shared_data / "warc" / name
    _, stats = read_all(path)
    with open(path, "rb") as stream:
        reference = sum(1 for _ in ArchiveIterator(stream))
    assert stats.records == reference
    assert stats.records == stats.documents + sum(Counter(stats.skipped).values())


def test_angle_brackets_stripped_from_target_uri(shared_data):
    candidates, _ = read_all(shared_data / "warc" / "wget-crawl-en-0000.warc.gz")
    urls = [c.url for c in candidates if c.reason is None]
    assert urls
    assert all(url.startswith("http") and not url.endswith(">") for url in urls)
