"""The rows an export writes: each draft's last approved revision with its product, read in
pages, and the Shopify product CSV rebuilt from the shop's own rows; the options checked
against them."""

from __future__ import annotations

import html
import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db.models import F, Q, QuerySet
from django.utils.text import slugify
from django.utils.translation import gettext as _

from ..models import CatalogImport, Draft, ExportBatch, Product, Revision
from ..services import WorkflowError
from .options import (
    CSV_FORMATS,
    EXPORT_FORMATS,
    MAX_SHOPIFY_FILES,
    SHOPIFY_COLUMNS,
    SHOPIFY_HTML_COLUMNS,
    ExportOptions,
    ShopifyFile,
    _plain_cell,
    csv_cell,
    export_filters_clean,
)

logger = logging.getLogger(__name__)

# Rows fetched per round trip, and rendered (and yielded to a download) per page.
PAGE_SIZE = 2000



def export_options_clean(
    *, fmt: str, filters: dict | None = None, changed_only: bool = False, bom: bool = False,
    formula_guard: bool = True, archive: bool = False,
) -> ExportOptions:
    """Check the format and filters, and read the Shopify column sets (an export with several
    becomes a zip); raises ``WorkflowError`` with a message for users."""
    if fmt not in EXPORT_FORMATS:
        raise WorkflowError(_("Unknown export format \"%(format)s\"; use csv, jsonl or shopify.")
                            % {"format": fmt})
    if bom and fmt not in CSV_FORMATS:
        raise WorkflowError(_("A byte order mark is only written for CSV."))
    options = ExportOptions(fmt=fmt, filters=export_filters_clean(filters),
                            changed_only=bool(changed_only), bom=bool(bom),
                            formula_guard=bool(formula_guard), archive=bool(archive))
    if fmt == ExportBatch.Format.SHOPIFY:
        shopify_kinds = _shopify_kinds(options)
        if not shopify_kinds:
            raise WorkflowError(
                _("A Shopify export carries %(kinds)s copy; %(kind)s has no Shopify column.")
                % {"kinds": ", ".join(SHOPIFY_COLUMNS), "kind": options.filters["kind"]}
            )
    return _options_resolve(options)



def _options_resolve(options: ExportOptions) -> ExportOptions:
    """``options`` with the Shopify files read: several column sets make the export a zip."""
    if options.fmt != ExportBatch.Format.SHOPIFY:
        return options
    files = _shopify_files(options)
    return replace(options, shopify_files=files, archive=options.archive or len(files) > 1)



def _changed(qs: QuerySet[Draft]) -> QuerySet[Draft]:
    """Drafts whose approved revision is not the one exported last (or never exported)."""
    return qs.filter(
        Q(exported_revision__isnull=True) | ~Q(exported_revision_id=F("approved_revision_id"))
    )



def _exportable_drafts(filters: dict, *, changed_only: bool = False) -> QuerySet[Draft]:
    """Every draft with an approved revision, whatever its state now: one back in edit or
    review still exports the text approved last."""
    qs = Draft.objects.filter(approved_revision__isnull=False)
    if "import" in filters:
        qs = qs.filter(product__catalog_import_id=int(filters["import"]))
    if "brand" in filters:
        qs = qs.filter(product__brand__name=filters["brand"])
    if "kind" in filters:
        qs = qs.filter(kind_id=filters["kind"])
    if "locale" in filters:
        qs = qs.filter(product__locale=filters["locale"])
    if changed_only:
        qs = _changed(qs)
    return qs.order_by("product__sku", "kind__position", "kind__code")



def _username_field() -> str:
    return get_user_model().USERNAME_FIELD



def _pages(rows: Iterator[tuple], size: int) -> Iterator[list[tuple]]:
    page: list[tuple] = []
    for row in rows:
        page.append(row)
        if len(page) >= size:
            yield page
            page = []
    if page:
        yield page



# Positions in the tuples ``_copy_row_pages`` reads.
_ROW_FIELDS = (
    "pk", "approved_revision_id", "product__sku", "product__title", "kind_id", "product__locale",
    "approved_revision__text", "approved_revision__number", "approved_at",
    "approved_revision__candidate__model_version__name",
)



