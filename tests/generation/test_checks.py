import dataclasses

import pytest

from generation.checks import (
    BLOCKING,
    Flag,
    check_text,
    has_blocking,
    is_usable,
    rank_score,
    source_similarity,
)
from generation.prompts import ProductFacts

CLEAN_EN = (
    "The Northwind insulated steel bottle holds 500 ml and keeps drinks cold for 24 hours. "
    "Its 18/8 stainless steel body comes in a calm sage colour."
)
CLEAN_ZH = "青山玻璃茶壶容量600毫升，采用高硼硅玻璃，耐热，可直接明火加热，适合日常泡茶。"


def codes(flags):
    return [f.code for f in flags]


def flagged(flags, code):
    found = [f for f in flags if f.code == code]
    assert found, f"expected a {code!r} flag, got {flags}"
    return found


def span_text(text, flag):
    return text[flag.start : flag.end]


def test_clean_english_copy_has_no_flags(bottle, description, brand):
    assert check_text(CLEAN_EN, facts=bottle, kind=description, brand=brand) == []


def test_clean_chinese_copy_has_no_flags(teapot, description):
    assert check_text(CLEAN_ZH, facts=teapot, kind=description) == []


@pytest.mark.parametrize("text", ["", "   \n "])
def test_empty_text_is_an_error(bottle, description, text):
    assert check_text(text, facts=bottle, kind=description) == [
        Flag("empty", "error", "The text is empty.")
    ]


def test_text_over_the_brand_limit_is_an_error(bottle, description, brand):
    text = CLEAN_EN + " Northwind" * 20
    (flag,) = flagged(check_text(text, facts=bottle, kind=description, brand=brand), "too_long")
    assert flag.severity == BLOCKING
    assert "limit for product description is 300" in flag.message
    assert (flag.start, flag.end) == (300, len(text))


def test_text_over_the_kinds_limit_is_an_error_without_a_brand_limit(bottle, description):
    kind = dataclasses.replace(description, max_chars=50)
    assert "too_long" in codes(check_text(CLEAN_EN, facts=bottle, kind=kind))
    assert "too_long" not in codes(check_text(CLEAN_EN[:50], facts=bottle, kind=kind))


def test_banned_terms_are_errors_with_the_span_of_each_use(bottle, description, brand):
    text = "Northwind: Cheap to run and cheap to buy, and eco-friendly. Not cheapest-looking."
    flags = flagged(check_text(text, facts=bottle, kind=description, brand=brand), "banned_term")
    assert [span_text(text, f) for f in flags] == ["Cheap", "cheap", "eco-friendly"]
    assert all(f.severity == "error" for f in flags)
    assert '"cheap"' in flags[0].message


def test_banned_chinese_terms_match_inside_words(teapot, description, brand):
    text = "Northwind 青山茶壶价格便宜，容量600毫升。"
    (flag,) = flagged(check_text(text, facts=teapot, kind=description, brand=brand), "banned_term")
    assert span_text(text, flag) == "便宜"


def test_missing_required_terms_are_warnings(bottle, description, brand):
    text = CLEAN_EN.replace("Northwind ", "")
    (flag,) = flagged(check_text(text, facts=bottle, kind=description, brand=brand),
                      "required_term_missing")
    assert flag.severity == "warning" and '"Northwind"' in flag.message
    assert "required_term_missing" not in codes(
        check_text(CLEAN_EN, facts=bottle, kind=description, brand=brand)
    )


@pytest.mark.parametrize("term", ["最", "第一", "国家级", "最高级", "最佳", "顶级", "极致", "万能",
                                  "绝对", "100%", "唯一", "首个", "全网"])
def test_chinese_absolute_terms_are_errors_with_spans(teapot, description, term):
    text = f"这款茶壶是{term}实用的玻璃茶壶。"
    flags = flagged(check_text(text, facts=teapot, kind=description), "absolute_term")
    assert [span_text(text, f) for f in flags] == [term]
    assert flags[0].severity == "error" and "Advertising Law" in flags[0].message


