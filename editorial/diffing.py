"""Plain-text segmentation for display: diffs between two texts and check flags laid over a text.

Pure functions (no Django, no HTML): they return plain segments of the original text, and the
templates render them with auto-escaping, so untrusted copy never becomes markup here.

Diffs are word-level for English and other space-separated scripts, and Chinese-aware: runs of
Chinese characters are segmented into words with jieba (one token per character if jieba is not
installed). Every character of the input belongs to exactly one token, whitespace included, so a
diff is lossless: joining the "equal" and "insert" segments gives the new text back, and joining
the "equal" and "delete" segments gives the old one.

The work is bounded, so no page waits on a diff: texts too long to compare word by word (over
``DETAIL_MAX_CHARS`` together, or more than ``MAX_PAIRS`` token pairs to compare once their
common start and end are set aside) are compared sentence by sentence, and past that the changed
middle is shown as one deletion and one insertion (``Diff.level`` says which).
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, NamedTuple

from django.utils.translation import gettext

from generation.text import HAN_CLASS, KANA_CLASS

__all__ = [
    "DETAIL_MAX_CHARS",
    "Diff",
    "DiffSegment",
    "MAX_PAIRS",
    "MarkSegment",
    "MarkedText",
    "diff_has_changes",
    "diff_new_text",
    "diff_old_text",
    "mark_flags",
    "text_diff",
    "tokenize",
]

EQUAL: Literal["equal"] = "equal"
INSERT: Literal["insert"] = "insert"
DELETE: Literal["delete"] = "delete"

# Chinese (and the other Han-script) characters; kana so Japanese is not split per character by
# the word pattern either.
_CJK = KANA_CLASS + HAN_CLASS
_CJK_RUN = re.compile(f"[{_CJK}]+")
# Outside CJK runs: words (letters and digits, with inner apostrophes and decimal or thousands
# separators kept, so "don't", "1.7" and "1,200" are one token each), runs of whitespace, and
# single other characters (punctuation, full-width punctuation, emoji).
_TOKEN = re.compile(r"\w+(?:['’]\w+)*(?:[.,]\d+)*|\s+|[^\w\s]")


@lru_cache(maxsize=1)
def _jieba():
    """jieba's default tokenizer, loaded once per process (about half a second), or None."""
    try:
        import jieba
    except ImportError:  # pragma: no cover - jieba is a dependency; this keeps diffs working
        return None
    jieba.setLogLevel(logging.WARNING)
    return jieba


def _segment_cjk(run: str) -> list[str]:
    jieba = _jieba()
    if jieba is None or len(run) == 1:
        return list(run)
    # HMM off: only dictionary words, so the same run always splits the same way in both texts.
    return [word for word in jieba.cut(run, HMM=False) if word]


def tokenize(text: str) -> list[str]:
    """The diff tokens of ``text``: words, whitespace runs, punctuation; Chinese segmented into
    words. ``"".join(tokenize(text)) == text`` always holds."""
    tokens: list[str] = []
    position = 0
    for match in _CJK_RUN.finditer(text or ""):
        tokens += _TOKEN.findall(text[position:match.start()])
        tokens += _segment_cjk(match.group(0))
        position = match.end()
    tokens += _TOKEN.findall((text or "")[position:])
    return tokens


class DiffSegment(NamedTuple):
    """A run of text that is the same in both texts, or only in the new one, or only in the
    old one. Unpacks as ``(op, text)``."""

    op: str  # "equal" | "insert" | "delete"
    text: str

    @property
    def is_blank(self) -> bool:
        """Whitespace only: templates make such insertions and deletions visible."""
        return self.text.isspace()


@dataclass
class _Change:
    deleted: list[str] = field(default_factory=list)
    inserted: list[str] = field(default_factory=list)


def _is_glue(tokens: Sequence[str]) -> bool:
    """An unchanged run so small that showing it between two changes fragments the diff:
    whitespace only ("quick brown" → "slow red" reads better as one replacement)."""
    return all(token.isspace() for token in tokens)


# Bounds on a diff's work. difflib compares up to every pair of tokens (a repetitive text is
# its worst case), so a diff compares at most MAX_PAIRS pairs (about 0.1 s); texts longer than
# DETAIL_MAX_CHARS together are not tokenized at all (jieba takes about 0.1 s per 40,000
# Chinese characters).
DETAIL_MAX_CHARS = 20_000
MAX_PAIRS = 1_000_000

WORDS = "words"
SENTENCES = "sentences"
WHOLE = "whole"


class Diff(list):
    """The segments of a diff (a list of ``DiffSegment``), and ``level``: how closely the
    texts were compared — ``"words"``; ``"sentences"`` (too long to compare word by word:
    changed sentences are marked whole); or ``"whole"`` (too long to compare in detail: the
    part between their common start and end is one deletion and one insertion)."""

    def __init__(self, segments: Iterable[DiffSegment] = (), level: str = WORDS) -> None:
        super().__init__(segments)
        self.level = level

    @property
    def coarse(self) -> bool:
        return self.level != WORDS


