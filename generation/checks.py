"""Content checks on generated (or edited) copy.

Pure functions over plain dataclasses (no torch, no Django): the worker flags candidates with
them and the editor runs them live on every save. Each check returns ``Flag``s whose
``start``/``end`` are character offsets into the checked text (``-1`` when the flag is about the
text as a whole, e.g. a missing term).

Copy is untrusted text, so every check does work linear in its length: patterns start only
where a run starts (no pattern retries a long run from each of its characters), many names are
matched through one trie, overlaps are kept in sorted spans, and a finding repeated thousands of
times is listed ``MAX_FLAGS_PER_CODE`` times, then counted. ``max_text_chars`` is the longest
text the desk takes as copy at all.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TypeVar

from .i18n import gettext_noop
from .prompts import BrandRules, KindSpec, ProductFacts, effective_max_chars, facts_text
from .text import HAN_CLASS

__all__ = [
    "BLOCKING",
    "ERROR",
    "Flag",
    "INFO",
    "KINDS_WITH_FACTS",
    "TEXT_MAX_CEILING",
    "TEXT_TOO_LONG",
    "WARNING",
    "check_length",
    "check_text",
    "coverage",
    "has_blocking",
    "injection_findings",
    "instruction_spans",
    "is_usable",
    "max_text_chars",
    "rank",
    "rank_score",
    "source_similarity",
]

ERROR = "error"
WARNING = "warning"
INFO = "info"
BLOCKING = ERROR
SEVERITY_WEIGHT = {ERROR: 100.0, WARNING: 10.0, INFO: 1.0}

T = TypeVar("T")


@dataclass(frozen=True)
class Flag:
    """One finding. ``start``/``end`` are character offsets into the checked text, or ``-1``
    for a flag about the text as a whole (a missing term, the language, coverage).

    ``message`` is English; ``template % params`` makes it, so a reader in another language
    gets ``gettext(template) % params`` (``editorial.diffing.flag_message``)."""

    code: str
    severity: str  # "error" | "warning" | "info"
    message: str
    start: int = -1
    end: int = -1
    # Derived from the finding, so equality and hashing leave them out.
    template: str = field(default="", compare=False)
    params: dict[str, str | int] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict:
        """The flag as stored with a candidate (``Candidate.flags``) and sent by the API."""
        return {"code": self.code, "severity": self.severity, "message": self.message,
                "start": self.start, "end": self.end, "template": self.template,
                "params": dict(self.params)}

    @property
    def span(self) -> tuple[int, int]:
        return self.start, self.end

    @property
    def whole_text(self) -> bool:
        return self.start < 0


def rank_score(flags: Iterable[Flag]) -> float:
    """Higher is better: 0 for clean text, -100 per error, -10 per warning, -1 per info."""
    return -sum(SEVERITY_WEIGHT.get(flag.severity, 0.0) for flag in flags)


def rank(candidates: Iterable[tuple[T, Iterable[Flag]]]) -> list[T]:
    """The candidates, best first by ``rank_score`` of their flags; ties keep their order."""
    scored = [(rank_score(flags), i, item) for i, (item, flags) in enumerate(candidates)]
    scored.sort(key=lambda entry: (-entry[0], entry[1]))
    return [item for _, _, item in scored]


def has_blocking(flags: Iterable[Flag]) -> bool:
    return any(flag.severity == BLOCKING for flag in flags)


def is_usable(flags: Iterable[Flag | dict]) -> bool:
    """Whether copy with these flags is usable: worth giving an editor as a first draft.

    Usable means no ERROR flag, and the checks make an ERROR of each thing that makes a draft
    unusable, so usable copy is:

    - in the product's language (no ``wrong_language``: not mostly Latin letters for a
      Chinese product, not mostly Chinese for an English one);
    - without invented numbers (no ``ungrounded_number``: every number with a unit — "750 ml",
      "2-year", "50%", "12小时" — and every ratio is in the product data; bare numbers are not
      judged) and without brands or models the data does not name (``ungrounded_brand``,
      ``ungrounded_model``);
    - plain text: no Markdown (``markdown``: headings, ``**``, ``*``/``+`` list markers,
      links, rules, tables), no code (``code``: backticks, fences), no JSON or braces
      (``json``), no HTML (``html``), no web or e-mail address or phone number (``url``,
      ``email``, ``phone``);
    - the copy itself, not prompt residue (``prompt_leftover``: a preamble such as "Here is",
      "Sure!", a prompt label such as "Task:", "Title:", "Description:", "标题：" at the start
      of a line, "<product>", "In this email", chat tokens; ``instruction_echo``);
    - not a copy of the product's source text (``source_copy``: near-identical to it);
    - within the length limit (``too_long``: any overrun; the limits are the shop platform's
      field limits, which cut longer text);
    - free of every other error: banned terms, absolute claims, health claims
      (``health_claim``), empty text.

    - not noise (``garbled``), and free of facts of the example products its prompt showed
      (``example_fact``);
    - a title that names its product (``off_subject``): a warning, since an editor may title a
      product freely, but a first draft that does not is no start;
    - text that does not loop (``looping``: one phrase three times, or three phrases twice): a
      warning, since copy may repeat a phrase on purpose, but a draft that circles is no start.

    Other warnings and notes (a required term missing, a mild superlative, an unknown material
    or part code, facts not mentioned) do not make copy unusable. ``flags`` may be ``Flag``s or
    their stored dicts (``Candidate.flags``)."""
    for flag in flags:
        severity = flag.get("severity") if isinstance(flag, dict) else flag.severity
        code = flag.get("code") if isinstance(flag, dict) else flag.code
        if severity == ERROR or code in NOT_USABLE_WARNINGS:
            return False
    return True


# Warnings that an editor may approve over, but that leave a first draft no start.
NOT_USABLE_WARNINGS = frozenset({"off_subject", "looping"})


# -- helpers ----------------------------------------------------------------------------------

_CJK = HAN_CLASS
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


@lru_cache(maxsize=4096)
def _in_facts(term: str, facts_blob: str) -> bool:
    return bool(term) and _term_pattern(term).search(facts_blob) is not None


# A finding quoted in a message is cut to this many characters: a 40,000-character "address"
# must not become a 40,000-character message (the span still covers all of it).
_QUOTE_MAX = 80


def _quoted(params: dict[str, str | int]) -> dict[str, str | int]:
    return {key: value[: _QUOTE_MAX - 1] + "…"
            if isinstance(value, str) and len(value) > _QUOTE_MAX else value
            for key, value in params.items()}


def _flag(code: str, severity: str, template: str, start: int = -1, end: int = -1,
          **params: str | int) -> Flag:
    return Flag(code, severity, template % (quoted := _quoted(params)), start, end, template,
                quoted)


class _Taken:
    """Spans already reported, which never overlap one another, kept sorted: whether a new
    span overlaps one of them is a binary search, so many findings cost n log n, not n²."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def overlaps(self, start: int, end: int) -> bool:
        i = bisect_right(self._starts, start)
        if i and self._ends[i - 1] > start:
            return True
        return i < len(self._starts) and self._starts[i] < end

    def add(self, start: int, end: int) -> None:
        i = bisect_right(self._starts, start)
        self._starts.insert(i, start)
        self._ends.insert(i, end)


