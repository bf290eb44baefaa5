"""Grounded decoding: token-level rules that make bad copy impossible to generate.

``GroundedDecoding`` is a ``LogitsProcessor`` that masks, for each row of a batch, every token that
would break that row's ``RowRules`` (built per request by ``rules_for`` from the product facts,
the locale and the brand's banned terms):

* **Numbers are copied, never invented.** A number is a run of ASCII digits with inner ``.``/``,``
  separators (``350``, ``1.7``, ``2,200``; ``18/8`` is the two numbers ``18`` and ``8``). Every
  number in the output must be one of the facts' numbers (``numbers_from_facts``: each number as
  written, its canonical form as ``checks`` compares them, and thousands grouping for integers of
  four or more digits, so facts saying ``2200 W`` allow ``2200`` and ``2,200``). The row's trailing,
  still open number is tracked: a token may extend it only while it stays a prefix of an allowed
  number, a number that ends inside a token must be complete, and while the open number is not
  complete the row must go on with it (EOS is masked too). Without numbers in the facts no digit
  can be generated. A ``.`` or ``,`` after a number counts as punctuation when the number is
  complete. Other digits (full-width ``３``, Arabic-Indic …) are banned outright. Numbers spelt
  out in words (``three``, ``三百``) are not constrained.
* **Banned terms cannot be generated**: the brand's banned terms, plus China's advertising-law
  absolute terms (``checks._ZH_ABSOLUTE_TERMS``) for Chinese products or the error-level English
  overclaims (``EN_CLAIM_TERMS``) for English ones; a built-in term that occurs in the facts is
  left out (``checks`` does not report it either: "100% cotton"). Matching is over the bytes the
  tokens produce, ASCII case-insensitive, with any run of whitespace matching one space, so a term
  is caught with or without a leading space, in any case and split over several tokens (it is
  stopped at the token that would complete it). Word-like terms (``checks._is_wordlike``) respect
  word boundaries like ``checks``: banning "cure" bans neither "secure" nor a " cured" token; but
  when a term would end exactly at the end of a token the next character is not known yet and the
  token is banned (so "cure" followed by a separate "d" token is not possible either). The
  exemptions of ``checks._ZH_EXEMPT_AFTER`` hold: "最" may be generated only when the next
  character makes it 最近/最后/最终/最初 (the row must then go on with one of them), "第一" only as
  第一次/第一步.
* **No markup** (``block_markup``): no ``#`` (headings, hashtags), backticks (code), ``**``,
  ``http``, ``://``, ``www.``, ``@`` (e-mail), ``<`` ``>`` (HTML), ``{`` ``}`` and their full-width
  forms (``MARKUP_TERMS``), and no special tokens other than EOS. Ordinary punctuation (``*``,
  ``|``, ``-``, ``/``, quotes, brackets) stays.
* **Stops**: once a row's generated text contains one of its ``stop_strings``, the row can only
  emit EOS. ``cut_at_stop`` cuts the finished text at the first stop string.
* **Facts are nudged in** (``fact_values``, descriptions and bullets): until the text mentions an
  attribute value (as ``checks.coverage`` counts it), the tokens that start it get
  ``FACT_NUDGE`` added to their scores, before the masks, so a banned token stays banned.

``token_budget`` turns a character limit into a max-new-tokens budget for a tokenizer.

Per tokenizer, ``DecodingVocabulary`` (cached by ``vocabulary_for``) precomputes the bytes each
token produces, a lower-cased byte index sorted for prefix look-ups, and the tokens that bear
digits; per set of rules it caches which tokens contain a banned term and which tokens continue a
partial term or number. Per step and row the processor updates the row's state from the last
token (a short byte tail, the open number, whether a stop string was seen) and looks up a few
cached id arrays; the scores see one ``index_fill_`` and one ``amax`` (measured on CPU: about
25 us per row and step for SmolLM2's 49k vocabulary, 90 us for Gemma 3's 262k).

Limits: a row cut by ``max_new_tokens`` can end inside a number ("35" of "350") or on a bare
"最"; a number from the facts can still be put with the wrong unit ("350 grams" for "350ml");
the rules see only the generated text (and ``RowRules.context``), not the prompt.
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import re
import sys
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from transformers import LogitsProcessor

from .checks.claims import _ZH_ABSOLUTE_TERMS, _ZH_EXEMPT_AFTER, ZH_HEALTH_TERMS
from .checks.facts import _NUMBER, _canonical_number, _mentions, _text_index
from .checks.matching import _in_facts, _is_wordlike
from .text import HAN_RANGES

__all__ = [
    "COPY_SCRIPTS",
    "EN_CLAIM_TERMS",
    "MARKUP_TERMS",
    "DecodingVocabulary",
    "GroundedDecoding",
    "RowRules",
    "builtin_banned_terms",
    "chars_per_token",
    "cut_at_stop",
    "numbers_from_facts",
    "rules_for",
    "token_budget",
    "vocabulary_for",
]

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

# token_budget: tokens = ceil(max_chars / chars_per_token * (1 + margin)) + slack, clamped.
BUDGET_MARGIN = 0.2
BUDGET_SLACK = 8
BUDGET_FLOOR = 16
BUDGET_CEILING = 1024

# Code point ranges of the characters English and Chinese product copy is written in; other
# scripts (Cyrillic, Arabic, Devanagari, Hangul, kana, emoji …) are never wanted in a draft, and
# a large multilingual vocabulary spends most of its output layer on them.
COPY_SCRIPTS = (
    (0x09, 0x0A), (0x0D, 0x0D), (0x20, 0x7E),  # ASCII text
    (0xA0, 0x17F),  # Latin-1 and Latin Extended-A: é, ü, ×, °, ±, ², µ, €-era brand names
    (0x2000, 0x206F),  # general punctuation: dashes, quotes, bullets, ellipsis
    (0x20A0, 0x20CF),  # currency signs
    (0x2100, 0x218F),  # letterlike symbols and number forms: ℃, ™, №, ½
    (0x2190, 0x2199),  # arrows
    (0x2200, 0x22FF),  # mathematical operators: ≤, ≥, ≈
    (0x2460, 0x24FF),  # circled numbers used in Chinese lists
    (0x3000, 0x303F),  # CJK punctuation
    *HAN_RANGES[:3],  # CJK ideographs (the supplementary planes' are not in vocabularies)
    (0xFE30, 0xFE4F), (0xFF00, 0xFFEF),  # CJK compatibility and full-width forms
)
_COPY_STARTS = [start for start, _ in COPY_SCRIPTS]
# Added to the score of a token that starts a fact not yet mentioned: at temperature 0.7 such a
# token becomes about 30x likelier. On 10 held-out demo descriptions fact coverage went from
# 53% (no nudge) to 61% at 1.6 and 65% at 2.6, with no loss of usable drafts.
FACT_NUDGE = 2.4
_NEG_INF = float("-inf")
_EMPTY = np.zeros(0, dtype=np.int64)
_WHITESPACE_RE = re.compile(rb"[ \t\n\r\x0b\x0c]+")
_WORD_RE = re.compile(r"\w")
_RUN_RE = re.compile(r"[0-9]+(?:[.,][0-9]+)*")
_OPEN_RUN_RE = re.compile(r"[0-9]+(?:[.,][0-9]+)*[.,]?\Z")
_NON_NUMBER_RE = re.compile(r"[^0-9.,]+")
_CATALOG = Path(__file__).resolve().parent.parent / "data" / "demo" / "catalog.jsonl"


# -- rules ----------------------------------------------------------------------------------------


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
    """``text`` up to the first occurrence of any of ``stop_strings`` (all of it if none)."""
    cut = -1
    for stop in stop_strings:
        if not stop:
            continue
        index = text.find(stop)
        if index >= 0 and (cut < 0 or index < cut):
            cut = index
    return text if cut < 0 else text[:cut]


def _in_copy_scripts(code: int) -> bool:
    slot = bisect.bisect_right(_COPY_STARTS, code) - 1
    return slot >= 0 and code <= COPY_SCRIPTS[slot][1]


def _is_zh(locale: str) -> bool:
    return (locale or "").lower().startswith("zh")


# -- bytes and characters -------------------------------------------------------------------------


def _norm(data: bytes) -> bytes:
    """Bytes as banned terms are matched: ASCII lower case, whitespace runs as one space."""
    return _WHITESPACE_RE.sub(b" ", data).lower()


def _is_word(ch: str | None) -> bool:
    return ch is not None and _WORD_RE.match(ch) is not None


def _last_char(data: bytes) -> str | None:
    """The last complete character of UTF-8 ``data`` (None if it ends inside a character)."""
    for k in range(1, min(4, len(data)) + 1):
        try:
            return data[-k:].decode("utf-8")[-1]
        except UnicodeDecodeError:
            continue
    return None


def _first_char(data: bytes) -> str | None:
    """The first complete character of UTF-8 ``data`` (None if it starts or ends mid-way)."""
    for k in range(1, min(4, len(data)) + 1):
        try:
            return data[:k].decode("utf-8")[0]
        except UnicodeDecodeError:
            continue
    return None


def _keep(data: bytes, size: int) -> bytes:
    return data[-size:] if size > 0 else b""


def _successor(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string that starts with ``prefix``."""
    data = bytearray(prefix)
    while data and data[-1] == 0xFF:
        data.pop()
    if not data:
        return None
    data[-1] += 1
    return bytes(data)


