"""`python -m pipeline export-tokens`: a run's token shards in another trainer's format."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "export-tokens"
HELP = "write a run's token shards as a Megatron-LM indexed dataset (.bin + .idx per split)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("--format", choices=["megatron"], default="megatron", help="output format (default: megatron)")
    parser.add_argument(
        "-o", "--output", metavar="PREFIX",
        help="path prefix of the output files; each split writes PREFIX_train.bin/.idx and PREFIX_val.bin/.idx "
             "(default: RUN_DIR/export/megatron/tokens)",
    )
    parser.add_argument("--split", choices=["train", "val", "all"], default="all", help="split to export (default: all)")


def main(args: argparse.Namespace) -> int:
    from pipeline.tokenize.megatron import export_megatron

    tokens_dir = Path(args.run_dir) / "tokens"
    if not (tokens_dir / "manifest.json").exists():
        print(f"error: {tokens_dir / 'manifest.json'} not found; run the tokenize phase for {args.run_dir} first",
              file=sys.stderr)
        return 2
    prefix = args.output or str(Path(args.run_dir) / "export" / "megatron" / "tokens")
    splits = ["train", "val"] if args.split == "all" else [args.split]
    for split in splits:
        bin_path, idx_path = export_megatron(tokens_dir, f"{prefix}_{split}", split)
        print(f"wrote {bin_path} and {idx_path}")
    return 0
