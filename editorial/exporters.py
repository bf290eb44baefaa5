"""Approved copy out of Copydesk: selectors for the rows and services that write them.

Exports always take a draft's *last approved* revision, never its current one, whatever state
the draft is in now: text edited after approval waits for a new approval, and until then the
draft (in edit or in review again) goes on exporting the text approved before. A column the shop
once got from Copydesk therefore never falls back to what it sent us.

Formats: generic CSV, JSON Lines, and Shopify product CSV (the rows a Shopify export sent us,
variants included and in order, with the approved copy in ``Body (HTML)``, ``SEO Title`` and
``SEO Description``). One CSV has one column row: products that came from Shopify files with
different columns are exported as a zip with one CSV per column set. The formula guard applies
to the text Copydesk writes; the cells a shop sent go back byte for byte.

How an export runs, whatever the caller (management command, streamed download, Celery task):

1. Rows are read with one query per format (``values_list(...).iterator(chunk_size=PAGE_SIZE)``:
   tuples, no model instances, no per-row queries) and rendered one page at a time, so memory
   stays flat however many drafts there are. Nothing is written to the database while reading,
   and no transaction is held open on the drafts: editors keep saving during a long export.
2. The approved revision ids written are spooled to a temporary file (8 bytes each).
3. When the whole file has been produced, one short transaction marks exactly those revisions'
   drafts exported (``exported_revision`` = that revision; an approved draft's state becomes
   exported, a draft in edit or review keeps its state) and records the ``ExportBatch``. A
   draft re-approved meanwhile is not marked with the old text; an export that fails or a
   download that is cut off marks nothing.
4. A zip (several Shopify column sets, or asked for) is written through ``zipfile`` onto a sink
   that hands on each page's compressed bytes, so it streams like a single file.
"""

from __future__ import annotations

import csv
import html
import io
import json
import logging
import os
import re
import tempfile
import time
import zipfile
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Case, F, Q, QuerySet, Value, When
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from . import policies
from .audit import audit_log
from .models import (
    Brand,
    CatalogImport,
    ContentKind,
    Draft,
    ExportBatch,
    Locale,
    Product,
    Revision,
)
from .services import WorkflowError

logger = logging.getLogger(__name__)

EXPORT_COLUMNS = [
    "sku", "title", "kind", "locale", "text", "revision", "approved_by", "approved_at",
    "model_version",
]
# ``import``: the id of the catalog import the products came from (``CatalogImport``).
FILTER_KEYS = ("brand", "kind", "locale", "import")
# What a download view sends: content type and file extension per format.
EXPORT_FORMATS = {
    ExportBatch.Format.CSV: ("text/csv; charset=utf-8", "csv"),
    ExportBatch.Format.JSONL: ("application/x-ndjson; charset=utf-8", "jsonl"),
    ExportBatch.Format.SHOPIFY: ("text/csv; charset=utf-8", "csv"),
}
CSV_FORMATS = (ExportBatch.Format.CSV, ExportBatch.Format.SHOPIFY)
ZIP_CONTENT_TYPE = "application/zip"
# More Shopify column sets than this in one export is a mix-up, not a catalog: pick an import.
MAX_SHOPIFY_FILES = 50
# Content kind code -> the Shopify column (lower-cased) that carries its approved copy.
SHOPIFY_COLUMNS = {
    "description": "body (html)",
    "seo_title": "seo title",
    "seo_description": "seo description",
}
SHOPIFY_HTML_COLUMNS = ("body (html)",)
# Rows fetched per round trip, and rendered (and yielded to a download) per page.
PAGE_SIZE = 2000
# Revision ids per UPDATE when the exported drafts are marked.
MARK_BATCH = 5000
# A download with more drafts than this runs as a background export instead.
DOWNLOAD_MAX_ROWS = 20_000
# Progress is written to a background export's batch at most this often (seconds).
PROGRESS_SECONDS = 0.5
BOM = "\ufeff"
# A spreadsheet treats a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# ... except a plain signed number (a negative stock level, "-3"), which it reads as a number.
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


# --- Options -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ShopifyFile:
    """One Shopify CSV of an export: the column row its products' files had, and its name
    inside a zip."""

    name: str
    header: list[str]


