"""The decoding rules of one request (``RowRules``): the numbers its facts allow, the terms it
may not write, where it stops. Pure data, built before any tokenizer is involved."""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..checks.claims import _ZH_ABSOLUTE_TERMS, _ZH_EXEMPT_AFTER, ZH_HEALTH_TERMS
from ..checks.matching import _in_facts
from ..checks.quantities import _NUMBER, _canonical_number

logger = logging.getLogger(__name__)



# The error-level overclaims of ``checks._EN_OVERCLAIMS``, spelt out in the forms they match (a
# test keeps both lists in step). "guarantee" stops the prefix of "guaranteed" only when the
# word is split into tokens there, so each form is listed.
EN_CLAIM_TERMS = (
    "guarantee", "guaranteed", "guarantees",
    "#1", "# 1", "number one", "no. 1", "no.1",
    "best ever", "best-ever",
    "world's best", "world’s best", "worlds best",
    "miracle", "miracles", "miraculous",
    "cure", "cures",
    "100%", "100 %",
    "risk-free", "risk free",
    "clinically proven",
    "than any other", "than any others",
    "ever made", "ever built", "ever created", "ever designed", "ever invented", "ever produced",
    "of all time",
)



# ``checks._EN_HEALTH_CLAIMS`` in the forms they match (a test keeps both in step); the Chinese
# ones are ``checks.ZH_HEALTH_TERMS`` as they stand.
EN_HEALTH_TERMS = (
    "heal", "heals", "healing", "detox", "detoxes", "detoxify", "detoxifies", "detoxifying",
    "detoxification", "anti-cancer", "anticancer", "anti cancer", "fights cancer",
    "prevents disease", "prevents illness", "boosts immunity", "boost immunity",
    "boosts your immune system", "boosts the immune system", "lowers blood pressure",
    "lowers cholesterol", "lowers blood sugar", "weight loss", "weight-loss", "burns fat",
    "therapeutic", "medicinal",
)



# Substrings that never belong in shop copy: markdown headings / hashtags, code, bold, links,
# e-mail addresses, HTML tags, template braces (and the full-width forms of the symbols).
MARKUP_TERMS = (
    "#", "`", "**", "http", "://", "www.", "@", "<", ">", "{", "}",
    "＃", "＠", "＜", "＞", "｛", "｝",
)



_EMPTY = np.zeros(0, dtype=np.int64)



_WHITESPACE_RE = re.compile(rb"[ \t\n\r\x0b\x0c]+")



_WORD_RE = re.compile(r"\w")



_RUN_RE = re.compile(r"[0-9]+(?:[.,][0-9]+)*")



_OPEN_RUN_RE = re.compile(r"[0-9]+(?:[.,][0-9]+)*[.,]?\Z")



_NON_NUMBER_RE = re.compile(r"[^0-9.,]+")



_CATALOG = Path(__file__).resolve().parent.parent / "data" / "demo" / "catalog.jsonl"



@dataclass(frozen=True)
class RowRules:
    """What one request's rows may generate (pure data; build it with ``rules_for``).

    ``allowed_numbers``: the surface forms numbers may take (``numbers_from_facts``).
    ``banned_terms``: every term to ban, built-in ones included. ``locale``: ``"en"`` or
    ``"zh-hans"``. ``stop_strings``: a row that has generated one of them must end (EOS).
    ``ground_numbers`` / ``block_markup``: switch those rules. ``context``: text already in the
    output before the first generated token (a completion prompt's lead-in): a number or a term
    that it leaves open continues into the generated text."""

    allowed_numbers: frozenset[str]
    banned_terms: tuple[str, ...]
    locale: str
    stop_strings: tuple[str, ...] = ()
    ground_numbers: bool = True
    block_markup: bool = True
    context: str = ""
    # Facts the copy should mention: until a value is mentioned, the tokens that start it get
    # ``FACT_NUDGE`` added to their scores (see ``GroundedDecoding``).
    fact_values: tuple[str, ...] = ()