def _trie(entries: Iterable[tuple[str, str]], separator: str) -> str:
    """One alternation for many literal names, built as a trie (``a(?:luminium|crylic)|…``):
    at each position the regex engine follows one branch per character instead of trying
    every name in turn, so a scan costs about the same whatever the number of names.

    ``entries``: ``(name, tail)``, ``tail`` being what must follow that name (a word boundary,
    a model number, a marker group). A space in a name matches ``separator``. A name is tried
    after the longer names that extend it, so the longest name wins, as in an alternation
    sorted longest first."""
    root: dict = {}
    for name, tail in entries:
        node = root
        for char in name:
            node = node.setdefault(char, {})
        node.setdefault("", []).append(tail)

    def emit(node: dict) -> str:
        branches = [(separator if char == " " else re.escape(char)) + emit(child)
                    for char, child in node.items() if char != ""]
        branches += node.get("", [])
        if len(branches) == 1:
            return branches[0]
        return "(?:" + "|".join(branches) + ")"

    return emit(root)


# -- how much text the desk takes -------------------------------------------------------------

# The longest text the desk checks or saves as copy: room to draft and cut (a few times the
# copy's limit, at least TEXT_MAX_FLOOR), never more than TEXT_MAX_CEILING, so no request makes
# the checks, the diffs or a page do unbounded work.
TEXT_MAX_FACTOR = 4
TEXT_MAX_FLOOR = 2_000
TEXT_MAX_CEILING = 20_000
TEXT_TOO_LONG = gettext_noop(
    "The text is %(length)d characters long; at most %(max)d characters can be checked or "
    "saved for this copy. Shorten it.")


