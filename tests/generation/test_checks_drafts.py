"""Misses found reading real drafts of the default model on the demo catalog: each test holds the
draft as the model wrote it (or as near as the report gives it), variants of it, and the copy the
fix must leave alone."""

import json
from pathlib import Path

from generation.checks import check_text, is_usable
from generation.prompts import KindSpec, ProductFacts

CATALOG = Path(__file__).resolve().parents[2] / "data" / "demo" / "catalog.jsonl"

DESCRIPTION = KindSpec(code="description", label="product description", instructions="x")
TITLE = KindSpec(code="title", label="product title", instructions="x")


def catalog_facts(sku):
    """The product as the quality benchmark drafts it: no source text."""
    for line in CATALOG.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["sku"] == sku:
            return ProductFacts(sku=sku, title=row["title"], brand=row["brand"],
                                category=row["category"], attributes=row["attributes"],
                                locale=row["locale"])
    raise KeyError(sku)


def flagged(text, facts, kind, code):
    return [f for f in check_text(text, facts=facts, kind=kind) if f.code == code]


def span(text, flag):
    return text[flag.start:flag.end]


# -- a short Chinese phrase said three times ------------------------------------------------------


def test_a_two_clause_chinese_phrase_said_three_times_is_a_loop():
    oil = catalog_facts("SY-SK-008")
    text = ("这款温和卸妆油以植物油脂和角鲨烷为基础，遇水乳化，易冲洗。能溶解日常淡妆和防晒，"
            "加水后乳化，易冲洗，各类肤质都可使用。轻柔按摩后乳化，易冲洗。")
    (flag,) = flagged(text, oil, DESCRIPTION, "looping")
    assert span(text, flag) == "乳化，易冲洗"
    assert flag.start == text.rindex("乳化，易冲洗")
    assert "3 times" in flag.message
    assert not is_usable(check_text(text, facts=oil, kind=DESCRIPTION))


def test_the_same_short_phrase_as_whole_clauses_is_a_loop_too():
    oil = catalog_facts("SY-SK-008")
    text = "温和卸妆油，乳化，易冲洗。无添加香精，乳化，易冲洗。各类肤质，乳化，易冲洗。"
    (flag,) = flagged(text, oil, DESCRIPTION, "looping")
    assert span(text, flag) == "乳化，易冲洗"


def test_a_short_chinese_phrase_said_twice_or_after_other_words_is_no_loop():
    oil = catalog_facts("SY-SK-008")
    twice = ("这款温和卸妆油以植物油脂和角鲨烷为基础，遇水乳化，易冲洗。能溶解日常淡妆和防晒，"
             "加水后乳化，易冲洗，各类肤质都可使用。")
    assert flagged(twice, oil, DESCRIPTION, "looping") == []
    # The same short clause after three different words is not one phrase said three times.
    varied = "遇水乳化，易冲洗。质地清爽，易冲洗。泡沫细腻，易冲洗，各类肤质都可使用。"
    assert flagged(varied, oil, DESCRIPTION, "looping") == []


def test_the_product_name_twice_in_a_long_description_is_no_loop():
    oil = catalog_facts("SY-SK-008")
    text = ("温和卸妆油以植物油脂和角鲨烷为基础，能溶解日常淡妆和防晒，遇水乳化，易冲洗。"
            "请在干手干脸的状态下取2–3泵，在面部轻柔按摩，再加少量水乳化，然后用清水冲净。"
            "无添加香精，各类肤质都可使用，温和卸妆油，净含量150毫升。")
    assert flagged(text, oil, DESCRIPTION, "looping") == []


def test_a_two_word_english_clause_said_three_times_after_the_same_word_is_a_loop():
    mugs = catalog_facts("NORD-TW-002")
    text = ("The glaze is glossy, easy care. Each mug is stoneware, easy care. "
            "They go in the dishwasher and the microwave, easy care.")
    assert flagged(text, mugs, DESCRIPTION, "looping") == []  # "easy care" after new words
    text = ("Reactive glaze, dishwasher safe. Sea grey, dishwasher safe. Stoneware, made in "
            "Portugal, dishwasher safe.")
    assert flagged(text, mugs, DESCRIPTION, "looping") == []
    looping = ("A sea grey glaze, dishwasher safe. A reactive glaze, dishwasher safe. Stoneware "
               "under a glossy glaze, dishwasher safe.")
    (flag,) = flagged(looping, mugs, DESCRIPTION, "looping")
    assert span(looping, flag) == "glaze, dishwasher safe"
    assert flag.start == looping.rindex("glaze, dishwasher safe")
