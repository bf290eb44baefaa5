"""The colour of a product: copy may give it only as the product's data does. Small models
drift to a neighbouring colour ("Sea Grey" → "Sea Green", "a subtle green shade" for a sea grey
mug), and a wrong colour in a title or a listing is a false claim a customer sees at once.

Colours are compared by base colour, not by name: the data's "sea grey", "charcoal" and "slate"
are grey (charcoal also black, slate also blue), "off-white", "ivory" and "米白" white, "navy" and
"藏青" blue, "oatmeal" and "燕麦色" beige, white or brown. A name's last colour word decides it
("sea green" is green), two joined ones allow both ("blue-black", "红白格", "navy and white"), and
the data may give several ("米白、浅灰、雾蓝"): copy may use any of them.

A colour the data contradicts is an error where the copy says it of the product: in a title, in
a colour's own name ("sea green", "雾霾蓝"), before the product or a colour word ("green mugs",
"a green shade"), after "in" or "colour" ("comes in green", "颜色为绿色"); in Chinese every
colour name counts ("灰色", "米白"), since a lone character is never read as one (红茶, 白天,
黑头 and 美白 are no colours). A colour named in passing ("against a grey hillside", "golden
toast") is left alone: copy may talk about other things. Where the data gives no colour, a
colour said of the product is a warning: check it, since the product may well be that colour
(an oak handle is brown) and the data just does not say so. Tea, wine, pepper and other things
named by a colour ("green tea", "白茶", "黑胡椒", "Black Friday", "white noise") are no colours."""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..i18n import gettext_noop
from ..prompts import KindSpec, ProductFacts
from .flags import ERROR, WARNING, Flag, _flag
from .matching import _trie
from .places import _product_words, _stem

RED, ORANGE, YELLOW, GREEN, BLUE, PURPLE, PINK, BROWN, BEIGE, WHITE, BLACK, GREY, GOLD, \
    SILVER, CLEAR = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown",
                     "beige", "white", "black", "grey", "gold", "silver", "clear")

# English colour words copy is read for: each names a colour and (almost) nothing else.
# "cream", "slate", "stone", "rose", "sage", "chocolate" and the like also name things, so they
# ground a colour in the data but are not read as one in copy.
_EN_COLOURS: dict[str, frozenset[str]] = {name: frozenset(families) for name, families in {
    "red": (RED,), "crimson": (RED,), "scarlet": (RED,), "burgundy": (RED, PURPLE),
    "maroon": (RED, BROWN), "orange": (ORANGE,), "yellow": (YELLOW,), "green": (GREEN,),
    "emerald": (GREEN,), "olive": (GREEN, BROWN), "khaki": (GREEN, BROWN, BEIGE),
    "teal": (BLUE, GREEN), "turquoise": (BLUE, GREEN), "blue": (BLUE,), "navy": (BLUE,),
    "indigo": (BLUE, PURPLE), "cobalt": (BLUE,), "azure": (BLUE,), "purple": (PURPLE,),
    "violet": (PURPLE,), "lilac": (PURPLE, PINK), "mauve": (PURPLE, PINK), "pink": (PINK,),
    "brown": (BROWN,), "tan": (BROWN, BEIGE), "beige": (BEIGE, WHITE), "taupe": (BEIGE, GREY,
                                                                                BROWN),
    "ivory": (WHITE, BEIGE), "white": (WHITE,), "black": (BLACK,), "grey": (GREY,),
    "gray": (GREY,), "charcoal": (GREY, BLACK), "gold": (GOLD, YELLOW),
    "golden": (GOLD, YELLOW), "silver": (SILVER, GREY), "silvery": (SILVER, GREY),
}.items()}
# Names that give a colour only in the data's colour field ("colour: stone").
_EN_DATA_COLOURS: dict[str, frozenset[str]] = {**_EN_COLOURS, **{
    name: frozenset(families) for name, families in {
        "cream": (WHITE, BEIGE), "stone": (GREY, BEIGE), "slate": (GREY, BLUE),
        "oat": (BEIGE, WHITE, BROWN), "oatmeal": (BEIGE, WHITE, BROWN), "sand": (BEIGE,),
        "rust": (RED, ORANGE, BROWN), "chalk": (WHITE,), "ecru": (BEIGE, WHITE),
        "natural": (BEIGE, WHITE), "linen": (BEIGE, WHITE), "steel": (SILVER, GREY),
        "chrome": (SILVER, GREY), "graphite": (GREY, BLACK), "sage": (GREEN, GREY),
        "mint": (GREEN,), "camel": (BROWN, BEIGE), "mustard": (YELLOW,),
        "terracotta": (RED, ORANGE, BROWN), "copper": (ORANGE, BROWN, GOLD),
        "bronze": (BROWN, GOLD), "brass": (GOLD, YELLOW), "rose": (PINK,), "blush": (PINK,),
        "coral": (PINK, ORANGE, RED), "wine": (RED, PURPLE), "plum": (PURPLE,),
        "lavender": (PURPLE,), "clear": (CLEAR,), "transparent": (CLEAR,),
        "colourless": (CLEAR,), "colorless": (CLEAR,), "chocolate": (BROWN,),
        "espresso": (BROWN, BLACK), "walnut": (BROWN,), "ink": (BLUE, BLACK),
    }.items()}}
