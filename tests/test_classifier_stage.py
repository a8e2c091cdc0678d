"""fastText classifier stage: real models trained here and the shipped ones, scores and keep rules."""

from __future__ import annotations

import pickle

import fasttext
import pyarrow as pa
import pytest
import yaml

from pipeline.config import DEFAULT_CONFIG
from pipeline.stages import classifiers
from pipeline.stages.base import apply_stages
from pipeline.stages.classifiers import FastTextClassifiers, normalize_text, resolve_model_path

GOOD_TEXTS = [
    "the committee published a detailed report on the regional economy",
    "researchers describe the history of the river valley and its farms",
    "the museum explains how the old bridge was designed and built",
    "students read the article about climate and ocean currents",
]
SPAM_TEXTS = [
    "click here buy cheap casino bonus now free spins",
    "best cheap pills online buy now click here",
    "win free money casino bonus click now",
    "cheap watches buy now best price click here",
]


def train_tiny_model(tmp_path, positive: str, negative: str, name: str) -> str:
    """Train a bigram fastText model with labels `positive` (good texts) and `negative` (spam)."""
    train_file = tmp_path / f"{name}.txt"
    lines = [f"{positive} {text}" for text in GOOD_TEXTS] + [f"{negative} {text}" for text in SPAM_TEXTS]
    train_file.write_text("\n".join(lines * 20) + "\n", encoding="utf-8")
    model = fasttext.train_supervised(input=str(train_file), epoch=25, lr=0.5, wordNgrams=2, thread=1, seed=0, verbose=0)
    path = tmp_path / f"{name}.bin"
    model.save_model(str(path))
    return str(path)


@pytest.fixture(scope="module")
def dclm_style_model(tmp_path_factory):
    return train_tiny_model(tmp_path_factory.mktemp("dclm"), "__label__hq", "__label__cc", "dclm")


@pytest.fixture(scope="module")
def dolma_nsfw_style_model(tmp_path_factory):
    return train_tiny_model(tmp_path_factory.mktemp("nsfw"), "__label__non-nsfw", "__label__nsfw", "nsfw")


def table_of(*texts: str) -> pa.Table:
    return pa.table({"id": [str(i) for i in range(len(texts))], "text": list(texts)})


def test_normalize_text_joins_lines():
    assert normalize_text("a\nb\r\nc") == "a b  c"


def test_dclm_labels_score_and_drop(dclm_style_model):
    stage = FastTextClassifiers(models=[{"path": dclm_style_model, "label": "__label__hq", "column": "quality", "min_score": 0.5}])
    output = stage(table_of("the committee published a detailed\nreport on the economy", "click here buy cheap casino bonus now"))
    scores = output.table.column("quality").to_pylist()
    assert scores[0] > 0.5
    assert scores[1] < 0.5
    assert output.reasons == [None, "quality_below_min"]


def test_score_is_named_label_probability(dclm_style_model):
    model = fasttext.load_model(dclm_style_model)
    labels, probabilities = model.predict(SPAM_TEXTS[0], k=-1)
    expected = dict(zip(labels, probabilities))["__label__cc"]
    stage = FastTextClassifiers(models=[{"path": dclm_style_model, "label": "__label__cc", "column": "cc_score"}])
    output = stage(table_of(SPAM_TEXTS[0]))
    assert output.table.column("cc_score").to_pylist()[0] == pytest.approx(min(1.0, float(expected)))


def test_label_without_prefix_is_accepted(dclm_style_model):
    stage = FastTextClassifiers(models=[{"path": dclm_style_model, "label": "hq", "column": "quality"}])
    assert stage(table_of(GOOD_TEXTS[0])).table.column("quality").to_pylist()[0] > 0.5


def test_max_score_rule_with_dolma_labels(dclm_style_model, dolma_nsfw_style_model):
    stage = FastTextClassifiers(models=[
        {"path": dclm_style_model, "label": "__label__hq", "column": "quality"},
        {"path": dolma_nsfw_style_model, "label": "__label__nsfw", "column": "nsfw", "max_score": 0.5},
    ])
    output = stage(table_of(GOOD_TEXTS[1], SPAM_TEXTS[1]))
    assert output.table.column_names[-2:] == ["quality", "nsfw"]
    assert output.reasons == [None, "nsfw_above_max"]


