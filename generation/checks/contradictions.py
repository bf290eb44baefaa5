"""English copy that contradicts itself or its product: small models write "a knife without
blades" for a knife whose data gives its blade, and "heats up quickly … takes longer to heat up"
in one description.

Two narrow rules, since a wrong call here blocks good copy:

- a part the data gives the product (a word of an attribute's name, from a list of parts:
  "blade_length" gives a blade, "lid" a lid; not the title's words, since a "Pocket Notebook"
  has no pocket) said to be missing ("without blades", "with
  no lid", "does not have a handle") is an error, unless the data says it is missing ("lid:
  none") or the phrase goes on with what the part does ("without the handle getting hot");
- one action said to be quick and slow in the same text ("heats up quickly" and "takes longer
  to heat up", "heats up slowly") is a warning that leaves the draft no start, unless the slow
  one is a comparison ("unlike cast iron, which takes longer to heat", "slower than").

Chinese copy is not read here: its negations (无, 不含) mostly state true absences ("无添加香精").
"""

from __future__ import annotations

import re

from ..i18n import gettext_noop
from ..prompts import ProductFacts
from .flags import ERROR, WARNING, Flag, _flag

# Parts a product may have and copy may wrongly deny: singular, as ``_stem`` gives them.
_PARTS = frozenset(
    "blade handle lid zip zipper nib clip pocket pole frame carafe dripper filter pestle barrel "
    "cover lining seat base grip tip door battery strap spout plug cable hood sole button wheel "
    "cord lens magnet hinge drawer shelf leg arm panel perch post bolster sheet page ruling "
    "fastening closure hook buckle collar sleeve belt cap stopper".split())
_NEGATIVE_VALUE_RE = re.compile(r"^\s*(?:none|no|n/a|without|not included|unlined|无)(?!\w)",
                                re.IGNORECASE)
_ABSENCE_RE = re.compile(
    r"(?<![\w-])(?i:without|lacks?|lacking|(?:with|has|have|having)\s+no|"
    r"(?:does|do)(?:\s+not|n[’']t)\s+have)"
    r"\s+(?:(?i:a|an|any|the|its|their)\s+)?(?P<part>[A-Za-z]+)(?P<after>[ \t]+[A-Za-z]+)?"
)
# The part denied ends the phrase ("without blades.", "with no lid or strap"): a word after it
# makes it something else ("without a blade guard", "without the handle getting hot").
_PHRASE_GOES_ON = frozenset("and or nor at so but".split())
_SENTENCE_START_BEFORE_RE = re.compile(r"(?:^|[.!?\n])\s*$")

_QUICK_VERBS = "heat|warm|cool|boil|dry|dri|charg|brew|cook|dissolv|absorb|melt"
_QUICK_RE = re.compile(
    rf"(?<![\w-])(?i:(?P<verb>{_QUICK_VERBS})(?:s|es|ed|ing|e|ies)?)\s+(?i:up\s+)?"
    r"(?:(?i:very|really|so|super|remarkably)\s+)?(?i:quickly|fast|rapidly|in\s+no\s+time)"
    r"(?![\w-])"
)
_SLOW_RE = re.compile(
    r"(?<![\w-])(?i:takes?|taking|took)\s+(?:(?:(?i:a\s+(?:bit|little)|much|slightly)\s+)?"
    r"(?i:longer)|(?i:a\s+while))\s+(?i:to)\s+"
    rf"(?i:(?P<verb>{_QUICK_VERBS})\w*)"
    rf"|(?<![\w-])(?i:(?P<verb2>{_QUICK_VERBS})(?:s|es|ed|ing|e|ies)?)\s+(?i:up\s+)?"
    r"(?i:(?:more\s+)?slowly)(?![\w-])"
)
# A slow action after these words is a comparison with something else, not the product.
_COMPARISON_RE = re.compile(
    r"(?<![\w-])(?i:unlike|than|compared|other|most|many|cheaper|thinner|ordinary|conventional|"
    r"regular)(?![\w-])")
_SENTENCE_START_RE = re.compile(r".*[.!?;\n]", re.DOTALL)
_COMPARISON_AFTER_RE = re.compile(r"[^.!?;\n]{0,40}?(?i:\bthan\b)")
_WINDOW = 80

_PART_DENIED = gettext_noop(
    'The text says the product lacks its %(part)s ("%(found)s"), but the product data gives it '
    "one.")
_SPEED_CONTRADICTED = gettext_noop(
    'The text says "%(found)s" after saying "%(earlier)s": it contradicts itself.')


def _singular(word: str) -> set[str]:
    word = word.lower()
    forms = {word}
    if word.endswith("s"):
        forms.add(word[:-1])
    if word.endswith("es"):
        forms.add(word[:-2])
    if word.endswith("ies"):
        forms.add(word[:-3] + "y")
    return forms


def _parts_given(facts: ProductFacts) -> set[str]:
    parts = set()
    for key, value in facts.attributes.items():
        if _NEGATIVE_VALUE_RE.match(value):
            continue
        for word in re.split(r"[_\W]+", key):
            parts |= _singular(word)
    return parts & _PARTS


def _check_part_denials(text: str, facts: ProductFacts) -> list[Flag]:
    parts = _parts_given(facts)
    if not parts:
        return []
    flags = []
    for m in _ABSENCE_RE.finditer(text):
        part = _singular(m.group("part")) & parts
        after = (m.group("after") or "").strip().lower()
        if not part or (after and after not in _PHRASE_GOES_ON):
            continue
        if _SENTENCE_START_BEFORE_RE.search(text, max(0, m.start() - 4), m.start()):
            continue  # "Without a lid, tea stews": a condition, not the product
        part = min(part)
        end = m.end("part")
        flags.append(_flag("contradiction", ERROR, _PART_DENIED, m.start(), end,
                           part=part, found=text[m.start():end]))
    return flags


def _check_speed(text: str) -> list[Flag]:
    quick: dict[str, tuple[int, int]] = {}
    for m in _QUICK_RE.finditer(text):
        quick.setdefault(m.group("verb").lower(), m.span())
    if not quick:
        return []
    flags = []
    for m in _SLOW_RE.finditer(text):
        verb = (m.group("verb") or m.group("verb2")).lower()
        earlier = quick.get(verb)
        if earlier is None or earlier[0] > m.start():
            continue
        window = text[max(0, m.start() - _WINDOW):m.start()]
        cut = _SENTENCE_START_RE.match(window)
        if _COMPARISON_RE.search(window, cut.end() if cut else 0) \
                or _COMPARISON_AFTER_RE.match(text, m.end()):
            continue
        flags.append(_flag("contradiction", WARNING, _SPEED_CONTRADICTED, m.start(), m.end(),
                           found=m.group(0), earlier=text[earlier[0]:earlier[1]]))
    return flags


def _check_contradictions(text: str, facts: ProductFacts) -> list[Flag]:
    if facts.is_zh:
        return []
    return [*_check_part_denials(text, facts), *_check_speed(text)]
