"""Gopher, C4 and FineWeb rule stages: each metric pinned on small hand-made documents."""

from __future__ import annotations

import gzip
import json
import pickle

import pyarrow as pa
import pytest

from pipeline.stages.base import apply_stages
from pipeline.stages.c4 import C4Quality, count_sentences
from pipeline.stages.fineweb import FineWebQuality
from pipeline.stages.gopher import (
    GopherQuality,
    GopherRepetition,
    dup_ngram_char_frac,
    duplicate_fractions,
    split_words,
    top_ngram_char_frac,
)

# 10 words per sentence, 5 sentences: 50 words, 4 Gopher stop words per sentence.
GOOD_SENTENCE = "The cat sat with a hat and that was fine."


def table_of(*texts: str) -> pa.Table:
    return pa.table({"id": [str(i) for i in range(len(texts))], "text": list(texts)})


def row(output, index: int = 0) -> dict:
    return output.table.slice(index, 1).to_pylist()[0]


# --- word splitting -----------------------------------------------------------------------


def test_split_words_strips_punctuation():
    assert split_words("Hello, world -- ok.") == ["Hello", "world", "ok"]


def test_split_words_keeps_inner_punctuation():
    assert split_words("don't e.g. 3.5") == ["don't", "e.g", "3.5"]


# --- Gopher quality -----------------------------------------------------------------------


def test_gopher_word_count_and_mean_length():
    m = GopherQuality().metrics("The cat, the hat.")
    # words: The cat the hat -> 4 words of 3 letters: mean 12 / 4 = 3.0
    assert m["gopher_word_count"] == 4
    assert m["gopher_mean_word_length"] == 3.0


def test_gopher_stop_word_count_is_case_insensitive():
    m = GopherQuality().metrics("The cat, the hat with that.")
    # The, the, with, that
    assert m["gopher_stop_word_count"] == 4


def test_gopher_hash_word_ratio():
    m = GopherQuality().metrics("# tag one two three")
    # "#" alone is not a word: 1 hash / 4 words
    assert m["gopher_hash_word_ratio"] == 1 / 4


def test_gopher_ellipsis_word_ratio():
    m = GopherQuality().metrics("wait... more … end")
    # words: wait, more, end (the lone "…" is not a word); ellipses: "..." and "…" -> 2 / 3
    assert m["gopher_word_count"] == 3
    assert m["gopher_ellipsis_word_ratio"] == 2 / 3


def test_gopher_bullet_line_frac():
    m = GopherQuality().metrics("• one\n- two\nthree\n\n")
    # 3 non-empty lines, 2 start with a bullet
    assert m["gopher_bullet_line_frac"] == 2 / 3


def test_gopher_ellipsis_line_frac():
    m = GopherQuality().metrics("a...\nb\nc…\nd")
    # 4 lines, 2 end in an ellipsis
    assert m["gopher_ellipsis_line_frac"] == 2 / 4


def test_gopher_alpha_word_frac():
    m = GopherQuality().metrics("abc 123 4x5 !!!")
    # words: abc, 123, 4x5 ("!!!" is not a word); with a letter: abc, 4x5 -> 2 / 3
    assert m["gopher_alpha_word_frac"] == 2 / 3


def test_gopher_quality_keeps_good_document():
    output = GopherQuality()(table_of(" ".join([GOOD_SENTENCE] * 5)))
    # 50 words, mean length (3+3+3+4+1+3+3+4+3+4) / 10 = 3.1, 20 stop words
    assert output.reasons == [None]
    assert row(output)["gopher_word_count"] == 50
    assert row(output)["gopher_mean_word_length"] == pytest.approx(3.1)


