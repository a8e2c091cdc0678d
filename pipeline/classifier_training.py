"""Train and evaluate fastText supervised classifiers for the `classifiers` stage.

Reads labelled text (fastText, JSONL, CSV or Parquet), splits off a seeded, stratified
validation set when none is given, trains, optionally quantizes, and computes precision,
recall, F1 and (for two classes) ROC AUC with NumPy.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow.parquet as pq

from pipeline.stages.classifiers import LABEL_PREFIX, normalize_text

log = logging.getLogger(__name__)


@dataclass
class LabelledTexts:
    texts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)  # without the `__label__` prefix

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class TrainParams:
    """fastText `train_supervised` hyperparameters; `thread=1` makes training reproducible."""

    epoch: int = 5
    lr: float = 0.1
    word_ngrams: int = 2
    dim: int = 100
    minn: int = 0
    maxn: int = 0
    bucket: int = 2_000_000
    thread: int = 1
    seed: int = 0


def clean_label(label: Any) -> str:
    """Return a label without the `__label__` prefix and with whitespace replaced by '_'."""
    text = str(label).strip()
    if text.startswith(LABEL_PREFIX):
        text = text[len(LABEL_PREFIX):]
    return "_".join(text.split())


def open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8", newline="")


def file_format(path: Path) -> str:
    """Return the format of `path` from its suffix, ignoring a trailing .gz."""
    suffixes = [suffix for suffix in path.suffixes if suffix != ".gz"]
    last = suffixes[-1].lower() if suffixes else ""
    if last in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    if last in (".csv", ".tsv"):
        return last[1:]
    if last == ".parquet":
        return "parquet"
    return "fasttext"


def read_fasttext_lines(path: Path) -> Iterator[tuple[str, str]]:
    """Yield (label, text) from `__label__x text` lines, using the first label of a line."""
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            tokens = line.split()
            if not tokens:
                continue
            if not tokens[0].startswith(LABEL_PREFIX):
                raise ValueError(f"{path}:{number}: a fastText training line must start with {LABEL_PREFIX}<label>, got {line[:60]!r}")
            words = [token for token in tokens if not token.startswith(LABEL_PREFIX)]
            yield clean_label(tokens[0]), " ".join(words)


def read_rows(path: Path, fmt: str) -> Iterator[dict[str, Any]]:
    if fmt == "jsonl":
        with open_text(path) as handle:
            for line in handle:
                if line.strip():
                    yield json.loads(line)
    elif fmt in ("csv", "tsv"):
        csv.field_size_limit(sys.maxsize)
        with open_text(path) as handle:
            yield from csv.DictReader(handle, delimiter="\t" if fmt == "tsv" else ",")
    else:
        yield from pq.read_table(path).to_pylist()


def read_labelled(path: str | Path, text_column: str = "text", label_column: str = "label") -> LabelledTexts:
    """Read labelled texts from a fastText, JSONL, CSV/TSV or Parquet file (optionally .gz)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"labelled data file {path} not found")
    fmt = file_format(path)
    data = LabelledTexts()
    if fmt == "fasttext":
        for label, text in read_fasttext_lines(path):
            data.labels.append(label)
            data.texts.append(text)
    else:
        for number, row in enumerate(read_rows(path, fmt), start=1):
            if text_column not in row or label_column not in row:
                raise ValueError(
                    f"{path} row {number} has no column {text_column!r} or {label_column!r}; "
                    f"its columns are {sorted(row)}; set --text-column and --label-column"
                )
            if row[label_column] is None or row[label_column] == "":
                continue
            data.texts.append(row[text_column] or "")
            data.labels.append(clean_label(row[label_column]))
    if not data:
        raise ValueError(f"{path} contains no labelled rows")
    return data


def stratified_split(data: LabelledTexts, valid_fraction: float, seed: int) -> tuple[LabelledTexts, LabelledTexts]:
    """Split off `valid_fraction` of each label's rows, chosen by a permutation seeded with `seed`."""
    if not 0.0 < valid_fraction < 1.0:
        raise ValueError(f"--valid-fraction must be between 0 and 1, got {valid_fraction}")
    rng = np.random.default_rng(seed)
    labels = np.array(data.labels)
    valid_mask = np.zeros(len(labels), dtype=bool)
    for label in sorted(set(data.labels)):
        rows = np.flatnonzero(labels == label)
        rows = rows[rng.permutation(len(rows))]
        valid_mask[rows[: int(round(len(rows) * valid_fraction))]] = True
    train, valid = LabelledTexts(), LabelledTexts()
    for text, label, is_valid in zip(data.texts, data.labels, valid_mask):
        target = valid if is_valid else train
        target.texts.append(text)
        target.labels.append(label)
    return train, valid


def write_fasttext_file(data: LabelledTexts, path: Path) -> None:
    """Write `__label__<label> <text>` lines, the text normalized as the stage scores it."""
    with open(path, "w", encoding="utf-8") as handle:
        for text, label in zip(data.texts, data.labels):
            handle.write(f"{LABEL_PREFIX}{label} {normalize_text(text)}\n")


