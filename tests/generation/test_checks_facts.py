"""Checks that compare the copy with the product facts: materials, brands and model names,
coverage; plus the guard against false positives on the demo catalog's reference copy."""

import dataclasses
import json
from pathlib import Path

import pytest

from generation.checks import ERROR, INFO, WARNING, Flag, check_text, coverage, rank, rank_score
from generation.prompts import KindSpec, ProductFacts
from tests.sample_facts import facts_fixture

CATALOG = Path(__file__).resolve().parents[2] / "data" / "demo" / "catalog.jsonl"


def flags_of(text, facts, kind, code):
    return [f for f in check_text(text, facts=facts, kind=kind) if f.code == code]


def spans(text, flags):
    return [text[f.start : f.end] for f in flags]


phone_stand = facts_fixture("phone_stand")
case_for_iphone = facts_fixture("case_for_iphone")
zh_stand = facts_fixture("zh_stand")


# -- materials ------------------------------------------------------------------------------------


def test_a_material_not_in_the_facts_is_flagged_with_its_span(bottle, description):
    text = "The bottle has a bamboo lid and a soft silicone sleeve over its stainless steel body."
    flags = flags_of(text, bottle, description, "ungrounded_material")
    assert spans(text, flags) == ["bamboo", "silicone"]
    assert all(f.severity == WARNING for f in flags)
    assert '"bamboo"' in flags[0].message


def test_materials_in_the_facts_pass_under_other_spellings(phone_stand, description):
    text = "Machined from aluminum, the stand holds phones from 4 to 7 inches."
    assert flags_of(text, phone_stand, description, "ungrounded_material") == []


def test_a_longer_material_name_is_not_grounded_by_a_shorter_one(phone_stand, description):
    facts = dataclasses.replace(phone_stand, attributes={"frame": "steel"})
    text = "A stainless steel frame."
    assert spans(text, flags_of(text, facts, description, "ungrounded_material")) == [
        "stainless steel"
    ]
    bottle_text = "Its steel body is tough."  # "steel" is part of "18/8 stainless steel"
    facts = dataclasses.replace(phone_stand, attributes={"material": "18/8 stainless steel"})
    assert flags_of(bottle_text, facts, description, "ungrounded_material") == []


def test_chinese_materials_not_in_the_facts_are_flagged(teapot, description):
    text = "青山玻璃茶壶采用高硼硅玻璃，配竹制托盘和真丝茶巾，容量600毫升。"
    flags = flags_of(text, teapot, description, "ungrounded_material")
    assert spans(text, flags) == ["竹制", "真丝"]
    assert flags_of(
        "青山玻璃茶壶采用高硼硅玻璃，容量600毫升。", teapot, description, "ungrounded_material"
    ) == []


def test_chinese_single_characters_and_tea_names_are_not_materials(description):
    tea = ProductFacts(sku="T", title="安溪铁观音 250克", attributes={"品类": "乌龙茶"},
                       locale="zh-hans")
    text = "这款铁观音丝滑回甘，茶汤金黄，不麻烦。"
    assert flags_of(text, tea, description, "ungrounded_material") == []


def test_everyday_words_are_not_materials(bottle, description):
    text = "Pour it into a glass? No: drink straight from the bottle, down to the last drop."
    flags = flags_of(text, bottle, description, "ungrounded_material")
    assert spans(text, flags) == ["glass"]  # a glass is named; "down" the stairs is not down
    assert flags_of("A goose down-filled jacket.", bottle, description,
                    "ungrounded_material")


# -- brands and model names -------------------------------------------------------------------


def test_an_invented_model_for_a_phone_stand_is_an_error(phone_stand, description):
    text = "The perfect stand for your iPhone 14 Ultra and Samsung Galaxy S23."
    flags = [f for f in check_text(text, facts=phone_stand, kind=description)
             if f.code in {"ungrounded_brand", "ungrounded_model"}]
    assert spans(text, flags) == ["iPhone 14 Ultra", "Samsung", "Galaxy S23"]
    assert all(f.severity == ERROR for f in flags)
    assert all(f.code == "ungrounded_brand" for f in flags)


def test_a_different_model_of_a_stated_line_is_an_error(case_for_iphone, description):
    text = "Made for the iPhone 14 Pro Max, with MagSafe."
    (flag,) = flags_of(text, case_for_iphone, description, "ungrounded_model")
    assert text[flag.start : flag.end] == "iPhone 14 Pro Max"
    assert flag.severity == ERROR and "different model" in flag.message


def test_brands_and_models_in_the_facts_pass(case_for_iphone, description):
    text = "A full-grain leather case for the iPhone 15 that works with Apple MagSafe chargers."
    flags = check_text(text, facts=case_for_iphone, kind=description)
    assert not {"ungrounded_brand", "ungrounded_model"} & {f.code for f in flags}


def test_brand_words_that_are_ordinary_words_need_a_model_number(phone_stand, description):
    text = "Its surface is smooth, a mate for any desk, and lightning fast to set up."
    flags = check_text(text, facts=phone_stand, kind=description)
    assert not {"ungrounded_brand", "ungrounded_model"} & {f.code for f in flags}
    text = "Holds a Huawei Mate 60 Pro."
    assert spans(text, flags_of(text, phone_stand, description, "ungrounded_brand")) == [
        "Huawei", "Mate 60 Pro"
    ]


def test_unknown_model_codes_are_warnings(phone_stand, description):
    text = "Fits the Sonic WH-1000XM5 and the Zento X200, with 4 to 7 inch phones."
    flags = flags_of(text, phone_stand, description, "ungrounded_model")
    assert spans(text, flags) == ["WH-1000XM5", "X200"]
    assert all(f.severity == WARNING for f in flags)


