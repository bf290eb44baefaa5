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


# -- invented origins --------------------------------------------------------------------------


def without(facts, key):
    import dataclasses

    return dataclasses.replace(
        facts, attributes={k: v for k, v in facts.attributes.items() if k != key})


def origin_flags(text, facts, kind=DESCRIPTION):
    return [(span(text, f), f.severity) for f in flagged(text, facts, kind, "ungrounded_origin")]


def test_invented_kitchens_behind_a_true_nationality_are_an_error():
    # The Vik mugs are "made in Portugal": "Portuguese" is true, the two kitchens are not.
    mugs = catalog_facts("NORD-TW-002")
    text = ("A pair of Vik mugs in sea grey reactive glaze. The mugs were made in 2 Portuguese "
            "kitchens and hold 350 ml each.")
    assert origin_flags(text, mugs) == [("2 Portuguese kitchens", "error")]
    assert not is_usable(check_text(text, facts=mugs, kind=DESCRIPTION))
    assert origin_flags("The mugs were crafted in two small kitchens.", mugs) == [
        ("two small kitchens", "error")]
    assert origin_flags("The mugs are made in Portugal.", mugs) == []
    assert origin_flags("Designed in Denmark, made in Portugal.", mugs) == [("Denmark", "error")]
    assert origin_flags("Designed in collaboration with the kitchen studio.", mugs) == []
    # Gemma's words: a capitalised place of making is a name (the brand's), not a place.
    assert origin_flags("They were designed in collaboration between Nordhavn Kitchen and the "
                        "kitchen design studio at home.", mugs) == []


def test_an_origin_stated_by_a_nationality_the_facts_do_not_give_is_an_error():
    mugs = without(catalog_facts("NORD-TW-002"), "origin")  # now the data names no place
    for text, found in [
        ("The mugs were made in 2 Portuguese kitchens.", "2 Portuguese kitchens"),
        ("Made in Portugal, and dishwasher safe.", "Portugal"),
        ("Each mug is crafted in the heart of Portugal.", "Portugal"),
        ("Portuguese stoneware mugs in sea grey.", "Portuguese"),
        ("Two Portuguese-made mugs.", "Portuguese"),
        ("Shaped by Italian potters, glazed in sea grey.", "Italian"),
        ("Stoneware mugs from Japan.", "Japan"),
        ("Fired in the hills of Tuscany.", "Tuscany"),
    ]:
        assert origin_flags(text, mugs) == [(found, "error")], text
    # The facts' own place is no invention, under either of its names.
    portugal = catalog_facts("NORD-TW-002")
    for text in ("Made in Portugal.", "Portuguese stoneware.", "Stoneware from Portugal.",
                 "Two Portuguese-made mugs.", "Shaped by Portuguese potters.",
                 "Made in Europe.", "European stoneware mugs."):
        assert origin_flags(text, portugal) == [], text


def test_styles_and_kinds_named_after_a_country_are_not_origins():
    coffee = catalog_facts("NORD-KT-005")
    mugs = without(catalog_facts("NORD-TW-002"), "origin")
    casserole = catalog_facts("NORD-KT-003")
    for facts, text in [
        (coffee, "Slower than a French press, brighter than an Italian espresso."),
        (coffee, "A Japanese-style pour-over set for a calm morning cup."),
        (coffee, "Brew English breakfast tea or a Chinese tea in the carafe as well."),
        (mugs, "Japanese-inspired stoneware mugs with a Scandinavian design."),
        (mugs, "Mugs made in the Japanese style."),
        (mugs, "Inspired by Japanese ceramics and Scandinavian kitchens, unlike Italian mugs."),
        (casserole, "Use it as a Dutch oven for braises, from the hob to the table."),
        (mugs, "From morning coffee to a late tea, from Monday to Sunday."),
        (mugs, "Made from stoneware, made for everyday use."),
    ]:
        assert origin_flags(text, facts) == [], text


def test_a_place_named_without_saying_the_product_comes_from_it_stays_a_warning():
    mugs = without(catalog_facts("NORD-TW-002"), "origin")
    assert origin_flags("Made in Stoke, then glazed.", mugs) == [("Stoke", "warning")]
    # A place of making without a count or a place on it: check it.
    assert origin_flags("Made in small kitchens by hand.", mugs) == [("kitchens", "warning")]
    tea = catalog_facts("SL-TEA-010")
    assert origin_flags("这款茉莉花茶适合福建人的口味。", tea) == [("福建", "warning")]