def test_longest_chinese_absolute_term_is_reported_once(teapot, description):
    text = "国内最佳的茶壶，最近很受欢迎，第一次使用请先清洗。"
    flags = flagged(check_text(text, facts=teapot, kind=description), "absolute_term")
    assert [span_text(text, f) for f in flags] == ["最佳"]  # 最近 and 第一次 are plain words


def test_english_overclaims_are_flagged_on_word_boundaries(bottle, description):
    text = "The #1 bottle, guaranteed to cure thirst - a miracle, the best ever, 100% leakproof."
    flags = flagged(check_text(text, facts=bottle, kind=description), "overclaim")
    assert [span_text(text, f) for f in flags] == [
        "#1", "guaranteed", "cure", "miracle", "best ever", "100%"
    ]
    assert all(f.severity == "error" for f in flags)
    assert "overclaim" not in codes(
        check_text("A secure lid and a bestowed #10 badge.", facts=bottle, kind=description)
    )


def test_mild_superlatives_are_warnings(bottle, description):
    (flag,) = flagged(
        check_text("The best bottle for commuters.", facts=bottle, kind=description), "overclaim"
    )
    assert flag.severity == "warning"


def test_claims_that_are_product_facts_are_not_overclaims(bottle, description):
    facts = dataclasses.replace(bottle, attributes={"material": "100% recycled steel"})
    assert "overclaim" not in codes(
        check_text("Made of 100% recycled steel.", facts=facts, kind=description)
    )


@pytest.mark.parametrize(
    "code, contact",
    [
        ("url", "https://shop.example.com/p/1"),
        ("url", "www.northwind.cn"),
        ("url", "northwind-shop.com"),
        ("email", "sales@northwind.com"),
        ("phone", "+1 415 555 0100"),
        ("phone", "(415) 555-0100"),
        ("phone", "13812345678"),
        ("phone", "400-123-4567"),
    ],
)
def test_urls_emails_and_phone_numbers_are_errors(bottle, description, code, contact):
    text = f"Order the bottle at {contact} today."
    flags = check_text(text, facts=bottle, kind=description)
    contact_flags = [f for f in flags if f.code in {"url", "email", "phone"}]
    assert codes(contact_flags) == [code]
    assert span_text(text, contact_flags[0]) == contact
    assert contact_flags[0].severity == "error"


def test_sizes_and_dates_are_not_phone_numbers(bottle, description):
    text = "Sizes 38 40 42 44, e.g. the 500 ml one."
    assert not {"url", "email", "phone"} & set(codes(check_text(text, facts=bottle,
                                                                  kind=description)))


@pytest.mark.parametrize(
    "text, leftover",
    [
        ("Here is a description: The bottle keeps drinks cold.", "Here is"),
        ("Sure! The bottle keeps drinks cold.", "Sure!"),
        ("The bottle keeps drinks cold. </product>", "</product>"),
        ("As an AI, I think the bottle keeps drinks cold.", "As an AI"),
        ("Based on the product data, the bottle keeps drinks cold.", "product data"),
    ],
)
def test_leftover_prompt_text_is_an_error(bottle, description, text, leftover):
    # Was a warning; issue 13: prompt residue makes a draft unusable, so it is an error now.
    flags = flagged(check_text(text, facts=bottle, kind=description), "prompt_leftover")
    assert leftover in [span_text(text, f) for f in flags]
    assert all(f.severity == "error" for f in flags)


def test_chinese_preamble_is_a_leftover(teapot, description):
    text = "以下是商品描述：青山玻璃茶壶容量600毫升。"
    (flag,) = flagged(check_text(text, facts=teapot, kind=description), "prompt_leftover")
    assert span_text(text, flag) == "以下是"


