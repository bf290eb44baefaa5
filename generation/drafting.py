"""From a product to ranked first drafts: the one recipe the worker and the quality benchmark run.

For each draft: the prompt in its model's format (with examples of approved copy), the decoding
rules that keep the text grounded (numbers from the facts, no banned terms or markup, stop at the
separator), a token budget from the kind's character limit; then more candidates are sampled
than shown and the checks rank them (best of N). Pure: no Django, no ORM — the worker loads the
rows and stores the results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .checks import KINDS_WITH_FACTS, Flag, check_text, coverage, is_usable, rank_score
from .decoding import RowRules, rules_for, token_budget
from .prompts import (
    BrandRules,
    KindSpec,
    ProductFacts,
    Prompt,
    build_prompt,
    effective_max_chars,
    facts_text,
)

__all__ = ["DraftSpec", "RankedCandidate", "Recipe", "draft_requests", "rank_candidates"]


@dataclass(frozen=True)
class Recipe:
    """How drafts are written; each switch is one row of the quality benchmark's ablation."""

    prompt_format: str = "chat"
    use_examples: bool = True
    grounded: bool = True
    lead_in: bool = True
    # Copy that should carry the facts (descriptions, bullets) is nudged towards each attribute
    # value it has not mentioned yet (``RowRules.fact_values``).
    nudge_facts: bool = True


@dataclass(frozen=True)
class DraftSpec:
    """One draft to write: the product, its kind and brand, and approved copy to imitate."""

    facts: ProductFacts
    kind: KindSpec
    brand: BrandRules | None = None
    examples: Sequence[tuple[ProductFacts, str]] = ()
    seed: int = 0
    max_new_tokens: int = 160


@dataclass
class RankedCandidate:
    text: str
    flags: list[Flag]
    score: float
    usable: bool
    completion_tokens: int
    index: int  # the order the model produced it in
    coverage: float = 0.0
    extra: dict = field(default_factory=dict)


def _rules(spec: DraftSpec, prompt: Prompt, recipe: Recipe) -> RowRules | None:
    if not recipe.grounded:
        # Even ungrounded, a completion document must end at its separator.
        if prompt.stop_strings:
            return RowRules(allowed_numbers=frozenset(), banned_terms=(),
                            locale=spec.facts.locale, stop_strings=prompt.stop_strings,
                            ground_numbers=False, block_markup=False)
        return None
    banned = spec.brand.banned_terms if spec.brand is not None else ()
    values = (tuple(v for v in spec.facts.attributes.values() if v.strip())
              if recipe.nudge_facts and spec.kind.code in KINDS_WITH_FACTS else ())
    return rules_for(facts_text=facts_text(spec.facts), context=prompt.lead_in,
                     locale=spec.facts.locale, brand_banned=banned,
                     stop_strings=prompt.stop_strings, fact_values=values)


def draft_requests(specs: Sequence[DraftSpec], *, recipe: Recipe, sampled: int, tokenizer=None):
    """``(prompt, GenerationRequest)`` per spec. ``sampled`` candidates per draft; with a
    ``tokenizer`` the kind's character limit also caps the new tokens (its budget)."""
    from .engine import GenerationRequest

    out = []
    for spec in specs:
        prompt = build_prompt(
            facts=spec.facts, kind=spec.kind, brand=spec.brand,
            examples=spec.examples if recipe.use_examples else (),
            prompt_format=recipe.prompt_format, lead_in=recipe.lead_in,
        )
        max_new = spec.max_new_tokens
        limit = effective_max_chars(spec.kind, spec.brand)
        if tokenizer is not None and limit:
            max_new = min(max_new, token_budget(limit, tokenizer, spec.facts.locale))
        request = GenerationRequest(
            messages=[dict(m) for m in prompt.messages] or None,
            prompt=prompt.text, context=prompt.context, lead_in=prompt.lead_in,
            rules=_rules(spec, prompt, recipe), candidates=sampled, seed=spec.seed,
            max_new_tokens=max(1, max_new),
        )
        out.append((prompt, request))
    return out


def _length_fit(text: str, limit: int) -> float:
    """1 for copy that uses a fair share of its limit, less for a stub, 0 past the limit."""
    if not limit:
        return 1.0
    share = len(text) / limit
    if share > 1:
        return 0.0
    return min(1.0, share / 0.3)


def rank_candidates(texts: Sequence[str], completion_tokens: Sequence[int], spec: DraftSpec,
                    *, keep: int) -> list[RankedCandidate]:
    """The best ``keep`` of the sampled texts, best first: fewest and mildest flags, then
    fact coverage and length fit, then the model's own order."""
    limit = effective_max_chars(spec.kind, spec.brand)
    attributes = sum(1 for v in spec.facts.attributes.values() if v.strip())
    examples = [facts for facts, _ in spec.examples]
    ranked = []
    for index, (text, tokens) in enumerate(zip(texts, completion_tokens, strict=True)):
        flags = check_text(text, facts=spec.facts, kind=spec.kind, brand=spec.brand,
                           examples=examples)
        mentioned, _ = coverage(text, spec.facts)
        share = len(mentioned) / attributes if attributes else 1.0
        score = rank_score(flags) + 5.0 * share + 2.0 * _length_fit(text, limit)
        ranked.append(RankedCandidate(text=text, flags=flags, score=score,
                                      usable=is_usable(flags), completion_tokens=tokens,
                                      index=index, coverage=share))
    ranked.sort(key=lambda c: (-c.score, c.index))
    return ranked[:max(1, keep)]
