"""Where a product comes from: copy may name a place of origin only if the product's data does.
Small models invent origins ("manufactured in Europe"; "来自广东潮州凤凰山，产自福建省"; "made in
2 Portuguese kitchens"), and a false origin is a false claim about the goods.

Copy that *says the product comes from* a place the data does not give is an error, like an
invented number or brand: "made in", "crafted by", "from Japan", a nationality on the product or
its material ("Portuguese stoneware", "Italian leather"), "来自", "产自", "产地：", "日本进口".
A place merely named ("适合福建人的口味") or a capitalised word after "made in" that is no place
we know ("made in Stoke") is a warning: check it. Styles and kinds named after a country ("French
press", "Japanese-style", "English breakfast tea", "日式", "英式红茶") are not origins. A place is
grounded by any of its names in the data: "Portuguese" by "made in Portugal", "European" by any
European country, "福建" by "福建武夷山"."""

from __future__ import annotations

import re

from ..i18n import gettext_noop
from ..prompts import ProductFacts
from .flags import ERROR, WARNING, Flag, _flag
from .matching import _in_facts, _Taken, _trie
from .names import _MATERIAL_NAMES

# China's provinces, municipalities and regions, and the countries and regions goods in a shop
# are most often said to come from: named anywhere in Chinese copy, a warning.
ZH_PLACES = (
    "北京", "天津", "上海", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江",
    "安徽", "福建", "江西", "山东", "河南", "湖北", "湖南", "广东", "海南", "四川", "贵州",
    "云南", "陕西", "甘肃", "青海", "台湾", "内蒙古", "广西", "西藏", "宁夏", "新疆", "香港",
    "澳门",
    "日本", "韩国", "法国", "意大利", "德国", "英国", "美国", "瑞典", "丹麦", "挪威", "芬兰",
    "西班牙", "葡萄牙", "瑞士", "荷兰", "比利时", "澳大利亚", "新西兰", "泰国", "越南", "印度",
    "斯里兰卡", "欧洲",
)
# Towns and areas goods (tea, porcelain, textiles above all) are sold by: only after a word that
# says the product comes from them, since several also name a kind (祁门红茶, 西湖龙井).
_ZH_ORIGIN_TOWNS = (
    "杭州", "苏州", "福州", "厦门", "景德镇", "宜兴", "潮州", "安溪", "武夷山", "福鼎", "勐海",
    "普洱", "黄山", "祁门", "龙泉", "横县", "德化", "西湖", "桐木关", "凤凰山", "高阳", "南通",
    "大理", "丽江", "西双版纳", "英德", "信阳", "六安", "日照", "湄潭", "蒙顶山", "峨眉山",
)
_ZH_PLACE_RE = re.compile("|".join(sorted(ZH_PLACES, key=len, reverse=True)))
_ZH_ORIGIN_PLACE = "|".join(sorted((*ZH_PLACES, *_ZH_ORIGIN_TOWNS), key=len, reverse=True))
# "来自福建", "产地：福建", "产自福建省", "原产于中国云南" … and "日本进口", "德国制造".
_ZH_ORIGIN_RE = re.compile(
    r"(?:原产地|产地|产区|原产于|原产自|出产于|产自|产于|来自|源自|采自|生产于|制造于|进口自)"
    rf"[：:\s]{{0,2}}(?:[为是在于])?(?:中国)?(?P<place>{_ZH_ORIGIN_PLACE})"
    rf"|(?P<before>{_ZH_ORIGIN_PLACE})(?:[省市县])?(?:原装)?(?:进口|制造|原产|出产)"
)

# English: a country or region under its names (matched in copy) and the names that ground it
# (a region is grounded by its countries: "European" by "made in Portugal").
_EUROPE = ("Portugal", "Spain", "France", "Italy", "Germany", "England", "Britain",
           "United Kingdom", "Scotland", "Wales", "Ireland", "Sweden", "Denmark", "Norway",
           "Finland", "Iceland", "Netherlands", "Holland", "Belgium", "Switzerland", "Austria",
           "Poland", "Lithuania", "Latvia", "Estonia", "Czech Republic", "Czechia", "Greece",
           "Hungary", "Romania", "Slovakia", "Slovenia", "Croatia", "Bulgaria", "Tuscany",
           "Provence", "Bavaria", "Europe", "European")