def max_text_chars(limit: int) -> int:
    """The longest text accepted as copy whose length limit is ``limit`` (0: no limit)."""
    if not limit:
        return TEXT_MAX_CEILING
    return min(TEXT_MAX_CEILING, max(TEXT_MAX_FLOOR, TEXT_MAX_FACTOR * int(limit)))


def check_length(text: str, *, kind: KindSpec, brand: BrandRules | None = None) -> list[Flag]:
    """Only the length check: for text too long to check as a whole (see ``max_text_chars``)."""
    return _check_length(text, kind, brand)


# -- individual checks ------------------------------------------------------------------------


def _check_length(text: str, kind: KindSpec, brand: BrandRules | None) -> list[Flag]:
    """Any overrun is an error: the limits are the shop's field limits (an SEO title of 60
    characters, a meta description of 160), and a shop cuts what is longer."""
    limit = effective_max_chars(kind, brand)
    if limit and len(text) > limit:
        if brand and brand.length_limits.get(kind.code):
            template = gettext_noop("The text is %(length)d characters long; the brand's "
                                    "limit for %(kind)s is %(limit)d.")
        else:
            template = gettext_noop("The text is %(length)d characters long; the limit for "
                                    "%(kind)s is %(limit)d.")
        return [_flag("too_long", ERROR, template, limit, len(text),
                      length=len(text), kind=kind.label, limit=limit)]
    return []


def _check_terms(text: str, brand: BrandRules | None) -> list[Flag]:
    if brand is None:
        return []
    flags = []
    for term in brand.banned_terms:
        for m in _find(_term_pattern(term), text):
            flags.append(_flag(
                "banned_term", ERROR,
                gettext_noop('The banned term "%(term)s" is used ("%(found)s").'),
                m.start(), m.end(), term=term, found=m.group(0),
            ))
    for term in brand.required_terms:
        if not _term_pattern(term).search(text):
            flags.append(_flag("required_term_missing", WARNING,
                               gettext_noop('The required term "%(term)s" is missing.'),
                               term=term))
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


# Medical and health claims: China's Advertising Law (Art. 17) forbids any advertisement other
# than for medicine and medical devices to claim to treat disease or use medical terms, and the
# FTC and ASA treat unproven health claims for goods alike. Small models add them to tea and
# kitchenware unprompted ("还能净化身体，改善身体健康").
ZH_HEALTH_TERMS = (
    "治疗", "治愈", "疗效", "药效", "根治", "抗癌", "防癌", "抗肿瘤", "降血压", "降血糖",
    "降血脂", "降三高", "减肥", "瘦身", "排毒", "消炎", "抗炎", "增强免疫力", "提高免疫力",
    "净化身体", "改善身体健康", "延年益寿", "包治", "祛病", "预防疾病", "壮阳", "补肾",
)
_EN_HEALTH_CLAIMS = (
    r"\bheals?\b", r"\bhealing\b", r"\bdetox(?:es|ify|ifies|ifying|ification)?\b",
    r"\banti[\s-]?cancer\b", r"\b(?:fights?|prevents?) (?:cancer|disease|illness|infections?)\b",
    r"\bboosts? (?:your |the )?immun(?:e system|ity)\b",
    r"\blowers? (?:your )?(?:blood pressure|cholesterol|blood sugar)\b",
    r"\bweight[\s-]loss\b", r"\bburns? fat\b", r"\btherapeutic\b", r"\bmedicinal\b",
)
_HEALTH_RE = re.compile("|".join(re.escape(t) for t in sorted(ZH_HEALTH_TERMS, key=len,
                                                              reverse=True)))
_EN_HEALTH_RE = re.compile("|".join(_EN_HEALTH_CLAIMS), re.IGNORECASE)


def _check_health_claims(text: str, facts: ProductFacts, blob: str) -> list[Flag]:
    flags = []
    for m in (_HEALTH_RE if facts.is_zh else _EN_HEALTH_RE).finditer(text):
        if _in_facts(m.group(0), blob):
            continue  # a fact of the product ("therapeutic-grade" in its own data) is the shop's
        flags.append(_flag("health_claim", ERROR,
                           gettext_noop('"%(found)s" is a health or medical claim: copy for goods '
                                        "may not claim to treat, prevent or heal."),
                           m.start(), m.end(), found=m.group(0)))
    return flags


