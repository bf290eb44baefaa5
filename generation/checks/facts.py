"""Copy against the product's facts: which facts it mentions, a title that names the product, no
facts of the example products. Numbers are checked in ``quantities``, materials and brands in
``names``."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator

from ..i18n import gettext_noop
from ..prompts import KindSpec, ProductFacts, facts_text
from .flags import ERROR, INFO, WARNING, Flag, _flag
from .matching import _CJK_RE, _Taken
from .quantities import _NUMBER, _UNIT_ALIASES, _canonical_number, _numbers_in

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