_EN_WORD_RE = re.compile(r"[A-Za-z]+")
# A quote may close on a colour ("'sea blue'"), a possessive is a name ("Green's").
_EN_COLOUR_RE = re.compile(
    r"(?<![\w])" + _trie(((name, r"(?![\w]|['’][A-Za-z])") for name in _EN_COLOURS), r"\s+"),
    re.IGNORECASE)
# Words that make a colour's own name ("sea green", "off-white", "forest green").
_EN_NAME_MODIFIERS = frozenset(
    "sea moss forest sky sage slate stone ocean mint ink fjord chalk signal bottle midnight "
    "powder dove ash smoke storm pine jade lime rose dusty misty pastel off ice steel gunmetal "
    "racing baby petrol duck".split())
# Words that say "this is the colour" after a colour word ("a green shade", "green-glazed").
_EN_COLOUR_NOUNS = frozenset(
    "shade shades colour colours color colors coloured colored hue hues tone tones tint tints "
    "finish finished glaze glazed colourway colorway enamel enamelled lacquer".split())
# Things named by a colour: the colour word before them is no colour of the product.
_EN_NOT_COLOUR_AFTER = frozenset(
    "tea teas pepper peppercorns friday noise wine wines tape standard lining hour rule rules "
    "space belt belts label juice peel zest oil filter grill briquettes light lights list "
    "energy card".split())
_EN_NOT_COLOUR_BEFORE = frozenset("go going eco".split())
# "in green", "the colour is green", "a shade of soft green": the colour named as the
# product's; read from the last few words before it, within its sentence.
_EN_SAID_AFTER = frozenset(
    "in colour color colours colors shade shades hue hues tone tones".split())
_EN_SAID_SKIP = frozenset("a an the is are of".split())
_SENTENCE_END_RE = re.compile(r".*[.!?;\n]", re.DOTALL)
_EN_PHRASE_END = frozenset("and or with to for that so while but".split())
_BEFORE_WINDOW = 48

# Chinese: a colour is a name, never one character alone ("红" in 红茶, 白天, 美白, 黑头):
# a base with 色 ("灰色"), two bases ("红白", "灰绿"), a base after a word that makes a colour's
# name ("浅灰", "雾霾蓝", "藏青"), or a name of its own ("米白", "燕麦色", "香槟色").
_ZH_BASES = {"红": (RED,), "绿": (GREEN,), "蓝": (BLUE,), "黄": (YELLOW,), "白": (WHITE,),
             "黑": (BLACK,), "灰": (GREY,), "紫": (PURPLE,), "粉": (PINK,), "橙": (ORANGE,),
             "棕": (BROWN,), "褐": (BROWN,), "金": (GOLD, YELLOW), "银": (SILVER, GREY),
             "青": (BLUE, GREEN, BLACK)}
