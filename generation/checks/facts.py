"""Copy against the product's facts: numbers, materials and brand names from the data only,
which facts it mentions, a title that names the product, no facts of the example products."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from functools import lru_cache

from ..i18n import gettext_noop
from ..prompts import KindSpec, ProductFacts, facts_text
from .flags import ERROR, INFO, WARNING, Flag, _flag
from .matching import _CJK_RE, _in_facts, _is_wordlike, _Taken, _trie

_UNIT_ALIASES = {
    "ml": "ml", "milliliter": "ml", "milliliters": "ml", "millilitre": "ml", "毫升": "ml",
    "l": "l", "liter": "l", "liters": "l", "litre": "l", "litres": "l", "升": "l",
    "g": "g", "gram": "g", "grams": "g", "克": "g",
    "kg": "kg", "kilogram": "kg", "kilograms": "kg", "千克": "kg", "公斤": "kg",
    "mg": "mg", "oz": "oz", "lb": "lb", "lbs": "lb", "斤": "jin",
    "mm": "mm", "毫米": "mm", "cm": "cm", "厘米": "cm", "m": "m", "米": "m",
    "inch": "in", "inches": "in", "英寸": "in", "寸": "in",
    "w": "w", "瓦": "w", "v": "v", "伏": "v", "mah": "mah", "毫安时": "mah",
    "gb": "gb", "tb": "tb", "hz": "hz", "ghz": "ghz",
    "year": "year", "years": "year", "yr": "year", "yrs": "year", "年": "year",
    "month": "month", "months": "month", "个月": "month",
    "day": "day", "days": "day", "天": "day",
    "hour": "hour", "hours": "hour", "hr": "hour", "hrs": "hour", "h": "hour", "小时": "hour",
    "minute": "minute", "minutes": "minute", "min": "minute", "mins": "minute", "分钟": "minute",
    "pcs": "pcs", "pieces": "pcs", "piece": "pcs", "pack": "pack", "件": "pcs", "片": "pcs",
    "只": "pcs", "个": "pcs", "%": "%", "％": "%", "°c": "°c", "℃": "°c", "°f": "°f",
}



_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?"



_LATIN_UNITS = sorted((u for u in _UNIT_ALIASES if u.isascii() and u.isalpha()), key=len,
                      reverse=True)



_OTHER_UNITS = sorted((u for u in _UNIT_ALIASES if not (u.isascii() and u.isalpha())), key=len,
                      reverse=True)



_QUANTITY_RE = re.compile(
    rf"(?<![A-Za-z0-9.,/])(?P<num>{_NUMBER})(?:\s?-\s?|\s?)"
    rf"(?:(?P<unit>{'|'.join(map(re.escape, _LATIN_UNITS))})(?![A-Za-z])"
    rf"|(?P<unit2>{'|'.join(map(re.escape, _OTHER_UNITS))}))",
    re.IGNORECASE,
)



_RATIO_RE = re.compile(r"(?<![A-Za-z0-9./])\d+(?:\.\d+)?/\d+(?:\.\d+)?(?![A-Za-z0-9/])")



def _canonical_number(number: str) -> str:
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", number):
        number = number.replace(",", "")
    number = number.replace(",", ".")
    if "." in number:
        number = number.rstrip("0").rstrip(".")
    return number.lstrip("0") or "0"



def _numbers_in(blob: str) -> set[str]:
    return {_canonical_number(n) for n in re.findall(_NUMBER, blob)}



_UNGROUNDED_NUMBER = gettext_noop(
    '"%(found)s" does not appear in the product data; check that it is a fact.')



def _quantity_key(m: re.Match[str]) -> tuple[str, str]:
    unit = (m.group("unit") or m.group("unit2") or "").lower()
    return _canonical_number(m.group("num")), _UNIT_ALIASES.get(unit, unit)



@lru_cache(maxsize=256)
def _known_quantities(blob: str) -> tuple[frozenset[tuple[str, str]], frozenset[str]]:
    """The facts' (number, unit) pairs, and the numbers they state without a unit."""
    pairs, spans = set(), set()
    for m in _QUANTITY_RE.finditer(blob):
        pairs.add(_quantity_key(m))
        spans.add(m.span("num"))
    bare = {_canonical_number(m.group(0)) for m in re.finditer(_NUMBER, blob)
            if m.span() not in spans}
    return frozenset(pairs), frozenset(bare)



