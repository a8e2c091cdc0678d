"""FineWeb's own quality rules (Penedo et al. 2024, "The FineWeb Datasets").

Four document-level rules on line punctuation, short lines, duplicated lines and newlines.
The defaults are those of `FineWebQualityFilter` in huggingface/datatrove, the code that
produced FineWeb.
"""

from __future__ import annotations

import pyarrow as pa

from pipeline.stages.base import StageOutput
from pipeline.stages.gopher import duplicate_fractions, ratio, split_lines, split_words, tag_and_filter, texts_of

# A line "ends in punctuation" when its last character is one of these.
LINE_END_PUNCTUATION = (".", "'", '"', "!", "?")


class FineWebQuality:
    """FineWeb's rules: share of lines ending in punctuation, short lines, duplicated lines, newlines.

    Lines are split on newlines, stripped, and empty ones dropped. A document is dropped
    when its line-punctuation ratio is below `min_line_punct_ratio`, its share of lines of
    at most `short_line_max_chars` characters is above `max_short_line_ratio`, the share
    of its line characters in repeated lines is above `max_dup_line_char_frac`, or it has
    more than `max_newline_word_ratio` newlines per word. `enabled` is accepted and ignored.
    """

    name = "fineweb_quality"

    TYPES = {
        "fineweb_line_punct_ratio": pa.float64(),
        "fineweb_short_line_ratio": pa.float64(),
        "fineweb_dup_line_char_frac": pa.float64(),
        "fineweb_newline_word_ratio": pa.float64(),
    }

    def __init__(
        self,
        min_line_punct_ratio: float = 0.12,
        max_short_line_ratio: float = 0.67,
        short_line_max_chars: int = 30,
        max_dup_line_char_frac: float = 0.01,
        max_newline_word_ratio: float = 0.3,
        enabled: bool = True,
    ):
        self.min_line_punct_ratio = min_line_punct_ratio
        self.max_short_line_ratio = max_short_line_ratio
        self.short_line_max_chars = short_line_max_chars
        self.max_dup_line_char_frac = max_dup_line_char_frac
        self.max_newline_word_ratio = max_newline_word_ratio

    def metrics(self, text: str) -> dict[str, float]:
        """Return this stage's metrics for one document."""
        lines = split_lines(text)
        _, dup_char_frac = duplicate_fractions(lines)
        return {
            "fineweb_line_punct_ratio": ratio(sum(line.endswith(LINE_END_PUNCTUATION) for line in lines), len(lines)),
            "fineweb_short_line_ratio": ratio(sum(len(line) <= self.short_line_max_chars for line in lines), len(lines)),
            "fineweb_dup_line_char_frac": dup_char_frac,
            "fineweb_newline_word_ratio": ratio(text.count("\n"), len(split_words(text))),
        }

    def reason(self, m: dict[str, float]) -> str | None:
        """Return the first rule that the metrics `m` fail, or None."""
        checks = (
            ("fineweb_line_punct_ratio", m["fineweb_line_punct_ratio"] < self.min_line_punct_ratio),
            ("fineweb_short_line_ratio", m["fineweb_short_line_ratio"] > self.max_short_line_ratio),
            ("fineweb_dup_line_char_frac", m["fineweb_dup_line_char_frac"] > self.max_dup_line_char_frac),
            ("fineweb_newline_word_ratio", m["fineweb_newline_word_ratio"] > self.max_newline_word_ratio),
        )
        return next((name for name, failed in checks if failed), None)

    def __call__(self, table: pa.Table) -> StageOutput:
        columns: dict[str, list] = {name: [] for name in self.TYPES}
        reasons = []
        for text in texts_of(table):
            m = self.metrics(text)
            for name, value in m.items():
                columns[name].append(value)
            reasons.append(self.reason(m))
        return tag_and_filter(table, columns, self.TYPES, reasons)
