"""Approved copy out of Copydesk: a selector for the rows and a service that writes them.

Exports always take a draft's *approved* revision, never its current one: text edited after
approval waits for a new approval (the draft leaves the approved state when it is edited, so it
is not exported at all until then).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import IO

from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from . import policies
from .audit import audit_log
from .models import Brand, ContentKind, Draft, ExportBatch, Locale, Revision
from .services import WorkflowError

EXPORT_COLUMNS = [
    "sku", "title", "kind", "locale", "text", "revision", "approved_by", "approved_at",
    "model_version",
]
EXPORTABLE_STATES = (Draft.State.APPROVED, Draft.State.EXPORTED)
FILTER_KEYS = ("brand", "kind", "locale")
# What a download view sends: content type and file extension per format.
EXPORT_FORMATS = {
    ExportBatch.Format.CSV: ("text/csv; charset=utf-8", "csv"),
    ExportBatch.Format.JSONL: ("application/x-ndjson; charset=utf-8", "jsonl"),
}
PAGE_SIZE = 500
BOM = "\ufeff"
# A spreadsheet treats a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


# --- Selector ----------------------------------------------------------------------------------

def export_filters_clean(filters: dict | None) -> dict:
    """Drop empty values and check the rest; raises ``WorkflowError`` with a message for users."""
    cleaned = {key: str(value).strip() for key, value in (filters or {}).items()
               if value is not None and str(value).strip()}
    unknown = sorted(set(cleaned) - set(FILTER_KEYS))
    if unknown:
        raise WorkflowError(f"Unknown export filter(s): {', '.join(unknown)}; "
                            f"use {', '.join(FILTER_KEYS)}.")
    if "brand" in cleaned and not Brand.objects.filter(name=cleaned["brand"]).exists():
        raise WorkflowError(f"There is no brand called {cleaned['brand']!r}.")
    if "kind" in cleaned and not ContentKind.objects.filter(code=cleaned["kind"]).exists():
        known = ", ".join(ContentKind.objects.values_list("code", flat=True))
        raise WorkflowError(f"Unknown content kind {cleaned['kind']!r}; choose from {known}.")
    if "locale" in cleaned and cleaned["locale"] not in Locale.values:
        raise WorkflowError(f"Unknown locale {cleaned['locale']!r}; "
                            f"choose from {', '.join(Locale.values)}.")
    return cleaned


def _exportable_drafts(filters: dict) -> QuerySet[Draft]:
    qs = Draft.objects.filter(state__in=EXPORTABLE_STATES)
    if "brand" in filters:
        qs = qs.filter(product__brand__name=filters["brand"])
    if "kind" in filters:
        qs = qs.filter(kind_id=filters["kind"])
    if "locale" in filters:
        qs = qs.filter(product__locale=filters["locale"])
    return (
        qs.select_related(
            "product", "kind", "approved_by", "approved_revision__candidate__model_version"
        )
        # Large columns nobody exports.
        .defer(
            "product__raw", "product__attributes", "product__source_text",
            "kind__instructions",
            "approved_revision__candidate__text", "approved_revision__candidate__prompt",
            "approved_revision__candidate__params", "approved_revision__candidate__flags",
        )
        .order_by("product__sku", "kind__position", "kind__code")
    )


def _draft_pages(filters: dict, *, lock: bool) -> Iterator[list[Draft]]:
    """Exportable drafts in export order, one page at a time.

    Keyset pages rather than one open cursor (``.iterator()``): every page's query has finished
    before the caller writes to the drafts it returned, which SQLite does not isolate from an open
    cursor on the same connection. With ``lock`` the page's draft rows are locked (call inside a
    transaction) so nobody edits or re-approves them before the export commits.
    """
    page_size = PAGE_SIZE
    qs = _exportable_drafts(filters)
    if lock:
        qs = qs.select_for_update(of=("self",))
    after: tuple[str, int, str] | None = None
    while True:
        page_qs = qs
        if after is not None:
            sku, position, code = after
            page_qs = qs.filter(
                Q(product__sku__gt=sku)
                | Q(product__sku=sku, kind__position__gt=position)
                | Q(product__sku=sku, kind__position=position, kind__code__gt=code)
            )
        page = list(page_qs[:page_size])
        if not page:
            return
        yield page
        if len(page) < page_size:
            return
        last = page[-1]
        after = (last.product.sku, last.kind.position, last.kind.code)


def _model_version_names(drafts: list[Draft]) -> dict[int, str]:
    """The model version each draft's approved text descends from, by draft id.

    The approved revision's own candidate if it has one; else the nearest ancestor's (following
    ``parent``); else the draft's earliest revision that came from a candidate. One query for the
    whole page, whatever the chain lengths.
    """
    names: dict[int, str] = {}
    walk = []
    for draft in drafts:
        candidate = draft.approved_revision.candidate
        if candidate is not None:
            names[draft.pk] = candidate.model_version.name
        else:
            walk.append(draft)
    if not walk:
        return names
    revisions: dict[int, tuple[int | None, str | None]] = {}
    first_by_draft: dict[int, tuple[int, str]] = {}
    rows = Revision.objects.filter(draft_id__in=[d.pk for d in walk]).values_list(
        "pk", "draft_id", "number", "parent_id", "candidate__model_version__name"
    )
    for pk, draft_id, number, parent_id, name in rows:
        revisions[pk] = (parent_id, name)
        if name is not None and (draft_id not in first_by_draft
                                 or number < first_by_draft[draft_id][0]):
            first_by_draft[draft_id] = (number, name)
    for draft in walk:
        name = None
        seen = set()
        pk = draft.approved_revision_id
        while pk is not None and pk in revisions and pk not in seen:
            seen.add(pk)
            parent_id, name = revisions[pk]
            if name is not None:
                break
            pk = parent_id
        if name is None and draft.pk in first_by_draft:
            name = first_by_draft[draft.pk][1]
        names[draft.pk] = name or ""
    return names


def _username(user) -> str:
    return user.get_username() if user is not None else ""


def _pages_with_rows(filters: dict, *, lock: bool) -> Iterator[list[tuple[Draft, dict]]]:
    for page in _draft_pages(filters, lock=lock):
        versions = _model_version_names(page)
        yield [
            (
                draft,
                {
                    "sku": draft.product.sku,
                    "title": draft.product.title,
                    "kind": draft.kind.code,
                    "locale": draft.product.locale,
                    "text": draft.approved_revision.text,
                    "revision": draft.approved_revision.number,
                    "approved_by": _username(draft.approved_by),
                    "approved_at": draft.approved_at.isoformat() if draft.approved_at else "",
                    "model_version": versions[draft.pk],
                },
            )
            for draft in page
        ]


def approved_copy_rows(*, filters: dict | None = None) -> Iterator[dict]:
    """One dict per approved or exported draft (keys: ``EXPORT_COLUMNS``), ordered by SKU then
    content kind, with the *approved* revision's text. ``filters``: ``brand`` (name), ``kind``
    (code), ``locale``. A few queries per page of drafts; memory stays flat however many there
    are. Bad filters raise ``WorkflowError`` at the call, not at the first row."""
    cleaned = export_filters_clean(filters)
    return (row for page in _pages_with_rows(cleaned, lock=False) for _, row in page)


# --- Writers -----------------------------------------------------------------------------------

def csv_cell(value) -> str:
    """A cell a spreadsheet will show as text: formula-like values get a leading quote."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def _plain_cell(value) -> str:
    return "" if value is None else str(value)