# A sentence: anything up to its end mark(s), the spaces after them and any line breaks. Every
# character falls in exactly one sentence, so the diff stays lossless.
_SENTENCE = re.compile(r"[^.!?。！？;；\n]*[.!?。！？;；]*[^\S\n]*\n*")


def _sentences(text: str) -> list[str]:
    """``text`` cut after each sentence (its end mark and the spaces after it) and line."""
    return [piece for piece in _SENTENCE.findall(text) if piece]


Opcode = tuple[str, int, int, int, int]


def _bounded_opcodes(a: Sequence[str], b: Sequence[str]) -> list[Opcode] | None:
    """difflib's opcodes from ``a`` to ``b``, or None when comparing them would take more than
    ``MAX_PAIRS`` token pairs even with their common start and end set aside."""
    if len(a) * len(b) <= MAX_PAIRS:
        return difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    head = _common_head(a, b)
    tail = _common_tail(a, b, head)
    a_mid, b_mid = a[head:len(a) - tail], b[head:len(b) - tail]
    if len(a_mid) * len(b_mid) > MAX_PAIRS:
        return None
    matcher = difflib.SequenceMatcher(None, a_mid, b_mid, autojunk=False)
    opcodes: list[Opcode] = [("equal", 0, head, 0, head)] if head else []
    opcodes += [(tag, i1 + head, i2 + head, j1 + head, j2 + head)
                for tag, i1, i2, j1, j2 in matcher.get_opcodes()]
    if tail:
        opcodes.append(("equal", len(a) - tail, len(a), len(b) - tail, len(b)))
    return opcodes


def _whole_opcodes(a: Sequence[str], b: Sequence[str]) -> list[Opcode]:
    """The common start and end unchanged, everything between them replaced."""
    head = _common_head(a, b)
    tail = _common_tail(a, b, head)
    opcodes: list[Opcode] = [("equal", 0, head, 0, head)] if head else []
    if head < len(a) - tail or head < len(b) - tail:
        opcodes.append(("replace", head, len(a) - tail, head, len(b) - tail))
    if tail:
        opcodes.append(("equal", len(a) - tail, len(a), len(b) - tail, len(b)))
    return opcodes


