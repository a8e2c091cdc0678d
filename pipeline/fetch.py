"""Download Common Crawl WARC or WET files, whole or as a prefix cut at a gzip member boundary.

A download writes `<name>.part`, resumes it with an HTTP Range request, retries with
exponential backoff on 429, 5xx and connection errors, checks the size the server announced
and renames the file into place only when it is complete.
"""

from __future__ import annotations

import gzip
import http.client
import logging
import os
import random
import re
import time
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

from tqdm import tqdm

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://data.commoncrawl.org/"
CRAWL_PATTERN = re.compile(r"^CC-MAIN-\d{4}-\d{2}$")
# A listing line must be a relative path of these characters; anything else is skipped.
SAFE_PATH = re.compile(r"^[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*$")
MAX_NAME_CHARS = 200
RETRY_STATUSES = {429, 500, 502, 503, 504}
CHUNK_BYTES = 1 << 16
USER_AGENT = "crawl-pipeline-fetch/0.1"
CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
UNSATISFIED_RANGE = re.compile(r"^bytes \*/(\d+)$")

T = TypeVar("T")


class FetchError(RuntimeError):
    """A download that failed for good; the message names the URL or file and the cause."""


class TransientError(Exception):
    """A failure worth retrying: 429, 5xx, a reset or a connection closed early."""

    def __init__(self, message: str, retry_after_s: float | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a request."""

    max_tries: int = 5          # failed attempts in a row before giving up; progress resets the count
    backoff_s: float = 1.0      # wait before the first retry, doubled for each further one
    max_backoff_s: float = 60.0
    timeout_s: float = 60.0     # socket timeout for connecting and for each read

    def delay_s(self, failures: int, retry_after_s: float | None) -> float:
        """Return the wait before retry number `failures`: Retry-After if sent, else backoff with 0-25% jitter."""
        if retry_after_s is not None:
            return min(retry_after_s, self.max_backoff_s)
        delay = min(self.backoff_s * 2 ** (failures - 1), self.max_backoff_s)
        return delay * (1 + random.random() / 4)


@dataclass
class Attempt:
    """The outcome of one request for the rest of a file."""

    done: bool                  # the .part file contains every requested byte
    total_bytes: int | None     # the whole file's size, when the server sent it


def with_retries(action: Callable[[], T], policy: RetryPolicy, description: str, progress: Callable[[], int] = lambda: 0) -> T:
    """Call `action` until it returns, retrying TransientError up to `policy.max_tries` failures in a row.

    `progress` returns a number that grows when an attempt made progress (bytes on disk);
    a failed attempt that made progress does not count against `max_tries`.
    """
    failures = 0
    while True:
        before = progress()
        try:
            return action()
        except TransientError as error:
            failures = 1 if progress() > before else failures + 1
            if failures >= policy.max_tries:
                raise FetchError(f"{description}: failed after {failures} tries in a row: {error}") from error
            delay = policy.delay_s(failures, error.retry_after_s)
            logger.warning("%s: %s; retry %d of %d in %.1f s", description, error, failures, policy.max_tries - 1, delay)
            time.sleep(delay)


def open_url(url: str, headers: dict[str, str], timeout_s: float) -> http.client.HTTPResponse:
    """Send a GET request; raise TransientError for retryable failures and FetchError for the rest."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **headers})
    try:
        return urllib.request.urlopen(request, timeout=timeout_s)  # noqa: S310 (the scheme is checked in check_base_url)
    except urllib.error.HTTPError as error:
        error.close()
        if error.code in RETRY_STATUSES:
            raise TransientError(f"HTTP {error.code} {error.reason}", retry_after(error.headers.get("Retry-After"))) from error
        raise
    except (urllib.error.URLError, ConnectionError, TimeoutError, http.client.HTTPException) as error:
        raise TransientError(f"connection failed: {getattr(error, 'reason', error)}") from error


def retry_after(value: str | None) -> float | None:
    """Return a Retry-After header given in seconds; the HTTP-date form is ignored."""
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())


