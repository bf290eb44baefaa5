"""Content checks on generated (or edited) copy.

Pure functions over plain dataclasses (no torch, no Django): the worker flags candidates with
them and the editor runs them live on every save. Each check returns ``Flag``s whose
``start``/``end`` are character offsets into the checked text (``-1`` when the flag is about the
text as a whole, e.g. a missing term).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .prompts import BrandRules, KindSpec, ProductFacts, effective_max_chars, facts_text

__all__ = [
    "BLOCKING",
    "ERROR",
    "Flag",
    "INFO",
    "WARNING",
    "check_text",
    "has_blocking",
    "rank_score",
]

ERROR = "error"
WARNING = "warning"
INFO = "info"
BLOCKING = ERROR
SEVERITY_WEIGHT = {ERROR: 100.0, WARNING: 10.0, INFO: 1.0}


@dataclass(frozen=True)
class Flag:
    code: str
    severity: str  # "error" | "warning" | "info"
    message: str
    start: int = -1
    end: int = -1


def rank_score(flags: Iterable[Flag]) -> float:
    """Higher is better: 0 for clean text, -100 per error, -10 per warning, -1 per info."""
    return -sum(SEVERITY_WEIGHT.get(flag.severity, 0.0) for flag in flags)


def has_blocking(flags: Iterable[Flag]) -> bool:
    return any(flag.severity == BLOCKING for flag in flags)


# -- helpers ----------------------------------------------------------------------------------

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_RE = re.compile(f"[{_CJK}]")
_LATIN_WORD_RE = re.compile(r"[A-Za-z\u00c0-\u024f]+")


def _is_wordlike(term: str) -> bool:
    return bool(re.fullmatch(r"[\w\s'’.-]+", term)) and not _CJK_RE.search(term)


def _term_pattern(term: str) -> re.Pattern[str]:
    """Case-insensitive pattern; word-boundary aware for Latin terms, substring for CJK."""
    body = r"\s+".join(re.escape(part) for part in term.split())
    if _is_wordlike(term):
        body = rf"(?<![\w]){body}(?![\w])"
    return re.compile(body, re.IGNORECASE)


def _find(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    return pattern.finditer(text)


def _in_facts(term: str, facts_blob: str) -> bool:
    return bool(term) and _term_pattern(term).search(facts_blob) is not None


# -- individual checks ------------------------------------------------------------------------


def _check_length(text: str, kind: KindSpec, brand: BrandRules | None) -> list[Flag]:
    limit = effective_max_chars(kind, brand)
    if limit and len(text) > limit:
        source = "the brand's" if brand and brand.length_limits.get(kind.code) else "the"
        return [
            Flag(
                "too_long",
                ERROR,
                f"The text is {len(text)} characters long; {source} limit for {kind.label} is "
                f"{limit}.",
                limit,
                len(text),
            )
        ]
    return []


def _check_terms(text: str, brand: BrandRules | None) -> list[Flag]:
    if brand is None:
        return []
    flags = []
    for term in brand.banned_terms:
        for m in _find(_term_pattern(term), text):
            flags.append(
                Flag(
                    "banned_term",
                    ERROR,
                    f'The banned term "{term}" is used ("{m.group(0)}").',
                    m.start(),
                    m.end(),
                )
            )
    for term in brand.required_terms:
        if not _term_pattern(term).search(text):
            flags.append(
                Flag("required_term_missing", WARNING, f'The required term "{term}" is missing.')
            )
    return flags


# China's Advertising Law (Art. 9(3)) forbids "national-level", "highest-level", "best" and
# similar absolute terms; these are the common forms regulators and platforms flag.
_ZH_ABSOLUTE_TERMS = (
    "国家级", "世界级", "全球级", "最高级", "最佳", "最优", "最好", "最强", "最大", "最低价",
    "最便宜", "顶级", "顶尖", "极致", "极品", "万能", "绝对", "唯一", "独一无二", "绝无仅有",
    "首个", "首家", "首选", "全网", "全国首", "第一品牌", "销量冠军", "遥遥领先", "史无前例",
    "无敌", "王牌", "100%", "100％", "百分之百", "第一", "最",
)
# "最" / "第一" are also plain words in 最近 (recently), 最后 (finally), 第一次 (the first time).
_ZH_EXEMPT_AFTER = {"最": "近后终初", "第一": "次步"}
_ZH_ABSOLUTE_RE = re.compile(
    "|".join(
        re.escape(t) + (f"(?![{_ZH_EXEMPT_AFTER[t]}])" if t in _ZH_EXEMPT_AFTER else "")
        for t in sorted(_ZH_ABSOLUTE_TERMS, key=len, reverse=True)
    )
)

# English overclaims: (pattern, label, severity). Word-boundary aware.
_EN_OVERCLAIMS = [
    (r"(?<![\w#])#\s?1(?!\d)", "#1", ERROR),
    (r"\bnumber\s+one\b|\bno\.\s?1(?!\d)", "number one", ERROR),
    (r"\bbest[\s-]+ever\b", "best ever", ERROR),
    (r"\bworld'?s\s+best\b", "world's best", ERROR),
    (r"\bguarantee(?:d|s)?\b", "guaranteed", ERROR),
    (r"\bcures?\b", "cure", ERROR),
    (r"\bmiracle(?:s|\s+cure)?\b|\bmiraculous\b", "miracle", ERROR),
    (r"(?<![\d.])100\s?%", "100%", ERROR),
    (r"\brisk[\s-]free\b", "risk-free", ERROR),
    (r"\bclinically\s+proven\b", "clinically proven", ERROR),
    (r"\bbest\b", "best", WARNING),
    (r"\bperfect(?:ly)?\b", "perfect", WARNING),
    (r"\bultimate\b", "ultimate", WARNING),
    (r"\bunbeatable\b|\bunmatched\b|\bunrivall?ed\b", "unbeatable", WARNING),
    (r"\brevolutionary\b", "revolutionary", WARNING),
    (r"\bthe\s+only\b", "the only", WARNING),
]
_EN_OVERCLAIM_RES = [(re.compile(p, re.IGNORECASE), label, sev) for p, label, sev in _EN_OVERCLAIMS]


def _check_claims(text: str, facts: ProductFacts, blob: str) -> list[Flag]:
    flags: list[Flag] = []
    taken: list[tuple[int, int]] = []
    if facts.is_zh:
        for m in _ZH_ABSOLUTE_RE.finditer(text):
            term = m.group(0)
            if _in_facts(term, blob):
                flags.append(Flag(
                    "absolute_term", WARNING,
                    f'The absolute term "{term}" is restricted by China\'s Advertising Law; it is '
                    "in the product data, so check that it is a fact and not a claim.",
                    m.start(), m.end(),
                ))
            else:
                flags.append(Flag(
                    "absolute_term", ERROR,
                    f'The absolute term "{term}" is not allowed in advertising under China\'s '
                    "Advertising Law.",
                    m.start(), m.end(),
                ))
        return flags
    for pattern, label, severity in _EN_OVERCLAIM_RES:
        for m in pattern.finditer(text):
            if any(m.start() < end and start < m.end() for start, end in taken):
                continue  # "best ever" already reported; do not report "best" again
            taken.append((m.start(), m.end()))
            found = m.group(0)
            if _in_facts(found, blob):
                continue  # e.g. "100% cotton" when the product data says so
            flags.append(Flag(
                "overclaim", severity,
                f'"{found}" is an absolute or unprovable claim ({label}).',
                m.start(), m.end(),
            ))
    return flags


_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL_RE = re.compile(
    r"\b(?:https?://|www\.)[^\s<>\"'，。）)]+"
    r"|\b[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:com|net|org|cn|io|shop|store|co|uk|de|info|biz)"
    r"\b(?:/[^\s<>\"'，。）)]*)?",
    re.IGNORECASE,
)
_PHONE_RES = [
    re.compile(r"(?<![\w+])\+\d{1,3}[\s.-]?\(?\d{1,4}\)?(?:[\s.-]?\d{2,4}){2,4}(?!\d)"),
    re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)"),  # mainland mobile
    re.compile(r"(?<!\d)[48]00[\s-]?\d{3}[\s-]?\d{4}(?!\d)"),  # 400/800 hotlines
    re.compile(r"(?<![\d-])0\d{2,3}-\d{7,8}(?!\d)"),  # mainland landline
    re.compile(r"(?<![\d-])\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}(?!\d)"),  # North America
]


def _check_contacts(text: str) -> list[Flag]:
    flags: list[Flag] = []
    taken: list[tuple[int, int]] = []

    def overlaps(m: re.Match[str]) -> bool:
        return any(m.start() < end and start < m.end() for start, end in taken)

    for m in _EMAIL_RE.finditer(text):
        taken.append(m.span())
        flags.append(Flag("email", ERROR, f'The text contains an e-mail address ("{m.group(0)}").',
                          m.start(), m.end()))
    for m in _URL_RE.finditer(text):
        if overlaps(m):
            continue
        taken.append(m.span())
        flags.append(Flag("url", ERROR, f'The text contains a web address ("{m.group(0)}").',
                          m.start(), m.end()))
    for pattern in _PHONE_RES:
        for m in pattern.finditer(text):
            if overlaps(m):
                continue
            taken.append(m.span())
            flags.append(Flag("phone", ERROR,
                              f'The text contains a phone number ("{m.group(0).strip()}").',
                              m.start(), m.end()))
    return flags


_LEAK_ANYWHERE = re.compile(
    r"</?\s*product\s*>|<\|[a-z_]+\|>|\bproduct data\b|\bas an ai\b|\blanguage model\b"
    r"|\bsource text:|商品资料|作为(?:一个)?(?:AI|人工智能)",
    re.IGNORECASE,
)
_LEAK_START = re.compile(
    r"^\s*(?:here\s+is|here's|here\s+are|sure[,!.]|certainly[,!.]|of\s+course[,!.]"
    r"|task:|description:|title:|assistant:|以下是|好的[，,。!！]|当然[，,。!！]|任务：)",
    re.IGNORECASE,
)


def _check_leftovers(text: str) -> list[Flag]:
    flags = []
    m = _LEAK_START.match(text)
    if m:
        found = m.group(0).strip()
        flags.append(Flag("prompt_leftover", WARNING,
                          f'The text starts with a preamble ("{found}") instead of the copy.',
                          m.start() + (len(m.group(0)) - len(m.group(0).lstrip())), m.end()))
    for m in _LEAK_ANYWHERE.finditer(text):
        flags.append(Flag("prompt_leftover", WARNING,
                          f'The text contains leftover prompt or assistant text ("{m.group(0)}").',
                          m.start(), m.end()))
    return flags


def _check_language(text: str, facts: ProductFacts) -> list[Flag]:
    # One Chinese character carries about as much as one English word, so compare those.
    latin = len(_LATIN_WORD_RE.findall(text))
    cjk = len(_CJK_RE.findall(text))
    if facts.is_zh:
        if latin >= 4 and latin > 2 * cjk:
            return [Flag("wrong_language", ERROR,
                         "The product is Chinese (zh-hans) but the text is mostly in Latin "
                         "letters; it should be in Simplified Chinese.")]
    elif cjk >= 5 and cjk > latin:
        return [Flag("wrong_language", ERROR,
                     "The product is English but the text contains many Chinese characters; it "
                     "should be in English.")]
    return []


_SENTENCE_RE = re.compile(r"[^.!?。！？;；\n]+[.!?。！？;；]*")


def _normalize_sentence(sentence: str) -> str:
    sentence = unicodedata.normalize("NFKC", sentence).lower()
    return " ".join(re.sub(r"[^\w\s]", " ", sentence).split())


def _tokens_for_distinct(text: str, zh: bool) -> list[str]:
    if zh:
        return [c for c in text if _CJK_RE.match(c) or c.isalnum()]
    return re.findall(r"\w+", text.lower())


def _check_repetition(text: str, facts: ProductFacts) -> list[Flag]:
    flags = []
    seen: dict[str, int] = {}
    min_len = 4 if facts.is_zh else 12
    for m in _SENTENCE_RE.finditer(text):
        key = _normalize_sentence(m.group(0))
        if len(key) < min_len:
            continue
        if key in seen:
            start = m.start() + (len(m.group(0)) - len(m.group(0).lstrip()))
            flags.append(Flag("repetition", WARNING,
                              f'The sentence "{m.group(0).strip()}" appears more than once.',
                              start, m.end()))
        else:
            seen[key] = m.start()
    tokens = _tokens_for_distinct(text, facts.is_zh)
    bigrams = list(zip(tokens, tokens[1:], strict=False))
    if len(bigrams) >= 20:
        ratio = len(set(bigrams)) / len(bigrams)
        if ratio < 0.5:
            flags.append(Flag("repetition", WARNING,
                              f"The text repeats itself: only {ratio:.0%} of its word pairs are "
                              "distinct."))
    return flags


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


def _check_grounding(text: str, blob: str) -> list[Flag]:
    flags = []
    known_numbers = _numbers_in(blob)
    blob_compact = re.sub(r"\s+", "", blob)
    for m in _QUANTITY_RE.finditer(text):
        if _canonical_number(m.group("num")) in known_numbers:
            continue
        found = m.group(0)
        flags.append(Flag("ungrounded_number", WARNING,
                          f'"{found}" does not appear in the product data; check that it is a '
                          "fact.", m.start(), m.end()))
    for m in _RATIO_RE.finditer(text):
        if m.group(0) in blob_compact:
            continue
        flags.append(Flag("ungrounded_number", WARNING,
                          f'"{m.group(0)}" does not appear in the product data; check that it '
                          "is a fact.", m.start(), m.end()))
    return flags


# -- entry point ------------------------------------------------------------------------------


def check_text(
    text: str, *, facts: ProductFacts, kind: KindSpec, brand: BrandRules | None = None
) -> list[Flag]:
    """All flags for ``text`` as copy of ``kind`` for ``facts`` (and ``brand``), sorted by
    position (whole-text flags first)."""
    if not text or not text.strip():
        return [Flag("empty", ERROR, "The text is empty.")]
    blob = facts_text(facts)
    flags = [
        *_check_length(text, kind, brand),
        *_check_terms(text, brand),
        *_check_claims(text, facts, blob),
        *_check_contacts(text),
        *_check_leftovers(text),
        *_check_language(text, facts),
        *_check_repetition(text, facts),
        *_check_grounding(text, blob),
    ]
    return sorted(flags, key=lambda f: (f.start, f.end, f.code))