@dataclass(frozen=True)
class ExportOptions:
    """What to export and how; build it with ``export_options_clean``."""

    fmt: str
    filters: dict = field(default_factory=dict)
    changed_only: bool = False
    bom: bool = False
    formula_guard: bool = True
    # A zip instead of one file: asked for, or needed (Shopify products with several column
    # sets). Set by ``export_options_clean``.
    archive: bool = False
    # Shopify: one file per column set of the products to export (none when there is nothing
    # to export); None until ``export_options_clean`` has read them.
    shopify_files: tuple[ShopifyFile, ...] | None = None


class ArchiveRequired(WorkflowError):
    """The export needs a zip (several Shopify column sets) but the caller can take only one
    file. ``files``: the files the zip would hold."""

    def __init__(self, files: tuple[ShopifyFile, ...]):
        self.files = files
        super().__init__(_(
            "These products came from Shopify exports with different columns (%(count)d column "
            "sets), and one CSV has one column row: export them as a zip (one CSV per column "
            "set, %(files)s) or pick one import."
        ) % {"count": len(files), "files": ", ".join(item.name for item in files)})


def export_filters_clean(filters: dict | None) -> dict:
    """Drop empty values and check the rest; raises ``WorkflowError`` with a message for users."""
    cleaned = {key: str(value).strip() for key, value in (filters or {}).items()
               if value is not None and str(value).strip()}
    unknown = sorted(set(cleaned) - set(FILTER_KEYS))
    if unknown:
        raise WorkflowError(_("Unknown export filter(s): %(unknown)s; use %(known)s.")
                            % {"unknown": ", ".join(unknown), "known": ", ".join(FILTER_KEYS)})
    if "brand" in cleaned and not Brand.objects.filter(name=cleaned["brand"]).exists():
        raise WorkflowError(_("There is no brand called %(brand)s.")
                            % {"brand": repr(cleaned["brand"])})
    if "kind" in cleaned and not ContentKind.objects.filter(code=cleaned["kind"]).exists():
        known = ", ".join(ContentKind.objects.values_list("code", flat=True))
        raise WorkflowError(_("Unknown content kind %(kind)s; choose from %(known)s.")
                            % {"kind": repr(cleaned["kind"]), "known": known})
    if "locale" in cleaned and cleaned["locale"] not in Locale.values:
        raise WorkflowError(
            _("Unknown locale %(locale)s; choose from %(known)s.")
            % {"locale": repr(cleaned["locale"]), "known": ", ".join(Locale.values)}
        )
    if "import" in cleaned:
        cleaned["import"] = str(catalog_import_find(cleaned["import"]).pk)
    return cleaned


def catalog_import_label(catalog_import: CatalogImport) -> str:
    return f"#{catalog_import.pk} {catalog_import}"


def catalog_import_find(value: str) -> CatalogImport:
    """The import an export filter names: its id, or a file name (its latest import). Raises
    ``WorkflowError`` listing recent imports when there is none."""
    value = str(value).strip().removeprefix("#")
    found = None
    if value.isdigit():
        found = CatalogImport.objects.filter(pk=int(value)).first()
    if found is None:
        found = CatalogImport.objects.filter(filename=value).order_by("-created_at", "-pk").first()
    if found is None:
        recent = [catalog_import_label(item) for item in CatalogImport.objects.all()[:5]]
        raise WorkflowError(
            _("There is no import %(import)s; recent imports: %(recent)s.")
            % {"import": repr(value), "recent": "; ".join(recent) or _("none")}
        )
    return found


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


# --- Selectors ---------------------------------------------------------------------------------

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


# --- Shopify -----------------------------------------------------------------------------------

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


# --- Writers -----------------------------------------------------------------------------------

def csv_cell(value) -> str:
    """A cell a spreadsheet will show as text: formula-like values get a leading quote.
    Plain signed numbers ("-3", "+1.5") are left alone; a spreadsheet reads them as numbers."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_PREFIXES) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def _plain_cell(value) -> str:
    return "" if value is None else str(value)


def _jsonl_line(row: dict) -> str:
    # U+2028/U+2029 are valid in JSON but split lines for some readers; keep one record a line.
    line = json.dumps(row, ensure_ascii=False)
    return line.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029") + "\n"


class _Ledger:
    """The approved revision ids an export wrote, spooled to a temporary file so memory does not
    grow with the export. A revision belongs to one draft, so its id names the draft *and* the
    text that went out."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()
        self.count = 0

    def add(self, revision_ids: list[int]) -> None:
        array("q", revision_ids).tofile(self._file)
        self.count += len(revision_ids)

    def chunks(self, size: int) -> Iterator[list[int]]:
        self._file.seek(0)
        while True:
            ids = array("q")
            try:
                ids.fromfile(self._file, size)
            except EOFError:
                if ids:
                    yield ids.tolist()
                return
            yield ids.tolist()

    def close(self) -> None:
        self._file.close()


