"""Read WARC, WET and ARC files into candidate documents, counting every record skipped.

WARC and WET files go through FastWARC (gzip or plain); ARC files through warcio, which
converts ARC records to WARC responses. A record becomes a candidate document when it is
an HTTP 200 response with an HTML content type, or a WET conversion record.
"""

from __future__ import annotations

import gzip
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from fastwarc.warc import ArchiveIterator, WarcRecordType

from pipeline.readers.http import BodyDecodeError, decode_body

log = logging.getLogger(__name__)

RECORD_TYPE_NAMES = {
    int(record_type): name
    for record_type, name in [
        (WarcRecordType.warcinfo, "warcinfo"),
        (WarcRecordType.response, "response"),
        (WarcRecordType.resource, "resource"),
        (WarcRecordType.request, "request"),
        (WarcRecordType.metadata, "metadata"),
        (WarcRecordType.revisit, "revisit"),
        (WarcRecordType.conversion, "conversion"),
        (WarcRecordType.continuation, "continuation"),
    ]
}


@dataclass
class ReadStats:
    """What one input file held: records seen, documents produced, skips by reason."""

    records: int = 0
    documents: int = 0
    skipped: Counter = field(default_factory=Counter)
    truncated: int = 0
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "records": self.records,
            "documents": self.documents,
            "skipped": dict(sorted(self.skipped.items())),
            "truncated": self.truncated,
            "errors": list(self.errors),
        }


@dataclass
class Candidate:
    """One record that may become a document; `reason` is set when the reader drops it."""

    id: str
    url: str
    date: str
    source_file: str
    source_offset: int
    html: bytes | None = None
    text: str | None = None
    http_charset: str | None = None
    truncated: bool = False
    reason: str | None = None


