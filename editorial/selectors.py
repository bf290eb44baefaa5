"""Reads. Views and API views ask here for what they show, so every list page has one place that
decides its joins (a bounded number of queries whatever the page size) and its filters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import NotSupportedError
from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Substr
from django.shortcuts import get_object_or_404
from django.utils import timezone

from generation.checks import (
    BLOCKING,
    ERROR,
    WARNING,
    check_length,
    check_text,
    is_usable,
    max_text_chars,
)
from generation.prompts import effective_max_chars

from .diffing import flag_message
from .examples import house_example_index
from .facts import brand_rules, kind_spec, product_facts
from .models import (
    ABTest,
    Brand,
    Candidate,
    CatalogImport,
    ContentKind,
    Draft,
    DraftComment,
    DraftPresence,
    ExportBatch,
    GenerationJob,
    ModelVersion,
    Product,
    ReviewDecision,
    Revision,
)
from .policies import EDITOR

# --- Choices for filter forms -------------------------------------------------------------------


def brand_list() -> QuerySet[Brand]:
    return Brand.objects.order_by("name")


def content_kind_list() -> QuerySet[ContentKind]:
    return ContentKind.objects.order_by("position", "code")


def category_list() -> list[str]:
    return list(
        Product.objects.exclude(category="")
        .order_by("category")
        .values_list("category", flat=True)
        .distinct()
    )


def model_version_ready_list() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.filter(status=ModelVersion.Status.READY).order_by(
        "-is_default", "-created_at"
    )


# --- Dashboard ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StateCount:
    state: str
    label: str
    count: int


def dashboard_counts() -> list[StateCount]:
    """Drafts per state, every state listed (zero included), in workflow order."""
    rows = Draft.objects.order_by().values("state").annotate(n=Count("pk"))
    counts = {row["state"]: row["n"] for row in rows}
    return [
        StateCount(state=value, label=str(label), count=counts.get(value, 0))
        for value, label in Draft.State.choices
    ]


def job_recent_list(*, limit: int = 8) -> QuerySet[GenerationJob]:
    return job_list()[:limit]


# --- Products -----------------------------------------------------------------------------------


def product_filtered(*, filters: dict[str, Any] | None = None) -> QuerySet[Product]:
    """Products matching ``filters``: q (SKU/title search), brand (Brand), category, locale."""
    filters = filters or {}
    qs = Product.objects.all()
    if q := (filters.get("q") or "").strip():
        qs = qs.filter(Q(sku__icontains=q) | Q(title__icontains=q))
    if brand := filters.get("brand"):
        qs = qs.filter(brand=brand)
    if category := filters.get("category"):
        qs = qs.filter(category=category)
    if locale := filters.get("locale"):
        qs = qs.filter(locale=locale)
    return qs.order_by("sku")


def product_list(*, filters: dict[str, Any] | None = None) -> QuerySet[Product]:
    """``product_filtered`` with the brand joined and ``draft_count`` / ``approved_count``
    annotated (one query per page)."""
    return product_filtered(filters=filters).select_related("brand").annotate(
        draft_count=Count("drafts", distinct=True),
        approved_count=Count(
            "drafts",
            filter=Q(drafts__state__in=[Draft.State.APPROVED, Draft.State.EXPORTED]),
            distinct=True,
        ),
    )


def product_detail(*, sku: str) -> Product:
    return get_object_or_404(Product.objects.select_related("brand"), sku=sku)


def product_draft_list(*, product: Product) -> QuerySet[Draft]:
    return (
        Draft.objects.filter(product=product)
        .select_related("kind", "assignee", "current_revision")
        .order_by("kind__position", "kind__code")
    )


# --- Jobs ---------------------------------------------------------------------------------------


def job_list() -> QuerySet[GenerationJob]:
    return GenerationJob.objects.select_related("model_version", "requested_by").order_by(
        "-created_at", "-pk"
    )


def job_detail(*, job_id: int) -> GenerationJob:
    return get_object_or_404(job_list(), pk=job_id)


def job_kind_labels(*, jobs: list[GenerationJob]) -> list[GenerationJob]:
    """``jobs``, each given ``kind_labels``: its kinds' labels in the reader's language, in the
    order requested (one query for all of them; a kind deleted since shows as its code)."""
    requested = {job.pk: job.kinds if isinstance(job.kinds, list) else [] for job in jobs}
    codes = {str(code) for kinds in requested.values() for code in kinds}
    labels = {k.code: str(k.display_label) for k in ContentKind.objects.filter(code__in=codes)}
    for job in jobs:
        job.kind_labels = [labels.get(str(code), str(code)) for code in requested[job.pk]]
    return jobs


def draft_last_job(*, draft: Draft) -> GenerationJob | None:
    """The most recent job that generated (or tried to generate) this draft."""
    return (
        GenerationJob.objects.filter(items__draft=draft).select_related("model_version")
        .order_by("-created_at", "-pk").first()
    )


def draft_job_list(*, draft: Draft, limit: int = 3) -> list[GenerationJob]:
    """The draft's latest jobs, for the progress panel on its page."""
    return list(
        GenerationJob.objects.filter(items__draft=draft).select_related("model_version")
        .order_by("-created_at", "-pk")[:limit]
    )


