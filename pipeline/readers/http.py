"""Undo HTTP transfer- and content-encodings of an archived response body.

We decode here rather than with FastWARC's `auto_decode` so that each failure becomes a
named drop reason, and so that decompression stops at `max_bytes` (no gzip bombs).
"""

from __future__ import annotations

import zlib

import brotli


class BodyDecodeError(ValueError):
    """A body that claims an encoding it does not have; `reason` is the drop reason."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def dechunk(body: bytes) -> bytes:
    """Decode `Transfer-Encoding: chunked`; return `body` unchanged when it is not chunked.

    Archives often store the de-chunked body but keep the header, so a body whose first
    line is not a hex chunk size is taken as already decoded. A body cut inside a chunk
    (a truncated record) keeps the bytes read so far.
    """
    out = bytearray()
    position = 0
    first = True
    while position < len(body):
        line_end = body.find(b"\n", position)
        if line_end < 0:
            if first:
                return body
            break
        size_text = body[position:line_end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            if first:
                return body
            raise BodyDecodeError("bad_chunked_encoding", f"chunk size {size_text[:20]!r} at byte {position}")
        first = False
        if size == 0:
            break
        start = line_end + 1
        out += body[start:start + size]
        position = start + size
        # Skip the CRLF (or bare LF) that ends the chunk data.
        if body[position:position + 2] == b"\r\n":
            position += 2
        elif body[position:position + 1] == b"\n":
            position += 1
    return bytes(out)


def decompress(body: bytes, encoding: str, max_bytes: int) -> bytes:
    """Undo one Content-Encoding (gzip, x-gzip, deflate, br); stop after `max_bytes` of output."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity", "none"):
        return body
    if encoding == "br":
        return decompress_brotli(body, max_bytes)
    if encoding in ("gzip", "x-gzip"):
        return decompress_zlib(body, zlib.MAX_WBITS | 32, encoding, max_bytes)
    if encoding == "deflate":
        # Servers send both zlib-wrapped and raw deflate under this name.
        try:
            return decompress_zlib(body, zlib.MAX_WBITS, encoding, max_bytes)
        except BodyDecodeError:
            return decompress_zlib(body, -zlib.MAX_WBITS, encoding, max_bytes)
    raise BodyDecodeError("unsupported_content_encoding", encoding)


def decompress_zlib(body: bytes, wbits: int, encoding: str, max_bytes: int) -> bytes:
    decompressor = zlib.decompressobj(wbits)
    try:
        out = decompressor.decompress(body, max_bytes)
    except zlib.error as error:
        raise BodyDecodeError("bad_content_encoding", f"{encoding}: {error}") from error
    if not out and not decompressor.eof:
        raise BodyDecodeError("bad_content_encoding", f"{encoding}: no data could be decompressed")
    return out


def decompress_brotli(body: bytes, max_bytes: int) -> bytes:
    decompressor = brotli.Decompressor()
    try:
        out = decompressor.process(body, output_buffer_limit=max_bytes)
    except TypeError:
        # brotli releases before 1.1 have no output limit; cut after decoding.
        out = decompressor.process(body)[:max_bytes]
    except brotli.error as error:
        raise BodyDecodeError("bad_content_encoding", f"br: {error}") from error
    return out


def looks_like_markup(body: bytes) -> bool:
    return body[:512].lstrip()[:1] == b"<"


def decode_body(body: bytes, transfer_encoding: str | None, content_encoding: str | None, max_bytes: int) -> bytes:
    """Return the entity body with transfer- and content-encodings removed.

    When the stored body is already plain markup although a Content-Encoding header says
    otherwise (crawlers often store the decoded body), the body is used as it is.
    """
    if transfer_encoding and "chunked" in transfer_encoding.lower():
        body = dechunk(body)
    if content_encoding:
        for encoding in reversed([part for part in content_encoding.split(",") if part.strip()]):
            try:
                body = decompress(body, encoding, max_bytes)
            except BodyDecodeError:
                if looks_like_markup(body):
                    return body
                raise
    return body