def _skeleton(data: bytes) -> str:
    """What matters to numbers: digits and separators, every other run of bytes as ``x``."""
    return _NON_NUMBER_RE.sub("x", data.decode("latin-1"))


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet, character -> byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    chars = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


def _decoder_spec(tokenizer) -> dict:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    decoder = getattr(backend, "decoder", None) if backend is not None else None
    if decoder is None:
        return {}
    try:
        return json.loads(decoder.__getstate__())
    except Exception:  # noqa: BLE001 - an unknown decoder: fall back to decoding tokens
        return {}


def _decoder_types(spec: dict) -> set[str]:
    types = {spec.get("type", "")}
    for child in spec.get("decoders", ()) or ():
        types |= _decoder_types(child)
    return types


@lru_cache(maxsize=1)
def _other_digits() -> tuple[str, ...]:
    """Every decimal digit other than ASCII 0-9 (full-width, Arabic-Indic, Devanagari …)."""
    return tuple(chr(c) for c in range(0x80, sys.maxunicode + 1)
                 if unicodedata.category(chr(c)) == "Nd")


@lru_cache(maxsize=1)
def _other_digit_terms() -> frozenset[_Term]:
    return frozenset(_Term(digit.encode(), False) for digit in _other_digits())


# -- terms ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Term:
    """One banned byte string: normalized UTF-8, whether word boundaries apply, and the
    characters (UTF-8) after which an occurrence does not count."""

    text: bytes
    wordlike: bool
    exempt: tuple[bytes, ...] = ()


