"""Finding terms in copy: word-boundary patterns, a trie for many names, and spans kept
without overlap, each linear in the text's length."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from functools import lru_cache

from ..text import HAN_CLASS

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