def _check_claims(text: str, facts: ProductFacts, blob: str) -> list[Flag]:
    flags: list[Flag] = []
    taken = _Taken()
    if facts.is_zh:
        for m in _ZH_ABSOLUTE_RE.finditer(text):
            term = m.group(0)
            if _in_facts(term, blob):
                flags.append(_flag(
                    "absolute_term", WARNING,
                    gettext_noop('The absolute term "%(term)s" is restricted by China\'s '
                                 "Advertising Law; it is in the product data, so check that it "
                                 "is a fact and not a claim."),
                    m.start(), m.end(), term=term,
                ))
            else:
                flags.append(_flag(
                    "absolute_term", ERROR,
                    gettext_noop('The absolute term "%(term)s" is not allowed in advertising '
                                 "under China's Advertising Law."),
                    m.start(), m.end(), term=term,
                ))
        return flags
    for pattern, label, severity in _EN_OVERCLAIM_RES:
        for m in pattern.finditer(text):
            if taken.overlaps(*m.span()):
                continue  # "best ever" already reported; do not report "best" again
            taken.add(*m.span())
            found = m.group(0)
            if _in_facts(found, blob):
                continue  # e.g. "100% cotton" when the product data says so
            flags.append(_flag(
                "overclaim", severity,
                gettext_noop('"%(found)s" is an absolute or unprovable claim (%(label)s).'),
                m.start(), m.end(), found=found, label=label,
            ))
    return flags


# Each pattern starts only where a run of the characters it repeats starts (the look-behinds),
# so a long run that is no address ("a-a-a-…", "1.1.1.…") is read once, not once per position.
_EMAIL_RE = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL_RE = re.compile(r"(?<![A-Za-z0-9_])(?:https?://|www\.)[^\s<>\"'，。）)]+", re.IGNORECASE)
# A host name ("northwind-shop.com", "shop.example.co.uk"): dot-separated labels, read as one
# token; ``_host_spans`` keeps it up to its last label that is a top-level domain.
_HOST_RE = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9][A-Za-z0-9-]*(?:\.[A-Za-z0-9-]+)+")
_TOP_LEVEL_DOMAINS = frozenset(
    "com net org cn io shop store co uk de info biz".split()
)
_URL_PATH_RE = re.compile(r"/[^\s<>\"'，。）)]*")
_PHONE_RES = [
    re.compile(r"(?<![\w+])\+\d{1,3}[\s.-]?\(?\d{1,4}\)?(?:[\s.-]?\d{2,4}){2,4}(?!\d)"),
    re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)"),  # mainland mobile
    re.compile(r"(?<!\d)[48]00[\s-]?\d{3}[\s-]?\d{4}(?!\d)"),  # 400/800 hotlines
    re.compile(r"(?<![\d-])0\d{2,3}-\d{7,8}(?!\d)"),  # mainland landline
    re.compile(r"(?<![\d-])\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}(?!\d)"),  # North America
]


def _host_spans(text: str) -> Iterator[tuple[int, int]]:
    """Host names with a known top-level domain (and the path after one), as spans."""
    reached = 0
    for m in _HOST_RE.finditer(text):
        if m.start() < reached:
            continue  # inside the path of the address before
        labels = m.group(0).split(".")
        last = max((i for i in range(1, len(labels)) if labels[i].lower() in _TOP_LEVEL_DOMAINS),
                   default=0)
        if not last:
            continue
        end = m.start() + len(".".join(labels[: last + 1]))
        if text.startswith("/", end):
            end = _URL_PATH_RE.match(text, end).end()
        reached = end
        yield m.start(), end


def _check_contacts(text: str) -> list[Flag]:
    flags: list[Flag] = []
    taken = _Taken()

    for m in _EMAIL_RE.finditer(text):
        taken.add(*m.span())
        flags.append(_flag("email", ERROR,
                           gettext_noop('The text contains an e-mail address ("%(found)s").'),
                           m.start(), m.end(), found=m.group(0)))
    urls = [m.span() for m in _URL_RE.finditer(text)] + list(_host_spans(text))
    for start, end in sorted(urls, key=lambda span: (span[0], -span[1])):
        if taken.overlaps(start, end):
            continue
        taken.add(start, end)
        flags.append(_flag("url", ERROR,
                           gettext_noop('The text contains a web address ("%(found)s").'),
                           start, end, found=text[start:end]))
    for pattern in _PHONE_RES:
        for m in pattern.finditer(text):
            if taken.overlaps(*m.span()):
                continue
            taken.add(*m.span())
            flags.append(_flag("phone", ERROR,
                               gettext_noop('The text contains a phone number ("%(found)s").'),
                               m.start(), m.end(), found=m.group(0).strip()))
    return flags


