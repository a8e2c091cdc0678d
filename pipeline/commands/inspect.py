"""`python -m pipeline inspect RUN_DIR`: print sampled kept or rejected documents with their scores.

Long output goes through $PAGER (default `less -R`) when stdout is a terminal.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.cli import positive_int
from pipeline.report import rundir, signals

NAME = "inspect"
HELP = "print sampled documents of a run (kept or rejected) with their scores"

# C0 and C1 control characters except tab and newline: document text must not drive the terminal.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
BOLD, RED, GREEN, RESET = "\x1b[1m", "\x1b[31m", "\x1b[32m", "\x1b[0m"



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run directory written by `pipeline run`")
    parser.add_argument("--reason", help="only documents rejected for this reason, like gopher_min_words (see `stats RUN_DIR`)")
    parser.add_argument("--stage", help="only documents rejected by this stage, like gopher_quality")
    parser.add_argument("--kept", action="store_true", help="only kept documents (documents/)")
    parser.add_argument("-n", type=positive_int, default=5, metavar="N", help="number of documents to show (default 5)")
    parser.add_argument("--url", metavar="PATTERN",
                        help="only documents whose URL matches PATTERN, a regular expression; "
                             "an invalid regular expression matches as a plain substring")
    parser.add_argument("--seed", type=int, default=0, help="seed for the random sample (default 0)")
    parser.add_argument("--lines", type=int, default=8, help="wrapped lines of text per document (default 8)")
    parser.add_argument("--no-pager", action="store_true", help="print directly even when the output is long")


def main(args: argparse.Namespace) -> int:
    if args.kept and (args.reason or args.stage):
        print("error: --kept cannot be combined with --reason or --stage, which select rejected documents", file=sys.stderr)
        return 2
    if not args.run_dir.is_dir():
        print(f"error: run directory {args.run_dir} not found", file=sys.stderr)
        return 2

    rows = select(args)
    if not rows:
        print(f"no documents in {args.run_dir} match {describe(args)}", file=sys.stderr)
        return 1

    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    width = shutil.get_terminal_size((100, 24)).columns
    limits = signals.thresholds(rundir.load_run_config(args.run_dir))
    blocks = [format_document(row, number, len(rows), limits, width, args.lines, color) for number, row in enumerate(rows, 1)]
    show("\n".join(blocks), sys.stdout, use_pager=not args.no_pager)
    return 0


def select(args: argparse.Namespace) -> list[dict]:
    """Return up to `args.n` documents matching the filters, sampled over kept and rejected files alike."""
    files = []
    if not (args.reason or args.stage):
        files += rundir.parquet_files(args.run_dir, rundir.KEPT)
    if not args.kept:
        files += rundir.parquet_files(args.run_dir, rundir.REJECTED)
    filters = {"reason": args.reason, "stage": args.stage}
    columns = tuple(name for name, value in filters.items() if value is not None)
    pattern = rundir.url_matcher(args.url) if args.url else None
    if pattern is not None:
        columns += ("url",)

    def where(table: pa.Table) -> np.ndarray:
        mask = np.ones(table.num_rows, dtype=bool)
        for name, value in filters.items():
            if value is not None:
                mask &= np.array([item == value for item in table.column(name).to_pylist()], dtype=bool)
        if pattern is not None:
            mask &= np.array([bool(url and pattern.search(url)) for url in table.column("url").to_pylist()], dtype=bool)
        return mask

    return rundir.sample_rows(files, args.n, args.seed, where=where, filter_columns=columns).get("", [])


def describe(args: argparse.Namespace) -> str:
    parts = [f"--{name} {value!r}" for name, value in (("reason", args.reason), ("stage", args.stage), ("url", args.url)) if value]
    parts += ["--kept"] if args.kept else []
    return " ".join(parts) or "any filter (the run has no documents)"


def clean(value: object) -> str:
    return CONTROL.sub("\N{REPLACEMENT CHARACTER}", str(value))


def paint(text: str, style: str, color: bool) -> str:
    return f"{style}{text}{RESET}" if color else text


def format_document(row: dict, number: int, total: int, limits: dict, width: int, lines: int, color: bool) -> str:
    """Format one document: a header with status, stage and reason, then url, id, scores and wrapped text."""
    kept = row["_file"].parent.name == rundir.KEPT
    status = paint("kept", GREEN, color) if kept else paint("rejected", RED, color)
    header = f"── [{number}/{total}] {status}"
    if not kept:
        header += f"  stage={clean(row.get('stage'))}  reason={paint(clean(row.get('reason')), BOLD, color)}"
    out = [header,
           f"   url:    {clean(row.get('url') or '?')}",
           f"   id:     {clean(row.get('id') or '?')}   source: {clean(row.get('source') or row['_file'].name)}"]
    scores = format_scores(row, limits, color)
    if scores:
        out += textwrap.wrap(scores, width=max(40, width - 3), initial_indent="   scores: ", subsequent_indent=" " * 11)
    out += text_lines(clean(row.get("text") or ""), width, lines)
    return "\n".join(out) + "\n"


def format_scores(row: dict, limits: dict, color: bool) -> str:
    """Return `name=value` pairs for every score column of the row, marking the ones its reason names."""
    dropped_by = set(signals.reason_columns(row.get("reason"), row)) if row.get("reason") else set()
    columns = [name for name in ("language",) if row.get(name) is not None]
    columns += signals.score_columns([name for name, value in row.items() if value is not None])
    columns += [name for name in dropped_by if name not in columns]
    pairs = []
    for name in columns:
        value = row[name]
        text = f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={clean(value)}"
        if name in dropped_by:
            bounds = ", ".join(f"{'min' if t.is_minimum else 'max'} {t.value:g}" for t in limits.get(name, []))
            text = paint(f"*{text}" + (f" ({bounds})" if bounds else ""), RED, color)
        pairs.append(text)
    return "  ".join(pairs)


def text_lines(text: str, width: int, max_lines: int) -> list[str]:
    """Wrap the text's non-empty lines to the terminal and keep the first `max_lines`, with a count of the rest."""
    wrapped = []
    for line in text.splitlines():
        if line.strip():
            wrapped += textwrap.wrap(line.strip(), width=max(20, width - 5)) or [""]
    if not wrapped:
        return ["   │ (empty text)"]
    shown = [f"   │ {line}" for line in wrapped[:max_lines]]
    if len(wrapped) > max_lines:
        shown.append(f"   │ … {len(wrapped) - max_lines} more lines")
    return shown


def show(text: str, stream, use_pager: bool = True) -> None:
    """Write `text` to `stream`, through $PAGER (default `less -R`) when it is a terminal and the text is taller than it."""
    height = shutil.get_terminal_size((100, 24)).lines
    if use_pager and stream.isatty() and text.count("\n") >= height:
        command = shlex.split(os.environ.get("PAGER") or "less -R")
        environment = {**os.environ, "LESS": os.environ.get("LESS", "R")}
        try:
            subprocess.run(command, input=text, text=True, env=environment, check=False)
            return
        except FileNotFoundError:
            pass
    stream.write(text)
    stream.flush()
