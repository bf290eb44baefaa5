"""Catalog reads: brands, kinds, categories, products and their drafts, imports, exports."""

from __future__ import annotations

from typing import Any

from django.db.models import (
    Count,
    Q,
    QuerySet,
)
from django.shortcuts import get_object_or_404

from ..models import (
    Brand,
    CatalogImport,
    ContentKind,
    Draft,
    ExportBatch,
    Product,
)


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



def export_batch_recent_list(*, limit: int = 10) -> QuerySet[ExportBatch]:
    return ExportBatch.objects.select_related("created_by").order_by("-created_at", "-pk")[:limit]



def catalog_import_list() -> QuerySet[CatalogImport]:
    """File imports that products still come from, newest first, each with ``product_count``:
    what the export page offers to pick from."""
    return (CatalogImport.objects.annotate(product_count=Count("products"))
            .filter(product_count__gt=0).order_by("-created_at", "-pk"))

