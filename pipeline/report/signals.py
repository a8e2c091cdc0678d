"""Score columns, the config keys that hold their thresholds, and the drop reasons they cause.

The report draws each threshold on its column's histogram, and both the report and
`inspect` use this table to show the score that dropped a rejected document.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Signal:
    column: str
    limits: tuple[tuple[str, str], ...] = ()   # (dotted config key, "min" or "max")
    reasons: tuple[str, ...] = ()              # drop reasons the stage writes for this column


def _signal(column: str, *limits: tuple[str, str], reasons: tuple[str, ...] = ()) -> Signal:
    return Signal(column, limits, reasons or (column,))


# One row per score column written by pipeline/stages. "min" drops documents below the
# config value and "max" above it. A stage that adds a column or reason adds it here;
# columns missing from a run are skipped.
SIGNALS: tuple[Signal, ...] = (
    _signal("language_score", ("langid.min_language_score", "min"), reasons=("language_score_low",)),
    _signal("gopher_word_count", ("gopher_quality.min_doc_words", "min"), ("gopher_quality.max_doc_words", "max"),
            reasons=("gopher_min_words", "gopher_max_words")),
    _signal("gopher_mean_word_length", ("gopher_quality.min_avg_word_length", "min"),
            ("gopher_quality.max_avg_word_length", "max"),
            reasons=("gopher_min_mean_word_length", "gopher_max_mean_word_length")),
    _signal("gopher_hash_word_ratio", ("gopher_quality.max_symbol_word_ratio", "max")),
    _signal("gopher_ellipsis_word_ratio", ("gopher_quality.max_symbol_word_ratio", "max")),
    _signal("gopher_bullet_line_frac", ("gopher_quality.max_bullet_lines_ratio", "max"), reasons=("gopher_bullet_lines",)),
    _signal("gopher_ellipsis_line_frac", ("gopher_quality.max_ellipsis_lines_ratio", "max"), reasons=("gopher_ellipsis_lines",)),
    # Despite its "max_non_alpha" name, this key is a minimum share of words that contain a letter.
    _signal("gopher_alpha_word_frac", ("gopher_quality.max_non_alpha_words_ratio", "min"), reasons=("gopher_alpha_words",)),
    _signal("gopher_stop_word_count", ("gopher_quality.min_stop_words", "min"), reasons=("gopher_stop_words",)),
    *(_signal(f"gopher_{name}", (f"gopher_repetition.{name}", "max"))
      for name in ("dup_line_frac", "dup_para_frac", "dup_line_char_frac", "dup_para_char_frac")),
    *(_signal(f"gopher_top_{n}gram_frac", (f"gopher_repetition.top_n_grams.{n}", "max")) for n in (2, 3, 4)),
    *(_signal(f"gopher_dup_{n}gram_frac", (f"gopher_repetition.dup_n_grams.{n}", "max")) for n in range(5, 11)),
    _signal("c4_sentence_count", ("c4_quality.min_sentences", "min"), reasons=("c4_min_sentences",)),
    _signal("c4_lorem_ipsum_count", reasons=("c4_lorem_ipsum",)),
    _signal("c4_curly_bracket_count", reasons=("c4_curly_bracket",)),
    _signal("c4_bad_word_count", reasons=("c4_bad_words",)),
    _signal("c4_lines_removed", reasons=("c4_lines_removed",)),
    _signal("fineweb_line_punct_ratio", ("fineweb_quality.min_line_punct_ratio", "min")),
    _signal("fineweb_short_line_ratio", ("fineweb_quality.max_short_line_ratio", "max")),
    _signal("fineweb_dup_line_char_frac", ("fineweb_quality.max_dup_line_char_frac", "max")),
    _signal("fineweb_newline_word_ratio", ("fineweb_quality.max_newline_word_ratio", "max")),
)

# Reasons that name a category rather than a score, and the columns that explain them.
REASON_COLUMNS = {
    "language_not_kept": ("language", "language_score"),
    "language_score_low": ("language", "language_score"),
    "exact_duplicate": ("dedup_cluster", "duplicate_of"),
    "near_duplicate": ("dedup_cluster", "duplicate_of"),
}

# Numeric columns that are identifiers or positions, never scores.
NOT_SCORES = {"source_offset", "dedup_cluster", "duplicate_of", "text_hash"}


@dataclass(frozen=True)
class Threshold:
    key: str          # dotted config key, for the plot legend
    value: float
    is_minimum: bool  # True: documents below the value are dropped


def config_value(config: dict, dotted: str) -> object:
    """Return the value at a dotted key, or None; `top_n_grams.2` matches an integer map key, `models.0` a list item."""
    node: object = config
    for part in dotted.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
            continue
        if not isinstance(node, dict):
            return None
        if part in node:
            node = node[part]
        elif part.isdigit() and int(part) in node:
            node = node[int(part)]
        else:
            return None
    return node


def classifier_signals(config: dict | None) -> list[Signal]:
    """Return a Signal per entry of `classifiers.models`: its `column`, `min_score` and `max_score`."""
    models = config_value(config or {}, "classifiers.models")
    found = []
    for index, entry in enumerate(models if isinstance(models, list) else []):
        if not isinstance(entry, dict) or not entry.get("column"):
            continue
        column = str(entry["column"])
        limits = tuple((f"classifiers.models.{index}.{key}", bound) for key, bound in (("min_score", "min"), ("max_score", "max"))
                       if is_number(entry.get(key)))
        found.append(Signal(column, limits, (f"{column}_below_min", f"{column}_above_max")))
    return found


def all_signals(config: dict | None) -> list[Signal]:
    return [*SIGNALS, *classifier_signals(config)]


def thresholds(config: dict | None) -> dict[str, list[Threshold]]:
    """Return the thresholds set in `config` per score column; empty without a config."""
    if not config:
        return {}
    found: dict[str, list[Threshold]] = {}
    for signal in all_signals(config):
        for key, bound in signal.limits:
            value = config_value(config, key)
            if is_number(value) and section_enabled(config, key):
                found.setdefault(signal.column, []).append(Threshold(key, float(value), bound == "min"))
    return found


def section_enabled(config: dict, dotted: str) -> bool:
    section = config.get(dotted.split(".", 1)[0])
    return not (isinstance(section, dict) and section.get("enabled") is False)


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def score_columns(columns: list[str], config: dict | None = None) -> list[str]:
    """Return the score columns among `columns`: the table's in table order, then `*_score`, then `pii_*`."""
    present = set(columns)
    known = [signal.column for signal in all_signals(config) if signal.column in present]
    others = sorted(
        column
        for column in present - set(known) - NOT_SCORES
        if column.endswith("_score") or column.startswith("pii_")
    )
    return list(dict.fromkeys(known + others))


def reason_columns(reason: str | None, row: dict, config: dict | None = None) -> list[str]:
    """Return the columns of `row` that explain a drop reason, such as `gopher_word_count` for `gopher_min_words`.

    A reason that names no known column (`not_html`, `empty_text`) returns an empty list.
    """
    if not reason:
        return []
    columns = list(REASON_COLUMNS.get(reason, ()))
    columns += [signal.column for signal in all_signals(config) if reason in signal.reasons]
    if reason.endswith(("_below_min", "_above_max")):
        columns.append(reason.rsplit("_", 2)[0])
    return [column for column in dict.fromkeys(columns) if row.get(column) is not None]