def test_an_invented_chinese_origin_is_an_error():
    tea = catalog_facts("SL-TEA-010")  # 产地: 广西横县
    for text, found in [
        ("这款茉莉花茶来自福建，用茉莉鲜花窨制5次。", "福建"),
        ("产地：福建福州，茉莉香气鲜灵。", "福建"),
        ("这款茉莉花茶产自福建省，茶汤清甜。", "福建"),
        ("这款茉莉花茶原产于中国云南，茶汤清甜。", "云南"),
        ("这款茉莉花茶来自安溪，茶汤清甜。", "安溪"),
        ("日本进口茉莉花茶，茶汤清甜。", "日本"),
    ]:
        assert origin_flags(text, tea) == [(found, "error")], text
    assert not is_usable(check_text("这款茉莉花茶来自福建，茶汤清甜。", facts=tea,
                                    kind=DESCRIPTION))


def test_the_facts_own_chinese_origin_and_other_uses_of_the_words_pass():
    tea = catalog_facts("SL-TEA-010")
    for text in (
        "这款茉莉花茶来自广西横县，以烘青绿茶为茶坯。",
        "产地：广西横县，茉莉鲜花窨制5次。",
        "产自横县的茉莉花茶，茶汤清甜。",
        "香气来自茉莉鲜花，窨制5次，茶汤清甜。",
        "日式盖碗或玻璃杯冲泡都合适，也可以像英式红茶一样加奶。",
    ):
        assert origin_flags(text, tea) == [], text


# -- a title that renames the product --------------------------------------------------------------


def renamed(text, facts, kind=TITLE):
    return [span(text, f) for f in flagged(text, facts, kind, "title_renamed")]


def test_a_chinese_title_that_swaps_the_products_name_for_an_invented_one_is_no_start():
    tea = catalog_facts("SL-TEA-010")  # 横县茉莉花茶·窨制5次 200克
    title = "皇家茉莉花茶·窨制5次 200克"
    (flag,) = flagged(title, tea, TITLE, "title_renamed")
    assert span(title, flag) == "皇家"
    assert flag.severity == "warning" and "横县" in flag.message
    assert not is_usable(check_text(title, facts=tea, kind=TITLE))
    for text, found in [("皇家茉莉花茶", "皇家"), ("特级茉莉花茶 200克", "特级"),
                        ("山岚茶舍 皇家茉莉花茶", "皇家")]:
        assert renamed(text, tea) == [found], text
    oolong = catalog_facts("SL-TEA-007")  # 凤凰单丛·蜜兰香 100克
    assert renamed("御品单丛·蜜兰香 100克", oolong) == ["御品"]


def test_an_english_title_that_swaps_the_products_name_for_an_invented_one_is_no_start():
    mugs = catalog_facts("NORD-TW-002")  # Vik Stoneware Mugs, Set of 2
    title = "Royal Stoneware Mugs, Set of 2"
    (flag,) = flagged(title, mugs, TITLE, "title_renamed")
    assert span(title, flag) == "Royal"
    assert "Vik" in flag.message
    assert not is_usable(check_text(title, facts=mugs, kind=TITLE))
    bag = catalog_facts("FERN-OD-004")  # Kettle Lake 650 Down Sleeping Bag
    assert renamed("Alpine Down Sleeping Bag", bag) == ["Alpine"]
    (flag,) = flagged("Alpine Down Sleeping Bag", bag, TITLE, "title_renamed")
    assert '"Kettle Lake"' in flag.message


def test_short_titles_and_titles_that_keep_the_name_are_not_renamed():
    tea = catalog_facts("SL-TEA-010")
    for text in ("横县茉莉花茶 200克", "茉莉花茶 200克", "茉莉花茶·窨制5次", "广西横县茉莉花茶",
                 "山岚茶舍 横县茉莉花茶", "皇家横县茉莉花茶", "经典茉莉花茶", "茉莉花茶"):
        assert renamed(text, tea) == [], text
    mugs = catalog_facts("NORD-TW-002")
    for text in ("Vik Stoneware Mugs", "Stoneware Mugs, Set of 2", "Vik Mugs in Sea Grey",
                 "Nordhavn Kitchen Vik Mugs", "Sea Grey Stoneware Mugs",
                 "Everyday Stoneware Mugs", "Royal Vik Stoneware Mugs",
                 "Stoneware Mugs for Slow Mornings"):
        assert renamed(text, mugs) == [], text
    # A word of the title the data states elsewhere (a material, a use) is no name.
    case = catalog_facts("LQ-PA-001")  # Leather Phone Case for iPhone 15
    assert renamed("Slim Phone Case for iPhone 15", case) == []
    # Not a title: a description may call the tea what it likes (other checks read it).
    description = "皇家茉莉花茶，茶汤清甜。"
    assert renamed(description, tea, DESCRIPTION) == []


