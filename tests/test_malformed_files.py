"""Every file of warcio's, aut's and cc_net's malformed archives, checked against lenient references.

A reader that stops early without an error reads fewer records than the references find, so
these tests compare counts, not only that reading finished.
"""

import re
import zlib
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from pipeline.readers.warc import ReadStats, WarcReader, is_arc

HTML = ["text/html", "application/xhtml+xml"]
RECORD_LINE = re.compile(rb"(?:\A|\n)WARC/1\.[01]\r?\n")

# (file, records, documents, bytes not parsed, damage reasons)
EXPECTED = [
    ("aut-issue-493.warc", 32, 4, 0, []),
    ("aut-issue-514.warc", 8, 1, 0, []),
    # LF-only line endings, and Content-Length values counted before the CRs were removed.
    ("ccnet-lf-only.warc", 4, 3, 298, ["wrong_content_length", "unreadable_record"]),
    ("warcio-bad.arc", 4, 0, 0, []),
    ("warcio-example-bad-non-chunked.warc.gz", 6, 1, 0, []),
    ("warcio-example-bad.warc.gz.bad", 6, 1, 0, []),
    ("warcio-example-digest-bad.warc", 4, 0, 0, []),
    ("warcio-example-digest.warc", 4, 0, 0, []),
    ("warcio-example-iana.org-chunked.warc", 3, 1, 0, []),
    ("warcio-example-resource.warc.gz", 3, 0, 0, []),
    ("warcio-example-space-in-target-uri.warc.gz", 2, 0, 0, []),
    ("warcio-example-space-in-url.arc", 2, 1, 0, []),
    ("warcio-example-trunc.warc", 4, 1, 0, []),
    ("warcio-example-wget-bad-target-uri.warc.gz", 6, 1, 0, []),
    ("warcio-example-wrong-chunks.warc.gz", 2, 1, 0, []),
    ("warcio-example.arc", 2, 1, 0, []),
    ("warcio-example.arc.gz", 2, 1, 0, []),
    ("warcio-example.warc", 6, 1, 0, []),
    ("warcio-example.warc.gz", 6, 1, 0, []),
    ("warcio-post-test.warc.gz", 6, 0, 0, []),
    ("warcio-standard-torture-missing.warc", 1, 0, 0, []),
    # Ends with a `WARC/invalid` line of 13 bytes that is no record.
    ("warcio-standard-torture-validate-field.warc", 3, 0, 13, ["unreadable_record"]),
    ("warcio-standard-torture-validate-record.warc", 17, 0, 0, []),
]


def warcio_count(path: Path) -> int:
    """Records warcio returns before it stops (it raises on several of these files)."""
    count = 0
    try:
        with open(path, "rb") as stream:
            for _ in ArchiveIterator(stream, arc2warc=True):
                count += 1
    except Exception:
        pass
    return count


def decompressed(data: bytes) -> bytes:
    """Inflate every gzip member that decompresses; the bytes of a broken one are left out."""
    if data[:2] != b"\x1f\x8b":
        return data
    out, position = [], 0
    while position < len(data):
        decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
        try:
            out.append(decompressor.decompress(data[position:]))
        except zlib.error:
            break
        if not decompressor.eof:
            break
        position = len(data) - len(decompressor.unused_data)
    return b"".join(out)


def scan_count(path: Path) -> int:
    """Lines `WARC/1.0` or `WARC/1.1` in the (decompressed) file: one per record start."""
    return len(RECORD_LINE.findall(decompressed(path.read_bytes())))


def read(path: Path) -> ReadStats:
    stats = ReadStats()
    list(WarcReader(HTML).read(path, stats))
    return stats


def test_expected_table_lists_every_file(shared_data):
    names = sorted(path.name for path in (shared_data / "warc-malformed").iterdir())
    assert names == [name for name, *_ in EXPECTED]


@pytest.mark.parametrize("name,records,documents,not_parsed,damage", EXPECTED, ids=[row[0] for row in EXPECTED])
def test_malformed_file_counts(shared_data, name, records, documents, not_parsed, damage):
    stats = read(shared_data / "warc-malformed" / name)
    assert stats.records == records
    assert stats.documents == documents
    assert stats.bytes_not_parsed == not_parsed
    assert [entry["reason"] for entry in stats.damaged] == damage
    assert stats.failed_records == []
    assert stats.records == stats.documents + sum(stats.skipped.values())


@pytest.mark.parametrize("name", [row[0] for row in EXPECTED])
def test_malformed_file_reads_what_references_find(shared_data, name):
    path = shared_data / "warc-malformed" / name
    stats = read(path)
    reference = warcio_count(path) if is_arc(path) else max(warcio_count(path), scan_count(path))
    assert stats.records == reference


def test_lf_only_file_beyond_fastwarc_strict(shared_data):
    from fastwarc.warc import ArchiveIterator as FastWarcIterator, WarcRecordType

    path = shared_data / "warc-malformed" / "ccnet-lf-only.warc"
    with open(path, "rb") as stream:
        strict = sum(1 for _ in FastWarcIterator(stream, record_types=WarcRecordType.any_type))
    stats = read(path)
    # FastWARC's strict parser returns one record and no error, but the file contains four.
    assert strict == 1
    assert stats.records == 4
    assert stats.skipped == {"record_warcinfo": 1}


def test_resync_off_leaves_tail_uncounted(shared_data):
    path = shared_data / "warc-malformed" / "warcio-standard-torture-validate-field.warc"
    stats = ReadStats()
    list(WarcReader(HTML, resync=False).read(path, stats))
    assert stats.records == 3
    assert stats.bytes_not_parsed == 0
