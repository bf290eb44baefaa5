"""The examples a draft's prompt is written from: the shop's own approved copy, else house copy.

A read (a selector): for a chunk of drafts, up to ``k`` approved texts of the same kind and locale
per draft, most like the product first (same brand, then same category, then shared attributes:
``generation.examples.similarity``, so the quality benchmark ranks them the same way), never the
product's own copy of any kind. Every approval improves the next drafts at once, long before a
fine-tune.

A shop that has approved fewer than ``k`` texts of a kind and locale gets the rest from the
**house examples** (``data/demo/house_examples.json``, or the file the
``COPYDESK_HOUSE_EXAMPLES`` setting names; an empty setting turns them off): short, fact-only
copy an editor would approve, for each shipped kind in each locale. Each example says where it
came from, and ``examples_json`` turns a draft's examples into what ``Candidate.examples`` keeps:
``{"draft": id, "revision": id}`` for the shop's own copy, ``{"house": key}`` for house copy.

Queries: one per (kind, locale) in the chunk, whatever its size (plus one for brand names when
the drafts come without ``product__brand``). Each query reads at most ``EXAMPLE_POOL`` approved
drafts, favouring the chunk's brands and categories and, within every (brand, category), only the
``PER_GROUP`` most recent, so one busy brand cannot crowd the others out of the pool.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import Case, F, IntegerField, Value, When, Window
from django.db.models.functions import RowNumber

from generation.examples import similarity
from generation.prompts import ProductFacts

from .models import Brand, Draft, Product

logger = logging.getLogger(__name__)

DEFAULT_EXAMPLES = 3
# Approved drafts of one kind and locale read per chunk, and per (brand, category) among them.
EXAMPLE_POOL = 400
PER_GROUP = 20
DEFAULT_HOUSE_EXAMPLES = Path(settings.BASE_DIR) / "data" / "demo" / "house_examples.json"


@dataclass(frozen=True)
class Example:
    """One example for a prompt: the copy, the facts of the product it was written for, and where
    it came from: an approved revision of one of the shop's drafts, or a house example."""

    facts: ProductFacts
    text: str
    draft_id: int | None = None
    revision_id: int | None = None
    house_key: str = ""

    @property
    def is_house(self) -> bool:
        return bool(self.house_key)

    def as_json(self) -> dict[str, Any]:
        if self.is_house:
            return {"house": self.house_key}
        return {"draft": self.draft_id, "revision": self.revision_id}


@dataclass(frozen=True)
class HouseExample:
    key: str
    kind: str
    facts: ProductFacts
    text: str

    def example(self) -> Example:
        return Example(facts=self.facts, text=self.text, house_key=self.key)


def examples_json(examples: Iterable[Example]) -> list[dict[str, Any]]:
    """What ``Candidate.examples`` stores for the examples a prompt showed, in their order."""
    return [example.as_json() for example in examples]


# --- House examples ------------------------------------------------------------------------------

def house_examples_path() -> Path | None:
    configured = getattr(settings, "COPYDESK_HOUSE_EXAMPLES", None)
    if configured is None:
        return DEFAULT_HOUSE_EXAMPLES
    return Path(configured) if str(configured).strip() else None


def house_examples() -> tuple[HouseExample, ...]:
    """Every house example, in file order; none when the file is turned off or missing (logged).
    Read once per process and again when the file changes."""
    path = house_examples_path()
    if path is None:
        return ()
    try:
        changed = path.stat().st_mtime_ns
    except FileNotFoundError:
        logger.warning("house examples %s not found; prompts get only the shop's own copy", path)
        return ()
    return _load_house_examples(str(path), changed)


@lru_cache(maxsize=4)
def _load_house_examples(path: str, changed: int) -> tuple[HouseExample, ...]:
    """A JSON list of ``{key, locale, kind, title, brand, category, attributes, text}``; a
    malformed file raises, as shipped data never should."""
    rows = json.loads(Path(path).read_text(encoding="utf-8"))
    examples = []
    for row in rows:
        key = str(row["key"])
        examples.append(HouseExample(
            key=key,
            kind=str(row["kind"]),
            facts=ProductFacts(
                sku=f"house:{key}", title=str(row["title"]), brand=str(row.get("brand") or ""),
                category=str(row.get("category") or ""), attributes=row.get("attributes") or {},
                locale=str(row["locale"]),
            ),
            text=str(row["text"]).strip(),
        ))
    keys = [example.key for example in examples]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{path}: house example keys must be unique")
    return tuple(examples)


def house_example_index() -> dict[str, HouseExample]:
    return {example.key: example for example in house_examples()}


# --- The selector --------------------------------------------------------------------------------

