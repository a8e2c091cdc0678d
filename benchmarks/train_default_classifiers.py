"""Rebuild the fastText models shipped in pipeline/models/ from the labelled data in ../shared/data.

Each model is trained by `python -m pipeline train-classifier` (single thread, fixed seed)
on files prepared here. The validation figures go to a .metrics.json next to the model.
Run from anywhere: `.venv/bin/python benchmarks/train_default_classifiers.py [--only quality]`.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import html
import json
import logging
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline.classifier_training import LabelledTexts, stratified_split  # noqa: E402
from pipeline.cli import main as cli_main  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data"
MODELS = REPO / "pipeline" / "models"
SEED = 0
TOXICITY_VALID_FRACTION = 0.1
NON_TOXIC_REPEATS = 2
HUMAN_LABEL_VALID_FRACTION = 0.5  # half of the 218 human judgements is held out, never trained on
CHUNK_WORDS = 400  # long reference pages are cut into pieces of about this many words

log = logging.getLogger("train_default_classifiers")

# Training arguments per model, passed to `python -m pipeline train-classifier` as given.
TOXICITY_ARGS = ["--epoch", "10", "--lr", "0.1", "--word-ngrams", "2", "--dim", "50", "--minn", "2", "--maxn", "5",
                 "--quantize", "--cutoff", "50000", "--positive-label", "toxic"]
QUALITY_ARGS = ["--epoch", "20", "--lr", "0.1", "--word-ngrams", "2", "--dim", "50", "--bucket", "200000",
                "--quantize", "--cutoff", "50000", "--positive-label", "hq"]

MENTION = re.compile(r"@\w+")
URL = re.compile(r"https?://\S+")


def clean_tweet(text: str) -> str:
    """Unescape HTML entities and replace @mentions and URLs by fixed tokens, as web text has neither."""
    text = html.unescape(text)
    text = URL.sub("URL", text)
    return MENTION.sub("@user", text)


def toxicity_rows(data_dir: Path) -> LabelledTexts:
    """Davidson et al. 2017 tweets: class 0 (hate speech) and 1 (offensive) are `toxic`, 2 is `non-toxic`."""
    rows = LabelledTexts()
    with open(data_dir / "toxicity" / "davidson-2017-labeled-tweets.csv", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            rows.texts.append(clean_tweet(row["tweet"]))
            rows.labels.append("non-toxic" if row["class"] == "2" else "toxic")
    return rows


def toxicity_split(data_dir: Path) -> tuple[LabelledTexts, LabelledTexts]:
    """Return the training tweets and the seeded, stratified 10% held out from them."""
    return stratified_split(toxicity_rows(data_dir), TOXICITY_VALID_FRACTION, SEED)


def human_quality_split(data_dir: Path) -> tuple[LabelledTexts, LabelledTexts]:
    """Return the two halves of the DCLM human quality labels: label 1 is `hq`, 0 is `cc`."""
    rows = LabelledTexts()
    with open(data_dir / "quality" / "dclm-human-quality-labels.jsonl", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            rows.texts.append(record["text"])
            rows.labels.append("hq" if int(record["label"]) == 1 else "cc")
    return stratified_split(rows, HUMAN_LABEL_VALID_FRACTION, SEED)


def chunk_words(text: str, size: int = CHUNK_WORDS) -> list[str]:
    """Cut `text` into pieces of `size` words, keeping line breaks inside each piece."""
    pieces, current, count = [], [], 0
    for line in text.splitlines():
        current.append(line)
        count += len(line.split())
        if count >= size:
            pieces.append("\n".join(current))
            current, count = [], 0
    if count:
        pieces.append("\n".join(current))
    return pieces


def reference_texts(data_dir: Path) -> list[str]:
    """Article bodies of the extraction benchmark and the Wikipedia pages, cut into chunks."""
    from resiliparse.extract.html2text import extract_plain_text

    texts = []
    ground_truth = json.loads((data_dir / "extraction" / "ground-truth.json").read_text(encoding="utf-8"))
    for record in ground_truth.values():
        texts.extend(chunk_words(record["articleBody"]))
    for page in sorted((data_dir / "quality" / "wikipedia-html").glob("*.html")):
        text = extract_plain_text(page.read_text(encoding="utf-8", errors="replace"), main_content=True)
        texts.extend(chunk_words(text))
    return [text for text in texts if len(text.split()) >= 20]


def common_crawl_texts(data_dir: Path) -> list[str]:
    """Raw Common Crawl page texts with at least 20 words, the negative class."""
    texts = []
    with gzip.open(data_dir / "cc-text" / "cc-main-2019-30-697-docs.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            text = json.loads(line)["text"]
            if len(text.split()) >= 20:
                texts.append(text)
    return texts


def quality_sets(data_dir: Path) -> tuple[LabelledTexts, LabelledTexts]:
    """Return (training set, held-out human labels) for the quality model."""
    human_train, human_valid = human_quality_split(data_dir)
    train = LabelledTexts(list(human_train.texts), list(human_train.labels))
    for text in reference_texts(data_dir):
        train.texts.append(text)
        train.labels.append("hq")
    for text in common_crawl_texts(data_dir):
        train.texts.append(text)
        train.labels.append("cc")
    return train, human_valid


def write_jsonl(rows: LabelledTexts, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for text, label in zip(rows.texts, rows.labels):
            handle.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")


def oversample(rows: LabelledTexts, label: str, times: int) -> LabelledTexts:
    """Return `rows` with every example of `label` repeated `times` times in all."""
    result = LabelledTexts(list(rows.texts), list(rows.labels))
    for text, row_label in zip(rows.texts, rows.labels):
        if row_label == label:
            result.texts.extend([text] * (times - 1))
            result.labels.extend([label] * (times - 1))
    return result


def train_toxicity(data_dir: Path, tmp: Path) -> int:
    train, valid = toxicity_split(data_dir)
    # Only 17% of the tweets are non-toxic. Repeating them twice in training lowers the scores
    # of neutral web text without lowering the held-out F1.
    write_jsonl(oversample(train, "non-toxic", NON_TOXIC_REPEATS), tmp / "toxicity-train.jsonl")
    write_jsonl(valid, tmp / "toxicity-valid.jsonl")
    model = MODELS / "toxicity-davidson.ftz"
    return cli_main([
        "train-classifier", "--train", str(tmp / "toxicity-train.jsonl"), "--valid", str(tmp / "toxicity-valid.jsonl"),
        "-o", str(model), "--seed", str(SEED),
        "--metrics-json", str(model.with_suffix(".metrics.json")), *TOXICITY_ARGS,
    ])


def train_quality(data_dir: Path, tmp: Path) -> int:
    train, valid = quality_sets(data_dir)
    labels = {label: train.labels.count(label) for label in sorted(set(train.labels))}
    log.info("quality training set: %s; held-out human labels: %d", labels, len(valid))
    write_jsonl(train, tmp / "quality-train.jsonl")
    write_jsonl(valid, tmp / "quality-valid.jsonl")
    model = MODELS / "quality-en.ftz"
    return cli_main([
        "train-classifier", "--train", str(tmp / "quality-train.jsonl"), "--valid", str(tmp / "quality-valid.jsonl"),
        "-o", str(model), "--seed", str(SEED),
        "--metrics-json", str(model.with_suffix(".metrics.json")), *QUALITY_ARGS,
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder (default: %(default)s)")
    parser.add_argument("--only", choices=["toxicity", "quality"], help="rebuild only this model")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="default-classifiers-") as tmp:
        status = 0
        if args.only in (None, "toxicity"):
            status |= train_toxicity(args.data, Path(tmp))
        if args.only in (None, "quality"):
            status |= train_quality(args.data, Path(tmp))
    return status


if __name__ == "__main__":
    sys.exit(main())
