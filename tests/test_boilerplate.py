"""Tests for the edge-boilerplate trimming of extracted text."""

from __future__ import annotations

import gzip
import json

from resiliparse.extract.html2text import extract_plain_text

from pipeline.stages.boilerplate import clean_text, count_words, split_blocks

ARTICLE = (
    "The council approved the new budget on Tuesday after a long debate.\n"
    "\n"
    "Members said the plan would fund two schools and repair the old bridge."
)


def test_clean_text_drops_leading_menu():
    text = "Home News Sport\nSubscribe\n\n" + ARTICLE
    assert clean_text(text) == ARTICLE


def test_clean_text_drops_trailing_footer():
    text = ARTICLE + "\n\nShare this\n\n© 2019 Example Media\nPrivacy"
    assert clean_text(text) == ARTICLE


def test_clean_text_keeps_short_block_between_content():
    text = ARTICLE + "\n\nSee tweets :\n\n" + "The vote passed by nine to two after the amendments."
    assert clean_text(text) == text


def test_clean_text_keeps_trailing_list_block():
    dates = "\n".join(f"June {day} – Nashville, TN @ Bridgestone Arena" for day in range(10, 16))
    text = ARTICLE + "\n\n" + dates
    assert clean_text(text) == text


def test_clean_text_without_content_unchanged():
    text = "Menu\nLogin\n\nFooter"
    assert clean_text(text) == text


def test_clean_text_empty_string():
    assert clean_text("") == ""


def test_clean_text_keeps_inner_blank_lines():
    text = "Menu\n\n" + ARTICLE.replace("\n\n", "\n\n\n") + "\n\nFooter"
    assert clean_text(text) == ARTICLE.replace("\n\n", "\n\n\n")


def test_clean_text_counts_cjk_sentences():
    sentence = "先日、不正に改造したiPhoneを販売したとして男性が逮捕されました。"
    assert clean_text("MENU\n\n" + sentence + "\n\nPAGETOP") == sentence


def test_clean_text_min_words_threshold():
    text = "Menu\n\nShort line here.\n\nFooter"
    assert clean_text(text, min_words=3) == "Short line here."
    assert clean_text(text, min_words=4) == text


def test_count_words_uses_larger_measure():
    assert count_words("one two three") == 3
    assert count_words("商標権侵害になります") == 5


def test_split_blocks_line_ranges():
    assert split_blocks(["a", "b", "", " ", "c", ""]) == [(0, 1), (4, 4)]


def test_clean_text_real_page_keeps_article(shared_data):
    """On a real news page the article stays; the category menu, byline and address footer go."""
    folder = shared_data / "extraction"
    page_id = "f6ac15a4d98511396da23e4428deb5605422b1c8bbc8284e771f6896bdccf57f"
    html = gzip.decompress((folder / "html" / f"{page_id}.html.gz").read_bytes()).decode("utf-8")
    article = json.loads((folder / "ground-truth.json").read_text(encoding="utf-8"))[page_id]["articleBody"]
    extracted = extract_plain_text(html, main_content=True, preserve_formatting=True, comments=False, post_meta=False)

    cleaned = clean_text(extracted)

    assert article.split(".")[0] in cleaned
    assert "Categorias" not in cleaned
    assert "Publicado por" not in cleaned
    assert "CNPJ" not in cleaned
