"""Materials and brand names in copy must come from the product data: the two kinds of fact a
small model invents most ("stainless steel" for a glass kettle, "for iPhone 15" on a plain
case)."""

from __future__ import annotations

import re
import unicodedata

from ..i18n import gettext_noop
from .flags import ERROR, WARNING, Flag, _flag
from .matching import _CJK_RE, _in_facts, _is_wordlike, _Taken, _trie
from .quantities import _QUANTITY_RE

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



def _group_in(names: tuple[str, ...], blob: str) -> bool:
    return any(re.search(_material_pattern(name), blob, re.IGNORECASE) for name in names)



def _check_materials(text: str, blob: str, title: str = "") -> list[Flag]:
    """A material the data does not give is a warning: copy may name a part's material or
    another product's ("unlike plastic bottles"), and data that names no material may just leave
    it out. Said to be what the product is made of when the data gives another material ("Made
    from silicon, this plastic mug" for a titanium mug, "采用塑料材质") it is a wrong fact: an
    error."""
    product_words = {w.lower() for w in re.findall(r"[^\W\d_]{3,}", title)}
    data_names_a_material = _MATERIAL_RE.search(blob) is not None
    flags = []
    for m in _MATERIAL_RE.finditer(text):
        name, group = _MATERIAL_NAMES[int(m.lastgroup[1:])]
        if _group_in(group, blob):
            continue
        # "steel" is grounded by "stainless steel" in the facts, but not the other way round.
        if _in_facts(m.group(0), blob):
            continue
        if data_names_a_material and _said_made_of(text, m.start(), m.end(), product_words):
            flags.append(_flag(
                "ungrounded_material", ERROR,
                gettext_noop('The text says the product is made of "%(found)s"; the product '
                             "data gives another material."),
                m.start(), m.end(), found=m.group(0),
            ))
            continue
        flags.append(_flag(
            "ungrounded_material", WARNING,
            gettext_noop('The material "%(found)s" is not in the product data; check that the '
                         "product is made of it."),
            m.start(), m.end(), found=m.group(0),
        ))
    return flags


# How far back in its clause a material's lead-in is read ("made entirely from", "采用").
_LEAD_IN_REACH = 30
_CLAUSE_START_RE = re.compile(r"[.;:!?。；：！？，,\n]")
_MADE_OF_EN_RE = re.compile(
    r"\b(?:made|crafted|constructed|built|cast|forged|woven|moulded|molded)\s+(?:\w+\s+)?"
    r"(?:from|of|in|out\s+of)\s+(?:\w+\s+)?$", re.IGNORECASE)
_MADE_OF_ZH_RE = re.compile(r"(?:采用|选用|由|材质为|材质是|材料为|用)\s*$")
_MADE_OF_ZH_AFTER_RE = re.compile(r"(?:材质|材料|制成|制作|打造|做成)")
# Words that make a material someone else's: "no plastic taste", "unlike plastic bottles",
# "不含塑料".
_OTHER_THAN_RE = re.compile(
    r"\b(?:no|not|unlike|than|instead|without|never|nor|or|replaces?|other|free)\b"
    r"|不|无|非|没有|替代|代替", re.IGNORECASE)


def _said_made_of(text: str, start: int, end: int, product_words: set[str]) -> bool:
    before = text[max(0, start - _LEAD_IN_REACH):start]
    clause_starts = list(_CLAUSE_START_RE.finditer(before))
    if clause_starts:
        before = before[clause_starts[-1].end():]
    after = text[end:end + 20]
    if _OTHER_THAN_RE.search(before) or after.startswith(("-free", " free", "-like", "-look")):
        return False
    if _MADE_OF_EN_RE.search(before) or _MADE_OF_ZH_RE.search(before):
        return True
    if _MADE_OF_ZH_AFTER_RE.match(after):
        return True
    # The product named right after the material, or after one more word ("an aluminum travel
    # mug" of the titanium camp mug).
    following = re.match(r"\s+([^\W\d_]+)(?:\s+([^\W\d_]+))?", after)
    product = {w.rstrip("s") for w in product_words}
    return bool(following) and any(word.lower().rstrip("s") in product
                                   for word in following.groups() if word)



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

