"""A tokenizer's vocabulary read once for decoding: each token's text and bytes, which tokens
start or continue numbers, banned terms compiled against it, the scripts copy is written in."""

from __future__ import annotations

import bisect
import json
import logging
import re
import sys
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..checks.claims import _ZH_EXEMPT_AFTER
from ..checks.matching import _is_wordlike
from ..text import HAN_RANGES
from .rules import (
    _EMPTY,
    _NON_NUMBER_RE,
    _OPEN_RUN_RE,
    _RUN_RE,
    _WHITESPACE_RE,
    _WORD_RE,
    MARKUP_TERMS,
    RowRules,
)

logger = logging.getLogger(__name__)



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



def _in_copy_scripts(code: int) -> bool:
    slot = bisect.bisect_right(_COPY_STARTS, code) - 1
    return slot >= 0 and code <= COPY_SCRIPTS[slot][1]



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

