"""`python -m pipeline fetch`: download a seeded sample of one Common Crawl crawl's WARC or WET files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.fetch import DEFAULT_BASE_URL, FetchError, RetryPolicy, fetch_crawl, parse_size

NAME = "fetch"
HELP = "download a few WARC or WET files of a Common Crawl crawl, whole or cut to a prefix"


def size_argument(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--crawl", required=True, help="crawl name, like CC-MAIN-2024-22")
    parser.add_argument("--files", type=int, default=1, help="number of files to pick from the crawl's listing (default 1)")
    parser.add_argument("--max-bytes", type=size_argument, default=None, metavar="B",
                        help="download only the first B bytes of each file (like 50MB or 64MiB), cut back to the "
                             "last complete gzip member so the file stays a valid WARC; default: whole files")
    parser.add_argument("--wet", action="store_true", help="fetch WET text files (wet.paths.gz) instead of WARC files")
    parser.add_argument("--seed", type=int, default=0, help="seed for picking files from the listing (default 0)")
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL, help=f"server to download from (default {DEFAULT_BASE_URL})")
    parser.add_argument("--max-tries", type=int, default=5,
                        help="failed requests in a row per file before giving up (default 5); 429, 5xx and "
                             "connection errors are retried with exponential backoff")
    parser.add_argument("--timeout-s", type=float, default=60.0, help="socket timeout in seconds (default 60)")
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="DIR",
                        help="folder for the files; a rerun skips finished files and resumes *.part files")


def main(args: argparse.Namespace) -> int:
    if args.max_tries < 1:
        print(f"error: --max-tries must be at least 1, got {args.max_tries}", file=sys.stderr)
        return 2
    policy = RetryPolicy(max_tries=args.max_tries, timeout_s=args.timeout_s)
    try:
        paths = fetch_crawl(args.crawl, args.output, files=args.files, max_bytes=args.max_bytes, wet=args.wet,
                            seed=args.seed, base_url=args.base_url, policy=policy)
    except FetchError as error:
        print(f"error: {error}", file=sys.stderr)
        if any(args.output.glob("*.part")):
            print(f"partial downloads stay in {args.output} as *.part; rerun the same command to resume them", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0
