"""`python -m pipeline run`: archives to a run directory on Ray."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.cli import positive_int
from pipeline.config import ConfigError, load_config
from pipeline.engine import PHASES, run_pipeline
from pipeline.stats_table import format_stats

NAME = "run"
HELP = "run the pipeline on WARC/WET/ARC/JSONL files, folders or globs into RUN_DIR (resumes a finished or interrupted run)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="WARC, WET, ARC or JSONL files, folders or globs")
    parser.add_argument("-o", "--output", required=True, metavar="RUN_DIR", help="run directory to write or resume")
    parser.add_argument("-c", "--config", metavar="CONFIG.yaml", help="overrides of configs/default.yaml")
    parser.add_argument("--phase", choices=PHASES, help="run only this phase (earlier phases must be done)")
    parser.add_argument("--address", metavar="RAY_ADDRESS", help="join this Ray cluster instead of starting a local one")
    parser.add_argument("--num-cpus", type=positive_int, metavar="N", help="CPUs of the local Ray cluster (default: all)")



def main(args: argparse.Namespace) -> int:
    if Path(args.output).exists() and not Path(args.output).is_dir():
        raise ConfigError(f"-o {args.output} is a file; give a directory for the run (it is created when missing)")
    config = load_config(args.config)
    stats = run_pipeline(args.inputs, args.output, config, phase=args.phase, address=args.address, num_cpus=args.num_cpus)
    print(format_stats(stats))
    failed = stats.get("run", {}).get("failed_files", [])
    if failed:
        print(f"error: {len(failed)} input file(s) failed after retries and were left out: {', '.join(failed)}; "
              f"see 'files' in {Path(args.output) / 'stats.json'} for their errors", file=sys.stderr)
        return 1
    return 0