def fetch_bytes(url: str, policy: RetryPolicy) -> bytes:
    """Download a small file into memory, with retries."""

    def attempt() -> bytes:
        try:
            with open_url(url, {}, policy.timeout_s) as response:
                data = response.read()
        except urllib.error.HTTPError as error:
            raise FetchError(f"{url}: HTTP {error.code} {error.reason}") from error
        except (OSError, http.client.HTTPException) as error:
            raise TransientError(f"connection failed while reading: {error!r}") from error
        return data

    return with_retries(attempt, policy, url)


def check_base_url(base_url: str) -> str:
    """Return `base_url` ending in a slash; raise FetchError unless it is an http(s) URL."""
    if not re.match(r"^https?://[^/?#]+", base_url):
        raise FetchError(f"invalid base URL {base_url!r}; expected http:// or https:// and a host, like {DEFAULT_BASE_URL}")
    return base_url if base_url.endswith("/") else base_url + "/"


def listing_url(base_url: str, crawl: str, wet: bool) -> str:
    if not CRAWL_PATTERN.match(crawl):
        raise FetchError(f"invalid crawl name {crawl!r}; expected CC-MAIN-YYYY-WW, for example CC-MAIN-2024-22")
    return f"{check_base_url(base_url)}crawl-data/{crawl}/{'wet' if wet else 'warc'}.paths.gz"


def parse_listing(data: bytes, url: str) -> list[str]:
    """Return the safe relative paths of a gzipped paths listing, skipping (and counting) the others."""
    try:
        lines = gzip.decompress(data).decode("utf-8").splitlines()
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise FetchError(f"{url}: not a gzipped UTF-8 paths listing: {error}") from error
    paths, unsafe = [], []
    for line in (line.strip() for line in lines):
        if not line:
            continue
        if is_safe_path(line):
            paths.append(line)
        else:
            unsafe.append(line)
    if unsafe:
        logger.warning("%s: skipped %d unsafe lines, the first being %r", url, len(unsafe), unsafe[0][:200])
    if not paths:
        raise FetchError(f"{url}: the listing names no files")
    return paths


def is_safe_path(path: str) -> bool:
    parts = path.split("/")
    return bool(SAFE_PATH.match(path)) and all(part not in (".", "..") for part in parts) and not parts[-1].startswith(".") \
        and len(parts[-1]) <= MAX_NAME_CHARS


def output_name(path: str) -> str:
    """Return the local file name for a listing path: its basename, which is_safe_path has vetted."""
    if not is_safe_path(path):
        raise FetchError(f"unsafe path in listing: {path[:200]!r}")
    return path.rsplit("/", 1)[-1]


def choose_paths(paths: list[str], count: int, seed: int) -> list[str]:
    """Pick `count` paths at random with `seed`; return them in listing order."""
    if count >= len(paths):
        return list(paths)
    picked = random.Random(seed).sample(range(len(paths)), count)
    return [paths[index] for index in sorted(picked)]


def parse_content_range(value: str | None, url: str) -> tuple[int, int, int | None]:
    """Return (first, last, total) from `bytes first-last/total`; total is None for `*`."""
    match = CONTENT_RANGE.match((value or "").strip())
    if not match:
        raise FetchError(f"{url}: 206 response with invalid Content-Range {value!r}")
    first, last, total = match.groups()
    return int(first), int(last), None if total == "*" else int(total)


