"""`fetch` against a local HTTP server on 127.0.0.1 that serves real WARC files, with injected faults.

The server answers Range requests with 206 and Content-Range. A test can queue faults per
path: the next request for it then gets a 503 or 429, a connection cut after N body bytes,
a 200 that ignores the Range header, or a wrong Content-Range.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import re
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from pipeline import fetch
from pipeline.cli import main as cli_main
from pipeline.fetch import FetchError, RetryPolicy

WARC_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "warc"
CRAWL = "CC-MAIN-2020-34"
SERVED = ["cc-main-2020-34-sample.warc.gz", "wget-crawl-en-0000.warc.gz", "wget-crawl-en-0001.warc.gz", "redirects-and-ru.warc.gz", "archive-org-2008.warc.gz"]
FAST = RetryPolicy(max_tries=4, backoff_s=0.01, max_backoff_s=0.05, timeout_s=10)
RANGE_HEADER = re.compile(r"^bytes=(\d+)-(\d*)$")


class CrawlHandler(BaseHTTPRequestHandler):
    """Serve files under the server's root with Range support and the faults queued for each path."""

    server: "CrawlServer"

    def do_GET(self):  # noqa: N802 (http.server's method name)
        path = self.path.split("?", 1)[0]
        self.server.requests.append((path, self.headers.get("Range")))
        fault = self.server.next_fault(path)
        if fault in ("503", "429"):
            self.send_response(int(fault))
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        file = (self.server.root / path.lstrip("/")).resolve()
        if self.server.root not in file.parents or not file.is_file():
            self.send_error(404)
            return
        data = file.read_bytes()
        self.send_body(data, fault)

    def send_body(self, data: bytes, fault: str | None) -> None:
        match = RANGE_HEADER.match(self.headers.get("Range") or "")
        if match and fault != "ignore_range":
            first = int(match.group(1))
            last = min(int(match.group(2)) if match.group(2) else len(data) - 1, len(data) - 1)
            if first >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if fault == "wrong_range":
                first += 1
            body = data[first:last + 1]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {first}-{last}/{len(data)}")
        else:
            body = data
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if fault and fault.startswith("cut:"):
            self.wfile.write(body[: int(fault.split(":")[1])])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
        pass


class CrawlServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path):
        super().__init__(("127.0.0.1", 0), CrawlHandler)
        self.root = root.resolve()
        self.requests: list[tuple[str, str | None]] = []
        self.faults: dict[str, list[str]] = {}
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def next_fault(self, path: str) -> str | None:
        with self.lock:
            queue = self.faults.get(path)
            return queue.pop(0) if queue else None

    def requests_for(self, name: str) -> list[str | None]:
        return [range_header for path, range_header in self.requests if path.endswith("/" + name)]


def warc_path(name: str) -> str:
    return f"crawl-data/{CRAWL}/segments/1598400187354.1/warc/{name}"


@pytest.fixture
def server(tmp_path):
    """A crawl server on 127.0.0.1 whose warc.paths.gz lists copies of real WARC files."""
    root = tmp_path / "www"
    listing = []
    for name in SERVED:
        target = root / warc_path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(WARC_DIR / name, target)
        listing.append(warc_path(name))
    (root / f"crawl-data/{CRAWL}/warc.paths.gz").write_bytes(gzip.compress(("\n".join(listing) + "\n").encode()))
    crawl_server = CrawlServer(root)
    thread = threading.Thread(target=crawl_server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield crawl_server
    crawl_server.shutdown()
    crawl_server.server_close()


def source_bytes(name: str) -> bytes:
    return (WARC_DIR / name).read_bytes()


def record_offsets(data_path: Path) -> list[int]:
    """Return the offset of every record in a gzipped WARC, read by warcio."""
    with open(data_path, "rb") as stream:
        iterator = ArchiveIterator(stream)
        offsets = []
        for _ in iterator:
            offsets.append(iterator.get_record_offset())
    return offsets


def download_one(server, tmp_path, name, max_bytes=None, policy=FAST) -> Path:
    return fetch.download(server.base_url + warc_path(name), tmp_path / "out" / name, max_bytes, policy)


def test_fetch_whole_files_match_source(server, tmp_path):
    paths = fetch.fetch_crawl(CRAWL, tmp_path / "out", files=2, seed=1, base_url=server.base_url, policy=FAST)
    assert len(paths) == 2
    for path in paths:
        assert path.read_bytes() == source_bytes(path.name)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths)


def test_fetch_same_seed_same_files(server, tmp_path):
    first = fetch.fetch_crawl(CRAWL, tmp_path / "a", files=2, seed=5, base_url=server.base_url, policy=FAST)
    second = fetch.fetch_crawl(CRAWL, tmp_path / "b", files=2, seed=5, base_url=server.base_url, policy=FAST)
    assert [p.name for p in first] == [p.name for p in second]