def test_english_copy_for_a_chinese_product_is_the_wrong_language(teapot, description):
    text = "This glass teapot holds 600 ml and can go straight on the flame."
    (flag,) = flagged(check_text(text, facts=teapot, kind=description), "wrong_language")
    assert flag.severity == "error" and "Simplified Chinese" in flag.message


def test_chinese_copy_with_latin_model_names_is_still_chinese(teapot, description):
    text = "这款 Nike Air Zoom Pegasus 跑鞋轻盈透气。"
    assert "wrong_language" not in codes(check_text(text, facts=teapot, kind=description))


def test_chinese_copy_for_an_english_product_is_the_wrong_language(bottle, description):
    text = "这款保温杯容量五百毫升，保冷二十四小时。"
    (flag,) = flagged(check_text(text, facts=bottle, kind=description), "wrong_language")
    assert "English" in flag.message


def test_a_repeated_sentence_is_a_warning_at_its_second_use(bottle, description):
    sentence = "It keeps drinks cold for 24 hours."
    text = f"{sentence} It is made of steel. {sentence}"
    (flag,) = flagged(check_text(text, facts=bottle, kind=description), "repetition")
    assert flag.severity == "warning"
    assert (flag.start, flag.end) == (text.rindex(sentence), len(text))


def test_low_word_pair_variety_is_a_warning(bottle, description):
    text = "cold steel bottle " * 12
    flags = flagged(check_text(text, facts=bottle, kind=description), "repetition")
    assert any("distinct" in f.message for f in flags)


def test_chinese_repetition_is_detected(teapot, description):
    text = "玻璃茶壶很好看。" + "耐热玻璃。" * 2
    (flag,) = flagged(check_text(text, facts=teapot, kind=description), "repetition")
    assert span_text(text, flag) == "耐热玻璃。"


def test_a_phrase_said_three_times_in_varied_sentences_leaves_no_usable_draft(teapot,
                                                                           description):
    text = ("玻璃茶壶容量600毫升，高硼硅玻璃壶身，清香回甘。沸水冲泡，高硼硅玻璃壶身，茶汤明亮。"
            "高硼硅玻璃壶身，适合午后慢饮。")
    flags = check_text(text, facts=teapot, kind=description)
    assert {f.code for f in flags} == {"looping"}
    (flag,) = flagged(flags, "looping")
    assert flag.severity == "warning" and not is_usable(flags)
    assert "高硼硅玻璃壶身" in flag.message and "3 times" in flag.message
    assert flag.start == text.rindex("高硼硅玻璃壶身")
    # Twice is emphasis, not a loop.
    twice = text[:text.rindex("高硼硅玻璃壶身")]
    assert "looping" not in {f.code for f in check_text(twice, facts=teapot, kind=description)}


def test_three_phrases_said_twice_each_are_a_loop_too(teapot, description):
    text = ("这款玻璃茶壶容量600毫升，高硼硅玻璃。"
            "\n\n蜜兰香：清爽的蜜汁香，蜜芽在蜜糖里，蜜芽香甜如蜜。"
            "\n\n单丛：清爽的蜜汁香，蜜芽香甜如蜜，蜜芽在蜜糖里。")
    (flag,) = flagged(check_text(text, facts=teapot, kind=description), "looping")
    assert "3 phrases appear twice" in flag.message
    assert span_text(text, flag) == "清爽的蜜汁香"
    two = text.replace("，蜜芽在蜜糖里。", "。")
    assert "looping" not in {f.code for f in check_text(two, facts=teapot, kind=description)}


def test_an_english_clause_looping_is_caught_but_short_ones_are_not(bottle, description):
    looping = ("Keeps drinks cold all day, even in the sun. On the trail, keeps drinks cold all "
               "day. At your desk it keeps drinks cold all day, keeps drinks cold all day.")
    (flag,) = flagged(check_text(looping, facts=bottle, kind=description), "looping")
    assert "3 times" in flag.message
    short = "Cold, cold, cold. Steel, steel, steel."
    assert "looping" not in {f.code for f in check_text(short, facts=bottle, kind=description)}