def test_tag_only_model_drops_nothing(dclm_style_model):
    stage = FastTextClassifiers(models=[{"path": dclm_style_model, "label": "__label__hq", "column": "quality"}])
    assert stage(table_of(*SPAM_TEXTS)).reasons == [None] * len(SPAM_TEXTS)


def test_missing_label_error_names_model_and_labels(dclm_style_model):
    stage = FastTextClassifiers(models=[{"path": dclm_style_model, "label": "__label__hate", "column": "hate"}])
    with pytest.raises(ValueError, match="__label__hate") as error:
        stage(table_of(GOOD_TEXTS[0]))
    assert dclm_style_model in str(error.value)
    assert "__label__hq" in str(error.value)
    assert "__label__cc" in str(error.value)


def test_missing_model_file_error(tmp_path):
    stage = FastTextClassifiers(models=[{"path": str(tmp_path / "absent.bin"), "label": "x", "column": "x"}])
    with pytest.raises(FileNotFoundError, match="absent.bin"):
        stage(table_of(GOOD_TEXTS[0]))


@pytest.mark.parametrize(
    "entry",
    [
        {"path": "m.bin", "label": "x"},
        {"path": "m.bin", "label": "x", "column": "c", "min_score": 2},
        {"path": "m.bin", "label": "x", "column": "c", "threshold": 0.5},
    ],
)
def test_invalid_model_entry_rejected(entry):
    with pytest.raises(ValueError, match=r"classifiers\.models\[0\]"):
        FastTextClassifiers(models=[entry])


def test_stage_pickles_without_model(dclm_style_model):
    stage = FastTextClassifiers(models=[{"path": dclm_style_model, "label": "__label__hq", "column": "quality"}])
    stage(table_of(GOOD_TEXTS[0]))
    assert str(resolve_model_path(dclm_style_model)) in classifiers._MODELS
    payload = pickle.dumps(stage)
    assert len(payload) < 2000
    assert pickle.loads(payload).rules == stage.rules


def test_model_loads_once_per_process(dclm_style_model):
    first = classifiers.load_model(dclm_style_model)
    assert classifiers.load_model(dclm_style_model) is first


def test_empty_table(dclm_style_model):
    stage = FastTextClassifiers(models=[{"path": dclm_style_model, "label": "__label__hq", "column": "quality"}])
    output = stage(table_of())
    assert output.table.num_rows == 0
    assert output.table.column_names[-1] == "quality"


def test_relative_path_resolves_to_repository():
    assert resolve_model_path("pipeline/models/quality-en.ftz").is_file()


# --- the shipped models and the default configuration -------------------------------------


def default_classifier_section() -> dict:
    return yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))["classifiers"]


def test_default_config_models_exist():
    for entry in default_classifier_section()["models"]:
        assert resolve_model_path(entry["path"]).is_file(), entry["path"]
        assert resolve_model_path(entry["path"]).stat().st_size < 5_000_000


def test_shipped_toxicity_model_scores_abuse_higher():
    stage = FastTextClassifiers(**default_classifier_section())
    abuse = "you are a stupid bitch and a fucking idiot"
    # NOTE: short neutral sentences can still score above 0.5 (the model card lists one).
    formal = "The committee published a detailed report on the regional economy."
    toxicity = stage(table_of(abuse, formal)).table.column("toxicity_score").to_pylist()
    assert toxicity[0] > 0.9
    assert toxicity[1] < 0.5


def test_shipped_quality_model_on_real_pages(shared_data):
    import json

    ground_truth = json.loads((shared_data / "extraction" / "ground-truth.json").read_text(encoding="utf-8"))
    articles = [record["articleBody"] for record in list(ground_truth.values())[:20]]
    stage = FastTextClassifiers(**default_classifier_section())
    kept, rejected, stats = apply_stages([stage], table_of(*articles))
    assert stats[0].documents_in == 20
    assert kept.num_rows >= 15
    assert all(0.0 <= score <= 1.0 for score in kept.column("quality_score").to_pylist())
