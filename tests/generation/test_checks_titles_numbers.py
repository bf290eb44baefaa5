"""Misses of the default model's drafts that passed as usable in the quality benchmark (Xeon VM,
2026-12-06): titles that name another kind of product or misspell the product's name by one
character, quantities written out in words, and quantities of the data put to another measure.
Each test holds the draft as the model wrote it and the copy the check must leave alone."""

import time

from generation.checks import check_text, is_usable
from generation.prompts import ProductFacts
from tests.generation.test_checks_drafts import DESCRIPTION, TITLE, catalog_facts


def found(text, facts, kind, code):
    return [text[f.start:f.end] for f in check_text(text, facts=facts, kind=kind)
            if f.code == code]


def codes(text, facts, kind):
    return {f.code for f in check_text(text, facts=facts, kind=kind)}


# -- a title must say what the product is ------------------------------------------------------


def test_a_title_that_names_another_kind_of_product_is_not_usable():
    coat = catalog_facts("HH-PET-002")  # Squall Waterproof Dog Coat
    flags = check_text("Waterproof Fur Collar", facts=coat, kind=TITLE)
    (flag,) = [f for f in flags if f.code == "off_subject"]
    assert flag.params["kind"] == "Dog Coat"
    assert not is_usable(flags)
    socks = catalog_facts("FERN-AP-005")  # Talus Merino Hiking Socks, 2 Pairs
    assert "off_subject" in codes("Merino Trail Beanie", socks, TITLE)


def test_titles_that_keep_the_kind_in_any_form_pass():
    for sku, title in (("HH-PET-002", "Squall Dog Coat"), ("HH-PET-002", "Waterproof Dog Jacket"),
                       ("FERN-AP-001", "Hollow Peak Merino Base Layer"),
                       ("NORD-KT-004", "Sten carbon steel pans, 28 cm"),
                       ("FERN-AP-004", "Saddle Grid Fleece Half-Zip Top"),
                       ("NORD-KT-002", "Skarp Chef's Knife"),
                       ("LQ-ST-002", "Quill Fine Nib Fountain Pen")):
        assert "off_subject" not in codes(title, catalog_facts(sku), TITLE), title
    # A description names the product as it likes.
    assert "off_subject" not in codes("A fur collar for wet walks.", catalog_facts("HH-PET-002"),
                                      DESCRIPTION)


def test_a_chinese_title_that_changes_one_character_of_the_name_is_renamed():
    tea = catalog_facts("SL-TEA-010")  # 横县茉莉花茶·窨制5次 200克
    text = "竖县茉莉花茶·窨制5次 200克"
    flags = check_text(text, facts=tea, kind=TITLE)
    assert [text[f.start:f.end] for f in flags if f.code == "title_renamed"] == ["竖县茉莉花茶"]
    assert "横县茉莉花茶" in next(f for f in flags if f.code == "title_renamed").message
    assert not is_usable(flags)
    oolong = catalog_facts("SL-TEA-001")  # 安溪铁观音·传统炭焙 250克
    assert found("安溪铁观音·传统碳焙 250克", oolong, TITLE, "title_renamed") == ["传统碳焙"]


def test_chinese_titles_that_keep_the_name_or_shorten_it_are_not_misspelled():
    tea = catalog_facts("SL-TEA-010")
    for text in ("横县茉莉花茶·窨制5次 200克", "横县茉莉花茶 200克", "茉莉花茶·窨制5次",
                 "广西横县茉莉花茶", "横县茉莉花茶·五次窨制"):
        assert "title_renamed" not in codes(text, tea, TITLE), text


def test_the_misspelling_check_reads_a_long_text_given_as_a_title_fast():
    tea = catalog_facts("SL-TEA-010")
    text = "竖县茉莉花茶" * 7000
    start = time.perf_counter()
    check_text(text, facts=tea, kind=TITLE)
    assert time.perf_counter() - start < 1.0


# -- quantities written out in words -------------------------------------------------------------


def test_a_quantity_written_in_words_is_held_to_the_facts():
    knife = catalog_facts("NORD-KT-002")  # weight: 210 g
    text = ("It weighs just under two kilograms, which makes it easy to carry.")
    assert found(text, knife, DESCRIPTION, "ungrounded_number") == ["two kilograms"]
    tent = catalog_facts("FERN-OD-003")  # Ember 2-Person Backpacking Tent
    assert found("This tent can sleep four people comfortably.", tent, DESCRIPTION,
                 "ungrounded_number") == ["four people"]
    # A number joined to another word grounds nothing else: the bag is "3-season".
    bag = catalog_facts("FERN-OD-004")
    assert found("This sleeping bag can sleep three people comfortably.", bag, DESCRIPTION,
                 "ungrounded_number") == ["three people"]
    assert found("It sleeps 3 people.", bag, DESCRIPTION, "ungrounded_number") == ["3 people"]
    steamer = catalog_facts("QH-KT-002")  # 重量 2.6千克
    assert found("这款蒸锅仅重两公斤。", steamer, DESCRIPTION, "ungrounded_number") == ["两公斤"]