_ALL_BASES = "".join(_ZH_BASES)
_ZH_MODIFIERS = {
    "浅": _ALL_BASES, "深": _ALL_BASES, "淡": _ALL_BASES, "雾霾": "蓝绿灰粉紫青",
    "雾": "蓝绿灰粉紫青", "烟": "蓝绿灰粉紫青", "湖": "蓝绿青", "天": "蓝青", "海": "蓝绿青",
    "宝": "蓝", "孔雀": "蓝绿", "藏": "青蓝", "墨": "绿黑蓝", "苔": "绿", "酒": "红",
    "玫": "红", "砖": "红", "橄榄": "绿", "薄荷": "绿", "军": "绿", "草": "绿", "翠": "绿",
    "奶": "白", "象牙": "白", "珍珠": "白", "乳": "白", "姜": "黄", "土": "黄", "炭": "黑灰",
    "嫩": "绿黄", "米": "白黄",
}
_ZH_NAMES_OWN = {
    "米色": (BEIGE, WHITE), "米白": (WHITE, BEIGE), "米黄": (BEIGE, YELLOW),
    "杏色": (BEIGE, ORANGE), "驼色": (BROWN, BEIGE), "卡其": (BEIGE, BROWN, GREEN),
    "咖啡色": (BROWN,), "咖色": (BROWN,), "奶咖": (BROWN, BEIGE), "燕麦色": (BEIGE, WHITE, BROWN),
    "香槟色": (GOLD, BEIGE), "焦糖色": (BROWN,), "粉青": (GREEN, BLUE), "天青": (BLUE, GREEN),
    "藏青": (BLUE,), "无色": (CLEAR,), "透明色": (CLEAR,), "金黄": (GOLD, YELLOW),
}
# Only in the data's colour field: "燕麦" alone is oats in copy.
_ZH_DATA_NAMES = {"燕麦": (BEIGE, WHITE, BROWN), "杏": (BEIGE, ORANGE), "透明": (CLEAR,),
                  "咖啡": (BROWN,), "香槟": (GOLD, BEIGE), "驼": (BROWN, BEIGE)}


def _zh_names() -> dict[str, frozenset[str]]:
    names: dict[str, tuple[str, ...]] = {}
    for base, families in _ZH_BASES.items():
        names[base + "色"] = families
        for other, more in _ZH_BASES.items():
            # 金银 (金银花), 黄金 and 白银 (the metals) are no colour.
            if other != base and base + other not in ("金银", "银金", "黄金", "白银"):
                names[base + other] = names[base + other + "色"] = families + more
    for modifier, bases in _ZH_MODIFIERS.items():
        for base in bases:
            if base in _ZH_BASES:
                names[modifier + base] = names[modifier + base + "色"] = _ZH_BASES[base]
    for name, families in _ZH_NAMES_OWN.items():
        names[name] = families
        if not name.endswith("色"):
            names[name + "色"] = families
    return {name: frozenset(families) for name, families in names.items()}


_ZH_COLOURS = _zh_names()
_ZH_DATA_COLOURS = {**_ZH_COLOURS, **{name: frozenset(f) for name, f in _ZH_DATA_NAMES.items()},
                    **{base: frozenset(f) for base, f in _ZH_BASES.items()}}
# After a colour name without 色, what makes it a thing (白茶, 淡白茶香, 红枣, 黑芝麻, 藏红花);
# after one with 色, what makes it no colour of the product (黑色素, 绿色环保, 白色污染).
_ZH_NOT_COLOUR_AFTER = ("茶", "酒", "兰地", "油", "糖", "天", "胡椒", "行", "属", "枣", "米", "豆",
                        "芝麻", "菜", "醋", "头", "眼圈", "血丝", "肿", "发", "牡丹", "袍", "花",
                        "瓷", "斑", "面", "肌", "皙")
_ZH_NOT_COLOUR_AFTER_SE = ("素", "斑", "污染", "环保", "健康", "食品", "生活", "出行", "能源",
                           "无公害", "有机", "家居理念")
