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
from .matching import _CJK, _CJK_RE, _Taken
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
    if not any(_CJK_RE.match(word) and any(
            word[i:i + 2] in normalized for i in range(max(1, len(word) - 1)))
            or _stem(word.lower()) in words or word.lower() in words for word in subject):
        return [_flag(
            "off_subject", WARNING,
            gettext_noop('The title does not name the product: it has none of the words of '
                         '"%(title)s".'),
            title=facts.title,
        )]
    kind_words = _kind_words(facts.title, brand)
    if kind_words and not any(_stem(part) in words for word in kind_words
                              for part in _word_parts(word)):
        return [_flag(
            "off_subject", WARNING,
            gettext_noop('The title does not say what the product is: it has no word of '
                         '"%(kind)s" (from "%(title)s").'),
            kind=" ".join(kind_words), title=facts.title,
        )]
    return []


# Where an English title's naming phrase ends: what follows qualifies it ("Leather Phone Case
# for iPhone 15", "Vik Stoneware Mugs, Set of 2", "Switchback Trekking Poles (Pair)").
_QUALIFIER_RE = re.compile(r",|\(|\s[-–|]\s|\s(?:for|with|in|by)\s", re.IGNORECASE)


def _kind_words(title: str, brand: str) -> list[str]:
    """The last two words of an English title's naming phrase, which say what the product is
    ("Frying Pan" of "Sten Carbon Steel Frying Pan 28 cm", "Dog Coat" of "Squall Waterproof
    Dog Coat"). Chinese titles run their words together; their characters are matched above.
    A title keeps what the product is when it has either word: "Base Layer" is still the
    "Merino Base Layer Crew", a "Fur Collar" is not the "Waterproof Dog Coat"."""
    title = unicodedata.normalize("NFKC", title)
    if _CJK_RE.search(title):
        return []
    phrase = _QUALIFIER_RE.split(title, maxsplit=1)[0]
    brand_words = set(brand.split())
    words = [w for w in _WORD_RE.findall(phrase)
             if w.lower() not in _UNIT_ALIASES and w.lower() not in brand_words
             and _word_parts(w)]
    # Of a two-word title the first word is the name ("Fjell Kettle").
    return words[-2:] if len(words) >= 3 else words[-1:] if len(words) == 2 else []


def _word_parts(word: str) -> list[str]:
    """A word's parts as the text index holds them ("half-zip" -> half, zip; "chef's" -> chef)."""
    return [part for part in re.findall(r"[a-z]+", word.lower())
            if len(part) >= 3 and part not in _STOPWORDS]




# Words a title may put before the product's kind without naming anything ("经典茉莉花茶",
# "Everyday Stoneware Mugs"): generic, not a new name.
_GENERIC_TITLE_MODIFIERS = frozenset(
    "经典 精选 新款 家用 日常 简约 classic everyday essential essentials new simple daily modern "
    "original".split())



# Attribute keys that give where the product comes from: the title words they contain name it.
_ORIGIN_KEYS = frozenset({"origin", "产地", "原产地", "产区", "country of origin", "made in"})



_CJK_RUN_RE = re.compile(f"[{_CJK}]+")



# At most this many characters (words) of a new name are quoted: the check reads no further.
_RENAME_MAX = 6



def _check_title_identity(text: str, facts: ProductFacts, kind: KindSpec) -> list[Flag]:
    """A title must not rename the product: drop the words of its title that name it (its
    origin, series or model: "横县" of "横县茉莉花茶", "Vik" of "Vik Stoneware Mugs") and put a
    word the data does not give in their place ("皇家茉莉花茶", "Royal Stoneware Mugs"). A title
    that only drops them ("茉莉花茶 200克") is a fine short title, and one that keeps them may add
    what it likes ("皇家横县茉莉花茶" is for the other checks).

    A name word is a title word the rest of the data does not use (materials and kinds are
    stated in the attributes too: "Leather" of "Leather Phone Case" is no name) or one its
    origin gives. A warning like ``off_subject``: an editor may rename a product on purpose, but
    a first draft that does is no start."""
    if kind.code not in ("title", "seo_title") or not facts.title:
        return []
    blob = facts_text(facts)
    lowered_blob = unicodedata.normalize("NFKC", blob).lower()
    others = unicodedata.normalize("NFKC", " ".join(
        [facts.category, *(v for k, v in facts.attributes.items()
                           if k.lower() not in _ORIGIN_KEYS)])).lower()
    origins = unicodedata.normalize("NFKC", " ".join(
        v for k, v in facts.attributes.items() if k.lower() in _ORIGIN_KEYS)).lower()
    title = unicodedata.normalize("NFKC", facts.title)
    draft = unicodedata.normalize("NFKC", text)
    if len(draft) != len(text):
        draft = text  # offsets must point into the text as written
    found = (_renamed_zh(draft, title, lowered_blob, others, origins) if facts.is_zh
             else _renamed_en(draft, title, lowered_blob, others, facts.brand))
    message = _RENAMED
    if found is None and facts.is_zh:
        found, message = _misspelled_zh(draft, title, lowered_blob), _MISSPELLED
    if found is None:
        return []
    start, end, name = found
    return [_flag("title_renamed", WARNING, message, start, end, name=name,
                  found=text[start:end])]


_RENAMED = gettext_noop('The title drops "%(name)s", which names the product, and puts '
                        '"%(found)s" in its place, which the product data does not give.')
