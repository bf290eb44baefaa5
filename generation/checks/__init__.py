"""Content checks on generated (or edited) copy.

Pure functions over plain dataclasses (no torch, no Django): the worker flags candidates with
them and the editor runs them live on every save. Each check returns ``Flag``s whose
``start``/``end`` are character offsets into the checked text (``-1`` when the flag is about the
text as a whole, e.g. a missing term).

Copy is untrusted text, so every check does work linear in its length: patterns start only
where a run starts (no pattern retries a long run from each of its characters), many names are
matched through one trie, overlaps are kept in sorted spans, and a finding repeated thousands of
times is listed ``MAX_FLAGS_PER_CODE`` times, then counted. ``max_text_chars`` is the longest
text the desk takes as copy at all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from ..i18n import gettext_noop
from ..prompts import BrandRules, KindSpec, ProductFacts, facts_text
from .claims import _check_claims, _check_health_claims, _check_terms
from .colours import _check_colours
from .contradictions import _check_contradictions
from .facts import (
    KINDS_WITH_FACTS,
    _check_coverage,
    _check_example_facts,
    _check_title_identity,
    _check_title_subject,
    coverage,
)
from .flags import (
    BLOCKING,
    ERROR,
    INFO,
    WARNING,
    Flag,
    _flag,
    has_blocking,
    is_usable,
    rank,
    rank_score,
)
from .form import (
    TEXT_MAX_CEILING,
    TEXT_TOO_LONG,
    _check_contacts,
    _check_garbled,
    _check_instructions,
    _check_language,
    _check_leftovers,
    _check_length,
    _check_looping,
    _check_markup,
    _check_repetition,
    _check_source_copy,
    check_length,
    injection_findings,
    instruction_spans,
    max_text_chars,
    source_similarity,
)
from .names import _check_brands, _check_materials
from .places import _check_places
from .quantities import _check_attribution, _check_grounding, _check_prices, _check_spelled_numbers

__all__ = [
    "BLOCKING",
    "ERROR",
    "Flag",
    "INFO",
    "KINDS_WITH_FACTS",
    "MAX_FLAGS_PER_CODE",
    "NOT_USABLE_WARNINGS",
    "TEXT_MAX_CEILING",
    "TEXT_TOO_LONG",
    "WARNING",
    "check_length",
    "check_text",
    "coverage",
    "has_blocking",
    "injection_findings",
    "instruction_spans",
    "is_usable",
    "max_text_chars",
    "rank",
    "rank_score",
    "source_similarity",
]



def check_text(
    text: str, *, facts: ProductFacts, kind: KindSpec, brand: BrandRules | None = None,
    examples: Iterable[ProductFacts] = (),
) -> list[Flag]:
    """All flags for ``text`` as copy of ``kind`` for ``facts`` (and ``brand``), sorted by
    position (whole-text flags first). ``examples``: the products whose copy the prompt showed
    (generated text only), whose facts must not turn up in this product's copy."""
    if not text or not text.strip():
        return [_flag("empty", ERROR, gettext_noop("The text is empty."))]
    blob = facts_text(facts)
    flags = [
        *_check_length(text, kind, brand),
        *_check_terms(text, brand),
        *_check_claims(text, facts, blob),
        *_check_health_claims(text, facts, blob),
        *_check_contacts(text),
        *_check_markup(text),
        *_check_leftovers(text),
        *_check_instructions(text),
        *_check_language(text, facts),
        *_check_garbled(text, facts, blob),
        *_check_source_copy(text, facts),
        *_check_repetition(text, facts),
        *_check_looping(text, facts),
        *_check_grounding(text, blob),
        *_check_spelled_numbers(text, blob),
        *_check_prices(text, blob),
        *_check_attribution(text, facts.attributes),
        *_check_materials(text, blob, facts.title),
        *_check_places(text, facts, blob),
        *_check_colours(text, facts, kind, blob),
        *_check_contradictions(text, facts),
        *_check_brands(text, blob),
        *_check_coverage(text, facts, kind),
        *_check_title_subject(text, facts, kind),
        *_check_title_identity(text, facts, kind),
        *_check_example_facts(text, facts, kind, examples),
    ]
    return _capped(sorted(flags, key=lambda f: (f.start, f.end, f.code)))



# A text that repeats one finding thousands of times ("a@b.c " × 5,000) lists the first ones
# and says how many more there are: an editor reads a few, and a page of 5,000 flags is slow.
MAX_FLAGS_PER_CODE = 20



def _capped(flags: list[Flag]) -> list[Flag]:
    kept: list[Flag] = []
    seen: Counter[tuple[str, str]] = Counter()
    left_out: Counter[str] = Counter()
    for flag in flags:
        key = (flag.code, flag.severity)
        seen[key] += 1
        if seen[key] > MAX_FLAGS_PER_CODE:
            left_out[flag.code] += 1
        else:
            kept.append(flag)
    more = [_flag("more_flags", INFO,
                  gettext_noop("%(count)d more findings of this kind (%(finding)s) are not "
                               "listed."),
                  count=count, finding=code)
            for code, count in left_out.items()]
    return sorted(more + kept, key=lambda f: (f.start, f.end, f.code)) if more else kept