_NORDIC = ("Sweden", "Denmark", "Norway", "Finland", "Iceland", "Scandinavia", "Scandinavian",
           "Nordic")
_ASIA = ("Japan", "China", "Korea", "India", "Thailand", "Vietnam", "Sri Lanka", "Taiwan",
         "Indonesia", "Malaysia", "Philippines", "Cambodia", "Bangladesh", "Pakistan", "Nepal",
         "Asia", "Asian")
_EN_PLACE_GROUPS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("Portugal", "Portuguese"), ()),
    (("Spain", "Spanish"), ()),
    (("France", "French"), ()),
    (("Italy", "Italian"), ()),
    (("Germany", "German"), ()),
    (("United Kingdom", "UK", "Britain", "British", "England", "English", "Scotland", "Scottish",
      "Wales", "Welsh"), ()),
    (("Ireland", "Irish"), ()),
    (("Sweden", "Swedish"), ()),
    (("Denmark", "Danish"), ()),
    (("Norway", "Norwegian"), ()),
    (("Finland", "Finnish"), ()),
    (("Iceland", "Icelandic"), ()),
    (("Netherlands", "Holland", "Dutch"), ()),
    (("Belgium", "Belgian"), ()),
    (("Switzerland", "Swiss"), ()),
    (("Austria", "Austrian"), ()),
    (("Poland", "Polish"), ()),
    (("Lithuania", "Lithuanian"), ()),
    (("Latvia", "Latvian"), ()),
    (("Estonia", "Estonian"), ()),
    (("Czech Republic", "Czechia", "Czech"), ()),
    (("Greece", "Greek"), ()),
    (("Hungary", "Hungarian"), ()),
    (("Romania", "Romanian"), ()),
    (("Turkey", "Türkiye", "Turkish"), ()),
    (("Tuscany", "Tuscan"), ()),
    (("Provence",), ()),
    (("Bavaria", "Bavarian"), ()),
    (("Europe", "European"), _EUROPE),
    (("Scandinavia", "Scandinavian", "Nordic"), _NORDIC),
    (("Japan", "Japanese", "Kyoto", "Tokyo", "Seki"), ()),
    (("China", "Chinese", "Yunnan", "Fujian", "Anhui", "Zhejiang", "Guangxi", "Guangdong",
      "Hangzhou", "Jingdezhen", "Yixing"), ()),
    (("Korea", "South Korea", "Korean"), ()),
    (("India", "Indian", "Darjeeling", "Assam"), ()),
    (("Sri Lanka", "Sri Lankan", "Ceylon"), ()),
    (("Thailand", "Thai"), ()),
    (("Vietnam", "Viet Nam", "Vietnamese"), ()),
    (("Taiwan", "Taiwanese"), ()),
    (("Indonesia", "Indonesian"), ()),
    (("Malaysia", "Malaysian"), ()),
    (("Philippines", "Filipino"), ()),
    (("Cambodia", "Cambodian"), ()),
    (("Bangladesh", "Bangladeshi"), ()),
    (("Pakistan", "Pakistani"), ()),
    (("Nepal", "Nepalese"), ()),
    (("Asia", "Asian"), _ASIA),
    (("United States", "USA", "America", "American"), ()),
    (("Canada", "Canadian"), ()),
    (("Mexico", "Mexican"), ()),
    (("Brazil", "Brazilian"), ()),
    (("Colombia", "Colombian"), ()),
    (("Peru", "Peruvian"), ()),
    (("Kenya", "Kenyan"), ()),
    (("Ethiopia", "Ethiopian"), ()),
    (("Morocco", "Moroccan"), ()),
    (("Egypt", "Egyptian"), ()),
    (("Australia", "Australian"), ()),
    (("New Zealand",), ()),
)
_EN_PLACE_NAMES = sorted(
    ((name, i) for i, (names, _) in enumerate(_EN_PLACE_GROUPS) for name in names),
    key=lambda entry: len(entry[0]), reverse=True,
)
# One trie of every name, case-sensitive (places are proper nouns), each a whole word; a
# hyphen after it is kept for the caller ("Portuguese-made", "Japanese-style").
_EN_PLACE_RE = re.compile(
    r"(?<![\w-])"
    + _trie(((name, rf"(?![\w'’])(?P<p{k}>)") for k, (name, _) in enumerate(_EN_PLACE_NAMES)),
            r"\s+")
)
# Nationalities that are the name of a style or a kind, not a claim about where the product is
# from: "French press", "Dutch oven", "English breakfast tea", "Chinese tea" (the kind).
_STYLE_AFTER = frozenset(
    "style styled styles inspired influenced design designs designed look aesthetic aesthetics "
    "tradition traditions way manner fashion cuisine cooking recipes recipe".split())