def test_gopher_quality_reason_is_first_failing_rule():
    # 40 words (too few) and mean word length 1 (too short): the word count rule comes first
    output = GopherQuality()(table_of(" ".join(["a"] * 40)))
    assert output.reasons == ["gopher_min_words"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (" ".join(["the and"] * 25 + ["x" * 30] * 5), None),
        (" ".join(["the of"] * 30), "gopher_min_mean_word_length"),
        (" ".join([GOOD_SENTENCE] * 5 + ["#"] * 6), "gopher_hash_word_ratio"),
        (" ".join(["cat dog bird"] * 20), "gopher_stop_words"),
        # 40 words with letters of 51: 0.78 < 0.8; mean length (4 * 31 + 11 * 4) / 51 = 3.3
        (" ".join([GOOD_SENTENCE] * 4 + ["1234"] * 11), "gopher_alpha_words"),
    ],
)
def test_gopher_quality_reasons(text, reason):
    assert GopherQuality()(table_of(text)).reasons == [reason]


def test_gopher_quality_max_words():
    stage = GopherQuality(max_doc_words=60)
    assert stage(table_of(" ".join([GOOD_SENTENCE] * 7))).reasons == ["gopher_max_words"]


def test_gopher_quality_tags_every_row():
    output = GopherQuality()(table_of("short", " ".join([GOOD_SENTENCE] * 5)))
    assert output.reasons == ["gopher_min_words", None]
    assert output.table.column("gopher_word_count").to_pylist() == [1, 50]


def test_gopher_quality_accepts_config_section():
    section = {"enabled": True, "min_doc_words": 50, "max_doc_words": 100000, "min_avg_word_length": 3,
               "max_avg_word_length": 10, "max_symbol_word_ratio": 0.1, "max_bullet_lines_ratio": 0.9,
               "max_ellipsis_lines_ratio": 0.3, "max_non_alpha_words_ratio": 0.8, "min_stop_words": 2}
    assert GopherQuality(**section).name == "gopher_quality"


def test_gopher_quality_handles_null_text():
    output = GopherQuality()(pa.table({"text": pa.array([None], pa.string())}))
    assert output.reasons == ["gopher_min_words"]
    assert row(output)["gopher_word_count"] == 0


# --- Gopher repetition --------------------------------------------------------------------


def test_duplicate_fractions_count_and_chars():
    count_frac, char_frac = duplicate_fractions(["a b", "cd", "a b", "a b"])
    # repeats after the first: 2 of 4 items; their characters 3 + 3 = 6 of 3 + 2 + 3 + 3 = 11
    assert count_frac == 2 / 4
    assert char_frac == 6 / 11


def test_gopher_dup_lines_and_paragraphs():
    m = GopherRepetition().metrics("alpha\nbeta\nalpha\n\ngamma")
    # lines alpha, beta, alpha, gamma: 1 repeat of 4, 5 chars of 5 + 4 + 5 + 5 = 19
    assert m["gopher_dup_line_frac"] == 1 / 4
    assert m["gopher_dup_line_char_frac"] == 5 / 19
    # paragraphs "alpha\nbeta\nalpha" and "gamma": no repeat
    assert m["gopher_dup_para_frac"] == 0.0
    assert m["gopher_dup_para_char_frac"] == 0.0


def test_gopher_dup_paragraph_frac():
    m = GopherRepetition().metrics("one two\n\nthree\n\none two")
    # paragraphs "one two", "three", "one two": 1 repeat of 3; 7 chars of 7 + 5 + 7 = 19
    assert m["gopher_dup_para_frac"] == 1 / 3
    assert m["gopher_dup_para_char_frac"] == 7 / 19


def test_top_2gram_frac():
    words = "red fox red fox ran".split()
    # (red, fox) occurs twice with 3 + 3 letters: 2 * 6 / 15 letters in all
    assert top_ngram_char_frac(words, 2, 15) == 12 / 15


def test_top_ngram_frac_is_zero_without_repeats():
    assert top_ngram_char_frac("one two three four".split(), 2, 15) == 0.0


def test_dup_5gram_frac():
    words = "one two three four five six one two three four five seven".split()
    # (one two three four five) occurs at 0 and 6: covered letters 2 * (3+3+5+4+4) = 38;
    # all letters 38 + len("six") + len("seven") = 46
    assert dup_ngram_char_frac(words, 5, 46) == 38 / 46