def _chunks(options: ExportOptions, ledger: _Ledger, *, header: list[str] | None = None
            ) -> Iterator[str]:
    """One file of the export (Shopify: the one with ``header``, else the only one), a page at
    a time; every approved revision written goes to ``ledger``. Reads only: nothing in the
    database changes."""
    if options.fmt == ExportBatch.Format.SHOPIFY and header is None:
        files = options.shopify_files
        if files is None:
            files = _shopify_files(options)
        if len(files) > 1:
            raise ArchiveRequired(files)
        header = files[0].header if files else None
        if header is None:
            return
    if options.bom:
        yield BOM
    cell = csv_cell if options.formula_guard else _plain_cell
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    if options.fmt == ExportBatch.Format.SHOPIFY:
        # The shop's own cells go back as they came; _shopify_pages guards the copy.
        writer.writerow(header)
        yield flush()
        for page in _shopify_pages(options, header):
            for revision_ids, rows in page:
                writer.writerows(rows)
                ledger.add(revision_ids)
            yield flush()
        return

    if options.fmt == ExportBatch.Format.CSV:
        writer.writerow(EXPORT_COLUMNS)
        yield flush()
    for page in _copy_row_pages(options):
        if options.fmt == ExportBatch.Format.CSV:
            writer.writerows([cell(row[column]) for column in EXPORT_COLUMNS] for _, row in page)
            text = flush()
        else:
            text = "".join(_jsonl_line(row) for _, row in page)
        ledger.add([revision_id for revision_id, _ in page])
        yield text


class _ZipSink:
    """Where ``zipfile`` writes a zip that is handed on a chunk at a time. It cannot seek or
    tell, so ``zipfile`` writes each entry's sizes after its data instead of going back."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts = []
        return data


def _archive_entries(options: ExportOptions) -> list[tuple[str, list[str] | None]]:
    """(name in the zip, Shopify column row or None) for each file of an archive export."""
    if options.fmt == ExportBatch.Format.SHOPIFY:
        files = options.shopify_files
        if files is None:
            files = _shopify_files(options)
        return [(item.name, item.header) for item in files]
    _, ext = EXPORT_FORMATS[options.fmt]
    return [(f"copydesk.{ext}", None)]


def _archive_chunks(options: ExportOptions, ledger: _Ledger) -> Iterator[bytes]:
    """The export as a zip, one file per entry of ``_archive_entries``, a page at a time."""
    sink = _ZipSink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, header in _archive_entries(options):
            with archive.open(name, "w") as entry:
                for text in _chunks(options, ledger, header=header):
                    entry.write(text.encode("utf-8"))
                    if data := sink.take():
                        yield data
            if data := sink.take():
                yield data
    if data := sink.take():
        yield data


def _output(options: ExportOptions, ledger: _Ledger) -> Iterator[bytes]:
    """The export's bytes: one UTF-8 file, or a zip when ``options.archive``."""
    if options.archive:
        yield from _archive_chunks(options, ledger)
        return
    for text in _chunks(options, ledger):
        if text:
            yield text.encode("utf-8")


def _mark_exported(ledger: _Ledger, *, now) -> int:
    """Call inside a transaction. Marks the drafts whose approved revision is one the export
    wrote: ``exported_revision`` is that revision, an approved draft becomes exported, and a
    draft in edit or review (or re-approved since it was read) keeps its state."""
    marked = 0
    for ids in ledger.chunks(MARK_BATCH):
        # A draft already exported with this revision is left alone: rewriting its row would
        # change nothing but cost index updates.
        marked += Draft.objects.filter(
            Q(state=Draft.State.APPROVED) | Q(exported_revision__isnull=True)
            | ~Q(exported_revision_id=F("approved_revision_id")),
            approved_revision_id__in=ids,
        ).update(
            state=Case(When(state=Draft.State.APPROVED, then=Value(Draft.State.EXPORTED)),
                       default=F("state")),
            exported_revision_id=F("approved_revision_id"),
            # A draft in edit keeps its time: the queue sorts editors' work by it.
            updated_at=Case(When(state=Draft.State.APPROVED, then=Value(now)),
                            default=F("updated_at")),
        )
    return marked