def train_model(train: LabelledTexts, params: TrainParams, quantize: bool = False, cutoff: int = 100_000):
    """Train a fastText supervised model on `train`, and quantize it (retraining on `train`) when asked."""
    import fasttext

    with tempfile.TemporaryDirectory(prefix="train-classifier-") as tmp:
        train_file = Path(tmp) / "train.txt"
        write_fasttext_file(train, train_file)
        model = fasttext.train_supervised(
            input=str(train_file),
            epoch=params.epoch,
            lr=params.lr,
            wordNgrams=params.word_ngrams,
            dim=params.dim,
            minn=params.minn,
            maxn=params.maxn,
            bucket=params.bucket,
            thread=params.thread,
            seed=params.seed,
            loss="softmax",
            verbose=0,
        )
        if quantize:
            model.quantize(input=str(train_file), qnorm=True, retrain=True, cutoff=cutoff, thread=params.thread, verbose=0)
    return model


def predict_probabilities(model, texts: list[str]) -> tuple[list[str], np.ndarray]:
    """Return the model's labels (without prefix) and a (texts, labels) matrix of probabilities."""
    labels = [clean_label(label) for label in model.get_labels()]
    column = {label: index for index, label in enumerate(labels)}
    probabilities = np.zeros((len(texts), len(labels)))
    predicted_labels, predicted_probabilities = model.predict([normalize_text(text) for text in texts], k=-1)
    for row, (names, values) in enumerate(zip(predicted_labels, predicted_probabilities)):
        for name, value in zip(names, values):
            probabilities[row, column[clean_label(name)]] = min(1.0, float(value))
    return labels, probabilities


def roc_auc(scores: np.ndarray, positives: np.ndarray) -> float:
    """Return the ROC AUC of `scores` for boolean `positives`, from average ranks (Mann-Whitney U).

    Tied scores share their mean rank, which counts a tied positive-negative pair as one half.
    """
    positives = positives.astype(bool)
    n_pos = int(positives.sum())
    n_neg = len(positives) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores))
    # Each run of equal scores gets the mean of the 1-based ranks it spans.
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [len(scores)]))
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + 1 + end) / 2.0
    u_statistic = ranks[positives].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u_statistic / (n_pos * n_neg))


def classification_report(true_labels: list[str], labels: list[str], probabilities: np.ndarray) -> dict[str, Any]:
    """Return accuracy, per-class precision/recall/F1/support, macro and weighted F1, and binary ROC AUC.

    The prediction is the label with the highest probability. For two labels, `roc_auc`
    is computed on the probability of the alphabetically first label (`roc_auc_label`).
    The AUC is the same for either label because the two probabilities sum to one.
    """
    known = set(labels)
    unknown = sorted(set(true_labels) - known)
    if unknown:
        raise ValueError(f"validation labels {unknown} are not model labels {sorted(known)}")
    truth = np.array([labels.index(label) for label in true_labels])
    predicted = probabilities.argmax(axis=1)
    per_class = {}
    for index, label in enumerate(labels):
        true_positive = int(((predicted == index) & (truth == index)).sum())
        predicted_count = int((predicted == index).sum())
        support = int((truth == index).sum())
        precision = true_positive / predicted_count if predicted_count else 0.0
        recall = true_positive / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    supports = np.array([per_class[label]["support"] for label in labels])
    f1s = np.array([per_class[label]["f1"] for label in labels])
    present = supports > 0
    report: dict[str, Any] = {
        "examples": len(true_labels),
        "accuracy": float((predicted == truth).mean()) if len(truth) else 0.0,
        "per_class": per_class,
        "macro_f1": float(f1s[present].mean()) if present.any() else 0.0,
        "weighted_f1": float((f1s * supports).sum() / supports.sum()) if supports.sum() else 0.0,
    }
    if len(labels) == 2:
        first = sorted(labels)[0]
        index = labels.index(first)
        report["roc_auc"] = roc_auc(probabilities[:, index], truth == index)
        report["roc_auc_label"] = first
    return report


def evaluate(model, valid: LabelledTexts) -> dict[str, Any]:
    labels, probabilities = predict_probabilities(model, valid.texts)
    return classification_report(valid.labels, labels, probabilities)


def format_report(report: dict[str, Any], positive_label: str | None = None) -> str:
    """Format the report as aligned text lines, headed by `positive_label` for two labels."""
    lines = [f"validation examples: {report['examples']}"]
    if "roc_auc" in report:
        positive = positive_label or min(report["per_class"], key=lambda label: report["per_class"][label]["support"])
        scores = report["per_class"].get(positive)
        if scores is None:
            raise ValueError(f"--positive-label {positive!r} is not one of the labels {sorted(report['per_class'])}")
        lines.append(
            f"positive label {positive}: precision {scores['precision']:.4f}  recall {scores['recall']:.4f}  "
            f"F1 {scores['f1']:.4f}  ROC AUC {report['roc_auc']:.4f}"
        )
    lines.append(f"{'label':<24}{'precision':>10}{'recall':>10}{'F1':>10}{'support':>10}")
    for label, scores in report["per_class"].items():
        lines.append(f"{label:<24}{scores['precision']:>10.4f}{scores['recall']:>10.4f}{scores['f1']:>10.4f}{scores['support']:>10}")
    lines.append(f"accuracy {report['accuracy']:.4f}  macro F1 {report['macro_f1']:.4f}  weighted F1 {report['weighted_f1']:.4f}")
    return "\n".join(lines)