def _check_grounding(text: str, blob: str) -> list[Flag]:
    """Numbers the product data does not state are invented: errors. A number counts when it
    states a fact: with a unit ("750 ml", "2-year", "50%", "12小时") or as a ratio ("18/10").
    A number with a unit is grounded by the same number with the same unit ("2 years" by
    "warranty: 2 years", not "2 hours"), or by the number stated without any unit.
    Bare numbers are left alone: in copy they count things, name years or label, and an editor's
    "3 ways to brew" must stay approvable."""
    flags = []
    known = _known_quantities(blob)
    blob_compact = re.sub(r"\s+", "", blob)
    for m in _QUANTITY_RE.finditer(text):
        if _quantity_key(m) in known[0] or _canonical_number(m.group("num")) in known[1]:
            continue
        flags.append(_flag("ungrounded_number", ERROR, _UNGROUNDED_NUMBER,
                           m.start(), m.end(), found=m.group(0)))
    for m in _RATIO_RE.finditer(text):
        if m.group(0) in blob_compact:
            continue
        flags.append(_flag("ungrounded_number", ERROR, _UNGROUNDED_NUMBER,
                           m.start(), m.end(), found=m.group(0)))
    return flags



# Materials: each group is one material under its English and Chinese names (a group is
# grounded when any of its names is in the product data, so "aluminum" matches "aluminium" and
# "不锈钢" matches "stainless steel"). Longer names win over the names inside them
# ("stainless steel" over "steel", "真丝" over "丝"). Chinese single characters (棉, 麻, 丝, 铁,
# 金 …) are left out: they hide inside unrelated words (麻烦, 丝滑, 铁观音, 金色).
_MATERIAL_GROUPS: tuple[tuple[str, ...], ...] = (
    ("cotton", "纯棉", "全棉", "棉质", "棉布", "长绒棉"),
    ("linen", "flax", "亚麻"),
    ("leather", "full-grain leather", "genuine leather", "真皮", "皮革", "牛皮", "羊皮"),
    ("faux leather", "vegan leather", "pu leather", "人造革", "pu皮"),
    ("suede", "麂皮"),
    ("stainless steel", "不锈钢"),
    ("carbon steel", "碳钢"),
    ("steel", "钢材"),
    ("cast iron", "铸铁"),
    ("wrought iron", "熟铁"),
    ("aluminium", "aluminum", "铝合金", "铝制"),
    ("titanium", "钛合金", "纯钛"),
    ("copper", "纯铜", "紫铜"),
    ("brass", "黄铜"),
    ("bamboo", "竹制", "竹子", "竹纤维", "竹木"),
    ("silk", "mulberry silk", "真丝", "蚕丝", "桑蚕丝"),
    ("wool", "woollen", "woolen", "merino", "羊毛", "美利奴"),
    ("cashmere", "羊绒"),
    ("ceramic", "ceramics", "陶瓷"),
    ("porcelain", "瓷器", "骨瓷", "白瓷", "青瓷"),
    ("stoneware", "粗陶", "炻器"),
    ("glass", "borosilicate glass", "玻璃"),
    ("crystal", "水晶"),
    ("nylon", "尼龙", "锦纶"),
    ("polyester", "涤纶", "聚酯纤维"),
    ("elastane", "spandex", "lycra", "氨纶"),
    ("acrylic", "亚克力", "腈纶"),
    ("plastic", "塑料"),
    ("silicone", "硅胶"),
    ("rubber", "橡胶"),
    ("wood", "wooden", "solid wood", "木质", "实木", "木制"),
    ("oak", "橡木"),
    ("walnut", "胡桃木"),
    ("beech", "榉木"),
    ("teak", "柚木"),
    ("marble", "大理石"),
    ("granite", "花岗岩"),
    ("cork", "软木"),
    ("canvas", "帆布"),
    ("denim", "牛仔布"),
    ("velvet", "丝绒", "天鹅绒"),
    ("fleece", "抓绒"),
    ("down", "duck down", "goose down", "羽绒", "鸭绒", "鹅绒"),
    ("lyocell", "tencel", "天丝"),
    ("modal", "莫代尔"),
    ("carbon fibre", "carbon fiber", "碳纤维"),
    ("hemp", "汉麻", "大麻纤维"),
    ("jade", "玉石"),
    ("sterling silver", "925 silver", "纯银", "925银"),
    ("solid gold", "纯金", "足金"),
)