_LEAK_ANYWHERE = re.compile(
    r"</?\s*product\s*>|<\|[a-z_]+\|>|\bproduct data\b|\bas an ai\b|\blanguage model\b"
    r"|\bsource text:|\bin\s+this\s+e-?mail\b|\breply\s+with\s+the\s+copy\s+only\b"
    r"|\bat\s+most\s+\d+\s+characters\b|\bkeep\s+it\s+under\s+\d+\s+characters\b"
    r"|商品资料|作为(?:一个)?(?:AI|人工智能)|请用简体中文作答|只输出文案|不超过\d+个字符",
    re.IGNORECASE,
)
_LEAK_START = re.compile(
    r"^\s*(?:sure[,!.]|certainly[,!.]|of\s+course[,!.]|以下是|好的[，,。!！]|当然[，,。!！])",
    re.IGNORECASE,
)
# Labels of the prompt (its data block, its task line, the completion format's entries) and
# a model's own headings for its answer, at the start of any line: "Task:", "Title:",
# "Description:", "标题：" … and the preambles "Here is", "Here's", "Here are".
_PROMPT_LABELS = (
    "task", "facts", "product facts", "product", "title", "product title", "description",
    "product description", "long description", "brand", "brand voice", "audience", "category",
    "attributes", "source text", "rules", "copy", "output", "response", "assistant", "system",
    "bullet points", "bullets", "slogan", "slogan / ad line", "ad line", "seo title",
    "seo description", "seo meta description", "meta description",
    "任务", "商品资料", "标题", "商品标题", "品牌", "品牌调性", "目标受众", "类目", "属性",
    "原始描述", "描述", "商品描述", "商品卖点", "卖点", "广告语", "常见问题", "规则", "文案",
    "输出",
)
_LEAK_LINE_START = re.compile(
    r"^[ \t]*(?:(?:here[ \t]+is|here's|here[ \t]+are)\b|"
    + _trie(((label, "") for label in _PROMPT_LABELS), r"[ \t]+")
    + r"[ \t]*[:：])",
    re.IGNORECASE | re.MULTILINE,
)
_PREAMBLE = gettext_noop('The text starts with a preamble ("%(found)s") instead of the copy.')


def _check_leftovers(text: str) -> list[Flag]:
    flags = []
    taken = _Taken()
    m = _LEAK_START.match(text)
    if m:
        start = m.start() + (len(m.group(0)) - len(m.group(0).lstrip()))
        taken.add(start, m.end())
        flags.append(_flag("prompt_leftover", ERROR, _PREAMBLE, start, m.end(),
                           found=m.group(0).strip()))
    for m in _LEAK_LINE_START.finditer(text):
        start = m.start() + (len(m.group(0)) - len(m.group(0).lstrip()))
        found = m.group(0).strip()
        end = start + len(found)
        if taken.overlaps(start, end):
            continue
        taken.add(start, end)
        if start == 0:
            flags.append(_flag("prompt_leftover", ERROR, _PREAMBLE, start, end, found=found))
        else:
            flags.append(_flag(
                "prompt_leftover", ERROR,
                gettext_noop('A line starts with leftover prompt text ("%(found)s") instead of '
                             "the copy."),
                start, end, found=found,
            ))
    for m in _LEAK_ANYWHERE.finditer(text):
        if taken.overlaps(*m.span()):
            continue
        flags.append(_flag(
            "prompt_leftover", ERROR,
            gettext_noop('The text contains leftover prompt or assistant text ("%(found)s").'),
            m.start(), m.end(), found=m.group(0),
        ))
    return flags


