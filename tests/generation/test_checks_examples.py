"""Checks that keep one product's facts out of another's copy: facts of the example products a
prompt showed, and titles that do not name their product."""

import json
from pathlib import Path

import pytest

from generation.checks import ERROR, check_text, is_usable
from generation.drafting import DraftSpec, rank_candidates
from generation.examples import rank_examples
from generation.prompts import KindSpec, ProductFacts

CATALOG = Path(__file__).resolve().parents[2] / "data" / "demo" / "catalog.jsonl"

KETTLE = ProductFacts(
    sku="NORD-KT-001", title="Fjell Electric Kettle 1.7 L", brand="Nordhavn Kitchen",
    category="kitchen", locale="en",
    attributes={"material": "18/8 stainless steel", "capacity": "1.7 L", "power": "2200 W",
                "finish": "brushed"},
)
PAN = ProductFacts(
    sku="NORD-KT-009", title="Stål Frying Pan 28 cm", brand="Nordhavn Kitchen",
    category="kitchen", locale="en",
    attributes={"material": "tri-ply stainless steel", "diameter": "28 cm",
                "hob": "gas, electric and induction"},
)
TEAPOT = ProductFacts(
    sku="ZH-TEA-1", title="青瓷茶壶 500毫升", brand="青山", category="茶具", locale="zh-hans",
    attributes={"材质": "青瓷", "容量": "500毫升"},
)
MUG = ProductFacts(
    sku="ZH-MUG-1", title="竹节保温杯 350毫升", brand="竹语", category="杯具", locale="zh-hans",
    attributes={"材质": "不锈钢", "容量": "350毫升", "颜色": "竹青色"},
)
TITLE = KindSpec(code="title", label="product title", instructions="x", max_chars=80)
DESCRIPTION = KindSpec(code="description", label="product description", instructions="x",
                       max_chars=1000)


def codes(flags):
    return [f.code for f in flags]


def test_another_products_name_in_a_title_is_an_error_with_its_span():
    text = "Fjell Electric Kettle 1.9 L"
    flags = check_text(text, facts=PAN, kind=TITLE, examples=[KETTLE])
    found = {text[f.start:f.end] for f in flags if f.code == "example_fact"}
    assert found == {"Fjell", "Kettle"}
    assert all(f.severity == ERROR for f in flags if f.code == "example_fact")
    assert "Fjell Electric Kettle 1.7 L" in next(f for f in flags
                                                 if f.code == "example_fact").message
    assert not is_usable(flags)


def test_another_products_values_and_names_in_a_description_are_flagged():
    text = ("The Stål pan is tri-ply stainless steel, 28 cm across, with a brushed finish. "
            "Like the Fjell Kettle, it works on gas, electric and induction hobs.")
    flags = check_text(text, facts=PAN, kind=DESCRIPTION, examples=[KETTLE])
    found = {text[f.start:f.end]: f.severity for f in flags if f.code == "example_fact"}
    # A one-word value is an ordinary word too: a warning; names are errors.
    assert found == {"brushed": "warning", "Fjell": "error", "Kettle": "error"}


def test_title_words_in_a_description_count_only_as_names():
    text = ("Kettle-fast heat is not what a pan needs: the Stål pan, 28 cm, heats evenly on "
            "gas, electric and induction, and its tri-ply stainless steel sits beside a kettle "
            "on any hob.")
    flags = check_text(text, facts=PAN, kind=DESCRIPTION, examples=[KETTLE])
    assert "example_fact" not in codes(flags)


def test_facts_this_product_shares_with_the_example_are_not_flagged():
    text = ("Stål is a stainless steel frying pan, 28 cm across, for gas, electric and "
            "induction hobs, from Nordhavn Kitchen.")
    flags = check_text(text, facts=PAN, kind=DESCRIPTION, examples=[KETTLE])
    assert "example_fact" not in codes(flags)
    assert is_usable(flags)


def test_chinese_example_facts_are_caught():
    text = "竹语竹节保温杯，青瓷外壳，容量350毫升。"
    flags = check_text(text, facts=MUG, kind=DESCRIPTION, examples=[TEAPOT])
    assert [(text[f.start:f.end], f.severity) for f in flags
            if f.code == "example_fact"] == [("青瓷", "warning")]
    named = "竹语竹节保温杯，与青瓷茶壶同款设计，容量350毫升。"
    assert [(named[f.start:f.end], f.severity) for f in check_text(
        named, facts=MUG, kind=DESCRIPTION, examples=[TEAPOT]) if f.code == "example_fact"] == [
        ("青瓷茶壶", "error")]
    clean = "竹语竹节保温杯，不锈钢内胆，容量350毫升，竹青色外观。"
    assert "example_fact" not in codes(check_text(clean, facts=MUG, kind=DESCRIPTION,
                                                  examples=[TEAPOT]))


def test_without_examples_nothing_is_compared():
    text = "Fjell Electric Kettle 1.9 L"
    assert "example_fact" not in codes(check_text(text, facts=PAN, kind=TITLE))