def approved_example_map(
    *, drafts: Sequence[Draft], k: int = DEFAULT_EXAMPLES, house: bool = True
) -> dict[int, list[Example]]:
    """Up to ``k`` examples per draft id, best first: the shop's approved copy of the draft's
    kind and locale, then (``house``) house examples of that kind and locale to make up ``k``.

    ``drafts`` need ``product`` loaded (and ``product__brand``, or one more query is made).
    An example is always another product's copy: a product's own approved text, of this kind or
    any other, would teach the model this product's answer instead of the shop's voice. Only the
    approved revision serves, never a later edit that nobody approved."""
    chosen: dict[int, list[Example]] = {draft.pk: [] for draft in drafts}
    if k <= 0 or not drafts:
        return chosen
    facts = _target_facts(drafts)
    groups: dict[tuple[str, str], list[Draft]] = defaultdict(list)
    for draft in drafts:
        groups[(draft.kind_id, draft.product.locale)].append(draft)
    house_pool = house_examples() if house else ()
    for (kind, locale), members in groups.items():
        pool = _approved_pool(kind=kind, locale=locale, drafts=members)
        for draft in members:
            target = facts[draft.pk]
            shop = [(example, product_id) for example, product_id in pool
                    if product_id != draft.product_id]
            # Stable sort: among equally similar examples the most recent approval comes first.
            shop.sort(key=lambda entry: similarity(target, entry[0].facts), reverse=True)
            picked = [example for example, _ in shop[:k]]
            if len(picked) < k and house_pool:
                fill = [h for h in house_pool if h.kind == kind and h.facts.locale == locale]
                fill.sort(key=lambda h: similarity(target, h.facts), reverse=True)
                picked += [h.example() for h in fill[:k - len(picked)]]
            chosen[draft.pk] = picked
    return chosen


def _target_facts(drafts: Sequence[Draft]) -> dict[int, ProductFacts]:
    """The ranking facts of each draft's product (no source text: it is not ranked on), with
    brand names read in one query for products whose brand is not loaded."""
    missing = {draft.product.brand_id for draft in drafts
               if draft.product.brand_id is not None
               and not Product.brand.is_cached(draft.product)}
    names = dict(Brand.objects.filter(pk__in=missing).values_list("pk", "name")) if missing else {}
    facts = {}
    for draft in drafts:
        product = draft.product
        if product.brand_id is None:
            brand = ""
        elif Product.brand.is_cached(product):
            brand = product.brand.name
        else:
            brand = names.get(product.brand_id, "")
        facts[draft.pk] = _facts(sku=product.sku, title=product.title, brand=brand,
                                 category=product.category, attributes=product.attributes,
                                 locale=product.locale)
    return facts


def _facts(*, sku, title, brand, category, attributes, locale) -> ProductFacts:
    return ProductFacts(
        sku=sku, title=title, brand=brand or "", category=category or "",
        attributes={str(k): str(v) for k, v in (attributes or {}).items()}, locale=locale,
    )


def _approved_pool(*, kind: str, locale: str, drafts: Sequence[Draft]
                   ) -> list[tuple[Example, int]]:
    """(example, product id) of approved drafts of ``kind`` in ``locale``, most recent first:
    one query. The chunk's brands and categories are read first, so a large shop's older copy
    of the same brand is not lost behind newer copy of others; each (brand, category) brings its
    ``PER_GROUP`` most recent approvals at most."""
    brand_ids = {d.product.brand_id for d in drafts if d.product.brand_id is not None}
    categories = {d.product.category for d in drafts if d.product.category}
    newest = [F("approved_at").desc(nulls_last=True), F("pk").desc()]
    relevance = {}  # only real conditions: a constant in ORDER BY breaks on PostgreSQL
    if brand_ids:
        relevance["same_brand"] = Case(When(product__brand_id__in=brand_ids, then=Value(1)),
                                       default=Value(0), output_field=IntegerField())
    if categories:
        relevance["same_category"] = Case(
            When(product__category__in=categories, then=Value(1)),
            default=Value(0), output_field=IntegerField())
    rows = (
        Draft.objects.filter(kind_id=kind, product__locale=locale,
                             approved_revision__isnull=False)
        .annotate(
            group_rank=Window(RowNumber(), order_by=newest,
                              partition_by=[F("product__brand_id"), F("product__category")]),
            **relevance,
        )
        .filter(group_rank__lte=PER_GROUP)
        .order_by(*(F(name).desc() for name in relevance), *newest)
        .values("pk", "approved_revision_id", "approved_revision__text", "approved_at",
                "product_id", "product__sku", "product__title", "product__brand__name",
                "product__category", "product__attributes", "product__locale")
        [:EXAMPLE_POOL]
    )
    rows = sorted(rows, key=lambda r: (r["approved_at"] is not None, r["approved_at"], r["pk"]),
                  reverse=True)
    return [
        (Example(
            facts=_facts(sku=row["product__sku"], title=row["product__title"],
                         brand=row["product__brand__name"], category=row["product__category"],
                         attributes=row["product__attributes"], locale=row["product__locale"]),
            text=row["approved_revision__text"],
            draft_id=row["pk"],
            revision_id=row["approved_revision_id"],
        ), row["product_id"])
        for row in rows
    ]
