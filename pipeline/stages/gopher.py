"""Gopher quality and repetition rules (Rae et al. 2021, "Scaling Language Models", Appendix A).

Both stages tag every row with their metrics, then drop a row for the first rule it fails.
The word splitting here (`split_words`) is shared by the C4 and FineWeb stages.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Any, Iterable, Mapping

import numpy as np
import pyarrow as pa

from pipeline.stages.base import StageOutput

# Characters stripped from both ends of a whitespace-separated token to get a word: ASCII
# punctuation plus the common typographic quotes, dashes, bullets and ellipsis.
WORD_STRIP_CHARS = string.punctuation + "‘’“”«»„‚–—…•·¡¿"

# The stop words Gopher requires at least two of (matched on lowercased words).
GOPHER_STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")

BULLET_PREFIXES = ("•", "‣", "●", "◦", "▪", "⁃", "-", "*", "–", "—")
ELLIPSIS_SUFFIXES = ("...", "…")

PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def split_words(text: str) -> list[str]:
    """Split on whitespace, strip punctuation from each token's ends, drop empty tokens.

    "Hello, world -- ok." gives ["Hello", "world", "ok"]: a token made only of punctuation
    is not a word. Case is kept. It is a plain `str.split`, so it runs in linear time.
    """
    return [word for token in text.split() if (word := token.strip(WORD_STRIP_CHARS))]


def split_lines(text: str) -> list[str]:
    """Return the lines of `text`, stripped, without empty lines."""
    return [line for line in (raw.strip() for raw in text.split("\n")) if line]


def split_paragraphs(text: str) -> list[str]:
    """Return the paragraphs of `text` (separated by blank lines), stripped, without empty ones."""
    return [part for part in (raw.strip() for raw in PARAGRAPH_BREAK.split(text)) if part]


def has_letter(word: str) -> bool:
    """Return whether any character of `word` is alphabetic, scanning characters only when `isalpha` fails."""
    return word.isalpha() or any(c.isalpha() for c in word)


def texts_of(table: pa.Table) -> list[str]:
    """Return the `text` column as Python strings, with nulls as empty strings."""
    return [text or "" for text in table.column("text").to_pylist()]


def tag_and_filter(
    table: pa.Table, columns: dict[str, list], types: Mapping[str, pa.DataType], reasons: list[str | None]
) -> StageOutput:
    """Append the metric `columns` (one value per row) to `table` and pair it with `reasons`."""
    for name, values in columns.items():
        table = table.append_column(name, pa.array(values, types[name]))
    return StageOutput(table=table, reasons=reasons)


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


class GopherQuality:
    """Gopher's quality rules: document length, word length, symbols, bullets, stop words.

    Each threshold is a keyword argument whose default is the published value; `enabled` is
    accepted and ignored, because the caller decides whether the stage runs. A row is
    dropped when a metric is below a `min_` or above a `max_` threshold.
    `max_non_alpha_words_ratio` keeps its config name, but the rule it sets is Gopher's:
    drop a document when fewer than this share (0.8) of its words contain a letter.
    """

    name = "gopher_quality"

    def __init__(
        self,
        min_doc_words: int = 50,
        max_doc_words: int = 100_000,
        min_avg_word_length: float = 3,
        max_avg_word_length: float = 10,
        max_symbol_word_ratio: float = 0.1,
        max_bullet_lines_ratio: float = 0.9,
        max_ellipsis_lines_ratio: float = 0.3,
        max_non_alpha_words_ratio: float = 0.8,
        min_stop_words: int = 2,
        stop_words: Iterable[str] = GOPHER_STOP_WORDS,
        enabled: bool = True,
    ):
        self.min_doc_words = min_doc_words
        self.max_doc_words = max_doc_words
        self.min_avg_word_length = min_avg_word_length
        self.max_avg_word_length = max_avg_word_length
        self.max_symbol_word_ratio = max_symbol_word_ratio
        self.max_bullet_lines_ratio = max_bullet_lines_ratio
        self.max_ellipsis_lines_ratio = max_ellipsis_lines_ratio
        self.max_non_alpha_words_ratio = max_non_alpha_words_ratio
        self.min_stop_words = min_stop_words
        self.stop_words = frozenset(word.lower() for word in stop_words)

    TYPES = {
        "gopher_word_count": pa.int64(),
        "gopher_mean_word_length": pa.float64(),
        "gopher_hash_word_ratio": pa.float64(),
        "gopher_ellipsis_word_ratio": pa.float64(),
        "gopher_bullet_line_frac": pa.float64(),
        "gopher_ellipsis_line_frac": pa.float64(),
        "gopher_alpha_word_frac": pa.float64(),
        "gopher_stop_word_count": pa.int64(),
    }

    def metrics(self, text: str) -> dict[str, Any]:
        """Return this stage's metrics for one document."""
        words = split_words(text)
        lines = split_lines(text)
        word_count = len(words)
        ellipsis_count = text.count("...") + text.count("…")
        return {
            "gopher_word_count": word_count,
            "gopher_mean_word_length": ratio(sum(map(len, words)), word_count),
            "gopher_hash_word_ratio": ratio(text.count("#"), word_count),
            "gopher_ellipsis_word_ratio": ratio(ellipsis_count, word_count),
            "gopher_bullet_line_frac": ratio(sum(line.startswith(BULLET_PREFIXES) for line in lines), len(lines)),
            "gopher_ellipsis_line_frac": ratio(sum(line.endswith(ELLIPSIS_SUFFIXES) for line in lines), len(lines)),
            "gopher_alpha_word_frac": ratio(sum(map(has_letter, words)), word_count),
            "gopher_stop_word_count": sum(map(self.stop_words.__contains__, map(str.lower, words))),
        }

    def reason(self, m: dict[str, Any]) -> str | None:
        """Return the first rule that the metrics `m` fail, or None."""
        checks = (
            ("gopher_min_words", m["gopher_word_count"] < self.min_doc_words),
            ("gopher_max_words", m["gopher_word_count"] > self.max_doc_words),
            ("gopher_min_mean_word_length", m["gopher_mean_word_length"] < self.min_avg_word_length),
            ("gopher_max_mean_word_length", m["gopher_mean_word_length"] > self.max_avg_word_length),
            ("gopher_hash_word_ratio", m["gopher_hash_word_ratio"] > self.max_symbol_word_ratio),
            ("gopher_ellipsis_word_ratio", m["gopher_ellipsis_word_ratio"] > self.max_symbol_word_ratio),
            ("gopher_bullet_lines", m["gopher_bullet_line_frac"] > self.max_bullet_lines_ratio),
            ("gopher_ellipsis_lines", m["gopher_ellipsis_line_frac"] > self.max_ellipsis_lines_ratio),
            ("gopher_alpha_words", m["gopher_alpha_word_frac"] < self.max_non_alpha_words_ratio),
            ("gopher_stop_words", m["gopher_stop_word_count"] < self.min_stop_words),
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


def duplicate_fractions(items: list[str]) -> tuple[float, float]:
    """Return (share of items that repeat an earlier item, share of characters in those repeats).

    The first occurrence of an item is not a duplicate; every later one is.
    """
    seen: set[str] = set()
    duplicate_count = duplicate_chars = 0
    for item in items:
        if item in seen:
            duplicate_count += 1
            duplicate_chars += len(item)
        else:
            seen.add(item)
    total_chars = sum(len(item) for item in items)
    return ratio(duplicate_count, len(items)), ratio(duplicate_chars, total_chars)


def top_ngram_char_frac(words: list, n: int, total_chars: int, lengths: list[int] | None = None) -> float:
    """Return the share of word characters in the most frequent word n-gram, counted at every occurrence.

    `words` are strings or word ids; `lengths` gives each word's characters when ids are
    passed. Characters are those of the words (spaces are not counted). When no n-gram
    occurs twice the fraction is 0, because a document without repeats has no top n-gram
    to flag. Ties in frequency go to the n-gram with the most characters.
    """
    if lengths is None:
        lengths = [len(word) for word in words]
    counts = Counter(zip(*(words[i:] for i in range(n))))
    if not counts:
        return 0.0
    top_count = max(counts.values())
    if top_count < 2:
        return 0.0
    first_start: dict[tuple, int] = {}
    for start, gram in enumerate(zip(*(words[i:] for i in range(n)))):
        if counts[gram] == top_count and gram not in first_start:
            first_start[gram] = start
    top_chars = max(sum(lengths[start:start + n]) for start in first_start.values())
    return ratio(top_count * top_chars, total_chars)


def dup_ngram_char_frac(words: list, n: int, total_chars: int, lengths: list[int] | None = None) -> float:
    """Return the share of word characters inside word n-grams that occur more than once.

    `words` are strings or word ids; `lengths` gives each word's characters when ids are
    passed. A word covered by several duplicated n-grams is counted once. One pass builds
    the n-gram counts and one pass sweeps the covered span, so the cost is linear in words * n.
    """
    if lengths is None:
        lengths = [len(word) for word in words]
    grams = list(zip(*(words[i:] for i in range(n))))
    if not grams:
        return 0.0
    counts = Counter(grams)
    if len(counts) == len(grams):
        return 0.0  # no n-gram repeats
    covered_chars = 0
    covered_until = 0  # first word index not yet counted
    for start, gram in enumerate(grams):
        if counts[gram] < 2:
            continue
        covered_chars += sum(lengths[max(start, covered_until):start + n])
        covered_until = start + n
    return ratio(covered_chars, total_chars)


HASH_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
HASH_STEP = np.uint64(0xC2B2AE3D27D4EB4F)


def ngram_fractions(ids: np.ndarray, lengths: np.ndarray, total_chars: int,
                    top_ns, dup_ns) -> dict[str, float]:
    """Return the top and duplicated n-gram character fractions for every size, vectorized.

    Same definitions as `top_ngram_char_frac` and `dup_ngram_char_frac`, but each n-gram is
    a 64-bit polynomial hash of its word ids, extended by one word per size, and counted
    with `np.unique`. Two different n-grams share a hash with probability about 2**-64.
    """
    out: dict[str, float] = {}
    words = len(ids)
    max_n = max([*top_ns, *dup_ns], default=0)
    prefix = np.concatenate(([0], np.cumsum(lengths)))
    mixed = (ids + np.uint64(1)) * HASH_MULTIPLIER  # uint64 arithmetic wraps, as a hash should
    hashes = mixed.copy()
    for n in range(1, max_n + 1):
        if n > 1:
            hashes = hashes[:-1] * HASH_STEP + mixed[n - 1:]
        if n not in top_ns and n not in dup_ns:
            continue
        if len(hashes) == 0:
            counts = np.zeros(0, dtype=np.int64)
        else:
            _, inverse, unique_counts = np.unique(hashes, return_inverse=True, return_counts=True)
            counts = unique_counts[inverse]
        if n in top_ns:
            top_count = int(counts.max()) if len(counts) else 0
            if top_count < 2:
                out[f"gopher_top_{n}gram_frac"] = 0.0
            else:
                starts = np.flatnonzero(counts == top_count)
                top_chars = int((prefix[starts + n] - prefix[starts]).max())
                out[f"gopher_top_{n}gram_frac"] = ratio(top_count * top_chars, total_chars)
        if n in dup_ns:
            starts = np.flatnonzero(counts >= 2)
            if len(starts) == 0:
                out[f"gopher_dup_{n}gram_frac"] = 0.0
                continue
            cover = np.zeros(words + 1, dtype=np.int64)
            np.add.at(cover, starts, 1)
            np.add.at(cover, starts + n, -1)
            covered = np.cumsum(cover[:words]) > 0
            out[f"gopher_dup_{n}gram_frac"] = ratio(int(lengths[covered].sum()), total_chars)
    return out


class GopherRepetition:
    """Gopher's repetition rules: duplicate lines and paragraphs, top and duplicated n-grams.

    `top_n_grams` and `dup_n_grams` map an n-gram size to the maximum character fraction.
    Each threshold is a maximum; the defaults are the published values. `enabled` is
    accepted and ignored. Lines are split on newlines and paragraphs on blank lines, both
    stripped and without empty ones; n-grams are over `split_words` words, case kept.
    """

    name = "gopher_repetition"

    def __init__(
        self,
        dup_line_frac: float = 0.3,
        dup_para_frac: float = 0.3,
        dup_line_char_frac: float = 0.2,
        dup_para_char_frac: float = 0.2,
        top_n_grams: Mapping[int, float] | None = None,
        dup_n_grams: Mapping[int, float] | None = None,
        enabled: bool = True,
    ):
        if top_n_grams is None:
            top_n_grams = {2: 0.2, 3: 0.18, 4: 0.16}
        if dup_n_grams is None:
            dup_n_grams = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}
        self.max_fractions = {
            "gopher_dup_line_frac": dup_line_frac,
            "gopher_dup_para_frac": dup_para_frac,
            "gopher_dup_line_char_frac": dup_line_char_frac,
            "gopher_dup_para_char_frac": dup_para_char_frac,
        }
        self.top_n_grams = {int(n): float(limit) for n, limit in sorted(top_n_grams.items(), key=lambda kv: int(kv[0]))}
        self.dup_n_grams = {int(n): float(limit) for n, limit in sorted(dup_n_grams.items(), key=lambda kv: int(kv[0]))}
        for n in self.top_n_grams:
            self.max_fractions[f"gopher_top_{n}gram_frac"] = self.top_n_grams[n]
        for n in self.dup_n_grams:
            self.max_fractions[f"gopher_dup_{n}gram_frac"] = self.dup_n_grams[n]

    def metrics(self, text: str) -> dict[str, float]:
        """Return this stage's metrics for one document, in the order the rules are checked."""
        lines = split_lines(text)
        paragraphs = split_paragraphs(text)
        line_frac, line_char_frac = duplicate_fractions(lines)
        para_frac, para_char_frac = duplicate_fractions(paragraphs)
        m = {
            "gopher_dup_line_frac": line_frac,
            "gopher_dup_para_frac": para_frac,
            "gopher_dup_line_char_frac": line_char_frac,
            "gopher_dup_para_char_frac": para_char_frac,
        }
        words = split_words(text)
        total_chars = sum(len(word) for word in words)
        vocabulary: dict[str, int] = {}
        ids = [vocabulary.setdefault(word, len(vocabulary)) for word in words]
        if len(vocabulary) == len(ids):
            # No word repeats, so no n-gram of any size can.
            m.update({f"gopher_top_{n}gram_frac": 0.0 for n in self.top_n_grams})
            m.update({f"gopher_dup_{n}gram_frac": 0.0 for n in self.dup_n_grams})
        else:
            m.update(ngram_fractions(np.array(ids, dtype=np.uint64), np.array([len(w) for w in words], dtype=np.int64),
                                     total_chars, self.top_n_grams, self.dup_n_grams))
        return m

    def reason(self, m: dict[str, float]) -> str | None:
        """Return the first metric above its maximum (the reason is the column name), or None."""
        return next((name for name, limit in self.max_fractions.items() if m[name] > limit), None)

    def __call__(self, table: pa.Table) -> StageOutput:
        columns: dict[str, list] = {name: [] for name in self.max_fractions}
        reasons = []
        for text in texts_of(table):
            m = self.metrics(text)
            for name, value in m.items():
                columns[name].append(value)
            reasons.append(self.reason(m))
        types = {name: pa.float64() for name in columns}
        return tag_and_filter(table, columns, types, reasons)
