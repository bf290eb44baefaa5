"""What the queue's text search reads, kept on each draft so one indexed column answers it.

A draft's ``search_text`` is its product's SKU and title and its current text, joined by a
separator nobody types: "the SKU, the title or the current text contains q" is then one
``icontains`` on one column, which PostgreSQL answers from a trigram index instead of three
scans behind joins.

Trigrams cannot find a one- or two-character Chinese word (``%茶杯%`` has no trigram), so each
draft also keeps ``search_grams``: every Han or kana character of its search text and every
pair of neighbours, as ASCII words in a GIN-indexed ``tsvector``. A query's own characters and
pairs must all be there — a cheap index lookup that every draft containing the query passes —
and the ``icontains`` then keeps exactly the drafts that contain it, so the results are the
ones the plain filter gives.
"""

from __future__ import annotations

import re

from generation.text import HAN_CLASS, KANA_CLASS

SEPARATOR = "\x1f"  # ASCII unit separator: no search box sends it

_CJK_RUN = re.compile(f"[{HAN_CLASS}{KANA_CLASS}]+")


def search_text(*, sku: str, title: str, text: str | None) -> str:
    return SEPARATOR.join((sku or "", title or "", text or ""))


def _unigram(char: str) -> str:
    return f"h{ord(char):x}"


def _bigram(first: str, second: str) -> str:
    return f"h{ord(first):x}x{ord(second):x}"


def search_grams(text: str) -> str:
    """The Han/kana characters and neighbouring pairs of ``text``, each once, as words."""
    words: dict[str, None] = {}
    for run in _CJK_RUN.findall(text or ""):
        for index, char in enumerate(run):
            words[_unigram(char)] = None
            if index:
                words[_bigram(run[index - 1], char)] = None
    return " ".join(words)


def query_grams(query: str) -> list[str]:
    """The words every text containing ``query`` has in its ``search_grams``: the pairs of
    each Han/kana run of the query (a lone character: itself)."""
    words: dict[str, None] = {}
    for run in _CJK_RUN.findall(query):
        if len(run) == 1:
            words[_unigram(run)] = None
        for first, second in zip(run, run[1:], strict=False):
            words[_bigram(first, second)] = None
    return list(words)


def can_use_search_text(query: str) -> bool:
    """Whether matching the joined ``search_text`` gives what matching each part gives: a
    query holding the separator could match across two parts."""
    return SEPARATOR not in query
