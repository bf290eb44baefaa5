"""Reads. Views and API views ask here for what they show, so every list page has one place that
decides its joins (a bounded number of queries whatever the page size) and its filters."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404

from generation.checks import check_text
from generation.prompts import effective_max_chars

from .facts import brand_rules, kind_spec, product_facts
from .models import (
    Brand,
    Candidate,
    ContentKind,
    Draft,
    ExportBatch,
    GenerationJob,
    ModelVersion,
    Product,
    ReviewDecision,
    Revision,
)

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


def draft_queue(*, user, filters: dict[str, Any] | None = None) -> QuerySet[Draft]:
    """The editorial queue. ``filters``: state, brand (Brand), kind (ContentKind), assignee
    ("mine" | "unassigned" | ""), q (SKU/title), job (id)."""
    filters = filters or {}
    qs = Draft.objects.select_related("product", "product__brand", "kind", "assignee")
    if state := filters.get("state"):
        qs = qs.filter(state=state)
    if brand := filters.get("brand"):
        qs = qs.filter(product__brand=brand)
    if kind := filters.get("kind"):
        qs = qs.filter(kind=kind)
    assignee = filters.get("assignee")
    if assignee == "mine":
        qs = qs.filter(assignee=user) if user.is_authenticated else qs.none()
    elif assignee == "unassigned":
        qs = qs.filter(assignee__isnull=True)
    if q := (filters.get("q") or "").strip():
        qs = qs.filter(Q(product__sku__icontains=q) | Q(product__title__icontains=q))
    if job := filters.get("job"):
        qs = qs.filter(job_items__job_id=job)
    return qs.order_by("product__sku", "kind__position", "pk")


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


def draft_candidate_list(*, draft: Draft) -> list[Candidate]:
    return list(
        Candidate.objects.filter(draft=draft)
        .select_related("model_version")
        .order_by("-created_at", "rank", "index")
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


def draft_text_checks(*, draft: Draft, text: str) -> list[dict[str, Any]]:
    """The content checks for ``text`` as this draft's copy, as dicts like ``Candidate.flags``."""
    flags = check_text(
        text,
        facts=product_facts(draft.product),
        kind=kind_spec(draft.kind),
        brand=brand_rules(draft.product.brand),
    )
    return [
        {"code": f.code, "severity": f.severity, "message": f.message, "start": f.start,
         "end": f.end}
        for f in flags
    ]


# --- Exports ------------------------------------------------------------------------------------


def export_batch_recent_list(*, limit: int = 10) -> QuerySet[ExportBatch]:
    return ExportBatch.objects.select_related("created_by").order_by("-created_at", "-pk")[:limit]


# --- Text diff ----------------------------------------------------------------------------------

# One token per CJK character (Chinese has no spaces), words, runs of whitespace, punctuation.
_TOKEN = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]"
    r"|\w+|\s+|[^\w\s]"
)

DiffSegment = tuple[str, str]  # (op, text): op is "equal", "insert" or "delete"


def text_diff(old: str, new: str) -> list[DiffSegment]:
    """A word-level diff (character-level for Chinese) as plain (op, text) segments. The caller
    renders them with auto-escaping; nothing here is HTML."""
    a = _TOKEN.findall(old or "")
    b = _TOKEN.findall(new or "")
    segments: list[DiffSegment] = []

    def add(op: str, tokens: list[str]) -> None:
        if not tokens:
            return
        text = "".join(tokens)
        if segments and segments[-1][0] == op:
            segments[-1] = (op, segments[-1][1] + text)
        else:
            segments.append((op, text))

    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            add("equal", a[i1:i2])
        else:
            add("delete", a[i1:i2])
            add("insert", b[j1:j2])
    return segments


def diff_has_changes(segments: list[DiffSegment]) -> bool:
    return any(op != "equal" for op, _ in segments)
