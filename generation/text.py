"""Text helpers both packages share: which characters are Han (Chinese) script, and the one way
text from a browser, a file or the API is normalised before it is stored or checked."""

from __future__ import annotations

# CJK Unified Ideographs, Extension A, Compatibility Ideographs, and the supplementary planes'
# extensions B–G (rare in copy, but names and place names use them).
HAN_RANGES = (
    (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x3134F),
)
# The Basic Multilingual Plane part, as a regular-expression character class body.
HAN_CLASS = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
KANA_CLASS = r"\u3040-\u30ff"


def is_han(ch: str) -> bool:
    code = ord(ch)
    return any(start <= code <= end for start, end in HAN_RANGES)


def plain_text(text: str | None) -> str:
    """Line breaks as ``\\n`` (a browser sends ``\\r\\n``, old files ``\\r``), outer whitespace
    dropped: how copy is stored, so a check's span and a character count mean the same
    everywhere."""
    return (text or "").replace("\r\n", "\n").replace("\r", "\n").strip()
