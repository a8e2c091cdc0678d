"""`python -m pipeline stats`: the per-stage table of a run, as text, JSON or an HTML report."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.stats_table import format_stats

NAME = "stats"
HELP = "print documents in and out, drops by reason and seconds per stage of a run"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("--json", action="store_true", help="print stats.json instead of the table")
    parser.add_argument("--html", metavar="REPORT.html", help="also write the self-contained HTML report here")


def main(args: argparse.Namespace) -> int:
    path = Path(args.run_dir) / "stats.json"
    if not path.exists():
        print(f"error: {path} not found; run `python -m pipeline run INPUT -o {args.run_dir}` first", file=sys.stderr)
        return 2
    stats = json.loads(path.read_text(encoding="utf-8"))
    print(json.dumps(stats, indent=2) if args.json else format_stats(stats))
    if args.html:
        from pipeline.report import write_report

        write_report(args.run_dir, args.html)
        print(f"wrote {args.html}", file=sys.stderr)
    return 0