def request_rest(url: str, part: Path, max_bytes: int | None, timeout_s: float, bar: tqdm) -> Attempt:
    """Request the bytes of `url` not yet in `part` (up to `max_bytes`) and append them."""
    start = part.stat().st_size if part.exists() else 0
    if max_bytes is not None and start >= max_bytes:
        with open(part, "r+b") as handle:
            handle.truncate(max_bytes)
        return Attempt(done=True, total_bytes=None)

    headers = {}
    if start > 0 or max_bytes is not None:
        headers["Range"] = f"bytes={start}-{'' if max_bytes is None else max_bytes - 1}"
    try:
        response = open_url(url, headers, timeout_s)
    except urllib.error.HTTPError as error:
        unsatisfied = UNSATISFIED_RANGE.match(error.headers.get("Content-Range") or "")
        if error.code == 416 and start > 0 and unsatisfied and int(unsatisfied.group(1)) == start:
            return Attempt(done=True, total_bytes=start)
        if error.code == 416 and start > 0:
            part.unlink()
            raise TransientError(f"HTTP 416 for a resume at byte {start}; the file changed, restarting it") from error
        raise FetchError(f"{url}: HTTP {error.code} {error.reason}") from error

    with response:
        first, expected, total = response_range(response, url, start, max_bytes)
        bar.reset(total=min(total, max_bytes or total) if total is not None else max_bytes)
        bar.update(first)
        limit = expected
        if limit is None and max_bytes is not None:
            limit = max_bytes - first
        received = copy_body(response, part, first, limit, bar)
    size = first + received
    if expected is not None and received < expected:
        raise TransientError(f"connection closed after {size:,} bytes, {expected - received:,} bytes short")
    wanted = max_bytes if total is None else total
    if total is not None and max_bytes is not None:
        wanted = min(total, max_bytes)
    return Attempt(done=wanted is None or size >= wanted, total_bytes=total)


def response_range(response: http.client.HTTPResponse, url: str, start: int, max_bytes: int | None) -> tuple[int, int | None, int | None]:
    """Check the response against the requested range; return (first byte, bytes to read, file total).

    The bytes to read and the total are None when the server did not send them.
    """
    length_header = response.headers.get("Content-Length")
    length = int(length_header) if length_header and length_header.isdigit() else None
    if response.status == 206:
        first, last, total = parse_content_range(response.headers.get("Content-Range"), url)
        if first not in (start, 0):
            raise FetchError(f"{url}: requested bytes from {start} but Content-Range is {response.headers.get('Content-Range')!r}")
        if length is not None and length != last - first + 1:
            raise FetchError(f"{url}: Content-Length {length} does not match Content-Range {response.headers.get('Content-Range')!r}")
        if first == 0 and start > 0:
            logger.warning("%s: server restarted the range at byte 0; downloading again from the start", url)
        return first, last - first + 1, total
    if response.status == 200:
        if start > 0:
            logger.warning("%s: server ignored the Range request; downloading again from the start", url)
        expected = length if max_bytes is None or length is None else min(length, max_bytes)
        return 0, expected, length
    raise FetchError(f"{url}: unexpected HTTP status {response.status}")


def copy_body(response: http.client.HTTPResponse, part: Path, first: int, limit: int | None, bar: tqdm) -> int:
    """Write the body, or its first `limit` bytes, to `part` from offset `first`; return the count written."""
    received = 0
    with open(part, "r+b" if first > 0 else "wb") as handle:
        handle.seek(first)
        handle.truncate()
        while limit is None or received < limit:
            want = CHUNK_BYTES if limit is None else min(CHUNK_BYTES, limit - received)
            try:
                chunk = response.read(want)
            except (OSError, http.client.HTTPException) as error:
                raise TransientError(f"connection failed after {first + received:,} bytes: {error!r}") from error
            if not chunk:
                break
            handle.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    return received


def complete_gzip_prefix(path: Path, chunk_bytes: int = CHUNK_BYTES) -> int:
    """Return the byte offset where the last complete gzip member of `path` ends (0 when none is complete).

    Each member is inflated with zlib.decompressobj and its output discarded. A member ends
    where zlib sets `eof`, at the input fed so far minus the bytes left in `unused_data`.
    """
    end_of_complete = 0   # file offset just past the last complete member
    offset = 0            # file offset of the first byte of `pending`
    inflater = zlib.decompressobj(wbits=31)
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            pending = chunk
            while pending:
                try:
                    inflate_all(inflater, pending)
                except zlib.error as error:
                    raise FetchError(f"{path}: invalid gzip data after byte {end_of_complete}: {error}") from error
                if not inflater.eof:
                    offset += len(pending)
                    break
                used = len(pending) - len(inflater.unused_data)
                offset += used
                end_of_complete = offset
                pending = inflater.unused_data
                inflater = zlib.decompressobj(wbits=31)
    return end_of_complete