def _term_variants(term: str, *, substring: bool = False) -> list[_Term]:
    term = " ".join(term.split())
    if not term:
        return []
    wordlike = not substring and _is_wordlike(term)
    exempt = tuple(ch.encode() for ch in _ZH_EXEMPT_AFTER.get(term, ""))
    forms = {term, term.lower(), term.upper(), term.title(), term.capitalize()}
    texts = {_norm(form.encode()) for form in forms}
    return [_Term(text, wordlike, exempt) for text in sorted(texts)]


def _completes(term: _Term, after: bytes) -> bool:
    """Whether an occurrence of ``term`` followed, inside the same token, by ``after`` is banned
    now. Exempt terms wait for the next character (the row must then go on with an exempt
    one); word-like terms are no occurrence before a word character, and are banned when the
    token ends with them (what follows is not known yet)."""
    if term.exempt:
        if not after:
            return False
        return not any(after.startswith(e) or e.startswith(after) for e in term.exempt)
    if term.wordlike and after:
        return not _is_word(_first_char(after))
    return True


def _rules_terms(rules: RowRules) -> tuple[_Term, ...]:
    return _terms_for(rules.banned_terms, rules.block_markup, rules.ground_numbers)


@lru_cache(maxsize=256)
def _terms_for(banned: tuple[str, ...], markup: bool, digits: bool) -> tuple[_Term, ...]:
    terms: set[_Term] = set()
    for term in banned:
        terms.update(_term_variants(term))
    if markup:
        for term in MARKUP_TERMS:
            terms.update(_term_variants(term, substring=True))
    if digits:
        terms.update(_other_digit_terms())
    return tuple(sorted(terms, key=lambda t: (t.text, t.wordlike, t.exempt)))


class _CompiledTerms:
    """The banned terms of one rule set against one vocabulary."""

    def __init__(self, vocab: DecodingVocabulary, terms: tuple[_Term, ...]):
        always: list[np.ndarray] = []
        at_start: list[np.ndarray] = []
        self.prefixes: dict[bytes, list[tuple[_Term, int]]] = {}
        digits = _other_digit_terms()
        if any(term in digits for term in terms):
            always.append(vocab._other_digit_hits())
        for term in terms:
            if term not in digits:
                inner, start = vocab._term_hits(term)
                always.append(inner)
                at_start.append(start)
            for j in range(1, len(term.text)):
                self.prefixes.setdefault(term.text[:j], []).append((term, j))
        self.always = np.unique(np.concatenate(always)) if always else _EMPTY
        self.at_start = np.setdiff1d(np.concatenate(at_start), self.always) if at_start else _EMPTY
        self.exemptable = tuple(term for term in terms if term.exempt)
        self.longest = max((len(term.text) for term in terms), default=0)
        self.tail_size = self.longest + 8

    def continuations(self, vocab: DecodingVocabulary, tail: bytes) -> list[np.ndarray]:
        """Tokens that would complete a term that ``tail`` (normalized) has begun."""
        out = []
        for size in range(1, min(self.longest - 1, len(tail)) + 1):
            entries = self.prefixes.get(tail[-size:])
            if not entries:
                continue
            before = _is_word(_last_char(tail[:-size])) if len(tail) > size else False
            for term, j in entries:
                if term.wordlike and before:
                    continue
                ids = vocab._continuations(term, j)
                if len(ids):
                    out.append(ids)
        return out

    def pending(self, tail: bytes) -> tuple[bytes, ...]:
        """What must follow when ``tail`` ends with an exempt term (or it and part of an exempt
        character): the remaining bytes of each exempt character."""
        required: set[bytes] = set()
        for term in self.exemptable:
            if term.text not in tail[-len(term.text) - 4:]:
                continue
            for e in term.exempt:
                for k in range(len(e)):
                    if tail.endswith(term.text + e[:k]):
                        required.add(e[k:])
        return tuple(sorted(required))


class _CompiledNumbers:
    """The allowed numbers of one rule set against one vocabulary."""

    def __init__(self, vocab: DecodingVocabulary, allowed: frozenset[str]):
        self.vocab = vocab
        self.allowed = allowed
        self.prefixes = {number[:i] for number in allowed for i in range(1, len(number) + 1)}
        self._states: dict[str, tuple[np.ndarray | None, np.ndarray | None]] = {}
        bad = [ids for skeleton, ids in vocab._number_groups.items()
               if not self.ok(skeleton, open_end=True)]
        self.fresh = np.sort(np.concatenate(bad)) if bad else _EMPTY

    def ok(self, text: str, *, open_end: bool) -> bool:
        """Whether every number in ``text`` (a skeleton) is allowed: complete ones must be
        allowed numbers, one still open at the end a prefix of one."""
        size = len(text)
        for m in _RUN_RE.finditer(text):
            run, end = m.group(), m.end()
            if end == size and open_end:
                good = run in self.prefixes
            elif open_end and end + 1 == size and text[end] in ".,":
                good = run in self.allowed or run + text[end] in self.prefixes
            else:
                good = run in self.allowed
            if not good:
                return False
        return True

    def for_state(self, number: str) -> tuple[np.ndarray | None, np.ndarray | None]:
        """``(banned, allowed)`` ids after the open number ``number``: ``allowed`` (only those
        may follow) when the number is not complete, else ``banned``."""
        if not number:
            return self.fresh, None
        cached = self._states.get(number)
        if cached is None:
            closable = self.ok(number, open_end=False)
            good, bad = [], []
            for skeleton, ids in self.vocab._number_groups.items():
                (good if self.ok(number + skeleton, open_end=True) else bad).append(ids)
            if closable:
                cached = (np.sort(np.concatenate(bad)) if bad else _EMPTY, None)
            else:
                cached = (None, np.sort(np.concatenate(good)) if good else _EMPTY)
            if len(self._states) > 4096:
                self._states.clear()
            self._states[number] = cached
        return cached

    def open_number(self, number: str, data: bytes) -> str:
        m = _OPEN_RUN_RE.search(number + _skeleton(data))
        return m.group() if m else ""


