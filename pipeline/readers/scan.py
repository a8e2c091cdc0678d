"""Byte-level scans of an archive file: where records start and end, without trusting a parser.

The reader uses these after a parser stops before the end of a file, to find the next record
it can read and to measure the bytes it had to skip. They run only on damage, so they favour
simple code over speed.
"""

from __future__ import annotations

import mmap
import re
import zlib
from pathlib import Path

GZIP_MAGIC = b"\x1f\x8b\x08"
# Not anchored to a line start: garbage written before a record often lacks a final newline.
# The literal prefix lets the regex engine search fast, unlike a `^...$` multiline pattern.
RECORD_START = re.compile(rb"WARC/1\.[01]\r?\n")
HEADER_END = re.compile(rb"\r?\n\r?\n")
CONTENT_LENGTH = re.compile(rb"^content-length:[ \t]*(\d+)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
RECORD_PREFIXES = (b"WARC/1.", b"filedesc://")
CHUNK_BYTES = 1 << 20
MAX_HEADER_BYTES = 1 << 20


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == GZIP_MAGIC[:2]


class ArchiveBytes:
    """A read-only memory map of one archive file with the scans the reader needs."""

    def __init__(self, path: Path):
        self.size = path.stat().st_size
        self.handle = open(path, "rb")
        self.data = mmap.mmap(self.handle.fileno(), 0, access=mmap.ACCESS_READ) if self.size else b""

    def close(self) -> None:
        if isinstance(self.data, mmap.mmap):
            self.data.close()
        self.handle.close()

    def __enter__(self) -> "ArchiveBytes":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def is_blank(self, start: int) -> bool:
        """True when only CR, LF and NUL bytes follow `start` (padding after the last record)."""
        return not bytes(self.data[start:start + 4096]).strip(b"\r\n\x00") and (
            start + 4096 >= self.size or not bytes(self.data[start:]).strip(b"\r\n\x00"))

    # Uncompressed files: a record starts with a `WARC/1.0` or `WARC/1.1` line.

    def next_record_start(self, start: int) -> int | None:
        """Return the offset of the first `WARC/1.x` line that starts at or after `start`."""
        match = RECORD_START.search(self.data, start)
        return match.start() if match else None

    def record_starts(self) -> list[int]:
        """Return the offset of every `WARC/1.x` line in the file, in order (one pass, no parsing)."""
        return [match.start() for match in RECORD_START.finditer(self.data)]

    def record_bounds(self, offset: int) -> tuple[int, int] | None:
        """Return (end of the header block, end of the record by its Content-Length) for the record at `offset`."""
        match = HEADER_END.search(self.data, offset, min(self.size, offset + MAX_HEADER_BYTES))
        if match is None:
            return None
        length = CONTENT_LENGTH.search(self.data, offset, match.start() + 2)
        content_length = int(length.group(1)) if length else 0
        return match.end(), match.end() + content_length

    def skip_separator(self, position: int) -> int:
        """Return the offset after the CR/LF bytes that separate two records."""
        while position < self.size and self.data[position] in (0x0D, 0x0A):
            position += 1
        return position

    # Gzip files: Common Crawl and most crawlers write one gzip member per record.

    def starts_member(self, offset: int) -> bool:
        """True when a gzip member starts at `offset` and decompresses to a WARC or ARC record."""
        if self.data[offset:offset + 3] != GZIP_MAGIC:
            return False
        decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
        try:
            head = decompressor.decompress(bytes(self.data[offset:offset + 4096]), 16)
        except zlib.error:
            return False
        return head.startswith(RECORD_PREFIXES)

    def next_member_start(self, start: int) -> int | None:
        """Return the offset of the first gzip member at or after `start` that contains a record."""
        position = start
        while True:
            position = self.data.find(GZIP_MAGIC, position)
            if position < 0:
                return None
            if self.starts_member(position):
                return position
            position += 1

    def member_end(self, offset: int) -> int | None:
        """Return the offset after the gzip member at `offset`, or None when it is cut off or corrupt."""
        decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
        position = offset
        try:
            while position < self.size and not decompressor.eof:
                chunk = bytes(self.data[position:position + CHUNK_BYTES])
                # The output is dropped: only the member boundary matters here.
                decompressor.decompress(chunk)
                position += len(chunk)
        except zlib.error:
            return None
        if not decompressor.eof:
            return None
        return position - len(decompressor.unused_data)

    def starts_record(self, offset: int, compressed: bool) -> bool:
        """True when a record (or, compressed, a gzip member containing one) starts at `offset`."""
        if compressed:
            return self.starts_member(offset)
        return bytes(self.data[offset:offset + 11]).startswith(RECORD_PREFIXES)

    def next_start(self, start: int, compressed: bool) -> int | None:
        return self.next_member_start(start) if compressed else self.next_record_start(start)