# English names that are also everyday words count only in these forms ("down" the stairs,
# "glass" of water are not materials; "down-filled", "goose down" are).
_MATERIAL_CONTEXT = {"down": r"(?<!\w)down(?=[\s-](?:fill|filled|jacket|duvet|insulat))"}



def _material_pattern(name: str) -> str:
    if name in _MATERIAL_CONTEXT:
        return _MATERIAL_CONTEXT[name]
    body = r"[\s-]+".join(re.escape(part) for part in name.split())
    return rf"(?<![\w]){body}(?![\w])" if _is_wordlike(name) else body



_MATERIAL_NAMES = sorted(
    ((name, group) for group in _MATERIAL_GROUPS for name in group),
    key=lambda entry: len(entry[0]),
    reverse=True,
)



def _material_tail(name: str, i: int) -> str:
    """What must follow a material's name in the trie, then the group naming it."""
    if name == "down":
        return rf"(?=[\s-](?:fill|filled|jacket|duvet|insulat))(?P<m{i}>)"
    return rf"(?![\w])(?P<m{i}>)" if _is_wordlike(name) else f"(?P<m{i}>)"



# Latin names start a word; Chinese ones (and "pu皮", "925银") match anywhere.
_MATERIAL_RE = re.compile(
    r"(?<![\w])"
    + _trie(((name.lower(), _material_tail(name, i))
             for i, (name, _) in enumerate(_MATERIAL_NAMES) if _is_wordlike(name)), r"[\s-]+")
    + "|"
    + _trie(((name.lower(), _material_tail(name, i))
             for i, (name, _) in enumerate(_MATERIAL_NAMES) if not _is_wordlike(name)),
            r"[\s-]+"),
    re.IGNORECASE,
)



@lru_cache(maxsize=1024)
def _group_in(names: tuple[str, ...], blob: str) -> bool:
    return any(re.search(_material_pattern(name), blob, re.IGNORECASE) for name in names)



def _check_materials(text: str, blob: str) -> list[Flag]:
    flags = []
    for m in _MATERIAL_RE.finditer(text):
        name, group = _MATERIAL_NAMES[int(m.lastgroup[1:])]
        if _group_in(group, blob):
            continue
        # "steel" is grounded by "stainless steel" in the facts, but not the other way round.
        if _in_facts(m.group(0), blob):
            continue
        flags.append(_flag(
            "ungrounded_material", WARNING,
            gettext_noop('The material "%(found)s" is not in the product data; check that the '
                         "product is made of it."),
            m.start(), m.end(), found=m.group(0),
        ))
    return flags