# --- Services ----------------------------------------------------------------------------------

def _require_export(user) -> None:
    if user is not None:
        policies.require(policies.can_export(user),
                         _("Only reviewers and admins can export copy."))


def _options_record(options: ExportOptions) -> dict:
    record = {"format": options.fmt, "filters": options.filters,
              "changed_only": options.changed_only, "bom": options.bom,
              "formula_guard": options.formula_guard, "archive": options.archive}
    if options.archive:
        record["files"] = [name for name, _header in _archive_entries(options)]
    return record


def copy_export(
    *,
    stream: IO[str],
    fmt: str,
    user=None,
    filters: dict | None = None,
    destination: str = "",
    bom: bool = False,
    formula_guard: bool = True,
    changed_only: bool = False,
    archive: bool = False,
    before_commit: Callable[[], None] | None = None,
) -> ExportBatch:
    """Write approved copy to ``stream`` as CSV, JSON Lines or Shopify CSV, record an
    ``ExportBatch`` and mark the exported drafts (``exported_revision`` = the approved revision
    written; approved drafts become exported).

    ``stream`` is any text stream with ``write(str)``. Files must be opened with ``newline=""``
    and ``encoding="utf-8"``. With ``archive`` the stream is binary (``write(bytes)``) and gets
    a zip: one CSV per Shopify column set, or the one CSV / JSON Lines file. ``user`` must be
    allowed to export (reviewers, admins); ``None`` means the system (management commands).
    ``filters``: ``brand`` (name), ``kind`` (code), ``locale``, ``import`` (id, or a file name:
    its latest import). ``changed_only`` skips drafts whose approved revision was exported
    already. ``bom`` starts a CSV with a UTF-8 byte order mark so Excel reads it as UTF-8.
    ``formula_guard`` (on by default) prefixes the cells Copydesk writes that start with
    ``= + - @`` tab or CR with ``'`` (plain numbers excepted; the cells of a shop's own Shopify
    rows go back as they came); note that this includes bullet lists written as ``- ...``.

    Raises ``PermissionDenied`` or ``WorkflowError`` (bad format or filters; ``ArchiveRequired``
    for Shopify products with several column sets without ``archive``) before writing.
    The rows are read without holding a transaction; the drafts are marked and the batch
    recorded in one transaction at the end, which also runs ``before_commit`` (renaming a
    finished file into place, say): if writing or ``before_commit`` fails, nothing is marked.

    For a download, use ``export_batch_create`` + ``export_batch_stream`` with a
    ``StreamingHttpResponse``; for large exports, ``export_batch_create(background=True)``
    (a Celery task).
    """
    _require_export(user)
    options = export_options_clean(fmt=fmt, filters=filters, changed_only=changed_only,
                                   bom=bom, formula_guard=formula_guard, archive=archive)
    if options.archive and not archive:
        raise ArchiveRequired(options.shopify_files or ())
    ledger = _Ledger()
    try:
        for data in _output(options, ledger) if archive else _chunks(options, ledger):
            stream.write(data)
        with transaction.atomic():
            now = timezone.now()
            _mark_exported(ledger, now=now)
            batch = ExportBatch.objects.create(
                created_by=user if user is not None and user.is_authenticated else None,
                format=options.fmt, filters=options.filters, changed_only=options.changed_only,
                bom=options.bom, formula_guard=options.formula_guard,
                status=ExportBatch.Status.DONE, total=ledger.count, count=ledger.count,
                destination=destination[:1000], started_at=now, finished_at=now,
            )
            audit_log(actor=user, verb="export.create", obj=batch, count=ledger.count,
                      destination=batch.destination, **_options_record(options))
            if before_commit is not None:
                before_commit()
    finally:
        ledger.close()
    return batch


def download_max_rows() -> int:
    return int(getattr(settings, "COPYDESK_EXPORT_DOWNLOAD_MAX_ROWS", DOWNLOAD_MAX_ROWS))