def _copy_row_pages(options: ExportOptions) -> Iterator[list[tuple[int, dict]]]:
    """Pages of (approved revision id, row dict with ``EXPORT_COLUMNS``), in export order.
    One streaming query for the drafts plus at most one per page for model versions."""
    page_size = PAGE_SIZE
    qs = _exportable_drafts(options.filters, changed_only=options.changed_only)
    tuples = qs.values_list(*_ROW_FIELDS, f"approved_by__{_username_field()}").iterator(
        chunk_size=page_size
    )
    for page in _pages(tuples, page_size):
        versions = _model_version_names(page)
        yield [
            (
                revision_id,
                {
                    "sku": sku,
                    "title": title,
                    "kind": kind_code,
                    "locale": locale,
                    "text": text,
                    "revision": number,
                    "approved_by": username or "",
                    "approved_at": approved_at.isoformat() if approved_at else "",
                    "model_version": versions[pk],
                },
            )
            for (pk, revision_id, sku, title, kind_code, locale, text, number, approved_at,
                 _name, username) in page
        ]



def _model_version_names(page: list[tuple]) -> dict[int, str]:
    """The model version each draft's approved text descends from, by draft id.

    The approved revision's own candidate if it has one; else the nearest ancestor's (following
    ``parent``); else the draft's earliest revision that came from a candidate. One query for the
    whole page, whatever the chain lengths.
    """
    names: dict[int, str] = {}
    walk: list[tuple[int, int]] = []
    for row in page:
        pk, revision_id, name = row[0], row[1], row[9]
        if name is not None:
            names[pk] = name
        else:
            walk.append((pk, revision_id))
    if not walk:
        return names
    revisions: dict[int, tuple[int | None, str | None]] = {}
    first_by_draft: dict[int, tuple[int, str]] = {}
    rows = Revision.objects.filter(draft_id__in=[pk for pk, _ in walk]).values_list(
        "pk", "draft_id", "number", "parent_id", "candidate__model_version__name"
    )
    for pk, draft_id, number, parent_id, name in rows:
        revisions[pk] = (parent_id, name)
        if name is not None and (draft_id not in first_by_draft
                                 or number < first_by_draft[draft_id][0]):
            first_by_draft[draft_id] = (number, name)
    for draft_id, revision_id in walk:
        name = None
        seen = set()
        pk = revision_id
        while pk is not None and pk in revisions and pk not in seen:
            seen.add(pk)
            parent_id, name = revisions[pk]
            if name is not None:
                break
            pk = parent_id
        if name is None and draft_id in first_by_draft:
            name = first_by_draft[draft_id][1]
        names[draft_id] = name or ""
    return names



def approved_copy_rows(*, filters: dict | None = None, changed_only: bool = False
                       ) -> Iterator[dict]:
    """One dict per draft with an approved revision (keys: ``EXPORT_COLUMNS``), ordered by SKU
    then content kind, with the last *approved* revision's text. ``filters``: ``brand`` (name),
    ``kind`` (code), ``locale``, ``import`` (id or file name); ``changed_only``: only drafts
    whose approved revision was not exported yet. A few queries per page of drafts; memory stays
    flat however many there are. Bad filters raise ``WorkflowError`` at the call, not at the
    first row."""
    options = ExportOptions(fmt=ExportBatch.Format.JSONL, filters=export_filters_clean(filters),
                            changed_only=changed_only)
    return (row for page in _copy_row_pages(options) for _, row in page)



def export_count(options: ExportOptions) -> int:
    """How many drafts the export will write, at most (one query)."""
    if options.fmt == ExportBatch.Format.SHOPIFY:
        return _shopify_drafts(options).count()
    return _exportable_drafts(options.filters, changed_only=options.changed_only).count()



def _column_key(name: str) -> str:
    return name.strip().casefold()



def _shopify_kinds(options: ExportOptions) -> list[str]:
    if "kind" in options.filters:
        return [options.filters["kind"]] if options.filters["kind"] in SHOPIFY_COLUMNS else []
    return list(SHOPIFY_COLUMNS)



def _shopify_drafts(options: ExportOptions) -> QuerySet[Draft]:
    """Approved drafts of Shopify-imported products whose kind has a Shopify column. Not
    narrowed by ``changed_only``: a product that changed at all is written with all its copy."""
    return _exportable_drafts(options.filters).filter(
        kind_id__in=_shopify_kinds(options),
        product__source_format=Product.SourceFormat.SHOPIFY,
    )



