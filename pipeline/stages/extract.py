"""HTML to plain text with resiliparse, decoding bytes by the HTTP charset, the meta tag, then detection.

The output text is always valid UTF-8: bytes that do not decode in the chosen charset
become U+FFFD. WET rows arrive with `text` set and pass through unchanged.
"""

from __future__ import annotations

import codecs
import re

import pyarrow as pa
from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.encoding import detect_encoding, map_encoding_to_html5
from resiliparse.parse.html import HTMLTree

from pipeline.stages.base import StageOutput
from pipeline.stages.boilerplate import clean_text

META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_\-:.]+)""", re.IGNORECASE)
CONTROL_BYTES = bytes(range(0x00, 0x09)) + b"\x0e\x0f" + bytes(range(0x10, 0x1b)) + b"\x1c\x1d\x1e\x1f\x7f"
TEXT_BYTES = bytes(value for value in range(256) if value not in CONTROL_BYTES)
BINARY_SIGNATURES = (b"%PDF", b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"PK\x03\x04", b"\x1f\x8b", b"RIFF", b"\x00\x00\x01\x00")


def normalize_charset(name: str | None) -> str | None:
    """Map a charset label to a Python codec by WHATWG rules (gb2312 -> gbk, latin-1 -> cp1252)."""
    if not name:
        return None
    mapped = map_encoding_to_html5(name.strip().lower())
    if not mapped:
        return None
    try:
        return codecs.lookup(mapped).name
    except LookupError:
        return None


def decodes_cleanly(body: bytes, charset: str) -> bool:
    try:
        body.decode(charset)
    except (UnicodeDecodeError, LookupError):
        return False
    return True


def choose_charset(body: bytes, http_charset: str | None) -> tuple[str, str]:
    """Return (codec, source) where source is `http`, `meta` or `detected`.

    A declared charset that fails to decode the body strictly is skipped, because servers
    often declare utf-8 over windows-1252 bytes.
    """
    declared = normalize_charset(http_charset)
    match = META_CHARSET.search(body[:4096])
    meta = normalize_charset(match.group(1).decode("ascii", "ignore")) if match else None
    declared_fits = bool(declared) and decodes_cleanly(body, declared)
    meta_fits = bool(meta) and decodes_cleanly(body, meta)
    if declared_fits and meta_fits and declared != meta:
        # Single-byte charsets decode any bytes, so a server default such as iso-8859-1 over a
        # windows-1251 page "fits" too; the detector decides between the two declarations.
        detected = normalize_charset(detect_encoding(body))
        if detected == meta:
            return meta, "meta"
    if declared_fits:
        return declared, "http"
    if meta_fits:
        return meta, "meta"
    detected = normalize_charset(detect_encoding(body)) or "utf-8"
    return detected, "detected"


def looks_binary(body: bytes) -> bool:
    """True for bodies that are not text: known file signatures, many NUL bytes or control bytes."""
    head = body[:4096].lstrip()
    if head.startswith(BINARY_SIGNATURES):
        return True
    if head.count(b"\x00") > len(head) // 100:
        return True
    # Text in any charset but UTF-16/32 has almost no C0 control bytes besides whitespace.
    return len(head.translate(None, TEXT_BYTES)) > len(head) // 10


def longest_line(body: bytes) -> int:
    """Return the length in bytes of the longest line of `body` (lines end at LF or CR)."""
    return max(len(line) for line in body.replace(b"\r", b"\n").split(b"\n"))


class Extract:
    """Adds `text` (and `charset`, `charset_source`) from the `html` bytes of each row."""

    name = "extract"

    def __init__(self, main_content: bool = True, preserve_formatting: bool = True, list_bullets: bool = True,
                 alt_texts: bool = False, comments: bool = False, post_meta: bool = False,
                 clean_boilerplate: bool = True, min_text_chars: int = 1, max_html_bytes: int = 5_000_000,
                 max_line_bytes: int = 1_000_000, **unused):
        self.options = dict(
            main_content=main_content,
            preserve_formatting=preserve_formatting,
            list_bullets=list_bullets,
            alt_texts=alt_texts,
            comments=comments,
            post_meta=post_meta,
        )
        # The trimming works on the blank lines between blocks, so it needs formatting kept.
        self.clean_boilerplate = clean_boilerplate and main_content and preserve_formatting
        self.min_text_chars = min_text_chars
        self.max_html_bytes = max_html_bytes
        self.max_line_bytes = max_line_bytes

    def extract_one(self, html: bytes, http_charset: str | None) -> tuple[str, str, str, str | None]:
        """Return (text, charset, charset_source, reason)."""
        if looks_binary(html):
            return "", "", "", "binary_body"
        if len(html) > self.max_html_bytes:
            return "", "", "", "html_too_large"
        if len(html) > self.max_line_bytes and longest_line(html) > self.max_line_bytes:
            return "", "", "", "line_too_long"
        charset, source = choose_charset(html, http_charset)
        # Invalid bytes become U+FFFD, so the text is valid UTF-8 whatever the input.
        decoded = html.decode(charset, errors="replace").replace("\x00", "").lstrip("\ufeff")
        tree = HTMLTree.parse(decoded)
        text = extract_plain_text(tree, **self.options).replace("\ufeff", "").strip()
        if self.clean_boilerplate:
            text = clean_text(text)
        if len(text) < self.min_text_chars:
            return text, charset, source, "empty_text"
        return text, charset, source, None

    def __call__(self, table: pa.Table) -> StageOutput:
        htmls = table.column("html").to_pylist()
        charsets = table.column("http_charset").to_pylist()
        texts = table.column("text").to_pylist()
        out_text, out_charset, out_source, reasons = [], [], [], []
        for html, http_charset, text in zip(htmls, charsets, texts):
            if html is None:
                text = (text or "").strip()
                out_text.append(text)
                out_charset.append("utf-8")
                out_source.append("wet")
                reasons.append(None if len(text) >= self.min_text_chars else "empty_text")
                continue
            text, charset, source, reason = self.extract_one(html, http_charset)
            out_text.append(text)
            out_charset.append(charset)
            out_source.append(source)
            reasons.append(reason)

        table = table.drop_columns(["html", "text"])
        table = table.append_column("text", pa.array(out_text, pa.string()))
        table = table.append_column("charset", pa.array(out_charset, pa.string()))
        table = table.append_column("charset_source", pa.array(out_source, pa.string()))
        return StageOutput(table, reasons)