# Brands and product lines a small model likes to invent. Latin names match case-sensitively
# (they are proper nouns: "Apple", not "apple"); a family counts as grounded when any of its
# names is in the product data ("Apple" for an "iPhone 15" case).
_BRAND_FAMILIES: tuple[tuple[str, ...], ...] = (
    ("Apple", "iPhone", "iPad", "iPod", "MacBook", "iMac", "AirPods", "Apple Watch", "MagSafe",
     "Lightning", "苹果手机", "苹果公司", "苹果电脑"),
    ("Samsung", "Galaxy", "三星"),
    ("Google", "Pixel", "谷歌"),
    ("Huawei", "华为", "Mate", "HarmonyOS", "鸿蒙"),
    ("Xiaomi", "Redmi", "小米手机", "小米公司", "红米"),
    ("OPPO", "Oppo", "OnePlus", "vivo", "Vivo", "Honor", "Motorola", "Nokia"),
    ("Sony", "PlayStation", "索尼"),
    ("Microsoft", "Xbox", "Surface", "微软"),
    ("Nintendo", "任天堂"),
    ("Lenovo", "ThinkPad", "联想"),
    ("Dell", "Asus", "Acer", "HP", "LG", "Panasonic", "松下", "Philips", "飞利浦", "Bosch",
     "博世", "Siemens", "西门子", "Haier", "海尔", "Gree", "格力", "Midea"),
    ("Dyson", "戴森"),
    ("Nike", "耐克", "Air Jordan", "Air Max"),
    ("Adidas", "adidas", "阿迪达斯"),
    ("Puma", "New Balance", "Reebok", "Under Armour", "Lululemon", "Uniqlo", "优衣库", "Zara",
     "H&M", "Patagonia", "The North Face", "北面", "Arc'teryx", "始祖鸟"),
    ("Gucci", "Prada", "Chanel", "香奈儿", "Louis Vuitton", "Hermès", "Hermes", "爱马仕",
     "Rolex", "劳力士"),
    ("IKEA", "宜家", "Tefal", "Le Creuset", "Zwilling", "双立人", "WMF", "Yeti", "YETI",
     "Hydro Flask", "Thermos", "膳魔师", "Nespresso", "Starbucks", "星巴克"),
    ("Canon", "佳能", "Nikon", "尼康", "GoPro", "DJI", "大疆", "Bose", "JBL", "Beats"),
    ("Lancôme", "Lancome", "兰蔻", "Estée Lauder", "Estee Lauder", "雅诗兰黛", "L'Oréal",
     "L'Oreal", "欧莱雅", "Shiseido", "资生堂", "SK-II", "La Mer", "海蓝之谜", "Clinique",
     "倩碧"),
    ("Amazon", "Kindle", "亚马逊", "Tesla", "特斯拉", "Lego", "LEGO", "乐高"),
)



_MODEL_SUFFIX = r"(?:\s(?:Pro|Max|Ultra|Plus|Mini|mini|Lite|SE|FE|Air|Neo|Edge|Fold|Flip))*"



_MODEL_NUMBER = r"(?:\s?(?:[A-Z]{1,3}\s?)?\d{1,5}[A-Za-z]{0,2}(?![\w.,]\d))"



_BRAND_NAMES = sorted(
    ((name, family) for family in _BRAND_FAMILIES for name in family),
    key=lambda entry: len(entry[0]),
    reverse=True,
)



# Lines that are also plain words ("Surface", "Mate", "Lightning", "Honor") count only with a
# model number after them.
_NEEDS_NUMBER = {"Mate", "Surface", "Lightning", "Honor", "Galaxy", "Pixel", "Edge", "HP",
                 "LG", "Beats", "Puma", "Yeti", "Thermos"}



def _brand_tail(name: str, i: int) -> str:
    """What must follow a brand's name in the trie (Latin names: a word's end, then a model
    number and suffixes; ordinary words need the number), then the group naming it."""
    if _CJK_RE.search(name):
        return f"(?P<b{i}>)"
    number = _MODEL_NUMBER if name in _NEEDS_NUMBER else f"{_MODEL_NUMBER}?"
    return rf"(?![\w'’-])(?:{number}{_MODEL_SUFFIX})(?P<b{i}>)"