def test_health_claims_are_errors_unless_the_product_data_makes_them(teapot, bottle,
                                                                     description):
    zh = "这款玻璃茶壶容量600毫升，高硼硅玻璃，常喝还能排毒，改善身体健康。"
    flags = flagged(check_text(zh, facts=teapot, kind=description), "health_claim")
    assert [span_text(zh, f) for f in flags] == ["排毒", "改善身体健康"]
    assert all(f.severity == "error" for f in flags)
    assert not is_usable(check_text(zh, facts=teapot, kind=description))
    en = "This bottle detoxifies your water and boosts your immune system. Good for your health."
    flags = flagged(check_text(en, facts=bottle, kind=description), "health_claim")
    assert [span_text(en, f) for f in flags] == ["detoxifies", "boosts your immune system"]
    assert "health or medical claim" in flags[0].message
    # Gemma's tea description, usable until 养颜 was a health claim.
    tea = "秋冬喝茶，有暖身养颜的功效。"
    flags = flagged(check_text(tea, facts=teapot, kind=description), "health_claim")
    assert [span_text(tea, f) for f in flags] == ["养颜"]
    fact = dataclasses.replace(teapot, attributes={**teapot.attributes, "功效": "排毒"})
    assert "health_claim" not in {f.code for f in check_text(zh.replace("，改善身体健康", ""),
                                                              facts=fact, kind=description)}


def test_a_place_of_origin_must_come_from_the_facts(bottle, description):
    tea = ProductFacts(sku="T-7", title="凤凰单丛·蜜兰香 100克", locale="zh-hans",
                       attributes={"产地": "广东潮州凤凰山"})
    text = "这款凤凰单丛来自广东潮州凤凰山，产自福建省，蜜兰香。"
    flags = flagged(check_text(text, facts=tea, kind=description), "ungrounded_origin")
    assert [span_text(text, f) for f in flags] == ["福建"]
    assert flags[0].severity == "error"  # "产自": the copy says the tea comes from there
    en = "Manufactured in Europe, made in Northwind's own plant, with steel sourced from Japan."
    flags = flagged(check_text(en, facts=bottle, kind=description), "ungrounded_origin")
    assert [span_text(en, f) for f in flags] == ["Europe", "Japan"]
    assert {f.severity for f in flags} == {"error"}
    feature = "A speaker with built in Bluetooth, printed in grey."
    assert "ungrounded_origin" not in {
        f.code for f in check_text(feature, facts=bottle, kind=description)}
    japanese = dataclasses.replace(bottle, attributes={"origin": "Japan"})
    codes = {f.code for f in check_text("Made in Japan.", facts=japanese, kind=description)}
    assert "ungrounded_origin" not in codes


def test_numbers_with_units_must_come_from_the_facts(bottle, description):
    text = "Holds 750 ml, keeps drinks cold for 24 hours, with a 2-year warranty, 18/10 steel."
    flags = flagged(check_text(text, facts=bottle, kind=description), "ungrounded_number")
    assert [span_text(text, f) for f in flags] == ["750 ml", "2-year", "18/10"]
    # Was a warning; issue 13: an invented number makes a draft unusable, so it is an error.
    assert all(f.severity == "error" for f in flags)
    assert '"750 ml"' in flags[0].message


def test_chinese_numbers_with_units_must_come_from_the_facts(teapot, description):
    text = "青山玻璃茶壶容量600毫升，保温12小时。"
    (flag,) = flagged(check_text(text, facts=teapot, kind=description), "ungrounded_number")
    assert span_text(text, flag) == "12小时"


def test_flags_are_sorted_by_position(bottle, description, brand):
    text = "Cheap! Visit www.example.com for the best ever 750 ml bottle."
    flags = check_text(text, facts=bottle, kind=description, brand=brand)
    positioned = [f.start for f in flags if f.start >= 0]
    assert positioned == sorted(positioned)


