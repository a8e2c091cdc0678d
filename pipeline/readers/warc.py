"""Read WARC, WET and ARC files into candidate documents, counting every record skipped.

WARC and WET files go through FastWARC (gzip or plain); ARC files through warcio, which
converts ARC records to WARC responses. A record becomes a candidate document when it is
an HTTP 200 response with an HTML content type, or a WET conversion record.

FastWARC ends iteration at damage, sometimes with an OSError and sometimes silently. After
each stop a byte scan (`pipeline.readers.scan`) checks whether the last record reached the
end of the file. If not, the reader skips to the next record start (a `WARC/1.x` line, or a
gzip member that contains a record), counts the skipped bytes in `ReadStats.damaged` and
reads on. In uncompressed files every `WARC/1.x` line found by the scan must be read or
counted, so a record hidden inside another by a wrong Content-Length is read too.
"""

from __future__ import annotations

import bisect
import gzip
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from fastwarc.warc import ArchiveIterator, WarcRecordType

from pipeline.readers.jsonl import is_jsonl, read_jsonl
from pipeline.readers.http import BodyDecodeError, decode_body
from pipeline.readers.scan import ArchiveBytes, is_gzip

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


# Max entries in the `damaged`, `failed_records` and `errors` lists of one file. The
# counts and `bytes_not_parsed` stay exact beyond this.
MAX_LISTED = 1000


@dataclass
class ReadStats:
    """Counts of one input file: records seen, documents produced, skips by reason, damage.

    `records == documents + sum(skipped.values())` always. Damaged byte spans are not records:
    each is one `damaged` entry {offset, bytes, reason}, and their bytes sum to
    `bytes_not_parsed`. `failed_records` lists records whose worker crashed or timed out
    ({offset, error}); each is also counted in `skipped["failed_record"]`.
    """

    records: int = 0
    documents: int = 0
    skipped: Counter = field(default_factory=Counter)
    truncated: int = 0
    errors: list[str] = field(default_factory=list)
    bytes_not_parsed: int = 0
    damaged: list[dict] = field(default_factory=list)
    failed_records: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "records": self.records,
            "documents": self.documents,
            "skipped": dict(sorted(self.skipped.items())),
            "truncated": self.truncated,
            "errors": list(self.errors),
            "bytes_not_parsed": self.bytes_not_parsed,
            "damaged": list(self.damaged),
            "failed_records": list(self.failed_records),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "ReadStats":
        return cls(
            records=data["records"],
            documents=data["documents"],
            skipped=Counter(data["skipped"]),
            truncated=data["truncated"],
            errors=list(data["errors"]),
            bytes_not_parsed=data.get("bytes_not_parsed", 0),
            damaged=list(data.get("damaged", [])),
            failed_records=list(data.get("failed_records", [])),
        )

    def add(self, other: "ReadStats") -> None:
        self.records += other.records
        self.documents += other.documents
        self.skipped.update(other.skipped)
        self.truncated += other.truncated
        self.bytes_not_parsed += other.bytes_not_parsed
        self.errors.extend(other.errors[:MAX_LISTED - len(self.errors)])
        self.damaged.extend(other.damaged[:MAX_LISTED - len(self.damaged)])
        self.failed_records.extend(other.failed_records[:MAX_LISTED - len(self.failed_records)])

    def add_damage(self, path: Path, offset: int, size: int, reason: str) -> None:
        """Count `size` bytes at `offset` that no reader could parse, and log them."""
        self.bytes_not_parsed += size
        if len(self.damaged) < MAX_LISTED:
            self.damaged.append({"offset": offset, "bytes": size, "reason": reason})
        message = f"{reason}: {size} bytes at offset {offset} not parsed"
        if len(self.errors) < MAX_LISTED:
            self.errors.append(message)
        log.warning("%s: %s", path, message)

    def add_failed_record(self, offset: int, error: str) -> None:
        """Count one record whose processing crashed or timed out."""
        self.records += 1
        self.skipped["failed_record"] += 1
        if len(self.failed_records) < MAX_LISTED:
            self.failed_records.append({"offset": offset, "error": error})