def test_a_title_that_does_not_name_its_product_is_a_warning():
    flags = check_text("Nordhavn Kitchen Essentials", facts=PAN, kind=TITLE)
    assert [f.severity for f in flags if f.code == "off_subject"] == ["warning"]
    # An editor may approve it (a warning), but as a first draft it is no start.
    assert not is_usable(flags) and not is_usable([f.to_dict() for f in flags])
    for good in ("Stål Frying Pan, 28 cm", "Nordhavn tri-ply pans"):
        assert "off_subject" not in codes(check_text(good, facts=PAN, kind=TITLE))
    assert "off_subject" in codes(check_text("竹语 青瓷茶壶", facts=MUG, kind=TITLE))
    assert "off_subject" not in codes(check_text("竹语保温杯", facts=MUG, kind=TITLE))
    # A unit shared with the product's title ("毫升" of "350毫升") does not name the product.
    assert "off_subject" in codes(check_text("竹语 青瓷 350毫升", facts=MUG, kind=TITLE))
    # SmolLM2's title for 安溪铁观音·传统炭焙 250克 (quality benchmark): only "克" in common.
    tea = ProductFacts(sku="T", title="安溪铁观音·传统炭焙 250克", brand="山岚茶舍",
                       locale="zh-hans")
    assert "off_subject" in codes(check_text("Lemmon 茶舍, 山岚茶舍, 250克, 扩大茶舍", facts=tea,
                                             kind=TITLE))
    # Descriptions are not titles: they may name the product any way they like.
    assert "off_subject" not in codes(check_text("Nordhavn Kitchen Essentials", facts=PAN,
                                                 kind=DESCRIPTION))


def test_ranking_puts_a_candidate_without_example_facts_first():
    spec = DraftSpec(facts=PAN, kind=TITLE, examples=[(KETTLE, "Fjell Electric Kettle 1.7 L")])
    best = rank_candidates(["Fjell Frying Pan 28 cm", "Stål Frying Pan 28 cm"], [6, 6], spec,
                           keep=2)
    assert [c.text for c in best] == ["Stål Frying Pan 28 cm", "Fjell Frying Pan 28 cm"]
    assert [c.usable for c in best] == [True, False]


# -- no false alarms on the demo catalog's reference copy ---------------------------------------

def _facts(row):
    return ProductFacts(sku=row["sku"], title=row["title"], brand=row.get("brand", ""),
                        category=row.get("category", ""), attributes=row.get("attributes") or {},
                        locale=row["locale"])


def _rows():
    return [json.loads(line) for line in CATALOG.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("row", [pytest.param(r, id=r["sku"]) for r in _rows()])
def test_reference_copy_is_clean_against_the_examples_a_prompt_would_show(row):
    """The reference copy of each demo product, checked against the three products the example
    selector would put in its prompt: the new checks must not call a person's copy invented
    (a warning on a one-word value such as 宽松 is fine: an editor reads and moves on)."""
    facts = _facts(row)
    pool = [(_facts(r), _facts(r)) for r in _rows() if r["locale"] == row["locale"]]
    examples = rank_examples(facts, pool)[:3]
    for kind, text in ((DESCRIPTION, row["description"]), (TITLE, row["title"])):
        flags = check_text(text, facts=facts, kind=kind, examples=examples)
        assert [f for f in flags if f.code == "example_fact" and f.severity == ERROR] == []
        assert "off_subject" not in codes(flags)


# -- noise that looks like copy ------------------------------------------------------------------

def test_chinese_noise_of_rare_characters_is_garbled():
    # Written by SmolLM2 for a tea (quality benchmark): common characters mixed with rare ones.
    noise = "拿福鼎乃德兵制上新生润风长，酴安鹇素雨爱度，开姡拼恋美茶香，天苦食鸳鸟。"
    flags = check_text(noise, facts=MUG, kind=DESCRIPTION)
    garbled = [f for f in flags if f.code == "garbled"]
    assert [f.severity for f in garbled] == ["error"] and not is_usable(flags)
    assert "are rare ones" in garbled[0].message
    # Two rare characters are within what an editor writes (褶, 粝 in the demo catalog).
    fine = "竹语竹节保温杯，褶皱纹理，粗粝手感，容量350毫升。"
    assert "garbled" not in codes(check_text(fine, facts=MUG, kind=DESCRIPTION))


def test_control_pictures_and_replacement_characters_are_garbled():
    for text in ("Shi Koufai 密封␁ ␁, 350毫升", "Stål Frying Pan 28 cm \ufffd"):
        facts = MUG if "密封" in text else PAN
        flags = [f for f in check_text(text, facts=facts, kind=TITLE) if f.code == "garbled"]
        assert flags and flags[0].severity == "error"
        assert text[flags[0].start:flags[0].end] in ("␁", "\ufffd")


def test_a_fact_number_with_another_unit_is_invented():
    """Gemma wrote "a battery pack that takes up to 2 hours to charge" for a kettle whose only 2
    is its 2-year warranty."""
    kettle = ProductFacts(sku="K", title="Fjell Electric Kettle 1.7 L", locale="en",
                          attributes={"warranty": "2 years", "capacity": "1.7 L",
                                      "power": "2200 W", "cups": "6"})
    text = "It charges in 2 hours and holds 2 L."
    flags = [f for f in check_text(text, facts=kettle, kind=DESCRIPTION)
             if f.code == "ungrounded_number"]
    assert [text[f.start:f.end] for f in flags] == ["2 hours", "2 L"]
    fine = "A 2-year warranty, 1.7 litres, a 2,200 W element and 6 cups."
    assert "ungrounded_number" not in codes(check_text(fine, facts=kettle, kind=DESCRIPTION))
