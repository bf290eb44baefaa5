"""Catalog reads: brands, kinds, categories, products and their drafts, imports, exports."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404

from ..models import Brand, CatalogImport, ContentKind, Draft, ExportBatch, Product


def brand_list() -> QuerySet[Brand]:
    return Brand.objects.order_by("name")



def content_kind_list() -> QuerySet[ContentKind]:
    return ContentKind.objects.order_by("position", "code")



def category_list() -> list[str]:
    """The categories products have, sorted. A ``DISTINCT`` reads every product's entry in
    the category index; stepping from one category to the next (a recursive query, one index
    probe per category) reads one entry per category."""
    table = connection.ops.quote_name(Product._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH RECURSIVE found(category) AS ("
            f"SELECT MIN(category) FROM {table} WHERE category > '' UNION ALL "
            f"SELECT (SELECT MIN(category) FROM {table} WHERE category > found.category) "
            f"FROM found WHERE found.category IS NOT NULL) "
            f"SELECT category FROM found WHERE category IS NOT NULL")
        return [row[0] for row in cursor.fetchall()]



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
    # Correlated counts run for the rows of the page only; a join counted with DISTINCT ran
    # for every matching product before the page was cut.
    drafts = Draft.objects.filter(product=OuterRef("pk")).order_by().values("product")
    approved = drafts.filter(state__in=[Draft.State.APPROVED, Draft.State.EXPORTED])
    return product_filtered(filters=filters).select_related("brand").annotate(
        draft_count=Coalesce(Subquery(drafts.annotate(n=Count("pk")).values("n")), 0),
        approved_count=Coalesce(Subquery(approved.annotate(n=Count("pk")).values("n")), 0),
    )



def product_detail(*, sku: str) -> Product:
    return get_object_or_404(Product.objects.select_related("brand"), sku=sku)



def product_draft_list(*, product: Product) -> QuerySet[Draft]:
    return (
        Draft.objects.filter(product=product)
        .select_related("kind", "assignee", "current_revision")
        .order_by("kind__position", "kind__code")
    )



def export_batch_recent_list(*, limit: int = 10) -> QuerySet[ExportBatch]:
    return ExportBatch.objects.select_related("created_by").order_by("-created_at", "-pk")[:limit]



def catalog_import_list() -> QuerySet[CatalogImport]:
    """File imports that products still come from, newest first, each with ``product_count``:
    what the export page offers to pick from."""
    return (CatalogImport.objects.annotate(product_count=Count("products"))
            .filter(product_count__gt=0).order_by("-created_at", "-pk"))

