"""Text in catalog files: a product's HTML body as plain text, and locales as people write
them or as the text suggests."""

from __future__ import annotations

import html
from html.parser import HTMLParser

from generation.text import is_han

from ..models import Locale

_BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption",
    "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav",
    "ol", "p", "pre", "section", "table", "tbody", "thead", "tfoot", "tr", "ul",
})



_CELL_TAGS = frozenset({"td", "th"})



_SKIP_TAGS = frozenset({"script", "style", "template", "noscript", "head", "title"})



class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in _SKIP_TAGS:
            self._skipping += 1
        elif tag in _BLOCK_TAGS:
            self._break()
        elif tag in _CELL_TAGS:
            self._parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self._break()

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self._parts.append(data)

    def _break(self) -> None:
        # HTML whitespace rules: runs of whitespace (newlines and &nbsp; included) are one space.
        line = " ".join("".join(self._parts).split())
        if line:
            self.lines.append(line)
        self._parts = []

    def text(self) -> str:
        self.close()
        self._break()
        return "\n".join(self.lines)



def html_to_text(body: str) -> str:
    """Plain text from a product's HTML body: paragraphs, headings and list items become lines,
    entities are unescaped, tags (and script/style content) removed. Text without any tags keeps
    its own line breaks."""
    if "<" not in body:
        lines = (" ".join(line.split()) for line in html.unescape(body).splitlines())
        return "\n".join(line for line in lines if line)
    parser = _TextExtractor()
    parser.feed(body)
    return parser.text()



def locale_normalize(value: str) -> str | None:
    """``Locale`` value for what people write ("en-US", "zh_CN", "zh-Hans" ...); None when it
    is not one Copydesk supports (traditional Chinese included)."""
    parts = value.strip().casefold().replace("_", "-").split("-")
    if parts[0] in ("en", "english"):
        return Locale.EN
    if parts[0] in ("zh", "chinese") and "hant" not in parts and (
        len(parts) == 1 or "hans" in parts or parts[1] in ("cn", "sg", "my")
    ):
        return Locale.ZH_HANS
    return None



def locale_detect(*texts: str) -> str:
    han = latin = 0
    for text in texts:
        for ch in text:
            if is_han(ch):
                han += 1
            elif ch.isascii() and ch.isalpha():
                latin += 1
    return Locale.ZH_HANS if han and han * 3 >= latin else Locale.EN
