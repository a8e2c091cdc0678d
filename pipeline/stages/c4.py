"""C4's cleaning rules (Raffel et al. 2020, "Exploring the Limits of Transfer Learning", section 2.2).

Line rules remove lines and replace `text` with what is left; document rules then drop
the whole document. Every metric is a column on kept and dropped rows alike.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pyarrow as pa

from pipeline.stages.base import StageOutput
from pipeline.stages.gopher import split_words, tag_and_filter, texts_of

log = logging.getLogger(__name__)

# Wikipedia-style citation markers: [1], [23], [], [edit], [citation needed].
CITATION = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]", re.IGNORECASE)
TERMINAL_PUNCTUATION = (".", "!", "?", '"')
ELLIPSIS_SUFFIXES = ("...", "…")
POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
# A sentence ends at ., ! or ? followed by whitespace or the end of the text.
SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")


def count_sentences(text: str) -> int:
    """Count sentence ends: runs of . ! ? followed by whitespace or the end of the text.

    This is a regular expression, not a trained sentence splitter, so abbreviations such
    as "e.g. " count as sentence ends.
    """
    return len(SENTENCE_END.findall(text))


def load_bad_words(path: str | Path) -> re.Pattern[str]:
    """Compile the words and phrases of a bad-words file (one per line) into one pattern.

    Matching is case-insensitive and on word boundaries, so "ass" does not match "class".
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise FileNotFoundError(f"c4_quality.bad_words_file {path} cannot be read: {error.strerror}") from error
    entries = sorted({line.strip().lower() for line in lines if line.strip()}, key=len, reverse=True)
    if not entries:
        raise ValueError(f"c4_quality.bad_words_file {path} contains no words; give a file with one word per line")
    alternatives = "|".join(re.escape(entry) for entry in entries)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


class C4Quality:
    """C4's line and document rules; the defaults are the published C4 settings.

    Line rules, in order: remove citation markers, then remove a line that has a word
    longer than `max_word_length` characters, does not end in terminal punctuation (. ! ? ")
    or ends in an ellipsis, has fewer than `min_words_per_line` words, contains
    "javascript", or contains a policy phrase such as "privacy policy". Document rules, on
    the lines that are left: drop for "lorem ipsum", for a curly bracket "{", for fewer than
    `min_sentences` sentences, and for any word of `bad_words_file` when one is given.
    `enabled` is accepted and ignored. `text` is replaced by the kept lines on every row.
    """

    name = "c4_quality"

    TYPES = {
        "c4_lines_removed": pa.int64(),
        "c4_lorem_ipsum_count": pa.int64(),
        "c4_curly_bracket_count": pa.int64(),
        "c4_sentence_count": pa.int64(),
        "c4_bad_word_count": pa.int64(),
    }

    def __init__(
        self,
        remove_citations: bool = True,
        max_word_length: int = 1000,
        require_terminal_punct: bool = True,
        min_words_per_line: int = 3,
        filter_javascript: bool = True,
        filter_policy: bool = True,
        filter_lorem_ipsum: bool = True,
        filter_curly_bracket: bool = True,
        min_sentences: int = 5,
        bad_words_file: str | None = None,
        enabled: bool = True,
    ):
        self.remove_citations = remove_citations
        self.max_word_length = max_word_length
        self.require_terminal_punct = require_terminal_punct
        self.min_words_per_line = min_words_per_line
        self.filter_javascript = filter_javascript
        self.filter_policy = filter_policy
        self.filter_lorem_ipsum = filter_lorem_ipsum
        self.filter_curly_bracket = filter_curly_bracket
        self.min_sentences = min_sentences
        self.bad_words_file = bad_words_file
        self._bad_words: re.Pattern[str] | None = None  # compiled on first use, so the stage pickles small

    def keep_line(self, line: str) -> bool:
        """Return whether a stripped, citation-free line passes every line rule."""
        if any(len(word) > self.max_word_length for word in line.split()):
            return False
        if self.require_terminal_punct and (not line.endswith(TERMINAL_PUNCTUATION) or line.endswith(ELLIPSIS_SUFFIXES)):
            return False
        if len(split_words(line)) < self.min_words_per_line:
            return False
        lowered = line.lower()
        if self.filter_javascript and "javascript" in lowered:
            return False
        if self.filter_policy and any(phrase in lowered for phrase in POLICY_PHRASES):
            return False
        return True

    def clean(self, text: str) -> tuple[str, int]:
        """Return the text with the failing lines removed and the number of lines removed.

        Empty lines are dropped without being counted as removed.
        """
        kept = []
        removed = 0
        for raw in text.split("\n"):
            line = CITATION.sub("", raw) if self.remove_citations else raw
            line = line.strip()
            if not line:
                continue
            if self.keep_line(line):
                kept.append(line)
            else:
                removed += 1
        return "\n".join(kept), removed

    def bad_words(self) -> re.Pattern[str] | None:
        if self.bad_words_file and self._bad_words is None:
            self._bad_words = load_bad_words(self.bad_words_file)
            log.info("loaded the C4 bad-words list %s", self.bad_words_file)
        return self._bad_words

    def metrics(self, cleaned: str, removed: int) -> dict[str, int]:
        """Return this stage's metrics for one document, given its cleaned text."""
        lowered = cleaned.lower()
        pattern = self.bad_words()
        return {
            "c4_lines_removed": removed,
            "c4_lorem_ipsum_count": lowered.count("lorem ipsum"),
            "c4_curly_bracket_count": cleaned.count("{"),
            "c4_sentence_count": count_sentences(cleaned),
            "c4_bad_word_count": len(pattern.findall(cleaned)) if pattern is not None else 0,
        }

    def reason(self, m: dict[str, int]) -> str | None:
        """Return the first document rule that the metrics `m` fail, or None."""
        checks = (
            ("c4_lorem_ipsum", self.filter_lorem_ipsum and m["c4_lorem_ipsum_count"] > 0),
            ("c4_curly_bracket", self.filter_curly_bracket and m["c4_curly_bracket_count"] > 0),
            ("c4_min_sentences", m["c4_sentence_count"] < self.min_sentences),
            ("c4_bad_words", m["c4_bad_word_count"] > 0),
        )
        return next((name for name, failed in checks if failed), None)

    def __call__(self, table: pa.Table) -> StageOutput:
        columns: dict[str, list] = {name: [] for name in self.TYPES}
        cleaned_texts = []
        reasons = []
        for text in texts_of(table):
            cleaned, removed = self.clean(text)
            m = self.metrics(cleaned, removed)
            for name, value in m.items():
                columns[name].append(value)
            cleaned_texts.append(cleaned)
            reasons.append(self.reason(m))
        index = table.column_names.index("text")
        table = table.set_column(index, "text", pa.array(cleaned_texts, table.schema.field("text").type))
        return tag_and_filter(table, columns, self.TYPES, reasons)