def test_rank_score_prefers_fewer_and_milder_flags():
    error = Flag("x", "error", "e")
    warning = Flag("y", "warning", "w")
    info = Flag("z", "info", "i")
    assert rank_score([]) == 0
    assert rank_score([]) > rank_score([info]) > rank_score([warning]) > rank_score([error])
    assert rank_score([warning] * 5) > rank_score([error])
    assert has_blocking([warning, error]) and not has_blocking([warning, info])


def test_every_flag_carries_its_message_template_and_values(bottle, teapot, description, brand):
    """The desk shows a flag in the reader's language from its template and values: both must
    rebuild the English message exactly, for every kind of flag."""
    texts = [
        (bottle, brand, "Here is the copy: Cheap! The best ever bottle, 750 ml, from Apple. "
                        "Mail me@example.com or call (555) 123-4567 at www.example.com. "
                        "Ignore all previous instructions. Made of titanium, model XK-900. "
                        + "It is good. " * 3 + "x" * 300),
        (bottle, None, "The bottle is a bottle is a bottle is a bottle " * 3),
        (teapot, None, "这是最好的茶壶，国家级品质，容量1000毫升。" * 2),
        (teapot, None, "This teapot is made of glass and holds tea."),
        (bottle, None, "这个水壶很好用，适合每天带着出门。"),
        (bottle, None, " "),
        (bottle, None, "### Head\n**Cold** `code` {json} <p>copy</p> " + "Mail a@b.co. " * 25),
        (bottle, None, bottle.source_text),
    ]
    seen = set()
    for facts, rules, text in texts:
        for flag in check_text(text, facts=facts, kind=description, brand=rules):
            seen.add(flag.code)
            assert flag.template, flag
            assert flag.template % flag.params == flag.message
            stored = flag.to_dict()
            assert stored["template"] % stored["params"] == stored["message"]
    assert {"too_long", "banned_term", "required_term_missing", "absolute_term", "overclaim",
            "email", "url", "phone", "prompt_leftover", "instruction_echo", "wrong_language",
            "repetition", "ungrounded_number", "ungrounded_material", "ungrounded_brand",
            "ungrounded_model", "coverage", "empty", "markdown", "code", "json", "html",
            "source_copy", "more_flags"} <= seen


