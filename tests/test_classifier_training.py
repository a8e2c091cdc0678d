"""train-classifier: input formats, the seeded split, the metrics, and the command end to end."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.classifier_training import (
    LabelledTexts,
    classification_report,
    read_labelled,
    roc_auc,
    stratified_split,
)
from pipeline.cli import main as cli_main
from pipeline.stages.classifiers import FastTextClassifiers

GOOD = ["the committee published a detailed report on the regional economy",
        "researchers describe the history of the river valley and its farms"]
SPAM = ["click here buy cheap casino bonus now free spins",
        "best cheap pills online buy now click here"]


def test_roc_auc_by_hand():
    # positives 0.35 and 0.8; negatives 0.1 and 0.4: 0.35 beats 0.1 only, 0.8 beats both -> 3 / 4
    assert roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75


def test_roc_auc_counts_ties_as_half():
    assert roc_auc(np.array([0.5, 0.5]), np.array([1, 0])) == 0.5


def test_roc_auc_without_negatives_is_nan():
    assert np.isnan(roc_auc(np.array([0.2, 0.9]), np.array([1, 1])))


def test_classification_report_by_hand():
    labels = ["a", "b"]
    probabilities = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    report = classification_report(["a", "a", "b", "b"], labels, probabilities)
    # predicted a, a, b, a: a has precision 2/3 and recall 1; b has precision 1 and recall 1/2
    assert report["per_class"]["a"]["precision"] == pytest.approx(2 / 3)
    assert report["per_class"]["a"]["f1"] == pytest.approx(0.8)        # 2 * (2/3) / (5/3)
    assert report["per_class"]["b"]["f1"] == pytest.approx(2 / 3)      # 2 * (1/2) / (3/2)
    assert report["weighted_f1"] == pytest.approx((0.8 * 2 + 2 / 3 * 2) / 4)
    assert report["accuracy"] == 0.75
    # scores for a: positives 0.9, 0.8; negatives 0.3, 0.6 -> every pair ordered right
    assert report["roc_auc"] == 1.0


def test_multiclass_report_has_no_auc():
    probabilities = np.eye(3)
    report = classification_report(["x", "y", "z"], ["x", "y", "z"], probabilities)
    assert "roc_auc" not in report
    assert report["weighted_f1"] == 1.0


def test_read_fasttext_format(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("__label__hq some good text\n\n__label__cc spam here\n", encoding="utf-8")
    data = read_labelled(path)
    assert data.labels == ["hq", "cc"]
    assert data.texts == ["some good text", "spam here"]


def test_read_jsonl_csv_parquet(tmp_path):
    (tmp_path / "d.jsonl").write_text(json.dumps({"body": "a b", "y": 1}) + "\n", encoding="utf-8")
    (tmp_path / "d.csv").write_text('body,y\n"a, b",__label__1\n', encoding="utf-8")
    pq.write_table(pa.table({"body": ["a b"], "y": ["1"]}), tmp_path / "d.parquet")
    for name, text in (("d.jsonl", "a b"), ("d.csv", "a, b"), ("d.parquet", "a b")):
        data = read_labelled(tmp_path / name, text_column="body", label_column="y")
        assert data.labels == ["1"], name
        assert data.texts == [text], name


def test_read_missing_column_names_columns(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"body": "a", "y": 1}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="--text-column"):
        read_labelled(path)


def test_stratified_split_is_seeded_and_stratified():
    data = LabelledTexts([f"t{i}" for i in range(100)], ["a"] * 80 + ["b"] * 20)
    train, valid = stratified_split(data, 0.1, seed=3)
    again_train, again_valid = stratified_split(data, 0.1, seed=3)
    assert valid.texts == again_valid.texts
    assert valid.labels.count("a") == 8
    assert valid.labels.count("b") == 2
    assert len(train) == 90
    assert not set(train.texts) & set(valid.texts)


def write_training_jsonl(path, repeats: int = 30) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for _ in range(repeats):
            for text in GOOD:
                handle.write(json.dumps({"text": text, "label": "hq"}) + "\n")
            for text in SPAM:
                handle.write(json.dumps({"text": text, "label": "cc"}) + "\n")


def test_command_trains_quantized_model(tmp_path, capsys):
    train = tmp_path / "train.jsonl"
    write_training_jsonl(train)
    model = tmp_path / "model.ftz"
    metrics = tmp_path / "metrics.json"
    status = cli_main(["train-classifier", "--train", str(train), "-o", str(model), "--quantize",
                       "--epoch", "20", "--lr", "0.5", "--dim", "10", "--metrics-json", str(metrics)])
    assert status == 0
    assert model.is_file()
    printed = capsys.readouterr().out
    assert "ROC AUC" in printed
    assert "weighted F1" in printed
    assert json.loads(metrics.read_text())["roc_auc"] == 1.0

    stage = FastTextClassifiers(models=[{"path": str(model), "label": "__label__hq", "column": "q", "min_score": 0.5}])
    output = stage(pa.table({"text": [GOOD[0], SPAM[0]]}))
    assert output.reasons == [None, "q_below_min"]


def test_command_with_valid_file(tmp_path, capsys):
    train = tmp_path / "train.txt"
    train.write_text("".join(f"__label__hq {GOOD[0]}\n__label__cc {SPAM[0]}\n" for _ in range(20)), encoding="utf-8")
    valid = tmp_path / "valid.txt"
    valid.write_text(f"__label__hq {GOOD[0]}\n__label__cc {SPAM[0]}\n", encoding="utf-8")
    status = cli_main(["train-classifier", "--train", str(train), "--valid", str(valid), "-o", str(tmp_path / "m.bin"),
                       "--epoch", "20", "--lr", "0.5", "--dim", "10", "--positive-label", "hq"])
    assert status == 0
    assert "validation examples: 2" in capsys.readouterr().out
