"""The review queue: its filters, sorts, state counts and flag severities."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import NotSupportedError, connections
from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Substr
from django.db.models.lookups import IsNull

from .. import search, tallies
from ..models import Candidate, Draft, DraftStateTally
from ..policies import EDITOR


@dataclass(frozen=True)
class StateCount:
    state: str
    label: str
    count: int


def _state_list(counts: dict[str, int]) -> list[StateCount]:
    """Every state (zero included) in workflow order."""
    return [
        StateCount(state=value, label=str(label), count=counts.get(value, 0))
        for value, label in Draft.State.choices
    ]


def draft_state_counts() -> list[StateCount]:
    """Drafts per state (the dashboard's, and the queue's tabs without filters), every state
    listed (zero included), in workflow order, from the tally the triggers keep
    (``DraftStateTally``)."""
    rows = DraftStateTally.objects.order_by().values("state").annotate(
        n=Sum("drafts"), rows=Count("*"))
    counts = {row["state"]: row["n"] for row in rows}
    if sum(row["rows"] for row in rows) > tallies.FOLD_AT:
        tallies.fold(DraftStateTally, "state", ["drafts"])
    return _state_list(counts)


class _GramsMatch(Func):
    """True where a draft's ``search_grams`` hold every word of ``words``
    (``editorial.search.query_grams``), answered by the GIN index over the column's
    ``tsvector`` (migration 0013). PostgreSQL only: elsewhere the ``icontains`` alone runs."""

    output_field = BooleanField()

    def __init__(self, words: list[str]) -> None:
        super().__init__(F("search_grams"))
        self.words = list(words)

    def as_sql(self, compiler, connection, **extra_context):
        raise NotSupportedError(f"Gram search is not written for {connection.vendor}.")

    def as_postgresql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return (f"to_tsvector('simple'::regconfig, {sql}) @@ "
                f"to_tsquery('simple'::regconfig, %s)", (*params, " & ".join(self.words)))



# A draft "has flags" when one of its candidates has a blocking or a warning flag.
QUEUE_FLAG_SEVERITIES = Candidate.FLAGGED_SEVERITIES



# Sort keys of the queue (a leading "-" reverses), each with a tie-breaker so pages are stable.
_STATE_ORDER = Case(
    *[When(state=value, then=Value(position))
      for position, value in enumerate(Draft.State.values)],
    output_field=IntegerField(),
)



# Product SKU and kind position are the draft's own copies (``Draft.product_sku``,
# ``kind_position``): the same order as the product's and kind's, from the draft_sku_order index.
QUEUE_SORTS: dict[str, tuple] = {
    "sku": ("product_sku", "kind_position", "pk"),
    "-sku": ("-product_sku", "-kind_position", "-pk"),
    "title": ("product__title", "product_sku", "kind_position", "pk"),
    "-title": ("-product__title", "product_sku", "kind_position", "pk"),
    "updated": ("updated_at", "pk"),
    "-updated": ("-updated_at", "-pk"),
    "state": (_STATE_ORDER.asc(), "product_sku", "kind_position", "pk"),
    "-state": (_STATE_ORDER.desc(), "product_sku", "kind_position", "pk"),
}



QUEUE_DEFAULT_SORT = "sku"



def _flagged_candidates() -> QuerySet[Candidate]:
    return Candidate.objects.filter(draft=OuterRef("pk"), flagged=True)


def _search(qs: QuerySet[Draft], q: str) -> QuerySet[Draft]:
    """Drafts whose product's SKU or title or whose current text contains ``q``, ignoring
    case, read from the draft's own ``search_text`` (editorial/search.py)."""
    if not search.can_use_search_text(q):
        return qs.filter(Q(product__sku__icontains=q) | Q(product__title__icontains=q)
                         | Q(current_revision__text__icontains=q))
    qs = qs.filter(search_text__icontains=q)
    words = search.query_grams(q)
    if words and connections[qs.db].vendor == "postgresql":
        qs = qs.filter(_GramsMatch(words))
    return qs