def test_checks_make_flags_only_through_the_template_helper():
    import ast
    import inspect
    import pkgutil

    from generation import checks
    from generation.checks import flags

    helper_tree = ast.parse(inspect.getsource(flags))
    helper = next(node for node in helper_tree.body
                  if isinstance(node, ast.FunctionDef) and node.name == "_flag")
    for info in pkgutil.iter_modules(checks.__path__):
        module = __import__(f"generation.checks.{info.name}", fromlist=["_"])
        tree = ast.parse(inspect.getsource(module))
        direct = [node.lineno for node in ast.walk(tree)
                  if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Flag"]
        allowed = [helper.body[0].lineno] if info.name == "flags" else []
        assert direct == allowed, f"{info.name}: build flags with _flag(), which keeps a template"


# -- what an editor sees: the errors that make a draft unusable (issue 13) ---------------------


@pytest.mark.parametrize(
    "code, text, found",
    [
        ("markdown", "### Features\nThe bottle keeps drinks cold.", "### Features"),
        ("markdown", "The bottle keeps drinks **cold** all day.", "**"),
        ("markdown", "The bottle:\n* keeps drinks cold\n* fits a cup holder", "* "),
        ("markdown", "See [the bottle](shop/bottle) for more.", "[the bottle](shop/bottle)"),
        ("markdown", "The bottle keeps drinks cold.\n---\nMore copy.", "---"),
        ("code", "```\nThe bottle keeps drinks cold.\n```", "```"),
        ("code", "Use the `bottle` every day.", "`bottle`"),
        ("json", '{"title": "Steel bottle", "copy": "Keeps drinks cold."}',
         '{"title": "Steel bottle", "copy": "Keeps drinks cold."}'),
        ("json", "The {product_name} keeps drinks cold.", "{product_name}"),
        ("html", "<p>The bottle keeps drinks cold.</p>", "<p>"),
        ("html", "The bottle keeps drinks cold.<br>Fits a cup holder.", "<br>"),
        ("html", "Steel &amp; sage.", "&amp;"),
    ],
)
def test_markup_is_an_error_with_its_span(bottle, description, code, text, found):
    flags = flagged(check_text(text, facts=bottle, kind=description), code)
    assert found in [span_text(text, f) for f in flags]
    assert all(f.severity == "error" for f in flags)
    assert not is_usable(flags)


@pytest.mark.parametrize(
    "code, text, found",
    [
        ("markdown", "## 产品特点\n青山玻璃茶壶容量600毫升。", "## 产品特点"),
        ("markdown", "青山玻璃茶壶**耐热**，容量600毫升。", "**"),
        ("code", "```\n青山玻璃茶壶容量600毫升。\n```", "```"),
        ("json", "｛标题：玻璃茶壶｝容量600毫升。", "｛"),
        ("html", "<b>青山玻璃茶壶</b>容量600毫升。", "<b>"),
    ],
)
def test_markup_in_chinese_copy_is_an_error(teapot, description, code, text, found):
    flags = flagged(check_text(text, facts=teapot, kind=description), code)
    assert found in [span_text(text, f) for f in flags]
    assert flags[0].severity == "error"


def test_plain_bullets_hashtag_numbers_and_prices_are_not_markup(bottle, description):
    text = ("- Holds 500 ml\n- Keeps drinks cold for 24 hours\nThe #1 choice of commuters, "
            "a snake_case word, and a 1-2-3 setup.")
    flags = check_text(text, facts=bottle, kind=description)
    assert not {"markdown", "code", "json", "html"} & set(codes(flags))


@pytest.mark.parametrize(
    "text, leftover",
    [
        ("Task: Write the description.\nThe bottle keeps drinks cold.", "Task:"),
        ("Facts: steel, 500 ml.\nThe bottle keeps drinks cold.", "Facts:"),
        ("Title: Steel bottle\nDescription: The bottle keeps drinks cold.", "Description:"),
        ("The bottle keeps drinks cold.\nTitle: Steel bottle", "Title:"),
        ("<product>The bottle keeps drinks cold.", "<product>"),
        ("In this email, we present the bottle that keeps drinks cold.", "In this email"),
        ("The bottle keeps drinks cold.\n\nHere is another version: the bottle is cold.",
         "Here is"),
        ("The bottle keeps drinks cold. Reply with the copy only.", "Reply with the copy only"),
    ],
)
def test_prompt_labels_and_assistant_phrases_are_errors(bottle, description, text, leftover):
    flags = flagged(check_text(text, facts=bottle, kind=description), "prompt_leftover")
    assert leftover in [span_text(text, f) for f in flags]
    assert all(f.severity == "error" for f in flags)


@pytest.mark.parametrize("text, leftover", [
    ("标题：青山玻璃茶壶\n青山玻璃茶壶容量600毫升。", "标题："),
    ("商品描述：青山玻璃茶壶容量600毫升。", "商品描述："),
    ("青山玻璃茶壶容量600毫升。请用简体中文作答", "请用简体中文作答"),
])
def test_chinese_prompt_labels_are_errors(teapot, description, text, leftover):
    flags = flagged(check_text(text, facts=teapot, kind=description), "prompt_leftover")
    assert leftover in [span_text(text, f) for f in flags]
    assert flags[0].severity == "error"


def test_a_label_inside_a_sentence_is_not_a_leftover(bottle, description):
    text = "The bottle's title: simply the best companion for commuters."
    assert "prompt_leftover" not in codes(check_text(text, facts=bottle, kind=description))


def test_an_invented_number_with_a_unit_is_an_error_and_a_bare_number_is_not_judged(
    bottle, description
):
    text = "Made since 1998 with 3 layers, 24 hours of cold, a 5-year warranty and 30% off."
    flags = flagged(check_text(text, facts=bottle, kind=description), "ungrounded_number")
    # 24 hours is in the facts; bare numbers count things or name years and are left alone.
    assert [span_text(text, f) for f in flags] == ["5-year", "30%"]
    assert all(f.severity == "error" for f in flags)


def test_an_invented_number_in_chinese_copy_is_an_error(teapot, description):
    text = "青山玻璃茶壶容量600毫升，保温12小时，始于1998年。"
    flags = flagged(check_text(text, facts=teapot, kind=description), "ungrounded_number")
    assert [span_text(text, f) for f in flags] == ["12小时", "1998年"]
    assert all(f.severity == "error" for f in flags) and not is_usable(flags)


def test_numbers_from_the_facts_are_not_invented(bottle, teapot, description):
    assert "ungrounded_number" not in codes(check_text(CLEAN_EN, facts=bottle, kind=description))
    assert "ungrounded_number" not in codes(check_text(CLEAN_ZH, facts=teapot, kind=description))


def test_copy_of_the_source_text_is_an_error(bottle, teapot, description):
    copied = bottle.source_text.upper().replace(".", "!")  # case and punctuation aside
    (flag,) = flagged(check_text(copied, facts=bottle, kind=description), "source_copy")
    assert flag.severity == "error" and flag.whole_text and "100%" in flag.message
    long_zh = dataclasses.replace(teapot,
                                  source_text="耐热高硼硅玻璃，可直接明火加热，适合日常泡茶。")
    (flag,) = flagged(check_text(long_zh.source_text, facts=long_zh, kind=description),
                      "source_copy")
    assert flag.severity == "error"


def test_copy_that_only_shares_a_phrase_with_the_source_text_is_fine(bottle, description):
    text = ("The Northwind bottle keeps drinks cold for 24 hours, in a calm sage colour that "
            "suits a commute.")
    assert "source_copy" not in codes(check_text(text, facts=bottle, kind=description))
    assert source_similarity(text, bottle.source_text) < 0.9


def test_wrong_language_is_an_error_both_ways(bottle, teapot, description):
    for facts, text in ((teapot, "This glass teapot holds 600 ml and can go on the flame."),
                        (bottle, "这款保温杯容量五百毫升，保冷二十四小时。")):
        flags = check_text(text, facts=facts, kind=description)
        assert [f.severity for f in flags if f.code == "wrong_language"] == ["error"]
        assert not is_usable(flags)


def test_any_length_overrun_is_an_error(bottle, description):
    kind = dataclasses.replace(description, max_chars=len(CLEAN_EN) - 1)
    (flag,) = flagged(check_text(CLEAN_EN, facts=bottle, kind=kind), "too_long")
    assert flag.severity == "error"


def test_usable_means_no_error_flag(bottle, teapot, description):
    assert is_usable(check_text(CLEAN_EN, facts=bottle, kind=description))
    assert is_usable(check_text(CLEAN_ZH, facts=teapot, kind=description))
    # Warnings and notes leave copy usable; stored flag dicts are judged the same way.
    warned = check_text("The best bottle for commuters.", facts=bottle, kind=description)
    assert {f.severity for f in warned} == {"warning"} and is_usable(warned)
    assert is_usable([f.to_dict() for f in warned])
    assert not is_usable([{"code": "url", "severity": "error"}])
    assert is_usable([])


def test_text_from_any_platform_is_stored_with_plain_line_breaks():
    from generation.text import is_han, plain_text

    assert plain_text(" A\r\nB\rC\n ") == "A\nB\nC"
    assert plain_text(None) == ""
    assert is_han("茶") and is_han("\U00020000") and not is_han("a") and not is_han("の")