# Latin names start a word (not after a hyphen); Chinese ones match anywhere.
_BRAND_RE = re.compile(
    r"(?<![\w-])"
    + _trie(((name, _brand_tail(name, i)) for i, (name, _) in enumerate(_BRAND_NAMES)
             if not _CJK_RE.search(name)), r"\s+")
    + "|"
    + _trie(((name, _brand_tail(name, i)) for i, (name, _) in enumerate(_BRAND_NAMES)
             if _CJK_RE.search(name)), r"\s+")
)



# Model codes that mix capitals and digits: "WH-1000XM5", "S23", "X200", "A2894".
_MODEL_CODE_RE = re.compile(
    r"(?<![\w./-])(?=[A-Za-z0-9-]*\d)(?=[A-Za-z0-9-]*[A-Z])[A-Z][A-Za-z]*-?\d[A-Za-z0-9]*"
    r"(?:-[A-Za-z0-9]+)*(?![\w/+])"
)



@lru_cache(maxsize=4096)
def _name_in(name: str, blob: str) -> bool:
    """``name`` occurs in ``blob`` as whole words/numbers, ignoring case and spacing or hyphens
    between its parts ("iPhone 15" ~ "iphone15", "WH-1000XM5" ~ "WH1000XM5")."""
    name = unicodedata.normalize("NFKC", name)
    if len(name) > 200:  # no model name is this long: a plain search, not a huge pattern
        return name.lower() in unicodedata.normalize("NFKC", blob).lower()
    if _CJK_RE.search(name):
        return name.lower() in unicodedata.normalize("NFKC", blob).lower()
    parts = re.findall(r"[^\W\d_]+|\d+|[^\w\s-]", name)
    if not parts:
        return False
    body = r"[\s\-_]*".join(re.escape(part) for part in parts)
    pattern = rf"(?<![^\W_]){body}(?![^\W_])"
    return re.search(pattern, unicodedata.normalize("NFKC", blob), re.IGNORECASE) is not None



def _check_brands(text: str, blob: str) -> list[Flag]:
    flags: list[Flag] = []
    taken = _Taken()
    for m in _BRAND_RE.finditer(text):
        name, family = _BRAND_NAMES[int(m.lastgroup[1:])]
        found = m.group(0).strip()
        taken.add(*m.span())
        if _name_in(found, blob):
            continue  # "iPhone 15" for a case whose facts say "iPhone 15"
        family_grounded = any(_name_in(member, blob) for member in family)
        if found != name and family_grounded:
            flags.append(_flag(
                "ungrounded_model", ERROR,
                gettext_noop('The model "%(found)s" is not in the product data; the product data '
                             "names a different model."),
                m.start(), m.end(), found=found,
            ))
        elif not family_grounded:
            flags.append(_flag(
                "ungrounded_brand", ERROR,
                gettext_noop('The brand or product name "%(found)s" is not in the product data; '
                             "do not name other brands or models the product does not state."),
                m.start(), m.end(), found=found,
            ))
    for m in _MODEL_CODE_RE.finditer(text):
        if taken.overlaps(*m.span()):
            continue
        code = m.group(0)
        if _QUANTITY_RE.fullmatch(code) or re.fullmatch(r"\d+(?:st|nd|rd|th)", code):
            continue
        if _name_in(code, blob):
            continue
        flags.append(_flag(
            "ungrounded_model", WARNING,
            gettext_noop('The model or part code "%(found)s" is not in the product data; check '
                         "that it is a fact."),
            m.start(), m.end(), found=code,
        ))
    return flags



_STOPWORDS = frozenset(
    "a an and are as at be by for from in into is it its of on or the to up with per one two "
    "only each all any can also not no yes".split()
)



# Kinds of copy that should carry the product's facts (coverage is a warning when they don't).
KINDS_WITH_FACTS = frozenset({"description", "bullets", "long_description"})



