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

