"""`python -m pipeline train-classifier`: train a fastText classifier for the `classifiers` stage."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from pipeline.classifier_training import (
    TrainParams,
    evaluate,
    format_report,
    read_labelled,
    stratified_split,
    train_model,
)

NAME = "train-classifier"
HELP = "train a fastText classifier from labelled text and print its validation figures"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = TrainParams()
    parser.add_argument("--train", required=True, type=Path, help="labelled data: fastText lines (__label__x text), .jsonl, .csv, .tsv or .parquet, optionally .gz")
    parser.add_argument("--valid", type=Path, help="labelled validation data in the same formats; without it a seeded split of --train is held out")
    parser.add_argument("-o", "--output", required=True, type=Path, help="model file to write (.bin, or .ftz with --quantize)")
    parser.add_argument("--quantize", action="store_true", help="quantize the model (retrained on the training split) before saving; use a .ftz name")
    parser.add_argument("--cutoff", type=int, default=100_000, help="with --quantize: number of words and n-grams kept (default: %(default)s)")
    parser.add_argument("--text-column", default="text", help="text column of JSONL, CSV or Parquet input (default: %(default)s)")
    parser.add_argument("--label-column", default="label", help="label column of JSONL, CSV or Parquet input (default: %(default)s)")
    parser.add_argument("--valid-fraction", type=float, default=0.1, help="share of each label held out when --valid is absent (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the validation split and of fastText (default: %(default)s)")
    parser.add_argument("--positive-label", help="label whose precision, recall and F1 head a two-class report (default: the rarer label)")
    parser.add_argument("--metrics-json", type=Path, help="also write the validation figures to this JSON file")
    parser.add_argument("--epoch", type=int, default=defaults.epoch, help="training epochs (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=defaults.lr, help="learning rate (default: %(default)s)")
    parser.add_argument("--word-ngrams", type=int, default=defaults.word_ngrams, help="max length of word n-grams (default: %(default)s)")
    parser.add_argument("--dim", type=int, default=defaults.dim, help="embedding dimension (default: %(default)s)")
    parser.add_argument("--minn", type=int, default=defaults.minn, help="min length of character n-grams, 0 for none (default: %(default)s)")
    parser.add_argument("--maxn", type=int, default=defaults.maxn, help="max length of character n-grams, 0 for none (default: %(default)s)")
    parser.add_argument("--bucket", type=int, default=defaults.bucket, help="hash buckets for n-grams (default: %(default)s)")
    parser.add_argument("--thread", type=int, default=defaults.thread, help="training threads; 1 gives reproducible models (default: %(default)s)")


def main(args: argparse.Namespace) -> int:
    data = read_labelled(args.train, args.text_column, args.label_column)
    if args.valid is not None:
        train, valid = data, read_labelled(args.valid, args.text_column, args.label_column)
    else:
        train, valid = stratified_split(data, args.valid_fraction, args.seed)
    log.info("training on %d examples, validating on %d", len(train), len(valid))

    params = TrainParams(
        epoch=args.epoch, lr=args.lr, word_ngrams=args.word_ngrams, dim=args.dim,
        minn=args.minn, maxn=args.maxn, bucket=args.bucket, thread=args.thread, seed=args.seed,
    )
    model = train_model(train, params, quantize=args.quantize, cutoff=args.cutoff)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    model.save_model(str(args.output))
    log.info("wrote %s (%d bytes)", args.output, args.output.stat().st_size)

    report = evaluate(model, valid)
    print(format_report(report, args.positive_label))
    if args.metrics_json is not None:
        args.metrics_json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0
