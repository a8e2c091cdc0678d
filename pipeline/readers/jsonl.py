"""Read JSON Lines files of already-extracted documents (dolma's layout, plain or gzip).

Each line is one document with `text` and an `id`; the URL and crawl date come from
`url`/`date` or dolma's `metadata.warc_url`/`metadata.warc_date` (then `created`). Rows
skip the HTML stages: they arrive with `text` set, like WET conversion records.
"""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json.gz", ".ndjson", ".ndjson.gz")


def is_jsonl(path: Path) -> bool:
    return path.name.lower().endswith(JSONL_SUFFIXES)


def first_text(*values) -> str:
    for value in values:
        if isinstance(value, str) and value:
            return value
    return ""


def read_jsonl(path: Path, stats, start, candidate_class, max_body_bytes: int) -> Iterator:
    """Yield one candidate per line; `source_offset` is the line's byte offset in the decompressed stream."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    offset = 0
    passed = 0
    try:
        with opener(path, "rb") as handle:
            for line in handle:
                line_offset = offset
                offset += len(line)
                if not line.strip() or line_offset < start.offset:
                    continue
                if passed < start.skip:
                    passed += 1
                    continue
                stats.records += 1
                yield parse_line(line, line_offset, str(path), stats, candidate_class, max_body_bytes)
    except (OSError, EOFError) as error:
        stats.errors.append(f"read stopped after {stats.records} records at byte {offset}: {error}")
        log.warning("%s: read stopped after %d records: %s", path, stats.records, error)


def parse_line(line: bytes, offset: int, source_file: str, stats, candidate_class, max_body_bytes: int):
    candidate = candidate_class(id=f"<urn:jsonl:{Path(source_file).name}:{offset}>", url="", date="",
                                source_file=source_file, source_offset=offset)
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return drop(candidate, "invalid_json", stats)
    if not isinstance(record, dict):
        return drop(candidate, "invalid_json", stats)
    metadata = record.get("metadata") if isinstance(record.get("metadata"), dict) else {}
    if record.get("id") not in (None, ""):
        candidate.id = str(record["id"])
    candidate.url = first_text(record.get("url"), metadata.get("warc_url"), metadata.get("url"))
    candidate.date = first_text(record.get("date"), metadata.get("warc_date"), record.get("created"))
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        return drop(candidate, "empty_body", stats)
    if len(text) > max_body_bytes:
        return drop(candidate, "body_too_large", stats)
    candidate.text = text
    stats.documents += 1
    return candidate


def drop(candidate, reason: str, stats):
    candidate.reason = reason
    stats.skipped[reason] += 1
    return candidate