# -- the vocabulary -------------------------------------------------------------------------------


class DecodingVocabulary:
    """What decoding rules need to know about a tokenizer, computed once per tokenizer.

    ``token_bytes[i]``: the UTF-8 bytes token ``i`` adds to the text (``b""`` for special
    tokens); read from the tokenizer's byte-level / SentencePiece alphabet, else by decoding
    each token alone. ``special_ids``: tokens that are not text. The rest are indexes and caches
    for ``GroundedDecoding``."""

    def __init__(self, tokenizer):
        self.size = len(tokenizer)
        self.name = str(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__)
        special = {int(i) for i in (getattr(tokenizer, "all_special_ids", None) or ())}
        added = getattr(tokenizer, "added_tokens_decoder", None) or {}
        special |= {int(i) for i, token in added.items() if getattr(token, "special", False)}
        self.special_ids = np.array(sorted(i for i in special if 0 <= i < self.size),
                                    dtype=np.int64)
        self.token_bytes = self._read_bytes(tokenizer, special, added)
        self._lock = threading.Lock()
        self._build_indexes()
        self._terms: dict[_Term, tuple[np.ndarray, np.ndarray]] = {}
        self._conts: dict[tuple[_Term, int], np.ndarray] = {}
        self._pending: dict[tuple[bytes, ...], np.ndarray] = {}
        self._other_digits: np.ndarray | None = None
        self._compiled_terms: OrderedDict[tuple[_Term, ...], _CompiledTerms] = OrderedDict()
        self._compiled_numbers: OrderedDict[frozenset[str], _CompiledNumbers] = OrderedDict()
        self._starts: dict[tuple[str, bool], np.ndarray] = {}

    def __repr__(self) -> str:
        return f"DecodingVocabulary({self.name!r}, {self.size} tokens)"

    # -- token bytes --------------------------------------------------------------------------

    def _read_bytes(self, tokenizer, special: set[int], added: dict) -> list[bytes]:
        types = _decoder_types(_decoder_spec(tokenizer))
        pieces = tokenizer.convert_ids_to_tokens(list(range(self.size)))
        out: list[bytes] = []
        if "ByteLevel" in types:
            table = _byte_decoder()
            for i, piece in enumerate(pieces):
                if i in special or piece is None:
                    out.append(b"")
                elif i in added:
                    out.append(str(added[i].content).encode())
                else:
                    try:
                        out.append(bytes(table[ch] for ch in piece))
                    except KeyError:
                        out.append(piece.encode())
            return out
        if types & {"Metaspace", "Replace", "ByteFallback"}:
            fallback = "ByteFallback" in types
            byte_re = re.compile(r"<0x([0-9A-Fa-f]{2})>")
            for i, piece in enumerate(pieces):
                if i in special or piece is None:
                    out.append(b"")
                elif i in added:
                    out.append(str(added[i].content).replace("▁", " ").encode())
                elif fallback and (m := byte_re.fullmatch(piece)):
                    out.append(bytes([int(m.group(1), 16)]))
                else:
                    out.append(piece.replace("▁", " ").encode())
            return out
        logger.info("%s: unknown decoder %s, reading tokens by decoding each alone",
                    self.name, sorted(types))
        return [b"" if i in special else
                tokenizer.decode([i], clean_up_tokenization_spaces=False).encode()
                for i in range(self.size)]

    def _build_indexes(self) -> None:
        self.norm = [_norm(data) for data in self.token_bytes]
        offsets, position = [], 0
        for data in self.norm:
            offsets.append(position)
            position += len(data) + 1
        self._offsets = offsets
        self._blob = b"\x00".join(self.norm)
        entries = sorted((data, i) for i, data in enumerate(self.norm) if data)
        self._keys = [data for data, _ in entries]
        self._ids = np.array([i for _, i in entries], dtype=np.int64)
        stripped = sorted((data.lstrip(b" "), i) for i, data in enumerate(self.norm)
                          if data.lstrip(b" "))
        self._stripped_keys = [data for data, _ in stripped]
        self._stripped_ids = np.array([i for _, i in stripped], dtype=np.int64)
        groups: dict[str, list[int]] = {}
        for i, data in enumerate(self.token_bytes):
            if not data:
                continue
            text = data.decode("latin-1")
            if text[0] in "0123456789.," or any(c in "0123456789" for c in text):
                groups.setdefault(_skeleton(data), []).append(i)
        self._number_groups = {k: np.array(v, dtype=np.int64) for k, v in groups.items()}
        self.digit_ids = np.array(sorted(i for k, v in groups.items() if re.search("[0-9]", k)
                                         for i in v), dtype=np.int64)

    def starting_tokens(self, value: str, *, zh: bool) -> np.ndarray:
        """Tokens that write the start of ``value`` (in any ASCII case): after a space for Latin
        text, also without one for Chinese, which has no spaces."""
        cached = self._starts.get((value, zh))
        if cached is not None:
            return cached
        ids: set[int] = set()
        # At least three letters of a Latin value (" sta", not " st"), one Chinese character.
        for form, shortest in ([(" " + value, 2), (value, 1)] if zh else [(" " + value, 4)]):
            for end in range(min(shortest, len(form)), len(form) + 1):
                key = _norm(form[:end].encode())
                lo = bisect.bisect_left(self._keys, key)
                hi = bisect.bisect_right(self._keys, key)
                ids.update(int(i) for i in self._ids[lo:hi])
        found = np.array(sorted(ids), dtype=np.int64)
        self._starts[(value, zh)] = found
        return found

    def copy_token_ids(self) -> np.ndarray:
        """Ids of the tokens English or Chinese copy can be written with: every character in
        ``COPY_SCRIPTS`` (Latin, the punctuation and symbols product copy uses, CJK ideographs
        and punctuation, full-width forms). A token that is part of a UTF-8 sequence (byte-level
        and byte-fallback pieces) is kept, since what it spells is only known with its
        neighbours. Special tokens are not text and are left out."""
        kept = []
        for i, data in enumerate(self.token_bytes):
            if not data:
                continue
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                kept.append(i)
                continue
            if all(_in_copy_scripts(ord(ch)) for ch in text):
                kept.append(i)
        return np.array(kept, dtype=np.int64)

    # -- per-term caches ----------------------------------------------------------------------

    def _term_hits(self, term: _Term) -> tuple[np.ndarray, np.ndarray]:
        """Tokens containing ``term``: always banned, and banned only after a non-word
        character (a word-like term at the very start of the token)."""
        cached = self._terms.get(term)
        if cached is not None:
            return cached
        always: set[int] = set()
        at_start: set[int] = set()
        pattern, blob, offsets = term.text, self._blob, self._offsets
        position = blob.find(pattern)
        while position >= 0:
            index = bisect.bisect_right(offsets, position) - 1
            key = self.norm[index]
            i = position - offsets[index]
            if i + len(pattern) <= len(key) and _completes(term, key[i + len(pattern):]):
                if i == 0:
                    (at_start if term.wordlike else always).add(index)
                elif not (term.wordlike and _is_word(_last_char(key[:i]))):
                    always.add(index)
            position = blob.find(pattern, position + 1)
        cached = (np.array(sorted(always), dtype=np.int64),
                  np.array(sorted(at_start - always), dtype=np.int64))
        self._terms[term] = cached
        return cached

    def _other_digit_hits(self) -> np.ndarray:
        """Tokens containing a decimal digit other than 0-9 (one pass for all of them)."""
        if self._other_digits is None:
            pattern = re.compile(b"|".join(re.escape(d.encode()) for d in _other_digits()))
            found = {bisect.bisect_right(self._offsets, m.start()) - 1
                     for m in pattern.finditer(self._blob)}
            self._other_digits = np.array(sorted(found), dtype=np.int64)
        return self._other_digits

    def _range(self, prefix: bytes, *, stripped: bool) -> tuple[list[bytes], np.ndarray, int, int]:
        keys, ids = ((self._stripped_keys, self._stripped_ids) if stripped
                     else (self._keys, self._ids))
        lo = bisect.bisect_left(keys, prefix)
        upper = _successor(prefix)
        hi = len(keys) if upper is None else bisect.bisect_left(keys, upper)
        return keys, ids, lo, hi

    def _continuations(self, term: _Term, j: int) -> np.ndarray:
        """Tokens that complete ``term`` when the text ends with its first ``j`` bytes."""
        cached = self._conts.get((term, j))
        if cached is None:
            rest = term.text[j:]
            # After a space the next token's own leading space merges into it.
            keys, ids, lo, hi = self._range(rest, stripped=term.text[j - 1:j] == b" ")
            chosen = [ids[k] for k in range(lo, hi) if _completes(term, keys[k][len(rest):])]
            cached = np.array(sorted(chosen), dtype=np.int64)
            self._conts[(term, j)] = cached
        return cached

    def _pending_allowed(self, required: tuple[bytes, ...]) -> np.ndarray:
        """Tokens that go on with one of ``required`` (or with part of one)."""
        cached = self._pending.get(required)
        if cached is None:
            chosen: list[np.ndarray] = []
            for need in required:
                keys, ids, lo, hi = self._range(need, stripped=False)
                chosen.append(ids[lo:hi])
                for k in range(1, len(need)):
                    lo = bisect.bisect_left(keys, need[:k])
                    hi = bisect.bisect_right(keys, need[:k])
                    chosen.append(ids[lo:hi])
            cached = np.unique(np.concatenate(chosen)) if chosen else _EMPTY
            self._pending[required] = cached
        return cached

    # -- per-rules caches ---------------------------------------------------------------------

    def compiled_terms(self, terms: tuple[_Term, ...]) -> _CompiledTerms:
        with self._lock:
            compiled = self._compiled_terms.get(terms)
            if compiled is None:
                compiled = _CompiledTerms(self, terms)
                self._compiled_terms[terms] = compiled
                while len(self._compiled_terms) > 64:
                    self._compiled_terms.popitem(last=False)
            else:
                self._compiled_terms.move_to_end(terms)
            return compiled

    def compiled_numbers(self, allowed: frozenset[str]) -> _CompiledNumbers:
        with self._lock:
            compiled = self._compiled_numbers.get(allowed)
            if compiled is None:
                compiled = _CompiledNumbers(self, allowed)
                self._compiled_numbers[allowed] = compiled
                while len(self._compiled_numbers) > 256:
                    self._compiled_numbers.popitem(last=False)
            else:
                self._compiled_numbers.move_to_end(allowed)
            return compiled