def _jsonl_line(row: dict) -> str:
    # U+2028/U+2029 are valid in JSON but split lines for some readers; keep one record a line.
    line = json.dumps(row, ensure_ascii=False)
    return line.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029") + "\n"


# --- Service -----------------------------------------------------------------------------------

def copy_export(
    *,
    stream: IO[str],
    fmt: str,
    user=None,
    filters: dict | None = None,
    destination: str = "",
    bom: bool = False,
    formula_guard: bool = True,
) -> ExportBatch:
    """Write approved copy to ``stream`` as CSV or JSON Lines, record an ``ExportBatch`` and mark
    the exported drafts (``exported_revision`` = the approved revision, state exported).

    ``stream`` is any text stream with ``write(str)``. Files must be opened with ``newline=""``
    and ``encoding="utf-8"``. ``user`` must be allowed to export (reviewers, admins);
    ``None`` means the system (management commands). ``filters``: ``brand`` (name), ``kind``
    (code), ``locale``. ``bom`` starts a CSV with a UTF-8 byte order mark so Excel reads it as
    UTF-8. ``formula_guard`` (on by default) prefixes CSV cells that start with ``= + - @`` tab
    or CR with ``'``; note that this includes bullet lists written as ``- ...``.

    Raises ``PermissionDenied`` or ``WorkflowError`` (bad format or filters) before writing.
    Everything happens in one transaction (a savepoint if the caller has one open): if writing
    fails nothing is marked exported, and a caller that must also finish its own step (renaming
    a file) can wrap the call in ``transaction.atomic()`` to roll back with it.

    From a download view, write into the response, which is a text stream::

        content_type, ext = EXPORT_FORMATS[fmt]
        response = HttpResponse(content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="copy.{ext}"'
        copy_export(stream=response, fmt=fmt, user=request.user, filters=filters,
                    destination="download")
        return response

    That holds the file in memory. For large exports spool it to disk and send it with
    ``FileResponse``: ``spool = tempfile.SpooledTemporaryFile(8 << 20)``;
    ``text = io.TextIOWrapper(spool, encoding="utf-8", newline="")``; call ``copy_export
    (stream=text, ...)``; ``text.detach()``; ``spool.seek(0)``; ``return FileResponse(spool,
    as_attachment=True, filename=..., content_type=content_type)``. Do not call it from the
    generator of a ``StreamingHttpResponse``: the drafts would be marked exported (and their rows
    locked) while a client may still be half-way through the download.
    """
    if user is not None:
        policies.require(policies.can_export(user), "Only reviewers and admins can export copy.")
    if fmt not in EXPORT_FORMATS:
        raise WorkflowError(f"Unknown export format {fmt!r}; use csv or jsonl.")
    if bom and fmt != ExportBatch.Format.CSV:
        raise WorkflowError("A byte order mark is only written for CSV.")
    cleaned = export_filters_clean(filters)

    with transaction.atomic():
        if bom:
            stream.write(BOM)
        if fmt == ExportBatch.Format.CSV:
            writer = csv.writer(stream)
            writer.writerow(EXPORT_COLUMNS)
            cell = csv_cell if formula_guard else _plain_cell
        count = 0
        now = timezone.now()
        for page in _pages_with_rows(cleaned, lock=True):
            for _, row in page:
                if fmt == ExportBatch.Format.CSV:
                    writer.writerow([cell(row[column]) for column in EXPORT_COLUMNS])
                else:
                    stream.write(_jsonl_line(row))
            # The rows are locked, so the approved revision is still the one just written.
            Draft.objects.filter(pk__in=[draft.pk for draft, _ in page]).update(
                state=Draft.State.EXPORTED,
                exported_revision_id=F("approved_revision_id"),
                updated_at=now,
            )
            count += len(page)
        batch = ExportBatch.objects.create(
            created_by=user if user is not None and user.is_authenticated else None,
            format=fmt,
            filters=cleaned,
            count=count,
            destination=destination[:1000],
        )
        audit_log(actor=user, verb="export.create", obj=batch, format=fmt, filters=cleaned,
                  count=count, destination=batch.destination)
    return batch
