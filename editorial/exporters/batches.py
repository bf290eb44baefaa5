"""The export services: a download now, or a batch written in the background with its progress
and its file kept for download."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import broker, policies
from ..audit import audit_log
from ..models import ExportBatch
from ..services import WorkflowError
from .files import _archive_entries, _chunks, _Ledger, _mark_exported, _output
from .options import EXPORT_FORMATS, ZIP_CONTENT_TYPE, ArchiveRequired, ExportOptions
from .rows import _options_resolve, export_count, export_options_clean

logger = logging.getLogger(__name__)

# A download with more drafts than this runs as a background export instead.
DOWNLOAD_MAX_ROWS = 20_000

# Progress is written to a background export's batch at most this often (seconds).
PROGRESS_SECONDS = 0.5



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
    try:
        broker.send(broker.RUN_EXPORT, batch_id)
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