_KIND_PAIRS = frozenset({
    ("French", "press"), ("French", "presses"), ("French", "door"), ("French", "doors"),
    ("French", "toast"), ("French", "fries"), ("French", "roast"), ("French", "seam"),
    ("French", "terry"), ("Dutch", "oven"), ("Dutch", "ovens"), ("Italian", "espresso"),
    ("Italian", "roast"), ("English", "breakfast"), ("English", "muffin"),
    ("English", "muffins"), ("Chinese", "tea"), ("Chinese", "teas"), ("Turkish", "coffee"),
    ("Turkish", "towel"), ("Turkish", "towels"), ("Irish", "coffee"), ("Greek", "yogurt"),
    ("Greek", "yoghurt"), ("Swiss", "army"), ("Swiss", "roll"), ("Japanese", "breakfast"),
    ("Indian", "ink"), ("American", "football"), ("Danish", "pastry"),
})
# Where goods are made: after "made in", a place of making the data does not name is invented
# ("made in 2 Portuguese kitchens").
_SITES = frozenset(
    "kitchen kitchens workshop workshops factory factories studio studios atelier ateliers "
    "pottery potteries mill mills farm farms estate estates plantation plantations garden "
    "gardens bakery bakeries forge forges foundry foundries village villages town towns "
    "valley valleys highlands hills mountains region regions province provinces".split())
# Makers: a nationality on them says where the product is made ("shaped by Italian potters").
_MAKERS = frozenset(
    "potter potters artisan artisans craftsman craftsmen craftspeople maker makers weaver "
    "weavers smith smiths blacksmith blacksmiths bladesmith bladesmiths carpenter carpenters "
    "workshop workshops factory factories mill mills farmer farmers "
    "growers craftsmanship".split())
_EN_ORIGIN_VERB_RE = re.compile(
    r"(?<![\w-])(?i:made|manufactured|produced|crafted|handcrafted|hand-crafted|handmade|"
    r"hand-made|sourced|imported|grown|harvested|woven|hand-woven|forged|fired|printed|shaped|"
    r"thrown|hand-thrown|glazed|assembled|roasted|blended|milled|spun|knitted|sewn|stitched|"
    r"designed|engineered|developed)"
    r"\s+(?i:in|from|by|at)(?![\w'’-])"
)
# "from Japan", "straight from Portugal" without a verb: only a place we know counts.
_EN_FROM_RE = re.compile(r"(?<![\w-])(?i:from)\s+(?:the\s+)?(?=[A-Z])")
# After "made in": up to three small words ("the heart of", "2", "two small") before the place;
# one of these words ends the phrase instead ("made in Portugal and glazed …").
_EN_TOKEN_RE = re.compile(r"\s*(?:(?P<word>[^\W\d_][\w'’-]*)|(?P<number>\d+(?:[.,]\d+)?)|\S)")
_EN_PHRASE_END = frozenset(
    "and or but with for to so that which while then using into as".split())
_EN_FILLER_MAX = 3
_EN_NUMBER_WORDS = frozenset(
    "one two three four five six seven eight nine ten dozen several few many".split())
