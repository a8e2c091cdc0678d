"""Transfer- and content-decoding of HTTP bodies."""

import gzip
import zlib

import brotli
import pytest

from pipeline.readers.http import BodyDecodeError, decode_body, dechunk

PAGE = b"<html><body><p>Hello, chunked world.</p></body></html>"


def chunked(body: bytes, size: int = 7) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size]) for i in range(0, len(body), size)]
    return b"".join(parts) + b"0\r\n\r\n"


def test_dechunk_restores_body():
    assert dechunk(chunked(PAGE)) == PAGE


def test_dechunk_keeps_unchunked_body():
    assert dechunk(PAGE) == PAGE


def test_dechunk_bad_size_mid_body():
    broken = chunked(PAGE)[:20] + b"zz\r\nmore"
    with pytest.raises(BodyDecodeError) as error:
        dechunk(chunked(PAGE)[:12] + b"\r\nzz\r\nmore\r\n")
    assert error.value.reason == "bad_chunked_encoding"
    assert broken


@pytest.mark.parametrize("encoding,encode", [
    ("gzip", gzip.compress),
    ("x-gzip", gzip.compress),
    ("deflate", zlib.compress),
    ("deflate", lambda data: zlib.compress(data)[2:-4]),
    ("br", brotli.compress),
])
def test_content_encodings(encoding, encode):
    assert decode_body(encode(PAGE), None, encoding, 10_000_000) == PAGE


def test_chunked_then_gzip():
    assert decode_body(chunked(gzip.compress(PAGE)), "chunked", "gzip", 10_000_000) == PAGE


def test_claims_gzip_but_is_plain_markup():
    assert decode_body(PAGE, None, "gzip", 10_000_000) == PAGE


def test_claims_gzip_but_is_garbage():
    with pytest.raises(BodyDecodeError) as error:
        decode_body(b"\x00\x01garbage that is not gzip", None, "gzip", 10_000_000)
    assert error.value.reason == "bad_content_encoding"


def test_decompression_stops_at_limit():
    bomb = gzip.compress(b"a" * 5_000_000)
    assert len(decode_body(bomb, None, "gzip", 1000)) == 1000
