"""Score each shipped fastText model on its held-out data and print the figures of its model card.

The held-out sets are rebuilt with the seeded splits of train_default_classifiers.py, so the
numbers match the .metrics.json files written at training time.
Run: `.venv/bin/python benchmarks/eval_classifiers.py [--data ../shared/data]`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import train_default_classifiers as defaults  # noqa: E402

from pipeline.classifier_training import evaluate, format_report  # noqa: E402
from pipeline.stages.classifiers import load_model  # noqa: E402

# model file, function returning (train, held-out), label heading the report
EVALUATIONS = [
    ("toxicity-davidson.ftz", defaults.toxicity_split, "toxic"),
    ("quality-en.ftz", defaults.human_quality_split, "hq"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=defaults.DEFAULT_DATA, help="the shared data folder (default: %(default)s)")
    args = parser.parse_args()

    mismatches = 0
    for name, split, positive in EVALUATIONS:
        path = defaults.MODELS / name
        _, held_out = split(args.data)
        report = evaluate(load_model(path), held_out)
        print(f"== {name} ({path.stat().st_size / 1e6:.2f} MB)")
        print(format_report(report, positive))

        recorded_path = path.with_suffix(".metrics.json")
        if recorded_path.is_file():
            recorded = json.loads(recorded_path.read_text(encoding="utf-8"))
            for key in ("weighted_f1", "roc_auc"):
                if abs(recorded[key] - report[key]) > 1e-6:
                    print(f"MISMATCH {key}: recorded {recorded[key]:.4f}, now {report[key]:.4f}")
                    mismatches += 1
        print()
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