_SPACE_RE = re.compile(r"\s*")
# A nationality after these words names a model or a comparison, not an origin ("inspired by
# Japanese ceramics", "sturdier than Italian mugs").
_STYLE_BEFORE_RE = re.compile(
    r"(?:^|[^\w])(?i:inspired\s+by|influenced\s+by|style\s+of|like|unlike|than|reminiscent\s+of|"
    r"tradition\s+of|nod\s+to|take\s+on)\s+(?:(?i:the|a|an)\s+)?$")
_STYLE_BEFORE_WINDOW = 40
_AFTER_NAME_RE = re.compile(r"(-|[ \t]+)([A-Za-z]+)")


_INVENTED_ORIGIN = gettext_noop(
    'The origin "%(place)s" is not in the product data: copy may say where the product comes '
    "from only as its data does.")
_UNKNOWN_PLACE = gettext_noop(
    'The place "%(place)s" is not in the product data; check that the product comes from '
    "there.")


def _place_grounded(group: int, blob: str) -> bool:
    names, grounding = _EN_PLACE_GROUPS[group]
    return any(_in_facts(name, blob) for name in (*names, *grounding))


def _stem(word: str) -> str:
    word = word.lower()
    for suffix in ("ies", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def _word_grounded(word: str, blob: str) -> bool:
    return _in_facts(word, blob) or _in_facts(_stem(word), blob)


def _place_at(text: str, pos: int) -> tuple[int, int, int] | None:
    """The known place whose name starts at ``pos``: ``(group, start, end)``."""
    m = _EN_PLACE_RE.match(text, pos)
    if not m:
        return None
    name, group = _EN_PLACE_NAMES[int(m.lastgroup[1:])]
    return group, m.start(), m.end()


def _is_style(text: str, end: int, name: str) -> bool:
    """Whether the nationality ending at ``end`` names a style or a kind ("Japanese-style",
    "French press", "made in the Japanese style")."""
    m = _AFTER_NAME_RE.match(text, end)
    if not m:
        return False
    after = m.group(2).lower()
    return after in _STYLE_AFTER or (name, after) in _KIND_PAIRS


def _next_word(text: str, end: int) -> tuple[str, str, int] | None:
    """The word after ``end``: ``(joiner, word, its end)``, the joiner being "-" or " "."""
    m = _AFTER_NAME_RE.match(text, end)
    return (m.group(1)[0], m.group(2), m.end()) if m else None


def _product_words(title: str) -> frozenset[str]:
    """What a nationality can sit on to say where the product is from: the words of its title
    and any material ("Portuguese mugs", "Portuguese stoneware", "Italian leather")."""
    words = {_stem(w) for w in re.findall(r"[A-Za-z]{3,}", title)}
    words |= {_stem(name) for name, _ in _MATERIAL_NAMES if name.isascii() and " " not in name}
    return frozenset(words - {"set", "pack", "pair", "piece", "size", "edition", "style"})


def _origin_phrase(text: str, pos: int, blob: str, site_blob: str
                   ) -> tuple[int, int, str] | None:
    """What follows "made in" at ``pos``, if it says where the product is from and the data
    does not: ``(start, end, severity)``. The phrase is a few small words, then a number, a
    known place or nationality, or a capitalised word, and a place of making ("2 Portuguese
    kitchens", "the highlands of Yunnan"). A place of making is grounded by ``site_blob``, the
    data without the brand's name ("Nordhavn Kitchen" makes nothing in a kitchen). Reads a
    bounded number of words, so each phrase costs the same whatever the text."""
    number = None  # where a count starts ("2", "two")
    place = None  # (group, start, end) of a known place or nationality
    unknown = None  # (start, end) of a capitalised word that is no place we know
    site = None  # (start, end) of a place of making
    fillers = 0
    at = pos
    for _ in range(_EN_FILLER_MAX + 6):
        known = None if place or unknown else _place_at(text, _SPACE_RE.match(text, at).end())
        if known:
            if _is_style(text, known[2], text[known[1]:known[2]]):
                return None  # "made in the Japanese style"
            place, at = known, known[2]
            continue
        m = _EN_TOKEN_RE.match(text, at)
        if not m or not (m.group("word") or m.group("number")):
            break
        at = m.end()
        word = m.group("word") or ""
        lower = word.lower()
        if lower in _EN_PHRASE_END:
            break
        if m.group("number") or lower in _EN_NUMBER_WORDS:
            if place or unknown or site:
                break
            number = m.start() + len(m.group(0)) - len(m.group(0).lstrip())
        elif lower in _SITES and word == lower and site is None:  # "Nordhavn Kitchen": a name
            site = (m.start("word"), m.end("word"))
        elif site and lower in ("of", "in") and not (place or unknown):
            continue  # "the highlands of Yunnan"
        elif place or unknown or site:
            break  # the phrase has ended: "made in Portugal for daily use"
        elif re.fullmatch(r"[A-Z][a-z]+", word):
            unknown = (m.start("word"), m.end("word"))
        else:
            fillers += 1
            if fillers > _EN_FILLER_MAX:
                break
    site_invented = site is not None and not _word_grounded(text[site[0]:site[1]], site_blob)
    if place and not _place_grounded(place[0], blob):
        start = number if number is not None and number < place[1] else place[1]
        end = site[1] if site and site[0] > place[2] else place[2]
        return start, end, ERROR
    if site_invented:
        starts = [s for s in (number, place and place[1], site[0]) if s is not None]
        return min(starts), max(site[1], place[2] if place else 0), (
            ERROR if number is not None or place else WARNING)
    if unknown and not _word_grounded(text[unknown[0]:unknown[1]], blob):
        return unknown[0], unknown[1], WARNING
    return None


def _check_places_en(text: str, facts: ProductFacts, blob: str) -> list[tuple[int, int, str]]:
    found: list[tuple[int, int, str]] = []
    taken = _Taken()

    def add(start: int, end: int, severity: str) -> None:
        if not taken.overlaps(start, end):
            taken.add(start, end)
            found.append((start, end, severity))

    site_blob = blob.replace(facts.brand, " ") if facts.brand else blob
    for m in _EN_ORIGIN_VERB_RE.finditer(text):
        phrase = _origin_phrase(text, m.end(), blob, site_blob)
        if phrase:
            add(*phrase)
        else:
            taken.add(m.start(), m.end())  # "made in the Japanese style": not an origin
    for m in _EN_FROM_RE.finditer(text):
        known = _place_at(text, m.end())
        if known and not _is_style(text, known[2], text[known[1]:known[2]]) \
                and not _place_grounded(known[0], blob):
            add(known[1], known[2], ERROR)
    words = _product_words(facts.title)
    for m in _EN_PLACE_RE.finditer(text):
        name, group = _EN_PLACE_NAMES[int(m.lastgroup[1:])]
        following = _next_word(text, m.end())
        if following is None or _is_style(text, m.end(), name):
            continue
        if _STYLE_BEFORE_RE.search(text, max(0, m.start() - _STYLE_BEFORE_WINDOW), m.start()):
            continue
        joiner, word, _end = following
        if joiner == "-":
            says_origin = word.lower() in ("made", "crafted", "built", "grown", "sourced")
        else:
            says_origin = _stem(word) in words or word.lower() in _MAKERS
        if says_origin and not _place_grounded(group, blob):
            add(m.start(), m.end(), ERROR)
    return found


def _check_places_zh(text: str, blob: str) -> list[tuple[int, int, str]]:
    found = []
    taken = _Taken()
    for m in _ZH_ORIGIN_RE.finditer(text):
        group = "place" if m.group("place") else "before"
        start, end = m.span(group)
        taken.add(start, end)
        if not _in_facts(m.group(group), blob):
            found.append((start, end, ERROR))
    for m in _ZH_PLACE_RE.finditer(text):
        if not taken.overlaps(*m.span()) and not _in_facts(m.group(0), blob):
            found.append((m.start(), m.end(), WARNING))
    return found


def _check_places(text: str, facts: ProductFacts, blob: str) -> list[Flag]:
    found = (_check_places_zh(text, blob) if facts.is_zh
             else _check_places_en(text, facts, blob))
    return [_flag("ungrounded_origin", severity,
                  _INVENTED_ORIGIN if severity == ERROR else _UNKNOWN_PLACE,
                  start, end, place=text[start:end])
            for start, end, severity in sorted(found)]