def test_fetch_prefix_ends_at_member_boundary(server, tmp_path):
    name = "archive-org-2008.warc.gz"
    path = download_one(server, tmp_path, name, max_bytes=300_000)
    data = path.read_bytes()
    assert server.requests_for(name) == ["bytes=0-299999"]
    assert 0 < len(data) <= 300_000
    assert source_bytes(name).startswith(data)
    assert len(data) in record_offsets(WARC_DIR / name)


def test_fetch_prefix_is_readable_warc(server, tmp_path):
    path = download_one(server, tmp_path, "archive-org-2008.warc.gz", max_bytes=200_000)
    with open(path, "rb") as stream:
        records = [record.rec_type for record in ArchiveIterator(stream)]
    assert records[0] == "warcinfo"
    assert len(records) > 10
    assert gzip.decompress(path.read_bytes())


def test_fetch_max_bytes_above_size_keeps_whole_file(server, tmp_path):
    name = "cc-main-2020-34-sample.warc.gz"
    path = download_one(server, tmp_path, name, max_bytes=10_000_000)
    assert path.read_bytes() == source_bytes(name)


def test_fetch_retries_after_503(server, tmp_path):
    name = "wget-crawl-en-0000.warc.gz"
    server.faults["/" + warc_path(name)] = ["503"]
    path = download_one(server, tmp_path, name)
    assert path.read_bytes() == source_bytes(name)
    assert len(server.requests_for(name)) == 2


def test_fetch_retries_listing_after_429(server, tmp_path):
    server.faults[f"/crawl-data/{CRAWL}/warc.paths.gz"] = ["429", "503"]
    paths = fetch.fetch_crawl(CRAWL, tmp_path / "out", files=1, base_url=server.base_url, policy=FAST)
    assert len(paths) == 1
    assert len(server.requests_for("warc.paths.gz")) == 3


def test_fetch_gives_up_after_max_tries(server, tmp_path):
    name = "wget-crawl-en-0000.warc.gz"
    server.faults["/" + warc_path(name)] = ["503"] * 10
    with pytest.raises(FetchError, match="failed after 4 tries in a row: HTTP 503"):
        download_one(server, tmp_path, name)
    assert len(server.requests_for(name)) == 4


def test_fetch_resumes_after_connection_cut(server, tmp_path):
    name = "archive-org-2008.warc.gz"
    server.faults["/" + warc_path(name)] = ["cut:700000"]
    path = download_one(server, tmp_path, name)
    assert path.read_bytes() == source_bytes(name)
    assert server.requests_for(name) == [None, "bytes=700000-"]


def test_fetch_interrupted_run_resumes_same_bytes(server, tmp_path):
    name = "archive-org-2008.warc.gz"
    server.faults["/" + warc_path(name)] = ["cut:1000000"]
    with pytest.raises(FetchError, match="connection closed after 1,000,000 bytes"):
        download_one(server, tmp_path, name, policy=RetryPolicy(max_tries=1, timeout_s=10))
    part = tmp_path / "out" / (name + ".part")
    assert part.stat().st_size == 1_000_000
    assert not (tmp_path / "out" / name).exists()

    path = download_one(server, tmp_path, name)
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(source_bytes(name)).digest()
    assert server.requests_for(name)[-1] == "bytes=1000000-"
    assert not part.exists()


def test_fetch_prefix_resumes_after_cut(server, tmp_path):
    name = "archive-org-2008.warc.gz"
    server.faults["/" + warc_path(name)] = ["cut:50000"]
    path = download_one(server, tmp_path, name, max_bytes=300_000)
    assert server.requests_for(name) == ["bytes=0-299999", "bytes=50000-299999"]
    assert source_bytes(name).startswith(path.read_bytes())
    assert path.stat().st_size in record_offsets(WARC_DIR / name)


def test_fetch_restarts_when_range_ignored(server, tmp_path):
    name = "wget-crawl-en-0001.warc.gz"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / (name + ".part")).write_bytes(b"x" * 1000)
    server.faults["/" + warc_path(name)] = ["ignore_range"]
    path = download_one(server, tmp_path, name)
    assert path.read_bytes() == source_bytes(name)
    assert server.requests_for(name) == ["bytes=1000-"]


def test_fetch_rejects_wrong_content_range(server, tmp_path):
    name = "wget-crawl-en-0001.warc.gz"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / (name + ".part")).write_bytes(source_bytes(name)[:1000])
    server.faults["/" + warc_path(name)] = ["wrong_range"]
    with pytest.raises(FetchError, match="requested bytes from 1000 but Content-Range is 'bytes 1001-"):
        download_one(server, tmp_path, name)


def test_fetch_complete_part_finishes_on_416(server, tmp_path):
    name = "redirects-and-ru.warc.gz"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / (name + ".part")).write_bytes(source_bytes(name))
    path = download_one(server, tmp_path, name)
    assert path.read_bytes() == source_bytes(name)
    assert server.requests_for(name) == [f"bytes={len(source_bytes(name))}-"]


def test_fetch_missing_file_not_retried(server, tmp_path):
    with pytest.raises(FetchError, match="HTTP 404"):
        download_one(server, tmp_path, "absent.warc.gz")
    assert len(server.requests_for("absent.warc.gz")) == 1