def test_dup_ngram_frac_counts_overlaps_once():
    # Two overlapping duplicated 5-grams cover the 6 words once: 6 letters of 6
    assert dup_ngram_char_frac(["a"] * 6, 5, 6) == 1.0


def test_gopher_repetition_columns_and_reason():
    output = GopherRepetition()(table_of("x\nx\nx"))
    # 2 of 3 lines repeat: 0.667 > 0.3, the first rule
    assert output.reasons == ["gopher_dup_line_frac"]
    for n in (2, 3, 4):
        assert f"gopher_top_{n}gram_frac" in output.table.column_names
    for n in range(5, 11):
        assert f"gopher_dup_{n}gram_frac" in output.table.column_names


def test_gopher_repetition_reason_names_ngram_rule():
    text = "\n".join(f"line {i}: buy cheap pills now" for i in range(10))
    output = GopherRepetition()(table_of(text))
    # words per line: line, <i>, buy, cheap, pills, now: 4 + 1 + 3 + 5 + 5 + 3 = 21 letters.
    # Lines differ, but (cheap, pills) occurs 10 times: 10 * 10 / 210 = 0.48 > 0.2.
    assert output.reasons == ["gopher_top_2gram_frac"]
    assert row(output)["gopher_top_2gram_frac"] == 100 / 210
    # (buy, cheap, pills, now) occurs 10 times with 16 letters
    assert row(output)["gopher_top_4gram_frac"] == 160 / 210


def test_gopher_repetition_keeps_varied_text():
    text = "Alpha beta gamma delta.\nEpsilon zeta eta theta.\n\nIota kappa lambda mu."
    assert GopherRepetition()(table_of(text)).reasons == [None]


def test_gopher_repetition_accepts_string_ngram_keys():
    stage = GopherRepetition(top_n_grams={"2": 0.5}, dup_n_grams={"5": 0.5})
    assert list(stage.max_fractions)[-2:] == ["gopher_top_2gram_frac", "gopher_dup_5gram_frac"]


# --- C4 -----------------------------------------------------------------------------------

C4_DOC = "\n".join([
    "This is a good line.",
    "Too short.",
    "No punctuation here at all",
    "Please enable JavaScript in your browser.",
    "Read our privacy policy for details.",
    "A line ending in an ellipsis...",
    "A fact with a citation.[1]",
    "",
    "Another good line here!",
])


def test_count_sentences():
    # ". ", "! ", "?" at the end; "no end" has none
    assert count_sentences("One. Two! Three? no end") == 3


def test_c4_clean_removes_failing_lines():
    cleaned, removed = C4Quality().clean(C4_DOC)
    # removed: too short, no punctuation, javascript, policy, ellipsis (the empty line is not counted)
    assert removed == 5
    assert cleaned == "This is a good line.\nA fact with a citation.\nAnother good line here!"


def test_c4_removes_line_with_long_word():
    cleaned, removed = C4Quality().clean("A word " + "x" * 1001 + " here.\nThis line is fine.")
    assert removed == 1
    assert cleaned == "This line is fine."


def test_c4_stage_replaces_text_and_counts():
    output = C4Quality()(table_of(C4_DOC))
    # 3 sentences are left, fewer than 5
    assert output.reasons == ["c4_min_sentences"]
    assert row(output)["text"].startswith("This is a good line.\nA fact")
    assert row(output)["c4_lines_removed"] == 5
    assert row(output)["c4_sentence_count"] == 3


def test_c4_keeps_five_good_sentences():
    output = C4Quality()(table_of("\n".join([GOOD_SENTENCE] * 5)))
    assert output.reasons == [None]
    assert row(output)["c4_lines_removed"] == 0


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ("Lorem ipsum dolor sit amet.", "c4_lorem_ipsum"),
        ("The set {a, b} is small.", "c4_curly_bracket"),
    ],
)
def test_c4_document_rules(extra, reason):
    output = C4Quality()(table_of("\n".join([GOOD_SENTENCE] * 5 + [extra])))
    assert output.reasons == [reason]