# Markup a shop field shows as literal characters: the copy must be plain text.
_MARKDOWN_RE = re.compile(
    r"^[ \t]{0,3}#{1,6}(?=[ \t]+\S)[^\n]{0,60}"  # heading: "### Features"
    r"|\*{2,}|(?<![A-Za-z0-9])_{2,}|_{2,}(?![A-Za-z0-9])"  # **bold**, __bold__
    r"|^[ \t]*[*+][ \t]+(?=\S)"  # "* item", "+ item" ("- item" is a plain bullet)
    r"|\[[^\[\]\n]{1,200}\]\([^()\s]{1,500}\)"  # [link](url)
    r"|^[ \t]{0,3}>[ \t]?(?=\S)"  # "> quote"
    r"|^[ \t]*(?:-{3,}|={3,})[ \t]*$"  # rule, or the completion format's separator
    r"|\|[ \t]*:?-{3,}:?[ \t]*\|",  # table: "|---|"
    re.MULTILINE,
)
_CODE_RE = re.compile(r"`{3,}[\w+-]{0,20}|~{3,}[\w+-]{0,20}|`[^`\n]{1,200}`|`", re.ASCII)
_JSON_RE = re.compile(
    r"\{[^{}\n]{0,200}\}|[{}｛｝]"  # braces: {"a": 1}, {product_name}
    r'|"[^"\n]{1,60}"[ \t]*:[ \t]*(?=["\[{\d]|true\b|false\b|null\b)'  # "key": value
    r'|\[[ \t]*(?=["{])'  # ["a", "b"]
)
_HTML_RE = re.compile(
    r"</?(?!\s*product\b)[A-Za-z][A-Za-z0-9]*(?:\s[^<>\n]{0,200})?/?>"
    r"|&(?:[A-Za-z]{2,8}|#\d{1,6}|#[xX][0-9A-Fa-f]{1,6});",
)
_MARKUP_CHECKS = (
    ("markdown", _MARKDOWN_RE,
     gettext_noop('The text contains Markdown formatting ("%(found)s"); the copy must be plain '
                  "text.")),
    ("code", _CODE_RE,
     gettext_noop('The text contains code formatting ("%(found)s"); the copy must be plain '
                  "text.")),
    ("json", _JSON_RE,
     gettext_noop('The text contains braces or JSON ("%(found)s"); the copy must be plain '
                  "text.")),
    ("html", _HTML_RE,
     gettext_noop('The text contains HTML ("%(found)s"); the copy must be plain text.')),
)


def _check_markup(text: str) -> list[Flag]:
    return [_flag(code, ERROR, template, m.start(), m.end(), found=m.group(0).strip())
            for code, pattern, template in _MARKUP_CHECKS for m in pattern.finditer(text)]


# Text addressed to the model rather than to shoppers: in product data it is an injection
# attempt (the data block keeps it inert, but an editor should know); in copy it is an echo.
_INSTRUCTION_RE = re.compile(
    r"\b(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+|the\s+|your\s+|these\s+)?"
    r"(?:previous\s+|prior\s+|above\s+|earlier\s+|preceding\s+)?"
    r"(?:instructions?|rules|prompts?|directions)\b"
    r"|\byou\s+are\s+now\b|\bsystem\s+prompt\b|\bnew\s+instructions?\s*:"
    r"|\bdo\s+not\s+follow\s+(?:the|your|any)\s+(?:rules|instructions)\b"
    r"|(?:忽略|无视|忘记|忘掉|不要理会)(?:之前|以上|上述|前面|所有|全部|一切)?的?"
    r"(?:所有|全部)?(?:指令|指示|规则|提示词?|要求|说明)"
    r"|你现在是|系统提示词?|新的?指令[：:]",
    re.IGNORECASE,
)


def instruction_spans(text: str) -> list[tuple[int, int]]:
    """Where ``text`` addresses the model ("ignore all previous instructions", "忽略以上指令")."""
    return [m.span() for m in _INSTRUCTION_RE.finditer(text or "")]


def injection_findings(facts: ProductFacts) -> list[tuple[str, str]]:
    """``(field, excerpt)`` for each instruction-like passage in the product data, so the product
    can be flagged to editors before anyone trusts its drafts."""
    fields = [("title", facts.title), ("brand", facts.brand), ("category", facts.category),
              *((f"attributes.{key}", value) for key, value in facts.attributes.items()),
              ("source_text", facts.source_text)]
    findings = []
    for name, value in fields:
        for start, end in instruction_spans(value):
            findings.append((name, value[max(0, start - 20): end + 40].strip()))
    return findings


def _check_instructions(text: str) -> list[Flag]:
    return [_flag("instruction_echo", ERROR,
                  gettext_noop('The text repeats an instruction to the model ("%(found)s"): the '
                               "product data may carry a prompt injection."),
                  start, end, found=text[start:end])
            for start, end in instruction_spans(text)]


