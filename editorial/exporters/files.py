"""Writing rows out: CSV cells (formula-guarded), JSON Lines, zip archives, and marking the drafts
a finished export wrote."""

from __future__ import annotations

import csv
import io
import json
import logging
import tempfile
import zipfile
from array import array
from collections.abc import Iterator

from django.db.models import Case, F, Q, Value, When

from ..models import Draft, ExportBatch
from .options import (
    BOM,
    EXPORT_COLUMNS,
    EXPORT_FORMATS,
    ArchiveRequired,
    ExportOptions,
    _plain_cell,
    csv_cell,
)
from .rows import _copy_row_pages, _shopify_files, _shopify_pages

logger = logging.getLogger(__name__)

# Revision ids per UPDATE when the exported drafts are marked.
MARK_BATCH = 5000



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