_VOCABULARIES: OrderedDict[tuple, tuple[object, DecodingVocabulary]] = OrderedDict()
_VOCABULARIES_LOCK = threading.Lock()


def _tokenizer_key(tokenizer) -> tuple:
    """Same files, same vocabulary: key by the directory a tokenizer was loaded from when it is
    one, else by the object itself."""
    path = str(getattr(tokenizer, "name_or_path", "") or "")
    if path and Path(path).is_dir():
        return (type(tokenizer).__name__, str(Path(path).resolve()), len(tokenizer))
    return ("object", id(tokenizer), len(tokenizer))


def vocabulary_for(tokenizer) -> DecodingVocabulary:
    """The ``DecodingVocabulary`` of ``tokenizer``, built once (a few seconds for a 262k
    vocabulary) and kept for the process (the last four tokenizers)."""
    key = _tokenizer_key(tokenizer)
    with _VOCABULARIES_LOCK:
        entry = _VOCABULARIES.get(key)
        if entry is not None:
            _VOCABULARIES.move_to_end(key)
            return entry[1]
    vocabulary = DecodingVocabulary(tokenizer)
    with _VOCABULARIES_LOCK:
        # Keep the tokenizer alive with its vocabulary so an id-based key cannot be reused.
        _VOCABULARIES[key] = (tokenizer, vocabulary)
        while len(_VOCABULARIES) > 4:
            _VOCABULARIES.popitem(last=False)
    return vocabulary