@dataclass
class ResumePoint:
    """A read's start point: seek to `offset`, then pass over `skip` records already counted."""

    offset: int = 0
    skip: int = 0


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
    """Yields `Candidate`s from one archive file and fills `stats` as it goes.

    `progress`, when set, is a writable pair of ints (a shared-memory array in the child
    process of `pipeline.process`): the reader stores the offset of each record it has
    parsed and that record's ordinal since the read's start point.
    """

    def __init__(self, content_types: list[str], keep_wet_conversions: bool = True, max_body_bytes: int = 10_000_000,
                 resync: bool = True, progress=None):
        self.content_types = {value.lower() for value in content_types}
        self.keep_wet_conversions = keep_wet_conversions
        self.max_body_bytes = max_body_bytes
        self.resync = resync
        self.progress = progress

    def read(self, path: str | Path, stats: ReadStats, start: ResumePoint | None = None) -> Iterator[Candidate]:
        path = Path(path)
        start = start or ResumePoint()
        if path.stat().st_size == 0:
            stats.errors.append("empty file")
            return
        if is_jsonl(path):
            yield from read_jsonl(path, stats, start, Candidate, self.max_body_bytes)
        elif is_arc(path):
            yield from self.read_arc(path, stats, start)
        else:
            yield from self.read_warc(path, stats, start)

    def read_warc(self, path: Path, stats: ReadStats, start: ResumePoint) -> Iterator[Candidate]:
        compressed = is_gzip(path)
        scratch = ReadStats()
        skip = start.skip
        ordinal = 0
        position: int | None = start.offset
        with open(path, "rb") as stream, ArchiveBytes(path) as archive:
            # In an uncompressed file every `WARC/1.x` line is a record start to account for,
            # so a record that a wrong Content-Length hides inside another one is noticed.
            starts = archive.record_starts() if self.resync and not compressed else []
            while position is not None and position < archive.size:
                stream.seek(position)
                expected = bisect.bisect_left(starts, position)
                # quirks_mode reads LF-only line endings and loose headers, where the strict
                # parser stops silently. On the well-formed test files both return the same records.
                iterator = ArchiveIterator(stream, record_types=WarcRecordType.any_type, parse_http=True, quirks_mode=True)
                last_offset, count, error, missed = -1, 0, None, None
                try:
                    for record in iterator:
                        offset = int(record.stream_pos)
                        if expected < len(starts):
                            if starts[expected] < offset and self.skipped_over(archive, starts[expected], last_offset, offset):
                                missed = starts[expected]
                                break
                            expected = bisect.bisect_right(starts, offset, expected)
                        last_offset = offset
                        count += 1
                        ordinal += 1
                        if self.progress is not None:
                            self.progress[0] = offset
                            self.progress[1] = ordinal
                        if skip:
                            # Records before a resume point were counted by an earlier read.
                            skip -= 1
                            continue
                        stats.records += 1
                        candidate = self.candidate_from_fastwarc(record, str(path), stats)
                        if candidate is not None:
                            yield candidate
                except OSError as exc:
                    error = exc
                if not self.resync:
                    if error is not None:
                        stats.errors.append(f"read stopped after {stats.records} records: {error}")
                        log.warning("%s: read stopped after %d records: %s", path, stats.records, error)
                    return
                target = scratch if skip else stats
                if missed is not None and count:
                    self.count_gap(path, archive, last_offset, missed, target)
                    position = missed
                else:
                    position = self.next_segment(path, archive, compressed, position, last_offset, count, error, target)

    @staticmethod
    def count_gap(path: Path, archive: ArchiveBytes, last_offset: int, missed: int, stats: ReadStats) -> None:
        """Count what lies between the record at `last_offset` and the record start `missed` after it."""
        bounds = archive.record_bounds(last_offset)
        end = archive.skip_separator(bounds[1]) if bounds else missed
        if end > missed:
            # The last record's Content-Length runs past the next record start.
            stats.add_damage(path, last_offset, 0, "wrong_content_length")
        elif end < missed:
            stats.add_damage(path, end, missed - end, "unreadable_record")

    @staticmethod
    def skipped_over(archive: ArchiveBytes, missed: int, last_offset: int, offset: int) -> bool:
        """True when FastWARC went past the record start `missed` instead of reading it.

        A `WARC/1.x` line inside a record body (an archived WARC file, a page about the
        format) is passed over correctly: the previous record's Content-Length then ends
        exactly where the next record starts.
        """
        if last_offset < 0:
            return True
        bounds = archive.record_bounds(last_offset)
        return bounds is None or archive.skip_separator(bounds[1]) != offset

    def next_segment(self, path: Path, archive: ArchiveBytes, compressed: bool, position: int, last_offset: int,
                     count: int, error: OSError | None, stats: ReadStats) -> int | None:
        """After FastWARC stopped, return where reading resumes (None at the end) and count the damage.

        `position` is where this segment started, `last_offset` the start of its last record.
        """
        reason = f"unreadable_{'gzip_member' if compressed else 'record'}"
        if count == 0:
            # Nothing parsed at `position`: skip the record there.
            resume = archive.next_start(position + 1, compressed)
            end = archive.size if resume is None else resume
            stats.add_damage(path, position, end - position, reason)
            return resume

        if last_offset >= archive.size or not archive.starts_record(last_offset, compressed):
            # Offsets inside one gzip member that contains many records (non-chunked gzip) do
            # not point at record starts, so a scan cannot tell how far the read got.
            # NOTE: damage inside such a member loses the rest of the file without a count.
            if error is not None:
                stats.errors.append(f"read stopped after {stats.records} records: {error}")
                log.warning("%s: read stopped after %d records: %s", path, stats.records, error)
            return None

        if compressed:
            end = archive.member_end(last_offset)
            if end is None:
                stats.add_damage(path, last_offset, archive.size - last_offset, "truncated_gzip_member")
                return None
            search_from = end
        else:
            bounds = archive.record_bounds(last_offset)
            if bounds is None:
                stats.add_damage(path, last_offset, archive.size - last_offset, "truncated_record")
                return None
            header_end, end = bounds
            if end > archive.size:
                stats.add_damage(path, last_offset, archive.size - last_offset, "truncated_record")
                return None
            # A wrong Content-Length can run into the next record, so search from the header end.
            search_from = header_end

        end = archive.skip_separator(end)
        if end >= archive.size or archive.is_blank(end):
            return None
        resume = archive.next_start(search_from, compressed)
        if resume is None:
            stats.add_damage(path, end, archive.size - end, reason)
            return None
        if resume < end:
            stats.add_damage(path, last_offset, 0, "wrong_content_length")
        elif resume > end:
            stats.add_damage(path, end, resume - end, reason)
        return resume

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
            url=clean_uri(headers.get("WARC-Target-URI", "")),
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
        if len(body) < record.content_length:
            # The file ends inside this record. Its text is kept and counted as truncated.
            candidate.truncated = True
            stats.add_damage(Path(source_file), candidate.source_offset, 0, "record_cut_short")
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
            url=clean_uri(headers.get("WARC-Target-URI", "")),
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
            body = decode_body(body, transfer_encoding, content_encoding, self.max_body_bytes + 1)
        except BodyDecodeError as error:
            return self.drop(candidate, error.reason, stats)
        if len(body) > self.max_body_bytes:
            return self.drop(candidate, "body_too_large", stats)
        if not body.strip():
            return self.drop(candidate, "empty_body", stats)
        candidate.html = body
        candidate.http_charset = charset_from_content_type(content_type)
        return self.accept(candidate, stats)

    def read_arc(self, path: Path, stats: ReadStats, start: ResumePoint) -> Iterator[Candidate]:
        from warcio.archiveiterator import ArchiveIterator as WarcioIterator
        from warcio.exceptions import ArchiveLoadFailed

        skip = start.skip
        ordinal = 0
        with open(path, "rb") as stream:
            stream.seek(start.offset)
            iterator = WarcioIterator(stream, arc2warc=True)
            try:
                for record in iterator:
                    ordinal += 1
                    if skip:
                        skip -= 1
                        iterator.get_record_offset()
                        continue
                    stats.records += 1
                    candidate = self.candidate_from_warcio(record, str(path), stats)
                    # warcio's get_record_offset() consumes the record, so it is read last.
                    offset = int(iterator.get_record_offset())
                    if self.progress is not None:
                        self.progress[0] = offset
                        self.progress[1] = ordinal
                    if candidate is not None:
                        candidate.source_offset = offset
                        if candidate.id.endswith(":>"):
                            candidate.id = candidate.id[:-1] + f"{candidate.source_offset}>"
                        yield candidate
            except (ArchiveLoadFailed, OSError, ValueError, EOFError) as error:
                # NOTE: ARC files get no resync: the bytes after damage are counted, not read.
                offset = int(iterator.offset)
                stats.add_damage(path, offset, max(0, path.stat().st_size - offset), "unreadable_arc_record")
                stats.errors.append(f"read stopped after {stats.records} records: {error}")

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
            url=clean_uri(headers.get_header("WARC-Target-URI")),
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


def clean_uri(value: str | None) -> str:
    """Return a WARC-Target-URI without surrounding whitespace or the angle brackets WARC/1.0 writers such as wget add."""
    value = (value or "").strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    return value


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