def _check_language(text: str, facts: ProductFacts) -> list[Flag]:
    # One Chinese character carries about as much as one English word, so compare those.
    latin = len(_LATIN_WORD_RE.findall(text))
    cjk = len(_CJK_RE.findall(text))
    if facts.is_zh:
        if latin >= 4 and latin > 2 * cjk:
            return [_flag("wrong_language", ERROR,
                          gettext_noop("The product is Chinese (zh-hans) but the text is mostly "
                                       "in Latin letters; it should be in Simplified Chinese."))]
    elif cjk >= 5 and cjk > latin:
        return [_flag("wrong_language", ERROR,
                      gettext_noop("The product is English but the text contains many Chinese "
                                   "characters; it should be in English."))]
    return []


# Characters no copy is written with: the replacement character (a cut multi-byte sequence),
# control pictures such as ␁, private-use code points.
_GARBAGE_RE = re.compile("[\ufffd\u2400-\u243f\ue000-\uf8ff]")
# Chinese copy made of rare characters is a model writing noise that looks like Chinese. The
# demo catalog's own copy has at most 2 characters outside GB2312's 3,755 common ones (2%).
_RARE_MIN, _RARE_SHARE = 3, 0.05


def _rare_hanzi(ch: str) -> bool:
    try:
        return ch.encode("gb2312")[0] >= 0xD8  # level 2 (0xD8-0xF7): the less common ones
    except UnicodeEncodeError:
        return True


def _check_garbled(text: str, facts: ProductFacts, blob: str) -> list[Flag]:
    flags = []
    m = _GARBAGE_RE.search(text)
    if m:
        flags.append(_flag("garbled", ERROR,
                           gettext_noop('The text contains "%(found)s", which is not a character '
                                        "of copy (broken or garbled output)."),
                           m.start(), m.end(), found=m.group(0)))
    if facts.is_zh:
        hanzi = _CJK_RE.findall(text)
        rare = sorted({ch for ch in hanzi if _rare_hanzi(ch) and ch not in blob})
        count = sum(1 for ch in hanzi if ch in rare)
        if count >= _RARE_MIN and count >= _RARE_SHARE * len(hanzi):
            flags.append(_flag("garbled", ERROR,
                               gettext_noop("%(count)d of %(total)d Chinese characters are rare "
                                            "ones (%(found)s): the text reads as noise, not "
                                            "copy."),
                               count=count, total=len(hanzi), found="".join(rare[:10])))
    return flags


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
            flags.append(_flag("repetition", WARNING,
                               gettext_noop('The sentence "%(sentence)s" appears more than once.'),
                               start, m.end(), sentence=m.group(0).strip()))
        else:
            seen[key] = m.start()
    tokens = _tokens_for_distinct(text, facts.is_zh)
    bigrams = list(zip(tokens, tokens[1:], strict=False))
    if len(bigrams) >= 20:
        ratio = len(set(bigrams)) / len(bigrams)
        if ratio < 0.5:
            flags.append(_flag("repetition", WARNING,
                               gettext_noop("The text repeats itself: only %(share)s of its word "
                                            "pairs are distinct."),
                               share=f"{ratio:.0%}"))
    return flags


_CLAUSE_RE = re.compile(r"[^.!?。！？;；:：,，、\n]+")
_LOOP_TIMES = 3


def _check_looping(text: str, facts: ProductFacts) -> list[Flag]:
    """A clause (4+ Chinese characters, 3+ words) said three times, or three clauses said twice
    each: small models circle back to the same phrases ("每泡约7克" five times in one
    description). Sentences that repeat whole are ``repetition``; this catches the loop that
    varies the sentences around it."""
    counts: dict[str, list[re.Match]] = {}
    for m in _CLAUSE_RE.finditer(text):
        key = _normalize_sentence(m.group(0))
        long_enough = (len(_CJK_RE.findall(key)) >= 4 if facts.is_zh
                       else len(key.split()) >= 3)
        if long_enough:
            counts.setdefault(key, []).append(m)
    repeated = sorted((found for found in counts.values() if len(found) > 1),
                      key=lambda found: (-len(found), found[1].start()))
    if not repeated:
        return []
    found = repeated[0]
    if len(found) >= _LOOP_TIMES:
        last = found[_LOOP_TIMES - 1]
        template = gettext_noop('The phrase "%(phrase)s" appears %(times)d times: the text goes '
                                "in circles.")
        params = {"times": len(found)}
    elif len(repeated) >= _LOOP_TIMES:
        last = found[1]
        template = gettext_noop('%(times)d phrases appear twice, such as "%(phrase)s": the text '
                                "goes in circles.")
        params = {"times": len(repeated)}
    else:
        return []
    start = last.start() + (len(last.group(0)) - len(last.group(0).lstrip()))
    return [_flag("looping", WARNING, template, start, last.end(),
                  phrase=last.group(0).strip(), **params)]


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