_ZH_COLOUR_RE = re.compile(
    "(?<![厘毫千分0-9.])"  # after a length, 米 is the metre (1.8米白色: 米白 is no colour)
    + _trie(((name, "") for name in _ZH_COLOURS), "")
)
# A colour of the tea's liquor or leaves, or a dish, is no colour of the product.
_ZH_NOT_PRODUCT_BEFORE = ("汤色", "茶汤", "叶底", "汤", "肤色", "皮肤", "肌肤")  # 2 at most
_ZH_SAID_BEFORE_RE = re.compile("(?:颜色|配色|釉色|色调|色系|外观|颜色有|颜色可选)"
                                "[为是：:有选可\\s]{0,3}$")

_MISMATCH = gettext_noop(
    'The colour "%(colour)s" does not match the product data, which gives %(given)s.')
_UNGROUNDED = gettext_noop(
    'The colour "%(colour)s" is not in the product data; check that the product comes in it.')

_COLOUR_KEY_RE = re.compile(r"colou?r|颜色|色", re.IGNORECASE)
_SEPARATORS_RE = re.compile(r"[,，、/&+;；]|\s(?:and|or)\s|[和与及或]")


def _data_colour_values(facts: ProductFacts) -> list[str]:
    return [value for key, value in facts.attributes.items()
            if _COLOUR_KEY_RE.search(key) and value.strip()]


def _families_of_value(value: str, zh: bool) -> set[str]:
    """The base colours a colour field gives: per part ("navy and white", "米白、浅灰"), the
    part's last colour word ("sea grey" → grey), both of two joined ones ("blue-black")."""
    found: set[str] = set()
    for part in _SEPARATORS_RE.split(value):
        part = part.strip().lower()
        if not part:
            continue
        if zh or not part.isascii():
            names = _ZH_DATA_COLOURS
            # Longest names first, right to left: the last one is the part's head.
            pos, head = len(part), None
            while pos > 0 and head is None:
                for size in (4, 3, 2, 1):
                    if pos - size >= 0 and part[pos - size:pos] in names:
                        head = names[part[pos - size:pos]]
                        break
                pos -= 1
            found |= head or set()
            continue
        words = [w for w in _EN_WORD_RE.findall(part) if w in _EN_DATA_COLOURS]
        if not words:
            continue
        found |= _EN_DATA_COLOURS[words[-1]]
        if "-" in part and len(words) >= 2:
            found |= _EN_DATA_COLOURS[words[-2]]
    return found


def _given_colours(facts: ProductFacts, blob: str) -> tuple[set[str], bool]:
    """The base colours the data allows and whether it gives a colour at all. A colour field
    whose colours we cannot read ("assorted", "彩虹") allows any: the empty set with ``True``
    is told apart by the caller as "unknown"."""
    values = _data_colour_values(facts)
    families: set[str] = set()
    for value in values:
        families |= _families_of_value(value, facts.is_zh)
    if values and not families:
        return set(), True
    # Colours named anywhere else in the data ("glaze: 粉青釉", "blue-black ink") count too.
    for _start, _end, more in _colour_runs(blob, facts.is_zh):
        families |= more
    return families, bool(values) or bool(families)


def _colour_runs(text: str, zh: bool) -> Iterable[tuple[int, int, frozenset[str]]]:
    """Colour names in ``text`` that are not part of another word's name, joined where they
    are one name ("blue-grey", "sea green" is one word here): ``(start, end, families)``."""
    if zh:
        for m in _ZH_COLOUR_RE.finditer(text):
            name = m.group(0)
            after = text[m.end():m.end() + 4]
            if after.startswith(_ZH_NOT_COLOUR_AFTER_SE if name.endswith("色")
                                else _ZH_NOT_COLOUR_AFTER):
                continue
            yield m.start(), m.end(), _ZH_COLOURS[name]
        return
    run: list[int] | None = None
    families: set[str] = set()
    for m in _EN_COLOUR_RE.finditer(text):
        name = m.group(0).lower()
        after = _next_word(text, m.end())
        before = _previous_word(text, m.start())
        if (after and after[1].lower() in _EN_NOT_COLOUR_AFTER) \
                or (before and before.lower() in _EN_NOT_COLOUR_BEFORE):
            continue
        if run and _JOINED_RE.fullmatch(text, run[1], m.start()):
            run[1] = m.end()
            families |= _EN_COLOURS[name]
            continue
        if run:
            yield run[0], run[1], frozenset(families)
        run, families = [m.start(), m.end()], set(_EN_COLOURS[name])
    if run:
        yield run[0], run[1], frozenset(families)