def test_quantities_in_words_the_facts_give_and_idioms_pass():
    tent = catalog_facts("FERN-OD-003")  # Ember 2-Person Backpacking Tent
    assert "ungrounded_number" not in codes("It sleeps two people and packs small.", tent,
                                            DESCRIPTION)
    knife = catalog_facts("NORD-KT-002")
    for text in ("One day you will wonder how you cooked without it.",
                 "Sharpen it once or twice a year.", "A knife for one hour or ten."):
        assert "ungrounded_number" not in codes(text, knife, DESCRIPTION), text
    steamer = catalog_facts("QH-KT-002")
    # A compound numeral is not read as its last digit ("二十克" is not "十克").
    assert "ungrounded_number" not in codes("一年四季都好用。", steamer, DESCRIPTION)


def test_a_count_in_the_data_grounds_no_other_unit():
    wallet = catalog_facts("LQ-PA-002")  # holds 3 cards
    text = "Made of full-grain leather, weighing 3 kg. It holds 3 cards."
    assert found(text, wallet, DESCRIPTION, "ungrounded_number") == ["3 kg"]


def test_a_price_the_data_does_not_give_is_invented():
    bag = catalog_facts("FERN-OD-004")  # 3-season, no price
    text = "The Kettle Lake 650 Down Sleeping Bag offers good quality for less than $3."
    assert found(text, bag, DESCRIPTION, "ungrounded_number") == ["$3"]
    notebook = catalog_facts("LQ-ST-001")  # 148 x 210 mm
    text = "It costs 210 dollars, ¥99 or 50元."
    assert found(text, notebook, DESCRIPTION, "ungrounded_number") == [
        "210 dollars", "¥99", "50元"]
    priced = ProductFacts(sku="X", title="Camp Mug", attributes={"price": "12.50"}, locale="en")
    assert found("Yours for $12.50, not $13.", priced, DESCRIPTION, "ungrounded_number") == ["$13"]


# -- a quantity of the data put to another measure -----------------------------------------------


def test_a_capacity_given_as_a_weight_is_a_wrong_fact():
    pack = catalog_facts("FERN-OD-006")  # capacity 45 L, weight 1.6 kg
    text = "It weighs 45 l, but it carries well."
    flags = check_text(text, facts=pack, kind=DESCRIPTION)
    (flag,) = [f for f in flags if f.code == "misattributed_number"]
    assert (text[flag.start:flag.end], flag.severity, flag.params["key"]) == (
        "45 l", "error", "capacity")
    assert not is_usable(flags)
    mug = catalog_facts("FERN-OD-009")  # capacity 450 ml, weight 75 g
    assert found("It weighs 75 g, but all the cups weigh 450 ml.", mug, DESCRIPTION,
                 "misattributed_number") == ["450 ml"]
    steamer = catalog_facts("QH-KT-002")  # 重量 2.6千克
    assert found("尺寸28厘米，容量2.6千克，适合燃气灶。", steamer, DESCRIPTION,
                 "misattributed_number") == ["2.6千克"]
    # The backpack's capacity as its packed size; its weight in tonnes.
    text = "It weighs 1.6 kg (just under 1.6 tonnes) and packs down to just 45 liters."
    assert found(text, pack, DESCRIPTION, "misattributed_number") == ["45 liters"]
    assert found(text, pack, DESCRIPTION, "ungrounded_number") == ["1.6 tonnes"]


def test_quantities_given_as_what_they_measure_pass():
    pack = catalog_facts("FERN-OD-006")
    text = "With a capacity of 45 L it weighs only 1.6 kg, and 45 L is plenty for a week."
    assert "misattributed_number" not in codes(text, pack, DESCRIPTION)
    steamer = catalog_facts("QH-KT-002")
    assert "misattributed_number" not in codes("重量2.6千克，直径28厘米。", steamer, DESCRIPTION)
    # A cue in an earlier clause names nothing here.
    chair = catalog_facts("FERN-OD-008")  # seat_height 32 cm, weight 980 g
    assert "misattributed_number" not in codes(
        "It weighs 980 g. The seat holds you 32 cm off the ground.", chair, DESCRIPTION)
    # Data without a measured key has nothing to compare.
    bare = ProductFacts(sku="X", title="Mug", attributes={"size": "450 ml"}, locale="en")
    assert "misattributed_number" not in codes("It weighs 450 ml.", bare, DESCRIPTION)