# Copy of the product's own source text: the same word (Chinese: character) triples, in about
# the same amounts. Shorter source texts are left alone (a title-like sentence may well be the
# right copy).
_SOURCE_COPY_SIMILARITY = 0.9
_SOURCE_COPY_MIN_SHINGLES = 8


def _shingles(text: str) -> Counter[tuple[str, ...]]:
    normalized = unicodedata.normalize("NFKC", text).lower()
    tokens = re.findall(rf"[{_CJK}]|[^\W_{_CJK}]+", normalized)
    return Counter(zip(tokens, tokens[1:], tokens[2:], strict=False))


def source_similarity(text: str, source: str) -> float:
    """How much of ``text`` is ``source`` (0 to 1): the Dice coefficient of their word
    (Chinese: character) triples, counted with repeats; case, spacing and punctuation are
    ignored. Linear in the texts' lengths."""
    mine, theirs = _shingles(text), _shingles(source)
    total = sum(mine.values()) + sum(theirs.values())
    if not total:
        return 0.0
    return 2 * sum((mine & theirs).values()) / total


def _check_source_copy(text: str, facts: ProductFacts) -> list[Flag]:
    source = facts.source_text or ""
    if sum(_shingles(source).values()) < _SOURCE_COPY_MIN_SHINGLES:
        return []
    similarity = source_similarity(text, source)
    if similarity <= _SOURCE_COPY_SIMILARITY:
        return []
    return [_flag("source_copy", ERROR,
                  gettext_noop("The text is a copy of the product's source text (%(share)s the "
                               "same); write new copy from the facts."),
                  share=f"{similarity:.0%}")]


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


# -- coverage -----------------------------------------------------------------------------------

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


# -- facts of other products ------------------------------------------------------------------

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


# -- entry point ------------------------------------------------------------------------------


def check_text(
    text: str, *, facts: ProductFacts, kind: KindSpec, brand: BrandRules | None = None,
    examples: Iterable[ProductFacts] = (),
) -> list[Flag]:
    """All flags for ``text`` as copy of ``kind`` for ``facts`` (and ``brand``), sorted by
    position (whole-text flags first). ``examples``: the products whose copy the prompt showed
    (generated text only), whose facts must not turn up in this product's copy."""
    if not text or not text.strip():
        return [_flag("empty", ERROR, gettext_noop("The text is empty."))]
    blob = facts_text(facts)
    flags = [
        *_check_length(text, kind, brand),
        *_check_terms(text, brand),
        *_check_claims(text, facts, blob),
        *_check_health_claims(text, facts, blob),
        *_check_contacts(text),
        *_check_markup(text),
        *_check_leftovers(text),
        *_check_instructions(text),
        *_check_language(text, facts),
        *_check_garbled(text, facts, blob),
        *_check_source_copy(text, facts),
        *_check_repetition(text, facts),
        *_check_looping(text, facts),
        *_check_grounding(text, blob),
        *_check_materials(text, blob),
        *_check_brands(text, blob),
        *_check_coverage(text, facts, kind),
        *_check_title_subject(text, facts, kind),
        *_check_example_facts(text, facts, kind, examples),
    ]
    return _capped(sorted(flags, key=lambda f: (f.start, f.end, f.code)))


# A text that repeats one finding thousands of times ("a@b.c " × 5,000) lists the first ones
# and says how many more there are: an editor reads a few, and a page of 5,000 flags is slow.
MAX_FLAGS_PER_CODE = 20


def _capped(flags: list[Flag]) -> list[Flag]:
    kept: list[Flag] = []
    seen: Counter[tuple[str, str]] = Counter()
    left_out: Counter[str] = Counter()
    for flag in flags:
        key = (flag.code, flag.severity)
        seen[key] += 1
        if seen[key] > MAX_FLAGS_PER_CODE:
            left_out[flag.code] += 1
        else:
            kept.append(flag)
    more = [_flag("more_flags", INFO,
                  gettext_noop("%(count)d more findings of this kind (%(finding)s) are not "
                               "listed."),
                  count=count, finding=code)
            for code, count in left_out.items()]
    return sorted(more + kept, key=lambda f: (f.start, f.end, f.code)) if more else kept