def draft_queue_filtered(*, user, filters: dict[str, Any] | None = None) -> QuerySet[Draft]:
    """The drafts that match ``filters`` (no joins for display, no order).

    ``filters``: state, brand (Brand), category, kind (ContentKind), assignee ("mine" |
    "unassigned" | a user id), model_version (ModelVersion: one of the draft's candidates
    came from it), flags ("flagged" | "clean": a candidate with a blocking or warning flag, or
    none), usable ("usable" | "unusable": the first draft of the latest generation is usable or
    not, ``Draft.usable``; drafts not generated yet are neither), q (SKU, product title or the
    current text), job (id)."""
    filters = filters or {}
    qs = Draft.objects.all()
    if state := filters.get("state"):
        qs = qs.filter(state=state)
    if brand := filters.get("brand"):
        qs = qs.filter(product_brand=brand)
    if category := filters.get("category"):
        qs = qs.filter(product__category=category)
    if kind := filters.get("kind"):
        qs = qs.filter(kind=kind)
    assignee = filters.get("assignee")
    if assignee == "mine":
        qs = qs.filter(assignee=user) if user.is_authenticated else qs.none()
    elif assignee == "unassigned":
        qs = qs.filter(assignee__isnull=True)
    elif assignee:
        qs = qs.filter(assignee_id=assignee)
    if model_version := filters.get("model_version"):
        qs = qs.filter(
            Exists(Candidate.objects.filter(draft=OuterRef("pk"), model_version=model_version))
        )
    flags = filters.get("flags")
    if flags == "flagged":
        qs = qs.filter(Exists(_flagged_candidates()))
    elif flags == "clean":
        qs = qs.filter(~Exists(_flagged_candidates()))
    usable = filters.get("usable")
    if usable in {"usable", "unusable"}:
        qs = qs.filter(usable=usable == "usable")
    if q := (filters.get("q") or "").strip():
        qs = _search(qs, q)
    if job := filters.get("job"):
        qs = qs.filter(job_items__job_id=job)
    return qs



def draft_queue(
    *, user, filters: dict[str, Any] | None = None, sort: str = QUEUE_DEFAULT_SORT
) -> QuerySet:
    """The ids of the editorial queue's drafts: those that match ``filters`` (see
    ``draft_queue_filtered``), sorted by ``sort`` (a key of ``QUEUE_SORTS``); a page's rows are
    then read by ``draft_queue_rows``. Asked for whole rows, PostgreSQL joined every match of a
    search (5,000 for 茶杯) to its product and current revision before sorting them for the
    first 50; sorting ids alone reads the draft table only (or walks draft_sku_order)."""
    order = QUEUE_SORTS.get(sort) or QUEUE_SORTS[QUEUE_DEFAULT_SORT]
    return (draft_queue_filtered(user=user, filters=filters).order_by(*order)
            .values_list("pk", flat=True))



def draft_queue_rows(draft_ids: list[int]) -> list[Draft]:
    """The queue's rows for ``draft_ids``, in that order, with what a row shows joined or
    annotated — ``flagged`` and ``excerpt`` (the start of the current text) — in one query."""
    rows = (
        Draft.objects.filter(pk__in=draft_ids)
        .select_related("product", "product__brand", "kind", "assignee")
        # A row shows names and titles: leave the catalog's big fields in the database.
        .defer("product__raw", "product__attributes", "product__source_text",
               "product__brand__voice", "product__brand__banned_terms",
               "product__brand__required_terms", "kind__instructions")
        .annotate(
            # A probe per row of the page: PostgreSQL turns an EXISTS here into a hash of
            # every flagged candidate.
            flagged=ExpressionWrapper(
                ~Q(IsNull(Subquery(_flagged_candidates().order_by().values("pk")[:1]), True)),
                output_field=BooleanField()),
            excerpt=Substr("current_revision__text", 1, 160),
        )
        .order_by()
    )
    by_pk = {draft.pk: draft for draft in rows}
    return [by_pk[pk] for pk in draft_ids if pk in by_pk]



def draft_queue_state_counts(*, user, filters: dict[str, Any] | None = None) -> list[StateCount]:
    """Drafts per state among those matching every filter but the state (one query), every
    state listed in workflow order, so the state tabs say what choosing one would show."""
    others = {key: value for key, value in (filters or {}).items() if key != "state"}
    if not others:
        return draft_state_counts()
    rows = (
        draft_queue_filtered(user=user, filters=others)
        # COUNT(*), not COUNT(id): the state index alone can answer it.
        .order_by().values("state").annotate(n=Count("*"))
    )
    return _state_list({row["state"]: row["n"] for row in rows})



def queue_assignee_list() -> QuerySet:
    """Who drafts can be assigned to: the active members of the Editor group."""
    return (
        get_user_model().objects.filter(is_active=True, groups__name=EDITOR)
        .order_by("username").distinct()
    )



def draft_bulk_list(*, draft_ids: list[int]) -> list[Draft]:
    """The drafts of a bulk action, in the order given, with what the services and their
    checks read (product, brand, kind, current text)."""
    drafts = Draft.objects.select_related(
        "product", "product__brand", "kind", "assignee", "current_revision"
    ).in_bulk(draft_ids)
    return [drafts[pk] for pk in dict.fromkeys(draft_ids) if pk in drafts]