# -- comparisons with every rival ----------------------------------------------------------------


def test_comparisons_with_every_rival_are_overclaims():
    plates = catalog_facts("NORD-TW-001")
    text = ("Each plate has a sea grey reactive glaze, which makes them look more beautiful than "
            "any others on the market.")
    flags = [f for f in check_text(text, facts=plates, kind=DESCRIPTION) if f.code == "overclaim"]
    assert [(text[f.start:f.end], f.severity) for f in flags] == [
        ("than any others", "error"), ("on the market", "warning")]
    assert not is_usable(check_text(text, facts=plates, kind=DESCRIPTION))
    casserole = catalog_facts("NORD-KT-003")
    text = "It is one of the most versatile casseroles ever built, a classic of all time."
    assert found(text, casserole, DESCRIPTION, "overclaim") == ["ever built", "of all time"]
    for fine in ("Whatever you make, it goes from hob to table.",
                 "Any other lid of the same size fits it.", "It has never been easier."):
        assert "overclaim" not in codes(fine, casserole, DESCRIPTION), fine


# -- a material the product is said to be made of ------------------------------------------------


def test_a_material_the_product_is_said_to_be_made_of_is_a_wrong_fact():
    mug = catalog_facts("FERN-OD-009")  # titanium, silicone lid
    text = "Made from silicon, this plastic mug was designed as a portable coffee and tea maker."
    flags = [f for f in check_text(text, facts=mug, kind=DESCRIPTION)
             if f.code == "ungrounded_material"]
    assert [(text[f.start:f.end], f.severity) for f in flags] == [("plastic", "error")]
    assert not is_usable(check_text(text, facts=mug, kind=DESCRIPTION))
    for text, material in (("It is made entirely of bamboo.", "bamboo"),
                           ("A compact aluminum travel mug for camping.", "aluminum"),
                           ("这款杯子采用塑料材质。", "塑料"), ("杯身为塑料制成。", "塑料")):
        flags = [f for f in check_text(text, facts=mug, kind=DESCRIPTION)
                 if f.code == "ungrounded_material"]
        assert [(text[f.start:f.end], f.severity) for f in flags] == [(material, "error")], text


def test_a_material_of_a_product_whose_data_names_none_stays_a_warning():
    kettle = ProductFacts(sku="K", title="Fjell Kettle", attributes={"capacity": "1.7 L"},
                          locale="en")
    flags = [f for f in check_text("Steel kettle", facts=kettle, kind=TITLE)
             if f.code == "ungrounded_material"]
    assert [f.severity for f in flags] == ["warning"]


def test_a_material_of_something_else_stays_a_warning():
    mug = catalog_facts("FERN-OD-009")
    for text in ("No plastic taste, unlike plastic mugs.", "Pack it in a bamboo box.",
                 "The plastic-free mug.", "不含塑料，杯子很轻。", "Lighter than plastic mugs."):
        flags = [f for f in check_text(text, facts=mug, kind=DESCRIPTION)
                 if f.code == "ungrounded_material"]
        assert flags and {f.severity for f in flags} == {"warning"}, text


# -- a few characters said over and over ---------------------------------------------------------


def test_a_few_characters_said_over_and_over_are_a_loop():
    tea = catalog_facts("SL-TEA-007")  # Gemma's description, cut off at its token limit
    text = ("这款凤凰单丛·蜜兰香 100克，产地广东潮州，焙火轻焙火，原料蜜兰香，乌龙茶（单丛）100克，"
            + "100克/100克，" * 19)
    flags = check_text(text, facts=tea, kind=DESCRIPTION)
    (flag,) = [f for f in flags if f.code == "looping"]
    assert flag.params["times"] >= 4 and "100克" in flag.params["phrase"]
    assert not is_usable(flags)
    mugs = catalog_facts("NORD-TW-002")
    assert "looping" in codes("Very very very very nice mugs, very very very very nice.", mugs,
                              DESCRIPTION)


def test_layout_and_short_reduplications_are_no_loop():
    mugs = catalog_facts("NORD-TW-002")
    for text in ("Two mugs ----------- in sea grey ★★★★★", "Ha ha, they stack. 1, 2, 3, 4, 5.",
                 "Mugs. Mugs. Mugs.", "慢慢慢慢地喝。"):
        assert "looping" not in codes(text, mugs, DESCRIPTION), text