def is_arc(path: Path) -> bool:
    """Sniff the first bytes: ARC files start with a `filedesc://` version block."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            head = handle.read(16)
    except (OSError, EOFError):
        return False
    return head.startswith(b"filedesc://")


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


class WarcReader:
    """Yields `Candidate`s from one archive file and fills `stats` as it goes."""

    def __init__(self, content_types: list[str], keep_wet_conversions: bool = True, max_body_bytes: int = 10_000_000):
        self.content_types = {value.lower() for value in content_types}
        self.keep_wet_conversions = keep_wet_conversions
        self.max_body_bytes = max_body_bytes

    def read(self, path: str | Path, stats: ReadStats) -> Iterator[Candidate]:
        path = Path(path)
        if is_arc(path):
            yield from self.read_arc(path, stats)
        else:
            yield from self.read_warc(path, stats)

    def read_warc(self, path: Path, stats: ReadStats) -> Iterator[Candidate]:
        with open(path, "rb") as stream:
            iterator = ArchiveIterator(stream, record_types=WarcRecordType.any_type, parse_http=True)
            try:
                for record in iterator:
                    stats.records += 1
                    candidate = self.candidate_from_fastwarc(record, str(path), stats)
                    if candidate is not None:
                        yield candidate
            except OSError as error:
                # NOTE: FastWARC ends iteration at damage it cannot resync past; the records
                # after it are not read and the error is reported per file.
                stats.errors.append(f"read stopped after {stats.records} records: {error}")
                log.warning("%s: read stopped after %d records: %s", path, stats.records, error)

    def candidate_from_fastwarc(self, record, source_file: str, stats: ReadStats) -> Candidate | None:
        kind = RECORD_TYPE_NAMES.get(int(record.record_type), "unknown")
        headers = record.headers
        if kind == "conversion":
            if not self.keep_wet_conversions:
                stats.skipped["record_conversion"] += 1
                return None
            return self.wet_candidate(record, source_file, stats)
        if kind != "response":
            stats.skipped[f"record_{kind}"] += 1
            return None

        candidate = Candidate(
            id=headers.get("WARC-Record-ID", "") or "",
            url=headers.get("WARC-Target-URI", "") or "",
            date=headers.get("WARC-Date", "") or "",
            source_file=source_file,
            source_offset=int(record.stream_pos),
            truncated=bool(headers.get("WARC-Truncated")),
        )
        if not record.is_http or record.http_headers is None:
            return self.drop(candidate, "no_http_headers", stats)
        status = record.http_headers.status_code
        if status != 200:
            return self.drop(candidate, f"http_status_{status}", stats)

        body = record.reader.read(self.max_body_bytes + 1)
        if len(body) > self.max_body_bytes:
            return self.drop(candidate, "body_too_large", stats)
        http_headers = record.http_headers
        return self.finish_http(
            candidate,
            body,
            content_type=http_headers.get("Content-Type"),
            transfer_encoding=http_headers.get("Transfer-Encoding"),
            content_encoding=http_headers.get("Content-Encoding"),
            stats=stats,
        )

    def wet_candidate(self, record, source_file: str, stats: ReadStats) -> Candidate | None:
        headers = record.headers
        body = record.reader.read(self.max_body_bytes + 1)
        candidate = Candidate(
            id=headers.get("WARC-Record-ID", "") or "",
            url=headers.get("WARC-Target-URI", "") or "",
            date=headers.get("WARC-Date", "") or "",
            source_file=source_file,
            source_offset=int(record.stream_pos),
            truncated=bool(headers.get("WARC-Truncated")),
        )
        if len(body) > self.max_body_bytes:
            return self.drop(candidate, "body_too_large", stats)
        if not body.strip():
            return self.drop(candidate, "empty_body", stats)
        # WET conversion records are UTF-8 by Common Crawl's definition.
        candidate.text = body.decode("utf-8", errors="replace")
        return self.accept(candidate, stats)

    def finish_http(self, candidate, body, content_type, transfer_encoding, content_encoding, stats) -> Candidate | None:
        if not body:
            return self.drop(candidate, "empty_body", stats)
        if media_type(content_type) not in self.content_types:
            return self.drop(candidate, "not_html", stats)
        try:
            body = decode_body(body, transfer_encoding, content_encoding, self.max_body_bytes)
        except BodyDecodeError as error:
            return self.drop(candidate, error.reason, stats)
        if not body.strip():
            return self.drop(candidate, "empty_body", stats)
        candidate.html = body
        candidate.http_charset = charset_from_content_type(content_type)
        return self.accept(candidate, stats)

    def read_arc(self, path: Path, stats: ReadStats) -> Iterator[Candidate]:
        from warcio.archiveiterator import ArchiveIterator as WarcioIterator
        from warcio.exceptions import ArchiveLoadFailed

        with open(path, "rb") as stream:
            iterator = WarcioIterator(stream, arc2warc=True)
            try:
                for record in iterator:
                    stats.records += 1
                    candidate = self.candidate_from_warcio(record, str(path), stats)
                    if candidate is not None:
                        # warcio's get_record_offset() consumes the record, so it is read last.
                        candidate.source_offset = int(iterator.get_record_offset())
                        if candidate.id.endswith(":>"):
                            candidate.id = candidate.id[:-1] + f"{candidate.source_offset}>"
                        yield candidate
            except (ArchiveLoadFailed, OSError, ValueError, EOFError) as error:
                stats.errors.append(f"read stopped after {stats.records} records: {error}")
                log.warning("%s: read stopped after %d records: %s", path, stats.records, error)

    def candidate_from_warcio(self, record, source_file: str, stats: ReadStats) -> Candidate | None:
        if record.rec_type != "response":
            stats.skipped[f"record_{record.rec_type}"] += 1
            return None
        headers = record.rec_headers
        # warcio invents a random WARC-Record-ID for ARC records; a name from the file and
        # offset (filled in by read_arc) keeps ids stable across reruns.
        record_id = f"<urn:arc:{Path(source_file).name}:>"
        candidate = Candidate(
            id=record_id,
            url=headers.get_header("WARC-Target-URI") or "",
            date=headers.get_header("WARC-Date") or "",
            source_file=source_file,
            source_offset=-1,
            truncated=bool(headers.get_header("WARC-Truncated")),
        )
        if record.http_headers is None:
            return self.drop(candidate, "no_http_headers", stats)
        status = record.http_headers.get_statuscode()
        if status != "200":
            return self.drop(candidate, f"http_status_{status}", stats)
        body = record.raw_stream.read(self.max_body_bytes + 1)
        if len(body) > self.max_body_bytes:
            return self.drop(candidate, "body_too_large", stats)
        http = record.http_headers
        return self.finish_http(
            candidate,
            body,
            content_type=http.get_header("Content-Type"),
            transfer_encoding=http.get_header("Transfer-Encoding"),
            content_encoding=http.get_header("Content-Encoding"),
            stats=stats,
        )

    @staticmethod
    def drop(candidate: Candidate, reason: str, stats: ReadStats) -> Candidate:
        candidate.reason = reason
        stats.skipped[reason] += 1
        return candidate

    @staticmethod
    def accept(candidate: Candidate, stats: ReadStats) -> Candidate:
        stats.documents += 1
        if candidate.truncated:
            stats.truncated += 1
        return candidate


def charset_from_content_type(content_type: str | None) -> str | None:
    """Return the `charset=` parameter of a Content-Type header, lowercased, or None."""
    if not content_type:
        return None
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            value = value.strip().strip("\"'").lower()
            return value or None
    return None