def numbers_from_facts(facts_text: str) -> frozenset[str]:
    """The surface forms of the numbers in ``facts_text`` that generated copy may use.

    Each number (a run of digits with inner ``.``/``,``, after NFKC normalization so full-width
    digits count) as written, each ``checks._NUMBER`` match, their canonical forms
    (``checks._canonical_number``: "2,200" -> "2200", "1.50" -> "1.5") and, for integers of four
    or more digits, the thousands-grouped form ("2200" -> "2,200")."""
    text = unicodedata.normalize("NFKC", facts_text or "")
    found: set[str] = set()
    for raw in [*_RUN_RE.findall(text), *re.findall(_NUMBER, text)]:
        canonical = _canonical_number(raw)
        forms = {raw, canonical}
        if canonical.isdigit() and len(canonical) >= 4 and canonical.isascii():
            forms.add(f"{int(canonical):,}")
        found.update(form for form in forms if _RUN_RE.fullmatch(form))
    return frozenset(found)



def builtin_banned_terms(locale: str) -> tuple[str, ...]:
    """The terms banned for every product in ``locale``: China's advertising-law absolute terms
    for Chinese, the error-level overclaims for English, and health claims in both."""
    if _is_zh(locale):
        return (*_ZH_ABSOLUTE_TERMS, *ZH_HEALTH_TERMS)
    return (*EN_CLAIM_TERMS, *EN_HEALTH_TERMS)



def rules_for(
    *,
    facts_text: str,
    locale: str,
    brand_banned: Sequence[str] = (),
    stop_strings: Sequence[str] = (),
    ground_numbers: bool = True,
    block_markup: bool = True,
    context: str = "",
    fact_values: Sequence[str] = (),
) -> RowRules:
    """The decoding rules of one request: numbers from ``facts_text``, the brand's banned terms
    plus the locale's built-in ones that the facts do not themselves contain, and the stops."""
    terms: list[str] = []
    for term in brand_banned:
        term = " ".join(str(term).split())
        if term and term not in terms:
            terms.append(term)
    for term in builtin_banned_terms(locale):
        if term not in terms and not _builtin_in_facts(term, facts_text or ""):
            terms.append(term)
    return RowRules(
        allowed_numbers=numbers_from_facts(facts_text) if ground_numbers else frozenset(),
        banned_terms=tuple(terms),
        locale=locale,
        stop_strings=tuple(s for s in stop_strings if s),
        ground_numbers=ground_numbers,
        block_markup=block_markup,
        context=context,
        fact_values=tuple(v for v in (" ".join(str(v).split()) for v in fact_values) if v),
    )



def _builtin_in_facts(term: str, facts_text: str) -> bool:
    """Whether the facts use ``term`` themselves, as ``checks`` finds it (so "最" in 最近 does
    not count)."""
    exempt = _ZH_EXEMPT_AFTER.get(term)
    if exempt:
        return re.search(f"{re.escape(term)}(?![{exempt}])", facts_text) is not None
    return _in_facts(term, facts_text)



def cut_at_stop(text: str, stop_strings: Iterable[str]) -> str:
    """``text`` up to the first occurrence of any of ``stop_strings`` (all of it if none), and
    without a stop string's start left at its end: a draft that ran out of tokens halfway
    through the separator ("…防潮。\n--") must not carry the half."""
    stops = [stop for stop in stop_strings if stop]
    cut = -1
    for stop in stops:
        index = text.find(stop)
        if index >= 0 and (cut < 0 or index < cut):
            cut = index
    if cut >= 0:
        return text[:cut]
    for stop in stops:
        for size in range(len(stop) - 1, 1, -1):
            if text.endswith(stop[:size]):
                return text[:-size]
    return text


def _is_zh(locale: str) -> bool:
    return (locale or "").lower().startswith("zh")