def _common_head(a: Sequence[str], b: Sequence[str]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _common_tail(a: Sequence[str], b: Sequence[str], head: int) -> int:
    n = 0
    limit = min(len(a), len(b)) - head
    while n < limit and a[len(a) - 1 - n] == b[len(b) - 1 - n]:
        n += 1
    return n


def text_diff(old: str, new: str) -> Diff:
    """The changes from ``old`` to ``new`` as segments; adjacent segments never share an op, and
    in a replacement the deletion comes before the insertion. Word by word where the work stays
    bounded, else sentence by sentence, else whole (see ``Diff``)."""
    old, new = old or "", new or ""
    if len(old) + len(new) <= DETAIL_MAX_CHARS:
        a, b = tokenize(old), tokenize(new)
        opcodes = _bounded_opcodes(a, b)
        if opcodes is not None:
            return Diff(_segments(a, b, opcodes), WORDS)
    a, b = _sentences(old), _sentences(new)
    opcodes = _bounded_opcodes(a, b)
    if opcodes is not None:
        return Diff(_segments(a, b, opcodes), SENTENCES)
    return Diff(_segments(a, b, _whole_opcodes(a, b)), WHOLE)


def _segments(a: Sequence[str], b: Sequence[str], opcodes: Iterable[Opcode]
              ) -> list[DiffSegment]:
    chunks: list[list[str] | _Change] = []  # a list of tokens is an unchanged run
    for tag, i1, i2, j1, j2 in opcodes:
        if tag == "equal":
            chunks.append(list(a[i1:i2]))
        else:
            chunks.append(_Change(list(a[i1:i2]), list(b[j1:j2])))

    # Fold whitespace-only unchanged runs that sit between two changes into one change.
    merged: list[list[str] | _Change] = []
    for index, chunk in enumerate(chunks):
        previous = merged[-1] if merged else None
        if isinstance(chunk, _Change) and isinstance(previous, _Change):
            previous.deleted += chunk.deleted
            previous.inserted += chunk.inserted
            continue
        following = chunks[index + 1] if index + 1 < len(chunks) else None
        if (isinstance(chunk, list) and isinstance(previous, _Change)
                and isinstance(following, _Change) and _is_glue(chunk)):
            previous.deleted += chunk
            previous.inserted += chunk
            continue
        merged.append(chunk)

    segments: list[DiffSegment] = []

    def add(op: str, tokens: list[str]) -> None:
        if not tokens:
            return
        text = "".join(tokens)
        if segments and segments[-1].op == op:
            segments[-1] = DiffSegment(op, segments[-1].text + text)
        else:
            segments.append(DiffSegment(op, text))

    for chunk in merged:
        if isinstance(chunk, _Change):
            add(DELETE, chunk.deleted)
            add(INSERT, chunk.inserted)
        else:
            add(EQUAL, chunk)
    return segments


def diff_has_changes(segments: Iterable[DiffSegment]) -> bool:
    return any(op != EQUAL for op, _ in segments)


def diff_new_text(segments: Iterable[DiffSegment]) -> str:
    """The new text, rebuilt from the diff (what applying it to the old text gives)."""
    return "".join(text for op, text in segments if op != DELETE)


def diff_old_text(segments: Iterable[DiffSegment]) -> str:
    """The old text, rebuilt from the diff."""
    return "".join(text for op, text in segments if op != INSERT)


# --- Check flags laid over the text -----------------------------------------------------------

SEVERITY_ORDER = {"error": 3, "warning": 2, "info": 1}


class MarkSegment(NamedTuple):
    """A run of the text and the flags whose spans cover all of it (1-based numbers into
    ``MarkedText.flags``, their worst severity and their messages); no flags: plain text."""

    text: str
    numbers: tuple[int, ...] = ()
    severity: str = ""
    messages: tuple[str, ...] = ()

    @property
    def marked(self) -> bool:
        return bool(self.numbers)


@dataclass(frozen=True)
class MarkedText:
    """``segments`` joined are the text; ``flags`` are the flags in their given order, each a
    dict with ``number`` (1-based), ``excerpt`` (the flagged text, "" for a flag about the whole
    text) and ``spanned`` added."""

    segments: list[MarkSegment]
    flags: list[dict[str, Any]]

    @property
    def counts(self) -> dict[str, int]:
        counts = {"error": 0, "warning": 0, "info": 0}
        for flag in self.flags:
            severity = str(flag.get("severity", ""))
            counts[severity] = counts.get(severity, 0) + 1
        return counts


def _span(flag: Mapping[str, Any], length: int) -> tuple[int, int] | None:
    try:
        start, end = int(flag.get("start", -1)), int(flag.get("end", -1))
    except (TypeError, ValueError):
        return None
    if start < 0 or end <= start:
        return None
    start, end = min(start, length), min(end, length)
    return (start, end) if end > start else None


def flag_message(flag: Mapping[str, Any]) -> str:
    """The flag's message in the reader's language: its template translated, then filled in.
    A flag stored without one, or whose template is no longer in the catalog's wording, keeps
    the English message it was stored with."""
    template, params = flag.get("template"), flag.get("params")
    if not template or not isinstance(params, Mapping):
        return str(flag.get("message", ""))
    try:
        return gettext(template) % params
    except (KeyError, TypeError, ValueError):  # a translation that lost a placeholder
        return str(flag.get("message", ""))


def mark_flags(text: str, flags: Iterable[Mapping[str, Any]]) -> MarkedText:
    """Split ``text`` at every flag boundary, so overlapping and nested spans each mark the
    exact characters they cover; each piece knows every flag over it and the worst severity.

    Spans are character offsets as ``generation.checks`` gives them; out-of-range spans are
    clipped, and flags without a span (about the whole text) are listed but mark nothing."""
    text = text or ""
    listed: list[dict[str, Any]] = []
    spans: list[tuple[int, int, int]] = []  # (start, end, number)
    for number, flag in enumerate(flags, start=1):
        span = _span(flag, len(text))
        listed.append({
            **flag,
            "message": flag_message(flag),
            "number": number,
            "spanned": span is not None,
            "excerpt": text[span[0]:span[1]] if span else "",
        })
        if span:
            spans.append((span[0], span[1], number))
    # One sweep over the cut points, keeping the flags open at each: linear in the text's
    # cuts, not cuts × flags.
    opening: dict[int, list[int]] = {}
    closing: dict[int, list[int]] = {}
    for start, end, number in spans:
        opening.setdefault(start, []).append(number)
        closing.setdefault(end, []).append(number)
    cuts = sorted({0, len(text), *opening, *closing})
    open_numbers: set[int] = set()
    runs: list[tuple[tuple[int, ...], list[str]]] = []
    for start, end in zip(cuts, cuts[1:], strict=False):
        open_numbers.difference_update(closing.get(start, ()))
        open_numbers.update(opening.get(start, ()))
        numbers = tuple(sorted(open_numbers))
        if runs and runs[-1][0] == numbers:
            runs[-1][1].append(text[start:end])
        else:
            runs.append((numbers, [text[start:end]]))
    segments: list[MarkSegment] = []
    for numbers, pieces in runs:
        messages = tuple(str(listed[n - 1].get("message", "")) for n in numbers)
        severity = ""
        if numbers:
            severity = max(
                (str(listed[n - 1].get("severity", "")) for n in numbers),
                key=lambda value: SEVERITY_ORDER.get(value, 0),
            )
        segments.append(MarkSegment("".join(pieces), numbers, severity, messages))
    return MarkedText(segments=segments, flags=listed)
