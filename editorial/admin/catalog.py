"""Brands, content kinds, products, catalog imports and export batches."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count
from django.utils.translation import gettext_lazy as _

from ..models import Brand, CatalogImport, ContentKind, ExportBatch, Product
from ._common import PRETTY_JSON, HistoryAdmin, pretty_json


@admin.register(Brand)
class BrandAdmin(admin.ModelAdmin):
    list_display = ("name", "locale", "audience", "product_count", "updated_at")
    list_filter = ("locale",)
    search_fields = ("name",)
    readonly_fields = ("created_at", "updated_at")
    formfield_overrides = PRETTY_JSON

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_product_count=Count("products"))

    @admin.display(description=_("products"), ordering="_product_count")
    def product_count(self, obj: Brand) -> int:
        return obj._product_count



@admin.register(ContentKind)
class ContentKindAdmin(admin.ModelAdmin):
    list_display = ("code", "label", "max_chars", "max_new_tokens", "position")
    search_fields = ("code", "label")
    ordering = ("position", "code")



@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("sku", "title", "brand", "category", "locale", "source_format", "updated_at")
    list_filter = ("locale", "source_format", "brand", "category")
    list_select_related = ("brand",)
    search_fields = ("sku", "title")
    date_hierarchy = "created_at"
    autocomplete_fields = ("brand",)
    readonly_fields = ("source_format", "raw_display", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("sku", "title", "brand", "category", "locale")}),
        (_("Product data"), {"fields": ("attributes", "source_text")}),
        (_("Import"), {"fields": ("source_format", "raw_display", "created_at", "updated_at"),
                       "classes": ("collapse",)}),
    )
    formfield_overrides = PRETTY_JSON

    @admin.display(description=_("imported row"))
    def raw_display(self, obj: Product) -> str:
        return pretty_json(obj.raw)



@admin.register(CatalogImport)
class CatalogImportAdmin(HistoryAdmin):
    """Which file each product came from: exports filter by it, Shopify zips are named after it."""

    list_display = ("filename", "format", "product_count", "created_by", "created_at")
    list_filter = ("format",)
    list_select_related = ("created_by",)
    search_fields = ("filename", "created_by__username")
    date_hierarchy = "created_at"
    fields = ("filename", "format", "columns_display", "created_by", "created_at")
    readonly_fields = ("columns_display",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(product_total=Count("products"))

    @admin.display(description=_("products"), ordering="product_total")
    def product_count(self, record: CatalogImport) -> int:
        return record.product_total

    @admin.display(description=_("columns"))
    def columns_display(self, record: CatalogImport) -> str:
        return pretty_json(record.columns)



@admin.register(ExportBatch)
class ExportBatchAdmin(HistoryAdmin):
    list_display = ("__str__", "format", "status", "count", "changed_only", "created_by",
                    "destination", "created_at")
    list_filter = ("format", "status", "changed_only")
    list_select_related = ("created_by",)
    search_fields = ("destination", "created_by__username", "file")
    date_hierarchy = "created_at"
    fields = ("format", "status", "count", "total", "filters_display", "changed_only", "bom",
              "formula_guard", "destination", "file", "size", "error", "created_by",
              "created_at", "started_at", "finished_at")
    readonly_fields = ("filters_display",)

    @admin.display(description=_("filters"))
    def filters_display(self, batch: ExportBatch) -> str:
        return pretty_json(batch.filters)