_MISSPELLED = gettext_noop('The title writes "%(found)s" where the product\'s name has '
                           '"%(name)s".')



def _renamed_zh(draft: str, title: str, blob: str, others: str, origins: str
                ) -> tuple[int, int, str] | None:
    """Chinese: the title's character pairs; a pair of the draft that continues the title
    after its first two characters, with new characters right before it in place of the
    title's own."""
    pairs: dict[str, tuple[int, int]] = {}  # pair -> (its place in its run, the run's start)
    for run in _CJK_RUN_RE.finditer(title):
        for i in range(run.start() + 2, run.end() - 1):
            pairs.setdefault(title[i:i + 2], (i, run.start()))
    blob_pairs = {blob[k:k + 2] for k in range(len(blob) - 1)}
    draft_pairs = {draft[k:k + 2].lower() for k in range(len(draft) - 1)}
    for j in range(2, len(draft) - 1):
        place = pairs.get(draft[j:j + 2])
        if place is None:
            continue
        name = title[place[1]:place[0]]
        if not _names_product(name, others, origins):
            continue
        if any(name[k:k + 2].lower() in draft_pairs for k in range(len(name) - 1)):
            continue  # the name is still there
        start = j
        while (start > 0 and j - start < _RENAME_MAX and _CJK_RE.match(draft[start - 1])
               and draft[start - 1:start + 1] not in blob_pairs
               and (start - 1 == 0 or draft[start - 2:start] not in blob_pairs)):
            start -= 1
        new = draft[start:j]
        if len(new) >= 2 and new not in _GENERIC_TITLE_MODIFIERS:
            return start, j, name
    return None



# A title is short: the misspelling check reads this far into one, so that a long text given
# as a title costs no more than a title.
_MISSPELLING_SCAN_MAX = 200


def _misspelled_zh(draft: str, title: str, blob: str) -> tuple[int, int, str] | None:
    """Chinese: a run of 3+ characters of the product's title written with one character
    changed to one the data does not have anywhere ("竖县茉莉花茶" for "横县茉莉花茶"). The
    rename check above needs two new characters; this is the slip of one."""
    draft = draft[:_MISSPELLING_SCAN_MAX]
    for run in _CJK_RUN_RE.finditer(title[:_MISSPELLING_SCAN_MAX]):
        name = run.group(0)
        if len(name) < 3 or name in draft:
            continue
        for start in range(len(draft) - len(name) + 1):
            window = draft[start:start + len(name)]
            changed = [k for k in range(len(name)) if window[k] != name[k]]
            if (len(changed) == 1 and _CJK_RE.match(window[changed[0]])
                    and window[changed[0]] not in blob):
                return start, start + len(name), name
    return None



def _names_product(name: str, others: str, origins: str) -> bool:
    """Whether title characters before the product's kind name it: its origin, or words the
    rest of its data does not use (a series name rather than an ingredient)."""
    if len(name) < 2:
        return False
    if any(name[k:k + 2] in origins for k in range(len(name) - 1)):
        return True
    return not any(name[k:k + 2] in others for k in range(len(name) - 1))



_TITLE_TOKEN_RE = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*|\d+(?:[.,]\d+)?")



_NOT_NEW_NAMES = _GENERIC_TITLE_MODIFIERS | _STOPWORDS



def _renamed_en(draft: str, title: str, blob: str, others: str, brand: str
                ) -> tuple[int, int, str] | None:
    """English: the title's words; a draft word that is a later title word, right after
    capitalised words the data does not give, while the title's earlier name words are gone."""
    title_words = [w.lower() for w in _TITLE_TOKEN_RE.findall(title)]
    index: dict[str, int] = {}
    for i, word in enumerate(title_words):
        index.setdefault(_stem(word), i)
    brand_words = {_stem(w.lower()) for w in _TITLE_TOKEN_RE.findall(brand or "")}
    others_words = {_stem(w) for w in re.findall(r"[a-z]+", others)}
    blob_words = {_stem(w) for w in re.findall(r"[a-z]+", blob)}
    tokens = list(_TITLE_TOKEN_RE.finditer(draft))
    draft_words = {_stem(m.group(0).lower()) for m in tokens}
    # The name words among the title words before each one.
    lost: list[list[str]] = []
    for i in range(len(title_words)):
        names = lost[i - 1][:] if i else []
        word = title_words[i - 1] if i else ""
        if (i and word.isalpha() and len(word) >= 3 and word not in _STOPWORDS
                and word not in _GENERIC_TITLE_WORDS and _stem(word) not in others_words
                and _stem(word) not in brand_words):
            names.append(word)
        lost.append(names)
    for j in range(1, len(tokens)):
        i = index.get(_stem(tokens[j].group(0).lower()))
        names = lost[i] if i else []
        if not names or any(_stem(w) in draft_words for w in names):
            continue
        start = j
        while start > 0 and j - start < _RENAME_MAX:
            word = tokens[start - 1].group(0)
            stem = _stem(word.lower())
            if (not word[:1].isupper() or stem in blob_words or stem in index
                    or word.lower() in _NOT_NEW_NAMES):
                break
            start -= 1
        if start < j:
            as_written = {w.lower(): w for w in _TITLE_TOKEN_RE.findall(title)}
            return (tokens[start].start(), tokens[j - 1].end(),
                    " ".join(as_written.get(w, w) for w in names))
    return None
