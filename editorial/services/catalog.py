"""The catalog through the API: products created and updated in bulk, validated like an import."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.utils.translation import gettext

from .. import policies
from ..audit import audit_log
from ..catalog import ImportReport, Record, RowError, locale_for, validate, write
from ..models import Product
from ._rows import in_batches


@dataclass
class UpsertItemError:
    index: int
    message: str
    field: str = ""
    sku: str = ""


@dataclass
class UpsertResult:
    """Per item of a bulk upsert: (index, sku) created or updated, or an error."""

    created: list[tuple[int, str]] = field(default_factory=list)
    updated: list[tuple[int, str]] = field(default_factory=list)
    errors: list[UpsertItemError] = field(default_factory=list)


def product_bulk_upsert(*, items: Sequence[dict], user,
                        errors: Sequence[UpsertItemError] = ()) -> UpsertResult:
    """Create or update products by SKU, with the catalog importer's rules and writer (each
    product written atomically; one that fails is reported, the others are kept).

    ``items`` are ``(index, fields)`` pairs already checked for types (the API's serializer):
    ``fields`` has ``sku`` and ``title`` and any of ``brand``, ``category``, ``locale``,
    ``description``, ``attributes``; a key that is absent leaves that field as it is (a new
    product gets no brand, no category, no description, no attributes and a detected locale).
    An empty ``brand``, ``category``, ``description`` or ``attributes`` clears it; a ``None``
    locale is detected again from the title and the description sent. An update never changes
    where the product came from: a Shopify product keeps its format and raw rows, so it stays
    in Shopify exports. ``errors`` are items refused before (they are reported with the
    rest)."""
    policies.require(policies.can_import(user),
                     gettext("You do not have permission to import products."))
    result = UpsertResult(errors=list(errors))
    limit = int(getattr(settings, "COPYDESK_MAX_IMPORT_FIELD_CHARS", 20000))
    valid = []
    seen: dict[str, int] = {}
    for index, fields_ in items:
        record = Record(
            line=index,
            sku=fields_["sku"],
            title=fields_["title"],
            brand=fields_.get("brand"),
            category=fields_.get("category"),
            locale=fields_.get("locale") or None,
            source_text=fields_.get("description"),
            attributes=(dict(fields_["attributes"] or {}) if "attributes" in fields_
                        else None),
            raw={"record": fields_.get("raw", fields_)},
            cells=[(name, value) for name, value in fields_.items() if isinstance(value, str)],
        )
        problem = validate(record, limit=limit, brand_name=None)
        if problem is None and record.sku in seen:
            problem = RowError(index, f"duplicate sku {record.sku!r} (first at index "
                               f"{seen[record.sku]}); this item was skipped", field="sku")
        if problem is not None:
            result.errors.append(UpsertItemError(index=index, message=problem.message,
                                                 field=problem.field, sku=record.sku))
            continue
        seen[record.sku] = index
        valid.append((record, locale_for(record, None) if "locale" in fields_ else None))
    existing = set()
    for batch in in_batches(list(seen)):
        existing.update(Product.objects.filter(sku__in=batch).values_list("sku", flat=True))
    report = ImportReport()
    last = write(valid, report=report, source_format=Product.SourceFormat.API, brand_name=None,
                  keep_origin=True)
    failed = {}
    for error in report.errors:
        failed[error.line] = error
    for record, _locale in valid:
        if record.line in failed:
            result.errors.append(UpsertItemError(index=record.line,
                                                 message=failed[record.line].message,
                                                 field=failed[record.line].field,
                                                 sku=record.sku))
        elif record.sku in existing:
            result.updated.append((record.line, record.sku))
        else:
            result.created.append((record.line, record.sku))
    result.errors.sort(key=lambda e: e.index)
    if last is not None:
        audit_log(actor=user, verb="catalog.api_upsert", obj=last, created=len(result.created),
                  updated=len(result.updated), failed=len(result.errors))
    return result