def _shopify_files(options: ExportOptions) -> tuple[ShopifyFile, ...]:
    """One file per column row among the products to export, in SKU order of their first
    product, each named after the imports its products came from. Products from files with
    different columns cannot share a CSV: a blank cell in a column a product's own file did not
    have would clear that field in Shopify."""
    products = Product.objects.filter(
        pk__in=_shopify_drafts(options).order_by().values("product_id"), raw__has_key="columns",
    ).order_by("sku")
    # One cheap query per column set rather than a DISTINCT (a sort of every product's header).
    headers: list[list[str]] = []
    rest = products
    while True:
        header = next(iter(rest.values_list("raw__columns", flat=True)[:1]), None)
        if not isinstance(header, list):
            break
        headers.append(header)
        if len(headers) > MAX_SHOPIFY_FILES:
            raise WorkflowError(
                _("These products came from Shopify exports with more than %(limit)d different "
                  "column sets; pick one import to export.") % {"limit": MAX_SHOPIFY_FILES}
            )
        rest = rest.exclude(raw__columns=header)
    files = []
    for number, header in enumerate(headers, start=1):
        sources = list(
            CatalogImport.objects.filter(
                products__in=products.filter(raw__columns=header).order_by())
            .distinct().order_by("-created_at", "-pk").values_list("filename", flat=True)[:3]
        )
        stems = list(dict.fromkeys(slugify(Path(name).stem) or "import" for name in sources))
        label = "+".join(stems)[:100] if stems else f"shopify-{len(header)}-columns"
        files.append(ShopifyFile(name=f"{number}-{label}.csv", header=header))
    return tuple(files)



def html_paragraphs(text: str) -> str:
    """Plain copy as HTML for ``Body (HTML)``: each non-empty line one ``<p>``, escaped."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "".join(f"<p>{html.escape(line.strip(), quote=False)}</p>"
                   for line in lines if line.strip())



def _shopify_cell_value(column: str, text: str) -> str:
    if column in SHOPIFY_HTML_COLUMNS:
        return html_paragraphs(text)
    return " ".join(text.split())  # SEO fields are one line of plain text



def _shopify_pages(options: ExportOptions, header: list[str]
                   ) -> Iterator[list[tuple[list[int], list[list[str]]]]]:
    """Pages of (approved revision ids written, the product's rows): every row the shop sent
    for the product, in order, byte for byte, with the approved copy in its first row (the
    formula guard applies to that copy only)."""
    positions = {_column_key(name): index for index, name in enumerate(header)}
    cell = csv_cell if options.formula_guard else _plain_cell
    fields = ("product_id", "kind_id", "approved_revision_id", "exported_revision_id",
              "approved_revision__text")
    drafts = _shopify_drafts(options)
    if len(options.shopify_files or ()) > 1:
        drafts = drafts.filter(product__raw__columns=header)
    drafts = drafts.values_list(*fields).iterator(chunk_size=PAGE_SIZE)

    def products() -> Iterator[tuple[int, list[tuple]]]:
        current, group = None, []
        for row in drafts:
            if row[0] != current and group:
                yield current, group
                group = []
            current = row[0]
            group.append(row)
        if group:
            yield current, group

    pending: list[tuple[int, list[tuple]]] = []
    size = 0

    def render(batch: list[tuple[int, list[tuple]]]) -> list[tuple[list[int], list[list[str]]]]:
        raws = dict(Product.objects.filter(pk__in=[pk for pk, _ in batch])
                    .values_list("pk", "raw"))
        out = []
        for product_id, group in batch:
            raw = raws.get(product_id) or {}
            rows = [list(row) for row in raw.get("rows") or []]
            if not rows or raw.get("columns") != header:
                continue  # re-imported from another file since the header was read
            written = []
            first = rows[0]
            for _pid, kind_code, revision_id, _exported, text in group:
                position = positions.get(SHOPIFY_COLUMNS[kind_code])
                if position is None:
                    continue
                if len(first) <= position:
                    first.extend([""] * (position + 1 - len(first)))
                first[position] = cell(_shopify_cell_value(SHOPIFY_COLUMNS[kind_code], text))
                written.append(revision_id)
            if written:
                out.append((written, rows))
        return out

    for product_id, group in products():
        if options.changed_only and all(row[2] == row[3] for row in group):
            continue
        pending.append((product_id, group))
        size += len(group)
        if size >= PAGE_SIZE:
            yield render(pending)
            pending, size = [], 0
    if pending:
        yield render(pending)