def export_batch_create(*, user, fmt: str, filters: dict | None = None,
                        changed_only: bool = False, bom: bool = False,
                        formula_guard: bool = True, background: bool = False) -> ExportBatch:
    """Record an export that is about to run, with the number of drafts it will write.

    A download (status running) is then sent with ``export_batch_stream`` (a zip when the
    Shopify products came with several column sets). A background export
    (status queued) is written to a file under the exports directory by a Celery task on the
    ``default`` queue, sent once the surrounding transaction commits; downloads of more than
    ``download_max_rows()`` drafts become background exports. Raises ``PermissionDenied`` or
    ``WorkflowError`` before anything is written."""
    _require_export(user)
    options = export_options_clean(fmt=fmt, filters=filters, changed_only=changed_only, bom=bom,
                                   formula_guard=formula_guard)
    total = export_count(options)
    background = background or total > download_max_rows()
    batch = ExportBatch.objects.create(
        created_by=user if user is not None and user.is_authenticated else None,
        format=options.fmt, filters=options.filters, changed_only=options.changed_only,
        bom=options.bom, formula_guard=options.formula_guard, total=total,
        status=ExportBatch.Status.QUEUED if background else ExportBatch.Status.RUNNING,
        destination="file" if background else "download",
        started_at=None if background else timezone.now(),
    )
    if background:
        transaction.on_commit(lambda: _send(batch.pk))
    return batch


def _batch_options(batch: ExportBatch) -> ExportOptions:
    """The batch's options with the Shopify column sets as they are now."""
    return _options_resolve(ExportOptions(
        fmt=batch.format, filters=dict(batch.filters or {}), changed_only=batch.changed_only,
        bom=batch.bom, formula_guard=batch.formula_guard,
    ))


def _batch_finish(batch: ExportBatch, ledger: _Ledger, *, before_commit=None, **fields) -> None:
    """Mark the drafts and the batch done, in one transaction."""
    with transaction.atomic():
        now = timezone.now()
        _mark_exported(ledger, now=now)
        fields |= {"status": ExportBatch.Status.DONE, "count": ledger.count, "finished_at": now,
                   "error": ""}
        ExportBatch.objects.filter(pk=batch.pk).update(**fields)
        for name, value in fields.items():
            setattr(batch, name, value)
        audit_log(actor=batch.created_by, verb="export.create", obj=batch, count=ledger.count,
                  destination=batch.destination, **_options_record(_batch_options(batch)))
        if before_commit is not None:
            before_commit()


def _batch_fail(batch: ExportBatch, message: str, *, count: int = 0) -> None:
    ExportBatch.objects.filter(pk=batch.pk).update(
        status=ExportBatch.Status.FAILED, error=message[:2000], count=count,
        finished_at=timezone.now(),
    )


@dataclass(frozen=True)
class ExportDownload:
    """What a download sends: its content type, file name and bytes."""

    content_type: str
    filename: str
    chunks: Iterator[bytes]


def export_batch_stream(*, batch: ExportBatch) -> ExportDownload:
    """The file of a download batch from ``export_batch_create`` (a zip when its Shopify
    products have several column sets), with ``chunks`` for a ``StreamingHttpResponse``. The
    drafts are marked exported only once the last chunk has been handed over; a download that
    is cut off (the server closes the generator) or fails marks nothing and leaves the batch
    failed. Raises ``WorkflowError`` (the batch failed) when the products changed since the
    batch was recorded so that it cannot be written."""
    try:
        options = _batch_options(batch)
    except WorkflowError as exc:
        _batch_fail(batch, str(exc))
        raise
    content_type = ZIP_CONTENT_TYPE if options.archive else EXPORT_FORMATS[options.fmt][0]
    return ExportDownload(content_type=content_type,
                          filename=export_download_name(batch, archive=options.archive),
                          chunks=_batch_chunks(batch, options))


def _batch_chunks(batch: ExportBatch, options: ExportOptions) -> Iterator[bytes]:
    ledger = _Ledger()
    finished = False
    try:
        yield from _output(options, ledger)
        _batch_finish(batch, ledger)
        finished = True
    except GeneratorExit:
        _batch_fail(batch, "The download was interrupted; nothing was marked exported.",
                    count=ledger.count)
        raise
    except Exception as exc:
        logger.exception("export %s failed", batch.pk)
        _batch_fail(batch, f"{type(exc).__name__}: {exc}", count=ledger.count)
        raise
    finally:
        ledger.close()
        if not finished:
            logger.info("export %s did not finish", batch.pk)


