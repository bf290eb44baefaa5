"""Numbers and quantities in copy must come from the product data ("500 ml", "1/2", "1,200")."""

from __future__ import annotations

import re

from ..i18n import gettext_noop
from .flags import ERROR, Flag, _flag

_UNIT_ALIASES = {
    "ml": "ml", "milliliter": "ml", "milliliters": "ml", "millilitre": "ml", "毫升": "ml",
    "l": "l", "liter": "l", "liters": "l", "litre": "l", "litres": "l", "升": "l",
    "g": "g", "gram": "g", "grams": "g", "克": "g",
    "kg": "kg", "kilogram": "kg", "kilograms": "kg", "千克": "kg", "公斤": "kg",
    "tonne": "t", "tonnes": "t", "吨": "t",  # not "t": "3 T-shirts"
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
    "person": "person", "persons": "person", "people": "person",
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



_BARE_NUMBER_RE = re.compile(
    rf"(?<![A-Za-z\d.,])(?:{_NUMBER})(?![\d.,]?\d|(?:-|\s)?[A-Za-z])")


def _known_quantities(blob: str) -> tuple[frozenset[tuple[str, str]], frozenset[str]]:
    """The facts' (number, unit) pairs, and the numbers they state without a unit. A number
    before a word ("3-season", "20D", "3 cards") counts that word's things, so it grounds no
    other unit: a "3-season" sleeping bag does not "sleep three people", a wallet for "3 cards"
    does not weigh "3 kg"."""
    pairs, spans = set(), set()
    for m in _QUANTITY_RE.finditer(blob):
        pairs.add(_quantity_key(m))
        spans.add(m.span("num"))
    bare = {_canonical_number(m.group(0)) for m in _BARE_NUMBER_RE.finditer(blob)
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



# Numbers written out: "weighs just under two kilograms" states a fact as much as "2 kg". "One"
# is left out ("one day", "one hour at a time" are idioms, not facts), as are compounds.
_SPELLED_EN = {"two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
               "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
               "fifteen": "15", "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50",
               "hundred": "100"}
_SPELLED_ZH = {"两": "2", "二": "2", "三": "3", "四": "4", "五": "5", "六": "6", "七": "7",
               "八": "8", "九": "9", "十": "10"}
_ZH_NUMERALS = "零一二两三四五六七八九十百千万"
_SPELLED_RE = re.compile(
    rf"(?<![A-Za-z-])(?P<num>{'|'.join(_SPELLED_EN)})[\s-]"
    rf"(?P<unit>{'|'.join(u for u in _LATIN_UNITS if len(u) > 2)})(?![A-Za-z])"
    rf"|(?<![{_ZH_NUMERALS}])(?P<zh>[{''.join(_SPELLED_ZH)}])"
    r"(?P<unit2>千克|公斤|毫升|厘米|毫米|小时|分钟|个月|升|克|年)",
    re.IGNORECASE,
)


def _check_spelled_numbers(text: str, blob: str) -> list[Flag]:
    """Quantities with the number in words are held to the facts like those in digits."""
    known_pairs, known_bare = _known_quantities(blob)
    flags = []
    for m in _SPELLED_RE.finditer(text):
        number = (_SPELLED_EN[m.group("num").lower()] if m.group("num")
                  else _SPELLED_ZH[m.group("zh")])
        unit = (m.group("unit") or m.group("unit2")).lower()
        if (number, _UNIT_ALIASES[unit]) in known_pairs or number in known_bare:
            continue
        flags.append(_flag("ungrounded_number", ERROR, _UNGROUNDED_NUMBER,
                           m.start(), m.end(), found=m.group(0)))
    return flags


# What a quantity measures, told by the words just before it in copy ("weighs 1.6 kg", "容量
# 2.6千克") and by the attribute that states it in the data ("weight: 1.6 kg", "重量").
_MEASURE_CUES = (
    ("weight", re.compile(r"\bweigh(?:s|ing|t|ts)?\b|重量|净重|自重|仅重|重约|重达", re.I)),
    ("capacity", re.compile(r"\b(?:capacity|volume)\b|容量|容积", re.I)),
    ("length", re.compile(r"\b(?:length|diameter|width|height)\b|长度|直径|口径|宽度|高度", re.I)),
    ("packed size", re.compile(r"\bpack(?:s|ed)?\s+(?:down\s+)?(?:to|into)\b|\bpacked\s+size\b|"
                               r"收纳尺寸", re.I)),
)
# A cue names the quantity that follows it in the same clause, at most this far before it.
_CUE_REACH = 24
_CLAUSE_END_RE = re.compile(r"[,.;:!?，。；：！？\n]\s|[，。；！？\n]")


def _measure(words: str) -> str | None:
    found = [(m.end(), name) for name, cue in _MEASURE_CUES for m in cue.finditer(words)]
    return max(found)[1] if found else None


def _stated_measures(attributes: dict[str, str]) -> dict[tuple[str, str], dict[str, str]]:
    """For each quantity the data states under a key that says what it measures: measure ->
    the key as written."""
    stated: dict[tuple[str, str], dict[str, str]] = {}
    for key, value in attributes.items():
        measure = _measure(key.replace("_", " "))
        if measure is None:
            continue
        for m in _QUANTITY_RE.finditer(value):
            stated.setdefault(_quantity_key(m), {})[measure] = key
    return stated


_MISATTRIBUTED = gettext_noop(
    '"%(found)s" is the product\'s %(key)s in the product data; the text gives it as something '
    'else.')


def _check_attribution(text: str, attributes: dict[str, str]) -> list[Flag]:
    """A quantity of the data put to another measure is a wrong fact, though every number is
    grounded: a backpack that "weighs 45 l" (its capacity), a steamer of "容量2.6千克" (its
    weight)."""
    stated = _stated_measures(attributes)
    if not stated:
        return []
    flags = []
    for m in _QUANTITY_RE.finditer(text):
        measures = stated.get(_quantity_key(m))
        if not measures:
            continue
        before = text[max(0, m.start() - _CUE_REACH):m.start()]
        clause_ends = list(_CLAUSE_END_RE.finditer(before))
        if clause_ends:
            before = before[clause_ends[-1].end():]
        said = _measure(before)
        if said is None or said in measures:
            continue
        flags.append(_flag("misattributed_number", ERROR, _MISATTRIBUTED,
                           m.start(), m.end(), found=m.group(0),
                           key=next(iter(measures.values()))))
    return flags



# A price is a fact the shop sets: copy that names one the data does not give ("good quality for
# less than $3") is invented.
_PRICE_RE = re.compile(
    rf"(?:[$€£¥￥]|US\$|RMB\s?|CNY\s?)\s?(?P<num>{_NUMBER})"
    rf"|(?<![\d.,])(?P<num2>{_NUMBER})\s?(?:dollars?|euros?|pounds?|yuan|元|块钱|块)(?![A-Za-z])",
    re.IGNORECASE)


_PRICE_KEY_RE = re.compile(r"price|msrp|rrp|cost|价", re.IGNORECASE)


def _check_prices(text: str, blob: str) -> list[Flag]:
    """Only a price grounds a price: "$3" is not grounded by a "3-season" rating."""
    known = {_canonical_number(m.group("num") or m.group("num2"))
             for m in _PRICE_RE.finditer(blob)}
    for line in blob.splitlines():
        key, colon, value = line.partition(":")
        if colon and _PRICE_KEY_RE.search(key):
            known |= _numbers_in(value)
    flags = []
    for m in _PRICE_RE.finditer(text):
        if _canonical_number(m.group("num") or m.group("num2")) in known:
            continue
        flags.append(_flag("ungrounded_number", ERROR, _UNGROUNDED_NUMBER,
                           m.start(), m.end(), found=m.group(0)))
    return flags