# -- the logits processor -------------------------------------------------------------------------


class _Row:
    """One rule set compiled against the vocabulary (shared by the rows of one request)."""

    def __init__(self, vocab: DecodingVocabulary, rules: RowRules):
        self.rules = rules
        self.terms = vocab.compiled_terms(_rules_terms(rules))
        self.numbers = (vocab.compiled_numbers(frozenset(rules.allowed_numbers))
                        if rules.ground_numbers else None)
        self.stops = tuple(s.encode() for s in rules.stop_strings if s)
        self.stop_keep = max((len(s) for s in self.stops), default=1) - 1
        context = rules.context.encode()
        self.context_tail = _keep(_norm(context), self.terms.tail_size)
        number = ""
        if self.numbers is not None and context:
            number = self.numbers.open_number("", context[-64:])
            if number and not (self.numbers.ok(number, open_end=True)):
                number = ""  # the context's own number is not ours to police
        self.context_number = number


class _State:
    __slots__ = ("finished", "norm", "number", "pending", "raw", "seen", "stopped", "text")

    def __init__(self, row: _Row):
        self.seen = 0
        self.finished = False
        self.stopped = False
        self.raw = b""
        self.norm = row.context_tail
        self.number = row.context_number
        self.text = row.rules.context.encode()  # only kept while facts are pending
        self.pending = list(row.rules.fact_values)