def _send(batch_id: int) -> None:
    from .workers.exports import run_export

    try:
        run_export.delay(batch_id)
    except Exception as exc:  # the broker is down: say so instead of "queued" forever
        logger.exception("could not queue export %s", batch_id)
        ExportBatch.objects.filter(pk=batch_id, status=ExportBatch.Status.QUEUED).update(
            status=ExportBatch.Status.FAILED, finished_at=timezone.now(),
            error=f"Could not reach the task queue: {exc}"[:2000],
        )


def export_dir() -> Path:
    """Where background exports are written (``COPYDESK_EXPORT_DIR``, else ``var/exports``)."""
    configured = getattr(settings, "COPYDESK_EXPORT_DIR", None)
    return Path(configured) if configured else Path(settings.VAR_DIR) / "exports"


def export_file_path(batch: ExportBatch) -> Path | None:
    """The finished file of a background export, or None (not done, or the file is gone)."""
    if batch.status != ExportBatch.Status.DONE or not batch.file:
        return None
    root = export_dir().resolve()
    path = (root / batch.file).resolve()
    if path.parent != root or not path.is_file():
        return None
    return path


def _is_archive_file(batch: ExportBatch) -> bool:
    return batch.file.endswith(".zip")


def export_file_content_type(batch: ExportBatch) -> str:
    """The content type of a background export's file."""
    if _is_archive_file(batch):
        return ZIP_CONTENT_TYPE
    return EXPORT_FORMATS.get(batch.format, ("text/csv; charset=utf-8", ""))[0]


def export_download_name(batch: ExportBatch, *, archive: bool | None = None) -> str:
    """The file name a user's browser saves; ``archive`` None: as the batch's file is."""
    if archive is None:
        archive = _is_archive_file(batch)
    _, ext = EXPORT_FORMATS.get(batch.format, ("", "csv"))
    if archive:
        ext = "zip"
    stamp = timezone.localtime(batch.created_at).strftime("%Y%m%d-%H%M%S")
    prefix = "copydesk-shopify" if batch.format == ExportBatch.Format.SHOPIFY else "copydesk"
    return f"{prefix}-{stamp}-{batch.pk}.{ext}"


def export_batch_run(*, batch_id: int) -> int:
    """Run a queued background export (the Celery task calls this): write the file next to its
    final name with progress on the batch, then mark the drafts, record the file and rename it
    into place in one transaction. Returns the number of drafts written.

    Idempotent: a batch that is gone or finished is left alone (returns 0); one that was running
    when its worker died is run again from the start when the broker redelivers it.
    """
    claimed = ExportBatch.objects.filter(
        pk=batch_id, destination="file",
        status__in=[ExportBatch.Status.QUEUED, ExportBatch.Status.RUNNING],
    ).update(status=ExportBatch.Status.RUNNING, started_at=timezone.now(), count=0, error="")
    if not claimed:
        return 0
    batch = ExportBatch.objects.select_related("created_by").get(pk=batch_id)
    started = time.monotonic()
    try:
        options = _batch_options(batch)
    except WorkflowError as exc:  # the products changed since it was queued
        _batch_fail(batch, str(exc))
        return 0
    folder = export_dir()
    folder.mkdir(parents=True, exist_ok=True)
    _, ext = EXPORT_FORMATS[options.fmt]
    name = f"export-{batch.pk}.{'zip' if options.archive else ext}"
    tmp = folder / f".{name}.{os.getpid()}.tmp"
    ledger = _Ledger()
    try:
        ExportBatch.objects.filter(pk=batch.pk).update(total=export_count(options))
        last = 0.0
        with open(tmp, "wb") as out:
            for data in _output(options, ledger):
                out.write(data)
                if time.monotonic() - last >= PROGRESS_SECONDS:
                    ExportBatch.objects.filter(pk=batch.pk).update(count=ledger.count)
                    last = time.monotonic()
            out.flush()
            os.fsync(out.fileno())
        size = tmp.stat().st_size
        _batch_finish(batch, ledger, file=name, size=size,
                      before_commit=lambda: os.replace(tmp, folder / name))
    except Exception as exc:
        logger.exception("export %s failed", batch.pk)
        _batch_fail(batch, f"{type(exc).__name__}: {exc}", count=ledger.count)
        tmp.unlink(missing_ok=True)
        raise
    finally:
        ledger.close()
    logger.info("export %s: %d drafts, %d bytes in %.1fs", batch.pk, batch.count, batch.size,
                time.monotonic() - started)
    return batch.count
