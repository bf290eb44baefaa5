"""What copy may not claim: brand-banned terms, China's advertising-law absolute terms, English
overclaims, and health or medical claims."""

from __future__ import annotations

import re

from ..i18n import gettext_noop
from ..prompts import BrandRules, ProductFacts
from .flags import ERROR, WARNING, Flag, _flag
from .matching import _find, _in_facts, _Taken, _term_pattern


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
    # Comparisons with every rival ("more beautiful than any others on the market", "the most
    # versatile ... ever built") need proof a shop does not have; small models add them freely.
    (r"\bthan\s+any\s+others?\b", "than any other", ERROR),
    (r"\bever\s+(?:made|built|created|designed|invented|produced)\b", "ever made", ERROR),
    (r"\bof\s+all\s+time\b", "of all time", ERROR),
    (r"\bon\s+the\s+market\b", "on the market", WARNING),
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
    # A health-food function (美容养颜) that ordinary food and tea may not claim.
    "养颜",
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