def test_sizes_units_and_codes_in_the_facts_are_not_model_codes(description):
    facts = ProductFacts(sku="N", title="A5 Dot Grid Notebook", attributes={"paper": "100 gsm",
                         "fabric": "420D recycled nylon", "spf": "SPF50+"})
    text = "An A5 notebook with 100gsm paper, a 420D nylon cover, SPF50+ not needed, 2nd edition."
    assert flags_of(text, facts, description, "ungrounded_model") == []


def test_chinese_brand_names_not_in_the_facts_are_errors(zh_stand, description):
    text = "铝合金手机支架，适配华为和苹果手机，也适合小米手机。"
    flags = flags_of(text, zh_stand, description, "ungrounded_brand")
    assert spans(text, flags) == ["华为", "苹果手机", "小米手机"]
    assert all(f.severity == ERROR for f in flags)
    clean = "青山铝合金手机支架，适用4至7英寸手机，深空灰配色。"
    assert [f for f in check_text(clean, facts=zh_stand, kind=description)
            if f.severity != INFO] == []


def test_chinese_food_words_are_not_brands(description):
    facts = ProductFacts(sku="C", title="小米粥礼盒", attributes={"原料": "小米、红枣"},
                         locale="zh-hans")
    text = "小米粥香甜，配苹果片更清爽。"
    assert flags_of(text, facts, description, "ungrounded_brand") == []


# -- coverage -----------------------------------------------------------------------------------


def test_coverage_lists_mentioned_and_omitted_facts_in_attribute_order(bottle):
    text = "A sage bottle of 18/8 stainless steel."
    mentioned, omitted = coverage(text, bottle)
    assert mentioned == ["material: 18/8 stainless steel", "colour: sage"]
    assert omitted == ["capacity: 500 ml"]


def test_coverage_ignores_case_plurals_and_spacing(description):
    facts = ProductFacts(sku="K", title="Kettle", attributes={
        "capacity": "1.7 L", "features": "auto shut-off, boil-dry protection",
        "sizes": "S, M, L, XL"})
    text = "A 1.7L kettle with Auto shut-off and boil-dry protections, in sizes S to XL."
    mentioned, omitted = coverage(text, facts)
    assert omitted == [] and len(mentioned) == 3


def test_coverage_in_chinese(teapot):
    mentioned, omitted = coverage("高硼硅玻璃茶壶，耐热。", teapot)
    assert mentioned == ["材质: 高硼硅玻璃"] and omitted == ["容量: 600毫升"]


def test_omitted_facts_are_a_whole_text_flag(bottle, description):
    (flag,) = flags_of("A sage bottle.", bottle, description, "coverage")
    assert flag.severity == WARNING and flag.span == (-1, -1) and flag.whole_text
    assert "1 of 3" in flag.message and "capacity: 500 ml" in flag.message
    (flag,) = flags_of("A sage bottle of 18/8 stainless steel.", bottle, description,
                       "coverage")
    assert flag.severity == INFO
    title = KindSpec(code="title", label="title", instructions="x")
    (flag,) = flags_of("A sage bottle.", bottle, title, "coverage")
    assert flag.severity == INFO  # a title is not expected to carry every fact


# -- every flag is complete, and candidates rank by their flags ---------------------------------


def test_every_flag_has_a_code_severity_span_and_message(phone_stand, description, brand):
    text = ("Here is the best ever iPhone 14 Ultra stand: bamboo, 750 ml, www.example.com, "
            "cheap cheap cheap.")
    flags = check_text(text, facts=phone_stand, kind=description, brand=brand)
    assert len({f.code for f in flags}) >= 7
    for flag in flags:
        assert flag.code and flag.message and flag.severity in {ERROR, WARNING, INFO}
        assert (flag.start, flag.end) == (-1, -1) or 0 <= flag.start < flag.end <= len(text)


def test_candidates_are_ranked_best_first_by_their_flags(phone_stand, description):
    texts = [
        "The perfect stand for your iPhone 14 Ultra.",
        "An anodised aluminium stand in space grey for phones 4 to 7 inches.",
        "A bamboo stand in space grey.",
    ]
    flagged = [(t, check_text(t, facts=phone_stand, kind=description)) for t in texts]
    assert rank(flagged) == [texts[1], texts[2], texts[0]]
    assert rank_score(flagged[1][1]) == 0
    tie = [("a", [Flag("x", INFO, "m")]), ("b", [Flag("y", INFO, "m")])]
    assert rank(tie) == ["a", "b"]


# -- no false alarms on the demo catalog's reference copy ---------------------------------------


def _catalog():
    rows = [json.loads(line) for line in CATALOG.read_text().splitlines() if line.strip()]
    return [pytest.param(row, id=row["sku"]) for row in rows]


@pytest.mark.parametrize("row", _catalog())
def test_reference_descriptions_raise_no_errors(row):
    facts = ProductFacts(
        sku=row["sku"], title=row["title"], brand=row.get("brand", ""),
        category=row.get("category", ""), attributes=row.get("attributes") or {},
        locale=row["locale"],  # no source_text: the description must not ground itself
    )
    kind = KindSpec(code="description", label="product description", instructions="x")
    flags = check_text(row["description"], facts=facts, kind=kind)
    assert [f for f in flags if f.severity == ERROR] == []
    assert [f for f in flags if f.code == "coverage" and f.severity != INFO] == []