# -- a Chinese phrase said again in other words ---------------------------------------------------


def test_a_chinese_phrase_said_three_times_in_other_words_is_a_loop():
    # The makeup remover's description said "配方含植物油，无添加香精" three ways.
    oil = catalog_facts("SY-SK-008")
    text = ("这款卸妆油配方含植物油，无添加香精，温和不刺激。配方含有植物油，不添加香精，卸妆干净。"
            "本品配方含天然植物油，无香精添加，适合敏感肌。")
    (flag,) = flagged(text, oil, DESCRIPTION, "looping")
    assert span(text, flag) == "本品配方含天然植物油"
    assert "3 times in other words" in flag.message
    assert not is_usable(check_text(text, facts=oil, kind=DESCRIPTION))
    reordered = ("配方含植物油，无添加香精。能溶解日常淡妆和防晒。"
                 "配方中含有植物油，无添加香精成分。遇水乳化，易冲洗。植物油配方，不添加香精。")
    (flag,) = flagged(reordered, oil, DESCRIPTION, "looping")
    assert span(reordered, flag) == "植物油配方"


def test_a_long_chinese_clause_said_twice_in_other_words_is_a_loop():
    oil = catalog_facts("SY-SK-008")
    text = ("以植物油脂和角鲨烷为基础，能温和溶解日常淡妆和防晒。遇水乳化，易冲洗。"
            "以植物油脂与角鲨烷为基础，可以温和溶解日常淡妆和防晒。")
    (flag,) = flagged(text, oil, DESCRIPTION, "looping")
    assert span(text, flag) == "以植物油脂与角鲨烷为基础"
    assert "comes back in other words" in flag.message


def test_clauses_that_share_a_few_characters_are_no_loop():
    oil = catalog_facts("SY-SK-008")
    twice = "配方含植物油，无添加香精。遇水乳化，易冲洗。配方含有植物油，不添加香精。"
    assert flagged(twice, oil, DESCRIPTION, "looping") == []
    # Parallel clauses of plain copy ("要轻一点，透气一点") share a character or two, no more.
    quilt = catalog_facts("ML-HT-003")
    text = "夏天的被子要轻一点，透气一点，贴身一点。被套水洗过，手感软一点，晾干快一点。"
    assert flagged(text, quilt, DESCRIPTION, "looping") == []


def test_an_english_sentence_said_three_times_in_other_words_is_a_loop():
    kettle = catalog_facts("NORD-KT-001")
    text = ("The kettle heats up quickly and quietly. It boils a full load without keeping you "
            "waiting. The kettle heats up very quickly and quietly. It has auto shut-off. "
            "This kettle heats up quickly and so quietly.")
    (flag,) = flagged(text, kettle, DESCRIPTION, "looping")
    assert span(text, flag) == "This kettle heats up quickly and so quietly"
    twice = text[:text.rindex("This kettle")]
    assert flagged(twice, kettle, DESCRIPTION, "looping") == []


# -- colours the data contradicts ----------------------------------------------------------------


def colour_flags(text, facts, kind=DESCRIPTION):
    return [(span(text, f), f.code, f.severity) for f in check_text(text, facts=facts, kind=kind)
            if f.code in ("colour_mismatch", "ungrounded_colour")]


