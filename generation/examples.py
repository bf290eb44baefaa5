"""Which approved copy a draft should imitate: the most similar products first. Pure (no ORM), so
the desk's selector and the quality benchmark rank examples the same way."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from .prompts import ProductFacts

__all__ = ["rank_examples", "similarity"]

T = TypeVar("T")


def similarity(product: ProductFacts, other: ProductFacts) -> tuple[int, int, int]:
    """(same brand, same category, attribute overlap): compared in that order, so the brand's
    voice outweighs the category, which outweighs shared attributes. A shared value counts
    twice a shared key ("material: steel" beats "material: oak")."""
    same_brand = int(bool(product.brand) and product.brand == other.brand)
    same_category = int(bool(product.category) and product.category == other.category)
    mine = set(product.attributes.items())
    theirs = set(other.attributes.items())
    keys = {k for k, _ in mine} & {k for k, _ in theirs}
    return same_brand, same_category, 2 * len(mine & theirs) + len(keys)


def rank_examples(product: ProductFacts, pool: Sequence[tuple[ProductFacts, T]]) -> list[T]:
    """The pool's items, most similar to ``product`` first; among equals the pool's order (the
    caller puts recent approvals first). Items of the product itself (same SKU) never serve it."""
    candidates = [(facts, item) for facts, item in pool if facts.sku != product.sku]
    candidates.sort(key=lambda entry: similarity(product, entry[0]), reverse=True)
    return [item for _, item in candidates]