def test_c4_without_terminal_punct_rule_keeps_line():
    cleaned, removed = C4Quality(require_terminal_punct=False).clean("No punctuation here at all")
    assert removed == 0
    assert cleaned == "No punctuation here at all"


def test_c4_bad_words_file(tmp_path):
    path = tmp_path / "bad-words.txt"
    path.write_text("badword\nbad phrase\n", encoding="utf-8")
    stage = C4Quality(bad_words_file=str(path))
    texts = ["\n".join([GOOD_SENTENCE] * 5 + ["It has a Badword and a bad phrase in it."]),
             "\n".join([GOOD_SENTENCE] * 5 + ["The word classbadwords is not one."])]
    output = stage(table_of(*texts))
    assert output.reasons == ["c4_bad_words", None]
    assert output.table.column("c4_bad_word_count").to_pylist() == [2, 0]


def test_c4_missing_bad_words_file(tmp_path):
    stage = C4Quality(bad_words_file=str(tmp_path / "missing.txt"))
    with pytest.raises(FileNotFoundError, match="bad_words_file"):
        stage(table_of(GOOD_SENTENCE))


def test_c4_stage_pickles():
    stage = C4Quality()
    assert pickle.loads(pickle.dumps(stage)).min_sentences == 5


# --- FineWeb ------------------------------------------------------------------------------

FINEWEB_DOC = "Short line.\nThis line is longer than thirty characters, surely.\nno punct here\nShort line."


def test_fineweb_metrics():
    m = FineWebQuality().metrics(FINEWEB_DOC)
    # 4 lines of 11, 51, 13 and 11 characters
    assert m["fineweb_line_punct_ratio"] == 3 / 4          # all but "no punct here"
    assert m["fineweb_short_line_ratio"] == 3 / 4          # 11, 13, 11 <= 30
    assert m["fineweb_dup_line_char_frac"] == 11 / 86      # second "Short line." of 11 + 51 + 13 + 11
    assert m["fineweb_newline_word_ratio"] == 3 / 15       # 3 newlines, 2 + 8 + 3 + 2 words


def test_fineweb_reason_is_short_lines():
    output = FineWebQuality()(table_of(FINEWEB_DOC))
    # punctuation 0.75 >= 0.12 passes; short lines 0.75 > 0.67 fails
    assert output.reasons == ["fineweb_short_line_ratio"]


def test_fineweb_line_punct_reason():
    text = "\n".join(f"a heading without any punctuation number {i}" for i in range(10))
    assert FineWebQuality()(table_of(text)).reasons == ["fineweb_line_punct_ratio"]


def test_fineweb_line_of_30_chars_is_short():
    line = "x" * 29 + "."
    assert FineWebQuality().metrics(line)["fineweb_short_line_ratio"] == 1.0


def test_fineweb_newline_reason():
    # 6 distinct lines of 8 words each, each ending in a period: 5 newlines / 48 words = 0.104
    lines = [f"Sentence number {i} has eight words in it." for i in range(6)]
    assert FineWebQuality()(table_of("\n".join(lines))).reasons == [None]
    # one word per line: 5 newlines / 6 words = 0.83 > 0.3, after the other rules pass
    stage = FineWebQuality(max_short_line_ratio=1.0)
    assert stage(table_of("\n".join(f"Word{i}." for i in range(6)))).reasons == ["fineweb_newline_word_ratio"]


# --- on real crawl text -------------------------------------------------------------------


def test_rule_stages_on_real_crawl_text(shared_data):
    path = shared_data / "cc-text" / "cc-main-2019-30-697-docs.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        texts = [json.loads(line)["text"] for line in handle]
    table = table_of(*texts)
    stages = [GopherRepetition(), GopherQuality(), C4Quality(require_terminal_punct=False), FineWebQuality()]
    kept, rejected, stats = apply_stages(stages, table)
    assert stats[0].documents_in == len(texts)
    for stage_stats in stats:
        assert stage_stats.documents_in - stage_stats.documents_out == sum(stage_stats.dropped.values())
    assert 0 < kept.num_rows < len(texts)
    assert "fineweb_line_punct_ratio" in kept.column_names