def test_a_sea_grey_product_called_sea_green_is_an_error():
    # Gemma's title and description for the sea grey mugs, and its "sea green" Vik plates.
    mugs = catalog_facts("NORD-TW-002")
    title = "Vik Stoneware Mugs, Sea Green"
    assert colour_flags(title, mugs, TITLE) == [("Green", "colour_mismatch", "error")]
    assert not is_usable(check_text(title, facts=mugs, kind=TITLE))
    text = "A pair of Vik mugs for a slow start to the day, in a subtle green shade."
    assert colour_flags(text, mugs) == [("green", "colour_mismatch", "error")]
    assert "sea grey" in flagged(text, mugs, DESCRIPTION, "colour_mismatch")[0].message
    plates = catalog_facts("NORD-TW-001")
    text = "Each Vik plate has a reactive glaze. The sea green shifts from plate to plate."
    assert colour_flags(text, plates) == [("green", "colour_mismatch", "error")]
    for text in ("Green stoneware mugs.", "The mugs come in green.", "Off-white mugs.",
                 "A navy glaze."):
        assert [code for _s, code, _v in colour_flags(text, mugs)] == ["colour_mismatch"], text


def test_colour_names_the_data_gives_in_other_words_are_no_mismatch():
    mugs = catalog_facts("NORD-TW-002")  # sea grey
    for text in ("Vik Mugs in Sea Grey", "Grey stoneware mugs.", "A soft grey glaze.",
                 "Blue-grey mugs.", "A grey-green glaze."):
        assert colour_flags(text, mugs, TITLE) == [], text
    base_layer = catalog_facts("FERN-AP-001")  # charcoal: grey, or near black
    for text in ("A charcoal grey base layer.", "Comes in black.", "A dark grey crew."):
        assert colour_flags(text, base_layer) == [], text
    assert colour_flags("A navy base layer.", base_layer) == [
        ("navy", "colour_mismatch", "error")]
    lead = catalog_facts("HH-PET-001")  # navy and white: each is the lead's
    assert colour_flags("A navy rope lead with white stripes, a blue lead.", lead) == []
    assert colour_flags("A red lead.", lead) == [("red", "colour_mismatch", "error")]
    ink = catalog_facts("LQ-ST-004")  # blue-black
    assert colour_flags("A blue ink that dries near black.", ink) == []


def test_chinese_colour_names_map_to_their_base_colour():
    towels = catalog_facts("ML-HT-002")  # 米白、浅灰、雾蓝
    assert colour_flags("米白色毛巾，浅灰和雾蓝可选，也有雾霾蓝。", towels) == []
    assert colour_flags("红色毛巾三条装。", towels) == [("红色", "colour_mismatch", "error")]
    socks = catalog_facts("ML-AP-004")  # 燕麦、浅灰、藏青
    assert colour_flags("藏青色袜子，深蓝色也好搭。", socks) == []
    assert colour_flags("墨绿色袜子。", socks) == [("墨绿色", "colour_mismatch", "error")]
    pot = catalog_facts("QH-KT-001")  # 雾绿色
    assert colour_flags("雾霾蓝炖锅。", pot, TITLE) == [("雾霾蓝", "colour_mismatch", "error")]
    assert colour_flags("雾绿色炖锅，绿色环保。", pot) == []
    bedding = catalog_facts("ML-HT-001")  # 燕麦色
    assert colour_flags("燕麦色床品，米白色看着温和。", bedding) == []
    assert colour_flags("灰绿色床品。", bedding) == [("灰绿色", "colour_mismatch", "error")]
    pyjamas = catalog_facts("ML-AP-005")  # 红白格
    assert colour_flags("红白格子，红色和白色都好看。", pyjamas) == []
    balm = catalog_facts("SY-SK-007")  # 无色
    assert colour_flags("白色润唇膏。", balm) == [("白色", "colour_mismatch", "error")]


def test_words_named_by_a_colour_are_no_colour():
    mugs = catalog_facts("NORD-TW-002")  # sea grey
    for text in ("Brew green tea or black tea, or white tea, in it.",
                 "Serve with black pepper on Black Friday.", "White noise and red wine.",
                 "A green choice for your kitchen.", "Toast turns golden brown.",
                 "Stainless spoons and silverware nearby; goldilocks portions.",
                 "Set against a green hillside."):
        assert colour_flags(text, mugs) == [], text
    assert colour_flags("Green Tea Mugs", mugs, TITLE) == []
    tea = catalog_facts("SL-TEA-003")  # 龙井: the data gives its leaves' colour
    text = ("绿茶、红茶、白茶、黑茶、乌龙都好喝，白兰地、黄油、红酒、金属、银行、白天、黑胡椒、"
            "金银花都不是颜色。汤色黄绿，叶底嫩绿。")
    assert colour_flags(text, tea) == []
    pot = catalog_facts("QH-KT-001")  # 雾绿色: a colour name inside other words is none
    assert colour_flags("泡一壶淡白茶，配红枣、黑芝麻和白糖。", pot) == []
    oil = catalog_facts("SY-SK-008")  # no colour at all
    text = "配方含植物油，无添加香精，去黑头、不泛红，淡化黑色素，不留白色痕迹。"
    assert colour_flags(text, oil) == []