def test_fetch_skips_finished_file(server, tmp_path):
    fetch.fetch_crawl(CRAWL, tmp_path / "out", files=1, seed=2, base_url=server.base_url, policy=FAST)
    count = len(server.requests)
    fetch.fetch_crawl(CRAWL, tmp_path / "out", files=1, seed=2, base_url=server.base_url, policy=FAST)
    assert len(server.requests) == count + 1  # only the listing again


def test_fetch_listing_skips_unsafe_lines(server, tmp_path, caplog):
    lines = ["../../etc/passwd", "http://evil.example/x.warc.gz?token=1", "/abs/x.warc.gz", "a/.hidden", warc_path(SERVED[0])]
    (server.root / f"crawl-data/{CRAWL}/warc.paths.gz").write_bytes(gzip.compress("\n".join(lines).encode()))
    with caplog.at_level(logging.WARNING, logger="pipeline.fetch"):
        paths = fetch.fetch_crawl(CRAWL, tmp_path / "out", files=5, base_url=server.base_url, policy=FAST)
    assert [p.name for p in paths] == [SERVED[0]]
    assert "skipped 4 unsafe lines" in caplog.text


@pytest.mark.parametrize("path", ["a/../b.warc.gz", "x.warc.gz?q=1", "a b.warc.gz", "a/", "", "a/..", "dir/.warc.gz", "a\\b.gz"])
def test_output_name_rejects_unsafe_path(path):
    with pytest.raises(FetchError):
        fetch.output_name(path)


def test_output_name_is_basename():
    assert fetch.output_name(warc_path("CC-MAIN-x-00001.warc.gz")) == "CC-MAIN-x-00001.warc.gz"


@pytest.mark.parametrize("crawl", ["CC-MAIN-2024", "../CC-MAIN-2024-22", "cc-main-2024-22", "CC-MAIN-2024-22/x"])
def test_fetch_rejects_invalid_crawl_name(crawl, tmp_path):
    with pytest.raises(FetchError, match="invalid crawl name"):
        fetch.fetch_crawl(crawl, tmp_path, base_url="http://127.0.0.1:9/")


def test_complete_gzip_prefix_at_every_cut(tmp_path):
    name = "cc-main-2020-34-sample.warc.gz"
    data = source_bytes(name)
    boundaries = record_offsets(WARC_DIR / name) + [len(data)]
    for cut in [0, 10, boundaries[1] - 1, boundaries[1], boundaries[1] + 1, boundaries[5] + 77, len(data) - 1, len(data)]:
        prefix = tmp_path / f"cut-{cut}.gz"
        prefix.write_bytes(data[:cut])
        expected = max(b for b in [0] + boundaries if b <= cut)
        assert fetch.complete_gzip_prefix(prefix, chunk_bytes=4096) == expected, cut


def test_complete_gzip_prefix_rejects_plain_file(tmp_path):
    path = tmp_path / "plain.warc"
    path.write_bytes((WARC_DIR / "cc-main-2014-35-sample.warc").read_bytes()[:5000])
    with pytest.raises(FetchError, match="invalid gzip data"):
        fetch.complete_gzip_prefix(path)


@pytest.mark.parametrize("text, expected", [("1000", 1000), ("50MB", 50_000_000), ("50m", 50_000_000),
                                            ("64MiB", 64 * 2**20), ("1.5G", 1_500_000_000), ("20 KB", 20_000)])
def test_parse_size(text, expected):
    assert fetch.parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "MB", "5XB", "-5", "1e6"])
def test_parse_size_rejects_invalid(text):
    with pytest.raises(ValueError):
        fetch.parse_size(text)


def test_retry_policy_delay_doubles_and_caps():
    policy = RetryPolicy(backoff_s=1.0, max_backoff_s=5.0)
    assert 1.0 <= policy.delay_s(1, None) <= 1.25
    assert 4.0 <= policy.delay_s(3, None) <= 5.0
    assert 5.0 <= policy.delay_s(10, None) <= 6.25
    assert policy.delay_s(1, 30.0) == 5.0


def test_fetch_command_end_to_end(server, tmp_path, capsys):
    out = tmp_path / "cli"
    code = cli_main(["fetch", "--crawl", CRAWL, "--files", "2", "--max-bytes", "100KB", "--seed", "3",
                     "--base-url", server.base_url, "--max-tries", "2", "-o", str(out)])
    printed = capsys.readouterr().out.split()
    assert code == 0
    assert len(printed) == 2
    for line in printed:
        path = Path(line)
        assert path.parent == out
        assert 0 < path.stat().st_size <= 100_000
        assert source_bytes(path.name).startswith(path.read_bytes())


def test_fetch_command_reports_error(server, tmp_path, capsys):
    code = cli_main(["fetch", "--crawl", "CC-MAIN-1999-01", "--base-url", server.base_url, "-o", str(tmp_path / "cli")])
    assert code == 1
    assert "HTTP 404" in capsys.readouterr().err