_JOINED_RE = re.compile(r"\s*-\s*|\s+")
_NEXT_WORD_RE = re.compile(r"(?:-|[ \t]+)([A-Za-z]+)")
_PREVIOUS_WORD_RE = re.compile(r"([A-Za-z]+)(?:-|[ \t]+)$")


def _next_word(text: str, end: int) -> tuple[str, str] | None:
    m = _NEXT_WORD_RE.match(text, end)
    return (m.group(0)[0], m.group(1)) if m else None


def _previous_word(text: str, start: int) -> str | None:
    m = _PREVIOUS_WORD_RE.search(text, max(0, start - _BEFORE_WINDOW), start)
    return m.group(1) if m else None


def _said_of_product_en(text: str, start: int, end: int, words: frozenset[str]) -> bool:
    """Whether the colour at ``start:end`` is said of the product: its own name ("sea
    green"), before the product, a material or a colour word ("green mugs", "green shade"), or
    after "in" or "colour" where the phrase ends with it ("comes in green.")."""
    before = _previous_word(text, start)
    if before and before.lower() in _EN_NAME_MODIFIERS:
        return True
    after = _next_word(text, end)
    if after and (after[1].lower() in _EN_COLOUR_NOUNS or _stem(after[1]) in words):
        return True
    if after is not None and after[1].lower() not in _EN_PHRASE_END:
        return False
    window = text[max(0, start - _BEFORE_WINDOW):start]
    cut = _SENTENCE_END_RE.match(window)
    before_words = window[cut.end() if cut else 0:].lower().split()[-4:]
    skipped = 0  # one word of its own ("in a soft green"), any number of small ones
    for word in reversed(before_words):
        word = word.strip(":,")
        if word in _EN_SAID_AFTER:
            return True
        if word not in _EN_SAID_SKIP:
            skipped += 1
            if skipped > 1:
                return False
    return False


def _check_colours(text: str, facts: ProductFacts, kind: KindSpec, blob: str) -> list[Flag]:
    zh = facts.is_zh
    title = kind.code in ("title", "seo_title")
    given, has_colour = _given_colours(facts, blob)
    if has_colour and not given:
        return []  # a colour field we cannot read: nothing to hold copy to
    words = _product_words(facts.title) if not zh else frozenset()
    flags = []
    given_label = _given_label(facts, blob) if has_colour else ""
    for start, end, families in _colour_runs(text, zh):
        if zh:
            if text[max(0, start - 2):start].endswith(_ZH_NOT_PRODUCT_BEFORE):
                continue
            said = title or has_colour \
                or bool(_ZH_SAID_BEFORE_RE.search(text, max(0, start - 8), start))
        else:
            said = title or _said_of_product_en(text, start, end, words)
        if not said:
            continue
        if has_colour and not families & given:
            flags.append(_flag("colour_mismatch", ERROR, _MISMATCH, start, end,
                               colour=text[start:end], given=given_label))
        elif not has_colour:
            flags.append(_flag("ungrounded_colour", WARNING, _UNGROUNDED, start, end,
                               colour=text[start:end]))
    return flags


def _given_label(facts: ProductFacts, blob: str) -> str:
    values = _data_colour_values(facts) or [blob[start:end] for start, end, _f
                                            in _colour_runs(blob, facts.is_zh)]
    return ("、" if facts.is_zh else ", ").join(dict.fromkeys(values))