class GroundedDecoding(LogitsProcessor):
    """Masks, per row, the tokens that would break that row's ``RowRules`` (see the module
    docstring); a row whose rules are ``None`` is left alone.

    ``input_ids[:, prompt_width:]`` are each row's generated tokens (rows padded on the left).
    Rows keep their state (byte tails, open number, stop seen) and update it from the last token
    each step; a processor that meets a sequence it has not followed (a fresh one, or a
    restart) rebuilds the state from all generated tokens. Scores are changed in place. A row
    left with no allowed token gets EOS. Put it before the sampler, so sampling picks among the
    allowed tokens. One host sync per step (the last token ids)."""

    def __init__(
        self,
        vocabulary: DecodingVocabulary,
        rows: Sequence[RowRules | None],
        prompt_width: int,
        eos_token_ids: Sequence[int],
    ):
        self.vocabulary = vocabulary
        self.rows = list(rows)
        self.prompt_width = int(prompt_width)
        self.eos_token_ids = sorted({int(i) for i in eos_token_ids})
        if not self.eos_token_ids:
            raise ValueError("GroundedDecoding needs at least one EOS token id")
        self._eos = set(self.eos_token_ids)
        compiled: dict[RowRules, _Row] = {}
        self._row_rules: list[_Row | None] = []
        for rules in self.rows:
            if rules is None:
                self._row_rules.append(None)
                continue
            if rules not in compiled:
                compiled[rules] = _Row(vocabulary, rules)
            self._row_rules.append(compiled[rules])
        self._active = [i for i, row in enumerate(self._row_rules) if row is not None]
        self._states: list[_State | None] = [
            _State(row) if row is not None else None for row in self._row_rules
        ]
        self._static: torch.Tensor | None = None
        self._static_key: tuple | None = None
        self._governed_mask: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.rows)

    # -- state --------------------------------------------------------------------------------

    def _push(self, row: _Row, state: _State, token: int) -> None:
        state.seen += 1
        if state.finished:
            return
        if token in self._eos:
            state.finished = True
            return
        data = self.vocabulary.token_bytes[token] if 0 <= token < self.vocabulary.size else b""
        if not data:
            return
        if row.stops and not state.stopped:
            window = _keep(state.raw, row.stop_keep) + data
            if any(stop in window for stop in row.stops):
                state.stopped = True
            state.raw = _keep(window, row.stop_keep)
        norm = self.vocabulary.norm[token]
        if state.norm.endswith(b" ") and norm.startswith(b" "):
            norm = norm[1:]
        state.norm = _keep(state.norm + norm, row.terms.tail_size)
        if row.numbers is not None:
            state.number = row.numbers.open_number(state.number[-64:], data)
        if state.pending:
            state.text += data

    def _sync(self, input_ids: torch.LongTensor) -> None:
        generated = input_ids.shape[1] - self.prompt_width
        if generated < 0:
            raise ValueError(f"input_ids are {input_ids.shape[1]} wide, shorter than the "
                             f"prompt width {self.prompt_width}")
        last = input_ids[:, -1].tolist() if generated > 0 else None
        full: list[list[int]] | None = None
        for r in self._active:
            state, row = self._states[r], self._row_rules[r]
            if state.seen == generated:
                continue
            if last is not None and state.seen == generated - 1:
                self._push(row, state, int(last[r]))
                continue
            if full is None:
                full = input_ids[:, self.prompt_width:].tolist()
            state = self._states[r] = _State(row)
            for token in full[r]:
                self._push(row, state, int(token))

    # -- masks --------------------------------------------------------------------------------

    def _static_index(self, width: int, device: torch.device) -> torch.Tensor:
        """Flat indices (``row * width + id``) of the tokens each row may never produce: those
        containing a banned term, special tokens (with ``block_markup``) and ids the tokenizer
        does not know (a model vocabulary padded past the tokenizer's)."""
        key = (width, str(device))
        if self._static is not None and self._static_key == key:
            return self._static
        vocab = self.vocabulary
        eos = np.array(self.eos_token_ids, dtype=np.int64)
        per_rules: dict[int, np.ndarray] = {}
        flat: list[np.ndarray] = []
        for r in self._active:
            row = self._row_rules[r]
            ids = per_rules.get(id(row))
            if ids is None:
                banned = [row.terms.always, np.arange(vocab.size, width, dtype=np.int64)]
                if row.rules.block_markup:
                    banned.append(vocab.special_ids)
                ids = np.setdiff1d(np.concatenate(banned), eos)
                ids = per_rules[id(row)] = ids[ids < width]
            flat.append(ids + r * width)
        self._static = torch.from_numpy(np.concatenate(flat)).to(device)
        self._static_key = key
        return self._static

    def _row_constraints(self, r: int) -> tuple[list[np.ndarray], np.ndarray | None, bool]:
        """``(banned id arrays, allowed ids or None, force EOS)`` for row ``r`` now."""
        row, state = self._row_rules[r], self._states[r]
        if state.stopped:
            return [], None, True
        banned: list[np.ndarray] = []
        allowed: np.ndarray | None = None
        terms = row.terms
        if terms.longest:
            if not _is_word(_last_char(state.norm)) and len(terms.at_start):
                banned.append(terms.at_start)
            banned.extend(terms.continuations(self.vocabulary, state.norm))
            if terms.exemptable:
                required = terms.pending(state.norm)
                if required:
                    allowed = self.vocabulary._pending_allowed(required)
        if row.numbers is not None:
            ban, only = row.numbers.for_state(state.number)
            if only is not None:
                allowed = only if allowed is None else np.intersect1d(allowed, only)
            elif len(ban):
                banned.append(ban)
        return banned, allowed, False

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        rows, width = scores.shape
        if rows != len(self.rows):
            raise ValueError(f"GroundedDecoding has rules for {len(self.rows)} rows, got {rows}")
        if not self._active:
            return scores
        self._sync(input_ids)
        if not scores.is_contiguous():
            scores = scores.contiguous()
        device = scores.device
        flat = scores.view(-1)
        self._nudge_facts(flat, width, device)
        flat.index_fill_(0, self._static_index(width, device), _NEG_INF)

        banned_flat: list[np.ndarray] = []
        kept_flat: list[np.ndarray] = []
        kept: list[int] = []
        forced: list[int] = []
        clip = self.vocabulary.size > width
        for r in self._active:
            if self._states[r].finished:
                continue
            banned, allowed, force = self._row_constraints(r)
            if force:
                forced.append(r)
                continue
            if clip:
                banned = [ids[ids < width] for ids in banned]
                allowed = allowed[allowed < width] if allowed is not None else None
            for ids in banned:
                banned_flat.append(ids + r * width)
            if allowed is not None:
                kept.append(r)
                kept_flat.append(allowed + r * width)

        if banned_flat:
            index = torch.from_numpy(np.concatenate(banned_flat)).to(device)
            flat.index_fill_(0, index, _NEG_INF)
        eos = torch.tensor([i for i in self.eos_token_ids if i < width], device=device)
        if kept:
            # Only the allowed ids keep their (already masked) scores.
            index = torch.from_numpy(np.concatenate(kept_flat)).to(device)
            values = flat[index]
            scores.index_fill_(0, torch.tensor(kept, device=device), _NEG_INF)
            flat[index] = values
        if forced:
            forced_t = torch.tensor(forced, device=device)
            scores.index_fill_(0, forced_t, _NEG_INF)
            scores[forced_t.unsqueeze(1), eos.unsqueeze(0)] = 0.0
        # Never leave a governed row without a choice: EOS (score 0) when all else is -inf.
        # One reduction over the scores, no host sync.
        dead = self._governed(rows, device) & (scores.amax(dim=-1) == _NEG_INF)
        current = scores[:, eos]
        scores[:, eos] = torch.where(dead.unsqueeze(1), torch.zeros_like(current), current)
        return scores

    def _nudge_facts(self, flat: torch.Tensor, width: int, device: torch.device) -> None:
        """Raise the tokens that start each fact a row has not mentioned yet (``checks``'
        sense of mentioned: the value, or half its words), so copy covers the product's facts;
        the masks applied after still decide what may be written."""
        boosted: list[np.ndarray] = []
        for r in self._active:
            state = self._states[r]
            if not state.pending or state.finished or state.stopped:
                continue
            words, normalized = _text_index(state.text.decode("utf-8", "ignore"))
            state.pending = [v for v in state.pending if not _mentions(v, words, normalized)]
            zh = _is_zh(self._row_rules[r].rules.locale)
            for value in state.pending:
                ids = self.vocabulary.starting_tokens(value, zh=zh)
                ids = ids[ids < width]
                if len(ids):
                    boosted.append(ids + r * width)
        if boosted:
            index = torch.from_numpy(np.unique(np.concatenate(boosted))).to(device)
            flat.index_add_(0, index, torch.full((len(index),), FACT_NUDGE, dtype=flat.dtype,
                                                 device=device))

    def select_rows(self, keep: Sequence[int]) -> None:
        """Go on with rows ``keep`` only, in that order (the engine drops finished rows)."""
        self.rows = [self.rows[r] for r in keep]
        self._row_rules = [self._row_rules[r] for r in keep]
        self._states = [self._states[r] for r in keep]
        self._active = [i for i, row in enumerate(self._row_rules) if row is not None]
        self._static = self._static_key = self._governed_mask = None

    def _governed(self, rows: int, device: torch.device) -> torch.Tensor:
        """Which rows have rules, as a bool tensor on ``device``."""
        if self._governed_mask is None or self._governed_mask.device != device:
            mask = torch.zeros(rows, dtype=torch.bool)
            mask[self._active] = True
            self._governed_mask = mask.to(device)
        return self._governed_mask


