"""Score columns and the config keys that hold their thresholds.

The report draws each threshold on its column's histogram, and both the report and
`inspect` use this table to show the score that dropped a rejected document.
"""

from __future__ import annotations

from dataclasses import dataclass

# Score column -> dotted config.yaml keys whose values are thresholds on it. A key whose last
# part starts with "min_" drops documents below its value; every other key drops documents
# above it. Columns missing from a run are skipped; a stage that adds a column adds it here.
THRESHOLD_KEYS: dict[str, tuple[str, ...]] = {
    "language_score": ("langid.min_language_score",),
    "doc_words": ("gopher_quality.min_doc_words", "gopher_quality.max_doc_words"),
    "avg_word_length": ("gopher_quality.min_avg_word_length", "gopher_quality.max_avg_word_length"),
    "symbol_word_ratio": ("gopher_quality.max_symbol_word_ratio",),
    "bullet_lines_ratio": ("gopher_quality.max_bullet_lines_ratio",),
    "ellipsis_lines_ratio": ("gopher_quality.max_ellipsis_lines_ratio",),
    "non_alpha_words_ratio": ("gopher_quality.max_non_alpha_words_ratio",),
    "stop_words": ("gopher_quality.min_stop_words",),
    "dup_line_frac": ("gopher_repetition.dup_line_frac",),
    "dup_para_frac": ("gopher_repetition.dup_para_frac",),
    "dup_line_char_frac": ("gopher_repetition.dup_line_char_frac",),
    "dup_para_char_frac": ("gopher_repetition.dup_para_char_frac",),
    **{f"top_{n}_gram_frac": (f"gopher_repetition.top_n_grams.{n}",) for n in (2, 3, 4)},
    **{f"dup_{n}_gram_frac": (f"gopher_repetition.dup_n_grams.{n}",) for n in range(5, 11)},
}

# Numeric columns that are identifiers or positions, never scores.
NOT_SCORES = {"source_offset", "dedup_cluster", "duplicate_of", "text_hash"}


@dataclass(frozen=True)
class Threshold:
    key: str          # dotted config key, for the plot legend
    value: float
    is_minimum: bool  # True: documents below the value are dropped


def config_value(config: dict, dotted: str) -> object:
    """Return the value at a dotted key, matching integer map keys such as `top_n_grams.2` too."""
    node: object = config
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        if part in node:
            node = node[part]
        elif part.isdigit() and int(part) in node:
            node = node[int(part)]
        else:
            return None
    return node


def thresholds(config: dict | None) -> dict[str, list[Threshold]]:
    """Return the thresholds set in `config` per score column; empty without a config."""
    if not config:
        return {}
    found: dict[str, list[Threshold]] = {}
    for column, keys in THRESHOLD_KEYS.items():
        for key in keys:
            value = config_value(config, key)
            if is_number(value) and section_enabled(config, key):
                found.setdefault(column, []).append(Threshold(key, float(value), key.rsplit(".", 1)[-1].startswith("min_")))
    for column, threshold in classifier_thresholds(config).items():
        found.setdefault(column, []).append(threshold)
    return found


def classifier_thresholds(config: dict) -> dict[str, Threshold]:
    """Return the threshold of each model under `classifiers.models` by its score column.

    An entry names its column with `column` (default `<name>_score`) and its minimum score
    with `threshold` or `min_score`.
    """
    # NOTE: the classifier stage's config format is not settled; this reads the keys above.
    models = config_value(config, "classifiers.models")
    found = {}
    for index, entry in enumerate(models if isinstance(models, list) else []):
        if not isinstance(entry, dict):
            continue
        column = entry.get("column") or (f"{entry['name']}_score" if entry.get("name") else None)
        value = entry.get("threshold", entry.get("min_score"))
        if column and is_number(value):
            found[column] = Threshold(f"classifiers.models[{index}].threshold", float(value), True)
    return found


def section_enabled(config: dict, dotted: str) -> bool:
    section = config.get(dotted.split(".", 1)[0])
    return not (isinstance(section, dict) and section.get("enabled") is False)


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def score_columns(columns: list[str]) -> list[str]:
    """Return the score columns among `columns`: the table's in table order, then `*_score`, then `pii_*`."""
    present = set(columns)
    known = [column for column in THRESHOLD_KEYS if column in present]
    others = sorted(
        column
        for column in present - set(known) - NOT_SCORES
        if column.endswith("_score") or column.startswith("pii_")
    )
    return known + others


def reason_columns(reason: str | None, row: dict) -> list[str]:
    """Return the score columns of `row` that a drop reason names, such as `doc_words` for `min_doc_words`.

    A reason naming no known column (`not_html`, `exact_duplicate`) returns an empty list.
    """
    if not reason:
        return []
    columns = []
    for column in score_columns([name for name, value in row.items() if value is not None]):
        keys = THRESHOLD_KEYS.get(column, ())
        if column in reason or any(key.rsplit(".", 1)[-1] in reason for key in keys):
            columns.append(column)
    if "language" in reason:
        columns = [name for name in ("language", "language_score") if row.get(name) is not None] + [
            name for name in columns if name != "language_score"
        ]
    if "duplicate" in reason:
        columns += [name for name in ("dedup_cluster", "duplicate_of") if row.get(name) is not None]
    return columns
