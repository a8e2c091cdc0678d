"""Trim boilerplate blocks (menus, bylines, share and cookie lines, footers) from the edges of extracted text.

Resiliparse's main-content extraction keeps most navigation and footer lines that sit next
to the article. `clean_text` keeps the span from the first to the last content block and
drops what lies outside it. Text between content blocks stays as it is, and a headline on
its own line before the first sentence is dropped too.
"""

from __future__ import annotations

import re

# A line "ends a sentence" when its last character is one of these. Closing quotes and CJK
# full stops are included. A colon or closing bracket counts too, because many articles
# end a line with one before a list or after a parenthetical.
SENTENCE_END = (".", "!", "?", '"', "'", "”", "’", ":", ")", "。", "！", "？")

# Scripts written without spaces between words: their characters count half a word each.
CJK_CHARACTER = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


def count_words(line: str) -> int:
    """Count whitespace-separated words, or CJK characters / 2 when that is larger."""
    return max(len(line.split()), len(CJK_CHARACTER.findall(line)) // 2)


def is_sentence_line(line: str, min_words: int) -> bool:
    """Return whether a stripped line has at least `min_words` words and ends like a sentence."""
    return count_words(line) >= min_words and line.endswith(SENTENCE_END)


def split_blocks(lines: list[str]) -> list[tuple[int, int]]:
    """Return (first, last) line indices of each run of non-blank lines."""
    blocks = []
    start = None
    for index, line in enumerate(lines):
        if line.strip():
            if start is None:
                start = index
        elif start is not None:
            blocks.append((start, index - 1))
            start = None
    if start is not None:
        blocks.append((start, len(lines) - 1))
    return blocks


def is_content_block(lines: list[str], min_words: int, min_list_lines: int, min_list_words: int) -> bool:
    """Return whether a block holds a sentence line, or is a list long enough to be content.

    The list rule keeps tables of dates, results or products that an article ends with:
    at least `min_list_lines` lines with `min_list_words` words in all.
    """
    stripped = [line.strip() for line in lines]
    if any(is_sentence_line(line, min_words) for line in stripped):
        return True
    return len(stripped) >= min_list_lines and sum(count_words(line) for line in stripped) >= min_list_words


def clean_text(text: str, min_words: int = 5, min_list_lines: int = 3, min_list_words: int = 30) -> str:
    """Drop the blocks before the first and after the last content block of `text`.

    Blocks are runs of non-blank lines, as resiliparse writes paragraphs with
    `preserve_formatting=True`. A content block has a line of at least `min_words` words
    that ends like a sentence, or is a list (see `is_content_block`). Text with no content
    block is returned unchanged, so short pages are never emptied. Lines inside the kept
    span, blank ones included, are returned as they were.
    """
    lines = text.split("\n")
    content = [
        (first, last)
        for first, last in split_blocks(lines)
        if is_content_block(lines[first:last + 1], min_words, min_list_lines, min_list_words)
    ]
    if not content:
        return text
    return "\n".join(lines[content[0][0]:content[-1][1] + 1])