def test_a_colour_said_of_a_product_whose_data_gives_none_is_a_warning():
    knife = catalog_facts("NORD-KT-002")  # steel blade, oiled oak handle: no colour
    assert colour_flags("Skarp Chef's Knife 20 cm, Black", knife, TITLE) == [
        ("Black", "ungrounded_colour", "warning")]
    assert is_usable(check_text("Skarp Chef's Knife 20 cm, Black", facts=knife, kind=TITLE))
    assert colour_flags("A black knife with a 20 cm blade.", knife) == [
        ("black", "ungrounded_colour", "warning")]
    assert colour_flags("It halves a red cabbage and a white onion.", knife) == []
    oil = catalog_facts("SY-SK-008")
    assert colour_flags("颜色为白色。", oil) == [("白色", "ungrounded_colour", "warning")]
    assert colour_flags("黑色卸妆油", oil, TITLE) == [("黑色", "ungrounded_colour", "warning")]



# -- copy that contradicts itself or its product ---------------------------------------------------


def contradictions(text, facts):
    return [(span(text, f), f.severity) for f in flagged(text, facts, DESCRIPTION, "contradiction")]


def test_a_part_the_data_gives_said_to_be_missing_is_an_error():
    knife = catalog_facts("NORD-KT-002")  # blade_length, blade_material, handle
    text = "The Skarp is a knife without blades, balanced and light."
    assert contradictions(text, knife) == [("without blades", "error")]
    assert not is_usable(check_text(text, facts=knife, kind=DESCRIPTION))
    assert contradictions("The knife does not have a handle.", knife) == [
        ("does not have a handle", "error")]
    coffee = catalog_facts("NORD-KT-005")
    assert contradictions("A pour-over set without a carafe or dripper.", coffee) == [
        ("without a carafe", "error")]


def test_a_part_named_in_passing_or_in_a_condition_is_no_contradiction():
    knife = catalog_facts("NORD-KT-002")
    for text in ("It cuts without the blade slipping.", "A knife without a blade guard.",
                 "Without a sharp blade, cooking is slow.", "It slices without effort.",
                 "The knife doesn't have a plastic handle.", "It cuts without blades dulling."):
        assert contradictions(text, knife) == [], text
    notebooks = catalog_facts("LQ-ST-006")  # "Pocket Notebooks": the title gives no pocket
    assert contradictions("Slim notebooks without pockets.", notebooks) == []


def test_an_action_said_to_be_quick_and_slow_is_a_contradiction():
    kettle = catalog_facts("NORD-KT-001")
    text = ("The Fjell kettle heats up quickly and quietly. Its stainless steel body takes longer "
            "to heat up, so be patient.")
    assert contradictions(text, kettle) == [("takes longer to heat", "warning")]
    assert not is_usable(check_text(text, facts=kettle, kind=DESCRIPTION))
    assert contradictions("It boils fast. Then it boils slowly.", kettle) == [
        ("boils slowly", "warning")]
    for text in ("It heats up quickly. Unlike a stovetop kettle, which takes longer to heat, "
                 "it switches off by itself.",
                 "It heats up quickly and takes longer to heat up than nothing at all.",
                 "It heats up quickly and cools slowly.", "It takes longer to heat up.",
                 "It takes longer to heat up, then heats up quickly."):
        assert contradictions(text, kettle) == [], text



def test_every_reference_title_and_description_of_the_demo_catalog_passes_the_new_checks():
    for line in CATALOG.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        facts = catalog_facts(row["sku"])
        for text, kind in ((row["title"], TITLE), (row["description"], DESCRIPTION)):
            flags = check_text(text, facts=facts, kind=kind)
            new = [f for f in flags if f.code in ("title_renamed", "ungrounded_origin", "looping",
                                                  "off_subject", "misattributed_number",
                                                  "ungrounded_number", "colour_mismatch",
                                                  "ungrounded_colour", "contradiction")]
            assert new == [], (row["sku"], kind.code, new)
            assert is_usable(flags), (row["sku"], kind.code, flags)