# -- token budget ---------------------------------------------------------------------------------

_SAMPLES = {
    "en": (
        "The Fjell kettle does one job and does it quietly. Its 1.7 L body is 18/8 stainless "
        "steel with a brushed finish that hides fingerprints, and the 2200 W element brings a "
        "full load to the boil without keeping you waiting. Auto shut-off and boil-dry "
        "protection mean you can walk away once it switches off.",
        "Skarp is the knife you will reach for on most days. Its 20 cm blade is long enough to "
        "halve a cabbage and nimble enough for a shallot, and the handle is oiled oak, warm in "
        "the hand. Wash it by hand and dry it straight away.",
    ),
    "zh": (
        "这款铁观音采自福建安溪，是2024年的春茶，以传统炭焙工艺焙制。开汤后焙火香里透出兰花香，"
        "茶汤醇厚，回甘明显，适合喜欢浓一些口感的茶友。建议用100℃沸水冲泡。",
        "大红袍产自福建武夷山，这一款走中足火路线，入口岩韵明显，香气里带着桂皮与焦糖的温暖气息，"
        "喝完口中久久留香。净含量128克，分装成16袋8克的独立小泡袋。",
    ),
}
_BUDGETS: dict[tuple, float] = {}


def _sample_texts(group: str) -> list[str]:
    """Descriptions of the demo catalog in that language (the fixed samples without it)."""
    texts: list[str] = []
    try:
        with _CATALOG.open(encoding="utf-8") as handle:
            for line in handle:
                line = line.strip()
                if not line:
                    continue
                item = json.loads(line)
                if ("zh" if _is_zh(item.get("locale", "")) else "en") == group:
                    texts.append(str(item.get("description") or ""))
    except (OSError, ValueError):
        texts = []
    texts = [t for t in texts if t.strip()]
    return texts or list(_SAMPLES[group])


def chars_per_token(tokenizer, locale: str) -> float:
    """Characters per token of ``tokenizer`` on copy in ``locale`` (the demo catalog's
    descriptions), measured once per tokenizer and language."""
    group = "zh" if _is_zh(locale) else "en"
    key = (_tokenizer_key(tokenizer), group)
    cached = _BUDGETS.get(key)
    if cached is None:
        texts = _sample_texts(group)
        chars = sum(len(t) for t in texts)
        tokens = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
        cached = _BUDGETS[key] = chars / max(1, tokens)
    return cached


def token_budget(max_chars: int, tokenizer, locale: str) -> int:
    """Max new tokens for copy of at most ``max_chars`` characters in ``locale``: the limit
    over the tokenizer's characters per token, plus a margin (``BUDGET_MARGIN`` and
    ``BUDGET_SLACK`` tokens, so copy near the limit is not cut mid-sentence), between
    ``BUDGET_FLOOR`` and ``BUDGET_CEILING``."""
    if max_chars < 1:
        raise ValueError("max_chars must be >= 1")
    tokens = math.ceil(max_chars / chars_per_token(tokenizer, locale) * (1 + BUDGET_MARGIN))
    return max(BUDGET_FLOOR, min(BUDGET_CEILING, tokens + BUDGET_SLACK))