def inflate_all(inflater, data: bytes, max_output: int = 1 << 20) -> None:
    """Feed `data` to `inflater`, discarding output in pieces of at most `max_output` bytes."""
    inflater.decompress(data, max_output)
    while inflater.unconsumed_tail and not inflater.eof:
        inflater.decompress(inflater.unconsumed_tail, max_output)


def download(url: str, dest: Path, max_bytes: int | None = None, policy: RetryPolicy = RetryPolicy()) -> Path:
    """Download `url` to `dest`, or only its first `max_bytes` cut back to the last complete gzip member.

    An existing `dest` counts as complete and is kept. Bytes go to `dest.part` first, so a
    second call after an interruption resumes where the first stopped.
    """
    dest = Path(dest)
    if dest.exists():
        logger.info("%s exists; skipping %s", dest, url)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")

    def size() -> int:
        return part.stat().st_size if part.exists() else 0

    total = None
    with tqdm(desc=dest.name, unit="B", unit_scale=True, unit_divisor=1024, disable=None, leave=False) as bar:
        while True:
            attempt = with_retries(lambda: request_rest(url, part, max_bytes, policy.timeout_s, bar), policy, url, size)
            total = attempt.total_bytes if attempt.total_bytes is not None else total
            if attempt.done:
                break

    truncated = max_bytes is not None and (total is None or total > max_bytes)
    if truncated:
        cut = complete_gzip_prefix(part)
        if cut == 0:
            raise FetchError(f"{url}: no complete gzip member in the first {max_bytes:,} bytes; raise --max-bytes")
        with open(part, "r+b") as handle:
            handle.truncate(cut)
    elif total is not None and size() != total:
        raise FetchError(f"{url}: downloaded {size():,} bytes but the server announced {total:,}")
    os.replace(part, dest)
    suffix = f" (prefix of {total:,})" if truncated and total else ""
    logger.info("fetched %s: %s bytes%s", dest, f"{dest.stat().st_size:,}", suffix)
    return dest


def fetch_crawl(
    crawl: str,
    out_dir: Path,
    files: int = 1,
    max_bytes: int | None = None,
    wet: bool = False,
    seed: int = 0,
    base_url: str = DEFAULT_BASE_URL,
    policy: RetryPolicy = RetryPolicy(),
) -> list[Path]:
    """Download `files` seeded-random WARC (or WET) files of `crawl` into `out_dir`; return their paths."""
    if files < 1:
        raise FetchError(f"--files must be at least 1, got {files}")
    if max_bytes is not None and max_bytes < 1:
        raise FetchError(f"--max-bytes must be positive, got {max_bytes}")
    url = listing_url(base_url, crawl, wet)
    paths = parse_listing(fetch_bytes(url, policy), url)
    chosen = choose_paths(paths, files, seed)
    if files > len(paths):
        logger.warning("%s lists %d files; fetching all of them instead of %d", url, len(paths), files)
    names = [output_name(path) for path in chosen]
    if len(set(names)) != len(names):
        raise FetchError(f"{url}: two chosen paths share a file name; pick another --seed")

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base = check_base_url(base_url)
    results = []
    for number, (path, name) in enumerate(zip(chosen, names), start=1):
        logger.info("file %d of %d: %s", number, len(chosen), path)
        results.append(download(base + path, out_dir / name, max_bytes, policy))
    return results


SIZE_UNITS = {"": 1, "B": 1, "K": 10**3, "KB": 10**3, "KIB": 2**10, "M": 10**6, "MB": 10**6, "MIB": 2**20,
              "G": 10**9, "GB": 10**9, "GIB": 2**30}


def parse_size(text: str) -> int:
    """Return a byte count from `1000`, `50MB`, `50M` or `64MiB` (K, M, G are powers of 1000; KiB, MiB, GiB of 1024)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    unit = match.group(2).upper() if match else None
    if not match or unit not in SIZE_UNITS:
        raise ValueError(f"invalid size {text!r}; use bytes or a number with K, M, G, KiB, MiB or GiB, like 50MB")
    return int(float(match.group(1)) * SIZE_UNITS[unit])