def _fact_tokens(value: str) -> list[str]:
    value = unicodedata.normalize("NFKC", value).lower()
    tokens = [_canonical_number(n) for n in re.findall(_NUMBER, value)]
    for word in re.findall(r"[a-z][a-z'’-]*[a-z]|[a-z]", value):
        for part in re.split(r"[-'’]", word):
            if len(part) >= 3 and part not in _STOPWORDS:
                tokens.append(part)
    cjk = "".join(c if _CJK_RE.match(c) else " " for c in value).split()
    for run in cjk:
        tokens.extend(run[i : i + 2] for i in range(max(1, len(run) - 1)))
    return tokens



def _stem(word: str) -> str:
    for suffix in ("ies", "es", "s", "ed", "ing"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word



def _text_index(text: str) -> tuple[set[str], str]:
    normalized = unicodedata.normalize("NFKC", text).lower()
    words = {_stem(w) for w in re.findall(r"[a-z]+", normalized)}
    words |= _numbers_in(normalized)
    return words, normalized



def _mentions(value: str, words: set[str], normalized: str) -> bool:
    tokens = _fact_tokens(value)
    if not tokens:
        return True  # nothing to look for (e.g. punctuation only)
    if unicodedata.normalize("NFKC", value).lower().strip() in normalized:
        return True
    hits = 0
    for token in tokens:
        if _CJK_RE.match(token[0]):
            hits += token in normalized
        else:
            hits += token in words or _stem(token) in words
    return hits * 2 >= len(tokens)



def coverage(text: str, facts: ProductFacts) -> tuple[list[str], list[str]]:
    """Which key product facts (attribute values) ``text`` mentions and which it omits.

    Each fact is given as ``"name: value"`` in attribute order. A value counts as mentioned
    when the text contains it, or at least half of its words, numbers and (Chinese) character
    pairs; matching ignores case, plurals and spacing, not synonyms.
    """
    words, normalized = _text_index(text or "")
    mentioned: list[str] = []
    omitted: list[str] = []
    for key, value in facts.attributes.items():
        if not value.strip():
            continue
        label = f"{key}: {value}"
        (mentioned if _mentions(value, words, normalized) else omitted).append(label)
    return mentioned, omitted



def _check_coverage(text: str, facts: ProductFacts, kind: KindSpec) -> list[Flag]:
    mentioned, omitted = coverage(text, facts)
    if not omitted:
        return []
    total = len(mentioned) + len(omitted)
    severity = (
        WARNING
        if kind.code in KINDS_WITH_FACTS and len(omitted) * 2 > total
        else INFO
    )
    return [_flag(
        "coverage", severity,
        gettext_noop("The text mentions %(mentioned)d of %(total)d product facts; not "
                     "mentioned: %(omitted)s."),
        mentioned=len(mentioned), total=total, omitted="; ".join(omitted),
    )]



# Title words too generic to say which product a title is about.
_GENERIC_TITLE_WORDS = frozenset(
    "pack pair size colour color style edition series model type piece pieces".split()
)



_WORD_RE = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")



def _title_words(title: str) -> list[str]:
    """The Latin words (3+ letters, no stopwords) and CJK runs (2+ characters) a title names
    its product with."""
    title = unicodedata.normalize("NFKC", title)
    words = []
    for word in _WORD_RE.findall(title):
        if _CJK_RE.search(word):
            # A unit (克 of "250克", 毫升) or a lone particle does not name anything.
            words.extend(run for run in "".join(c if _CJK_RE.match(c) else " "
                                                for c in word).split()
                         if len(run) >= 2 and run not in _UNIT_ALIASES)
        elif len(word) >= 3 and word.lower() not in _STOPWORDS | _GENERIC_TITLE_WORDS:
            words.append(word)
    return words



def _example_phrases(example: ProductFacts) -> Iterator[tuple[str, str]]:
    """``(phrase, what)`` for what names the example's product: its brand, its title's words
    ("title") and its attribute values ("value")."""
    if example.brand:
        yield example.brand, "brand"
    brand = unicodedata.normalize("NFKC", example.brand or "").lower()
    for word in _title_words(example.title):
        if word.lower() != brand and (len(word) >= 4 or _CJK_RE.match(word)):
            yield word, "title"
    for value in example.attributes.values():
        value = value.strip()
        if _WORD_RE.search(value) and len(value) >= (2 if _CJK_RE.search(value) else 4):
            yield value, "value"



def _phrase_span(phrase: str, text: str, *, as_name: bool = False) -> tuple[int, int] | None:
    """Where ``phrase`` occurs in ``text`` as whole words (a plural ending allowed; CJK
    anywhere). ``as_name``: only as written in the title, capitalised, and not at the start of
    a sentence, where any word is capitalised ("Kettle" as a name, not "the kettle")."""
    if _CJK_RE.search(phrase):
        at = text.find(phrase)
        return (at, at + len(phrase)) if at >= 0 else None
    parts = [re.escape(part) for part in re.findall(r"[^\W_]+", phrase)]
    if not parts or len(parts) > 12:
        return None
    pattern = r"(?<![^\W_])" + r"[\s\-_]*".join(parts) + r"(?:e?s)?(?![^\W_])"
    if not as_name:
        m = re.search(pattern, text, re.IGNORECASE)
        return m.span() if m else None
    if not phrase[:1].isupper():
        return None
    for m in re.finditer(pattern, text):
        before = text[:m.start()].rstrip()
        if before and before[-1] not in ".!?:;\"'“‘(":
            return m.span()
    return None



def _single_word(value: str) -> bool:
    if _CJK_RE.search(value):
        return len(value) < 3
    return len(_WORD_RE.findall(value)) < 2



def _check_example_facts(text: str, facts: ProductFacts, kind: KindSpec,
                         examples: Iterable[ProductFacts]) -> list[Flag]:
    """A draft that names another product's brand, name or attribute values, taken from the
    examples its prompt showed ("Fjell Electric Kettle" as the title of a frying pan). What this
    product's own facts also say is left alone. In copy other than titles a title word counts
    only used as a name ("the Kettle range", not "a kettle"), and a one-word value ("brushed",
    "宽松") is a warning: ordinary words an editor may use of this product too."""
    blob = facts_text(facts)
    words, normalized = _text_index(blob)
    titles = kind.code in ("title", "seo_title")
    flags: list[Flag] = []
    seen: set[str] = set()
    taken = _Taken()
    for example in examples:
        for phrase, what in _example_phrases(example):
            key = phrase.lower()
            if key in seen or _mentions(phrase, words, normalized):
                continue
            seen.add(key)
            span = _phrase_span(phrase, text, as_name=what == "title" and not titles)
            if span is None or taken.overlaps(*span):
                continue
            taken.add(*span)
            weak = what == "value" and _single_word(phrase)
            flags.append(_flag(
                "example_fact", WARNING if weak else ERROR,
                gettext_noop('"%(found)s" is a fact of another product (%(example)s) from the '
                             "examples, not of this one."),
                span[0], span[1], found=text[span[0]:span[1]], example=example.title,
            ))
    return flags



def _check_title_subject(text: str, facts: ProductFacts, kind: KindSpec) -> list[Flag]:
    """A title must say what the product is: at least one word of the product's own title
    (beyond its brand), or for Chinese a pair of its characters."""
    if kind.code not in ("title", "seo_title"):
        return []
    brand = unicodedata.normalize("NFKC", facts.brand or "").lower()
    subject = [w for w in _title_words(facts.title) if w.lower() != brand]
    if not subject:
        return []
    words, normalized = _text_index(text)
    for word in subject:
        if _CJK_RE.match(word):
            pairs = [word[i:i + 2] for i in range(max(1, len(word) - 1))]
            if any(pair in normalized for pair in pairs):
                return []
        elif _stem(word.lower()) in words or word.lower() in words:
            return []
    return [_flag(
        "off_subject", WARNING,
        gettext_noop('The title does not name the product: it has none of the words of '
                     '"%(title)s".'),
        title=facts.title,
    )]