def job_draft_list(*, job: GenerationJob, limit: int = 50) -> QuerySet[Draft]:
    """The first drafts of a job, for its page; the queue filtered by job shows all of them."""
    return (
        Draft.objects.filter(job_items__job=job)
        .select_related("product", "kind")
        .order_by("job_items__pk")[:limit]
    )


# --- Drafts -------------------------------------------------------------------------------------


class _FlagsWithSeverity(Func):
    """True where a JSON list of check flags (``Candidate.flags``: ``[{"severity": ...}]``)
    holds a flag of one of ``severities``. Django's JSON ``contains`` lookup does not exist on
    SQLite, so the SQL is written per backend."""

    arity = 1
    output_field = BooleanField()

    def __init__(self, expression, *, severities: tuple[str, ...]) -> None:
        super().__init__(expression)
        self.severities = tuple(severities)

    def _marks(self) -> str:
        return ", ".join(["%s"] * len(self.severities))

    def as_sql(self, compiler, connection, **extra_context):
        raise NotSupportedError(f"Flag filters are not written for {connection.vendor}.")

    def as_sqlite(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return (
            f"EXISTS (SELECT 1 FROM json_each({sql}) AS flag "
            f"WHERE json_extract(flag.value, '$.severity') IN ({self._marks()}))",
            (*params, *self.severities),
        )

    def as_postgresql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return (
            f"EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof({sql}) = 'array' "
            f"THEN {sql} ELSE '[]'::jsonb END) AS flag "
            f"WHERE flag ->> 'severity' IN ({self._marks()}))",
            (*params, *params, *self.severities),
        )


# A draft "has flags" when one of its candidates has a blocking or a warning flag.
QUEUE_FLAG_SEVERITIES = (BLOCKING, WARNING)

# Sort keys of the queue (a leading "-" reverses), each with a tie-breaker so pages are stable.
_STATE_ORDER = Case(
    *[When(state=value, then=Value(position))
      for position, value in enumerate(Draft.State.values)],
    output_field=IntegerField(),
)
QUEUE_SORTS: dict[str, tuple] = {
    "sku": ("product__sku", "kind__position", "pk"),
    "-sku": ("-product__sku", "-kind__position", "-pk"),
    "title": ("product__title", "product__sku", "kind__position", "pk"),
    "-title": ("-product__title", "product__sku", "kind__position", "pk"),
    "updated": ("updated_at", "pk"),
    "-updated": ("-updated_at", "-pk"),
    "state": (_STATE_ORDER.asc(), "product__sku", "kind__position", "pk"),
    "-state": (_STATE_ORDER.desc(), "product__sku", "kind__position", "pk"),
}
QUEUE_DEFAULT_SORT = "sku"


def _flagged_candidates() -> QuerySet[Candidate]:
    return Candidate.objects.filter(draft=OuterRef("pk")).filter(
        _FlagsWithSeverity("flags", severities=QUEUE_FLAG_SEVERITIES)
    )


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
        qs = qs.filter(product__brand=brand)
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
        qs = qs.filter(
            Q(product__sku__icontains=q)
            | Q(product__title__icontains=q)
            | Q(current_revision__text__icontains=q)
        )
    if job := filters.get("job"):
        qs = qs.filter(job_items__job_id=job)
    return qs


def draft_queue(
    *, user, filters: dict[str, Any] | None = None, sort: str = QUEUE_DEFAULT_SORT
) -> QuerySet[Draft]:
    """The editorial queue: the drafts that match ``filters`` (see ``draft_queue_filtered``),
    sorted by ``sort`` (a key of ``QUEUE_SORTS``), with what a row shows joined or annotated —
    ``flagged`` and ``excerpt`` (the start of the current text) — so a page is one query."""
    order = QUEUE_SORTS.get(sort) or QUEUE_SORTS[QUEUE_DEFAULT_SORT]
    return (
        draft_queue_filtered(user=user, filters=filters)
        .select_related("product", "product__brand", "kind", "assignee")
        # A row shows names and titles: leave the catalog's big fields in the database.
        .defer("product__raw", "product__attributes", "product__source_text",
               "product__brand__voice", "product__brand__banned_terms",
               "product__brand__required_terms", "kind__instructions")
        .annotate(
            flagged=Exists(_flagged_candidates()),
            excerpt=Substr("current_revision__text", 1, 160),
        )
        .order_by(*order)
    )


def draft_queue_state_counts(*, user, filters: dict[str, Any] | None = None) -> list[StateCount]:
    """Drafts per state among those matching every filter but the state (one query), every
    state listed in workflow order, so the state tabs say what choosing one would show."""
    others = {key: value for key, value in (filters or {}).items() if key != "state"}
    rows = (
        draft_queue_filtered(user=user, filters=others)
        .order_by().values("state").annotate(n=Count("pk"))
    )
    counts = {row["state"]: row["n"] for row in rows}
    return [
        StateCount(state=value, label=str(label), count=counts.get(value, 0))
        for value, label in Draft.State.choices
    ]


def queue_assignee_list() -> QuerySet:
    """Who drafts can be assigned to: the active members of the Editor group."""
    return (
        get_user_model().objects.filter(is_active=True, groups__name=EDITOR)
        .order_by("username").distinct()
    )


def model_version_list() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.order_by("-created_at", "name")


def draft_bulk_list(*, draft_ids: list[int]) -> list[Draft]:
    """The drafts of a bulk action, in the order given, with what the services and their
    checks read (product, brand, kind, current text)."""
    drafts = Draft.objects.select_related(
        "product", "product__brand", "kind", "assignee", "current_revision"
    ).in_bulk(draft_ids)
    return [drafts[pk] for pk in dict.fromkeys(draft_ids) if pk in drafts]


def draft_blocking_flags(*, draft: Draft, text: str) -> list[dict[str, Any]]:
    """The blocking flags the content checks raise on ``text`` as this draft's copy."""
    return [f for f in draft_text_checks(draft=draft, text=text) if f["severity"] == BLOCKING]


def draft_detail(*, draft_id: int) -> Draft:
    return get_object_or_404(
        Draft.objects.select_related(
            "product",
            "product__brand",
            "kind",
            "assignee",
            "approved_by",
            "current_revision",
            "current_revision__author",
            "approved_revision",
        ),
        pk=draft_id,
    )


def draft_candidate(*, draft: Draft, candidate_id: Any) -> Candidate | None:
    """One of the draft's candidates, or None for an id that is not one (or not a number)."""
    try:
        pk = int(candidate_id)
    except (TypeError, ValueError):
        return None
    return Candidate.objects.filter(draft=draft, pk=pk).first()


def draft_comment_list(*, draft: Draft) -> list[DraftComment]:
    return list(
        DraftComment.objects.filter(draft=draft).select_related("author")
        .order_by("created_at", "pk")
    )


@dataclass(frozen=True)
class ThreadEntry:
    """One post in a draft's discussion: a comment, or a review decision with its comment."""

    kind: str  # "comment" | "decision"
    pk: int
    author: str
    text: str
    created_at: datetime
    decision: str = ""
    decision_label: str = ""
    revision_number: int | None = None


def draft_thread(*, comments: list[DraftComment], decisions: list[ReviewDecision]
                 ) -> list[ThreadEntry]:
    """Comments and review decisions (as ``draft_comment_list`` and ``draft_decision_list``
    load them) in one conversation, oldest first."""
    entries = [
        ThreadEntry(kind="comment", pk=c.pk, author=c.author_name, text=c.text,
                    created_at=c.created_at)
        for c in comments
    ] + [
        ThreadEntry(
            kind="decision", pk=d.pk,
            author=d.reviewer.get_username() if d.reviewer_id else "—",
            text=d.comment, created_at=d.created_at, decision=d.decision,
            decision_label=str(d.get_decision_display()), revision_number=d.revision.number,
        )
        for d in decisions
    ]
    return sorted(entries, key=lambda e: (e.created_at, e.kind == "comment", e.pk))


def draft_presence_others(*, draft: Draft, user, now: datetime | None = None
                          ) -> list[DraftPresence]:
    """The other people who have the draft open now (seen within the presence window)."""
    now = now or timezone.now()
    return list(
        DraftPresence.objects.filter(
            draft=draft, last_seen__gte=now - timedelta(seconds=DraftPresence.WINDOW_SECONDS)
        ).exclude(user_id=user.pk).select_related("user").order_by("since", "pk")
    )


# A draft's candidates: newest job first, by rank within a job. The job's time, not the
# candidates': one job stores its candidates microseconds apart, in no particular rank order.
# A candidate whose job was deleted falls back to its own time.
CANDIDATE_ORDER = (
    Coalesce("job__created_at", "created_at").desc(),
    F("job_id").desc(nulls_last=True),
    "rank",
    "index",
)


def draft_candidate_list(*, draft: Draft) -> list[Candidate]:
    return list(
        Candidate.objects.filter(draft=draft)
        .select_related("model_version")
        .order_by(*CANDIDATE_ORDER)
    )


def draft_revision_list(*, draft: Draft) -> list[Revision]:
    return list(Revision.objects.filter(draft=draft).select_related("author").order_by("-number"))


def draft_decision_list(*, draft: Draft) -> list[ReviewDecision]:
    return list(
        ReviewDecision.objects.filter(draft=draft)
        .select_related("reviewer", "revision")
        .order_by("-created_at", "-pk")
    )


def revision_origin_candidate(
    *, revision: Revision | None, revisions: list[Revision], candidates: list[Candidate]
) -> Candidate | None:
    """The model candidate that ``revision``'s line of edits started from (walking parents)."""
    by_id = {r.pk: r for r in revisions}
    candidates_by_id = {c.pk: c for c in candidates}
    seen: set[int] = set()
    while revision is not None and revision.pk not in seen:
        seen.add(revision.pk)
        if revision.candidate_id is not None:
            return candidates_by_id.get(revision.candidate_id)
        revision = by_id.get(revision.parent_id)
    return None


def draft_char_limit(*, draft: Draft) -> int:
    """The brand's limit for the draft's kind if it sets one, else the kind's (0: none)."""
    return effective_max_chars(kind_spec(draft.kind), brand_rules(draft.product.brand))


def draft_text_max_chars(*, draft: Draft) -> int:
    """The longest text the desk checks or saves as this draft's copy: a few times its length
    limit, within a fixed ceiling (``generation.checks.max_text_chars``)."""
    return max_text_chars(draft_char_limit(draft=draft))


def draft_text_checks(*, draft: Draft, text: str) -> list[dict[str, Any]]:
    """The content checks for ``text`` as this draft's copy, as dicts like ``Candidate.flags``.
    Text longer than ``draft_text_max_chars`` (stored before there was a limit) gets only its
    length flag: it cannot be saved as it is, and checking all of it is wasted work."""
    kind, brand = kind_spec(draft.kind), brand_rules(draft.product.brand)
    if len(text) > max_text_chars(effective_max_chars(kind, brand)):
        flags = check_length(text, kind=kind, brand=brand)
    else:
        flags = check_text(text, facts=product_facts(draft.product), kind=kind, brand=brand)
    return [f.to_dict() for f in flags]


@dataclass(frozen=True)
class FirstDraft:
    """The best candidate of the draft's latest generation (what an editor starts from), whether
    it is usable (``generation.checks.is_usable``) and, when not, its error flags (dicts with
    the message in the reader's language)."""

    candidate: Candidate
    usable: bool
    errors: list[dict[str, Any]]


def draft_first_draft(*, candidates: list[Candidate]) -> FirstDraft | None:
    """``candidates`` as ``draft_candidate_list`` orders them (latest generation first, best
    first); None without candidates. ``Candidate.usable`` is stored with each candidate;
    candidates stored before it was are judged from their stored flags."""
    if not candidates:
        return None
    best = candidates[0]
    flags = [f for f in (best.flags or []) if isinstance(f, dict)]
    usable = best.usable if best.usable is not None else is_usable(flags)
    errors = [{**f, "message": flag_message(f)} for f in flags if f.get("severity") == ERROR]
    return FirstDraft(candidate=best, usable=usable, errors=[] if usable else errors)


# --- Exports ------------------------------------------------------------------------------------


def export_batch_recent_list(*, limit: int = 10) -> QuerySet[ExportBatch]:
    return ExportBatch.objects.select_related("created_by").order_by("-created_at", "-pk")[:limit]


def catalog_import_list() -> QuerySet[CatalogImport]:
    """File imports that products still come from, newest first, each with ``product_count``:
    what the export page offers to pick from."""
    return (CatalogImport.objects.annotate(product_count=Count("products"))
            .filter(product_count__gt=0).order_by("-created_at", "-pk"))


# --- Prompt examples ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExampleSource:
    """Where one example in a candidate's prompt came from: an approved draft of the shop
    (``draft_id``, shown as "SKU · kind") or a house example (``house_key`` and its title)."""

    draft_id: int | None = None
    sku: str = ""
    kind_label: str = ""
    house_key: str = ""
    house_title: str = ""

    @property
    def is_house(self) -> bool:
        return bool(self.house_key)


def candidate_example_sources(*, candidates: list[Candidate]) -> list[Candidate]:
    """``candidates``, each given ``example_sources``: the examples its prompt showed
    (``Candidate.examples``), in prompt order. One query for all candidates' drafts, none for
    house examples (read from their file); a draft deleted since is left out, a house example
    no longer in the file shows its key."""
    entries = {
        candidate.pk: [e for e in candidate.examples if isinstance(e, dict)]
        if isinstance(candidate.examples, list) else []
        for candidate in candidates
    }
    draft_ids = {e["draft"] for found in entries.values() for e in found
                 if type(e.get("draft")) is int}
    drafts = {}
    if draft_ids:
        drafts = {
            draft.pk: draft for draft in
            Draft.objects.filter(pk__in=draft_ids).select_related("product", "kind")
            .only("pk", "product", "kind", "product__sku", "kind__code", "kind__label")
        }
    wants_house = any("house" in e for found in entries.values() for e in found)
    house = house_example_index() if wants_house else {}
    for candidate in candidates:
        sources = []
        for entry in entries[candidate.pk]:
            if "house" in entry:
                key = str(entry["house"])
                example = house.get(key)
                sources.append(ExampleSource(
                    house_key=key, house_title=example.facts.title if example else key))
            elif entry.get("draft") in drafts:
                draft = drafts[entry["draft"]]
                sources.append(ExampleSource(draft_id=draft.pk, sku=draft.product.sku,
                                             kind_label=str(draft.kind.display_label)))
        candidate.example_sources = sources
    return candidates


def ab_test_recent_list(*, limit: int) -> list[ABTest]:
    return list(ABTest.objects.select_related("model_a", "model_b")
                .order_by("-created_at", "-pk")[:limit])
