"""fastText classifier stage: one score column per model, with an optional min or max keep rule.

Models load once per worker process into a module-level cache keyed by path. The stage
object contains only paths and thresholds, so it pickles small and never carries a model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import pyarrow as pa

from pipeline.stages.base import StageOutput

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
LABEL_PREFIX = "__label__"
BATCH_SIZE = 1024  # texts per fastText predict call

_MODELS: dict[str, Any] = {}  # resolved path -> loaded fasttext model, per process


def normalize_text(text: str | None) -> str:
    """Return `text` on one line, the form fastText's predict requires and the training uses.

    Newlines and carriage returns become spaces; case and punctuation are kept.
    """
    if not text:
        return ""
    return text.replace("\r", " ").replace("\n", " ")


def resolve_model_path(path: str | Path) -> Path:
    """Resolve a model path: `~` expands, and a relative path is taken from the repository root."""
    resolved = Path(path).expanduser()
    if not resolved.is_absolute():
        resolved = REPO_ROOT / resolved
    return resolved


def load_model(path: str | Path):
    """Return the fastText model at `path`, loading it on the first call in this process."""
    resolved = resolve_model_path(path)
    key = str(resolved)
    model = _MODELS.get(key)
    if model is None:
        if not resolved.is_file():
            raise FileNotFoundError(f"fastText model {path} not found (resolved to {resolved}); check classifiers.models[].path")
        import fasttext  # imported here so that loading the module stays cheap

        model = fasttext.load_model(key)
        _MODELS[key] = model
        log.info("loaded fastText model %s with labels %s", resolved, ", ".join(model.get_labels()))
    return model


@dataclass(frozen=True)
class ModelRule:
    """One model entry of `classifiers.models`: which label to score, where, and the keep rule."""

    path: str
    label: str
    column: str
    min_score: float | None = None
    max_score: float | None = None

    @classmethod
    def from_config(cls, entry: Mapping[str, Any], position: int) -> "ModelRule":
        where = f"classifiers.models[{position}]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where} must be a mapping with path, label and column, got {entry!r}")
        unknown = set(entry) - {"path", "label", "column", "min_score", "max_score"}
        if unknown:
            raise ValueError(f"{where} has unknown keys {sorted(unknown)}; allowed: path, label, column, min_score, max_score")
        missing = [key for key in ("path", "label", "column") if not entry.get(key)]
        if missing:
            raise ValueError(f"{where} is missing {', '.join(missing)}")
        for key in ("min_score", "max_score"):
            value = entry.get(key)
            if value is not None and not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                raise ValueError(f"{where}.{key} must be a probability between 0 and 1, got {value!r}")
        return cls(
            path=str(entry["path"]),
            label=str(entry["label"]),
            column=str(entry["column"]),
            min_score=entry.get("min_score"),
            max_score=entry.get("max_score"),
        )

    def model_label(self, model) -> str:
        """Return the model's spelling of this rule's label (with or without `__label__`).

        Raises ValueError naming the model path and its labels when the label is absent.
        """
        labels = list(model.get_labels())
        for candidate in (self.label, LABEL_PREFIX + self.label):
            if candidate in labels:
                return candidate
        raise ValueError(
            f"label {self.label!r} is not in fastText model {self.path} (resolved to "
            f"{resolve_model_path(self.path)}); the model has labels: {', '.join(labels)}"
        )

    def reason(self, score: float) -> str | None:
        if self.min_score is not None and score < self.min_score:
            return f"{self.column}_below_min"
        if self.max_score is not None and score > self.max_score:
            return f"{self.column}_above_max"
        return None


def score_label(model, label: str, texts: list[str]) -> list[float]:
    """Return the probability of `label` for each normalized text, from predict(k=-1)."""
    scores: list[float] = []
    for start in range(0, len(texts), BATCH_SIZE):
        batch = texts[start:start + BATCH_SIZE]
        labels_per_text, probabilities_per_text = model.predict(batch, k=-1)
        for labels, probabilities in zip(labels_per_text, probabilities_per_text):
            by_label = dict(zip(labels, probabilities))
            scores.append(float(min(1.0, by_label.get(label, 0.0))))
    return scores


class FastTextClassifiers:
    """Score each document with every configured fastText model and apply their keep rules.

    `models` is a list of {path, label, column, min_score or max_score}. An entry with
    neither threshold only tags. The score is the probability of `label`. A row's reason
    is the first model rule it fails, in the order of `models`. `enabled` is accepted
    and ignored, because the caller decides whether the stage runs.
    """

    name = "classifiers"

    def __init__(self, models: Iterable[Mapping[str, Any]] = (), enabled: bool = True):
        self.rules = [ModelRule.from_config(entry, position) for position, entry in enumerate(models)]
        columns = [rule.column for rule in self.rules]
        duplicates = sorted({column for column in columns if columns.count(column) > 1})
        if duplicates:
            raise ValueError(f"classifiers.models uses the column names {duplicates} more than once; give each model its own column")

    def __call__(self, table: pa.Table) -> StageOutput:
        texts = [normalize_text(text) for text in table.column("text").to_pylist()]
        reasons: list[str | None] = [None] * table.num_rows
        for rule in self.rules:
            model = load_model(rule.path)
            scores = score_label(model, rule.model_label(model), texts) if texts else []
            table = table.append_column(rule.column, pa.array(scores, pa.float64()))
            for row, score in enumerate(scores):
                if reasons[row] is None:
                    reasons[row] = rule.reason(score)
        return StageOutput(table=table, reasons=reasons)
