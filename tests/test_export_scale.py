"""Exports at scale and their records: rows streamed from the database in pages with a bounded
number of queries and flat memory, downloads streamed to the browser (drafts marked exported
only once the whole file went out), background exports through a real Celery worker with
progress and a permission-checked download, "only what changed since the last export", and who
may do any of it."""

import csv
import io
import os
import time
import tracemalloc
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import OuterRef, Subquery
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_htmx.http import HTMX_STOP_POLLING

from copydesk.celery import app
from editorial import exporters, policies, services
from editorial.catalog import products_import
from editorial.exporters import copy_export
from editorial.exporters import files as export_files
from editorial.exporters import rows as export_rows
from editorial.models import ContentKind, Draft, ExportBatch, Product, Revision
from editorial.workers import exports as export_worker
from tests.factories import UserFactory, approve, draft_with_text
from tests.worker import Worker, use_broker_dir

HTMX = {"HTTP_HX_REQUEST": "true"}


def bulk_approved(n: int, *, reviewer, prefix: str = "BULK", kind: str = "description",
                  source_format: str = "manual") -> None:
    """``n`` products, each with one approved draft, in a handful of queries."""
    now = timezone.now()
    products = Product.objects.bulk_create(
        Product(sku=f"{prefix}-{i:06d}", title=f"Product {i}", locale="en",
                source_format=source_format,
                raw={"columns": ["Handle", "Title", "Body (HTML)"],
                     "rows": [[f"{prefix}-{i:06d}", f"Product {i}", "<p>old</p>"],
                              [f"{prefix}-{i:06d}", "", ""]]}
                if source_format == "shopify" else {})
        for i in range(n)
    )
    drafts = Draft.objects.bulk_create(
        Draft(product=product, kind_id=kind, state=Draft.State.READY) for product in products
    )
    Revision.objects.bulk_create(
        Revision(draft=draft, number=1, text=f"Approved copy {i}, with a comma.")
        for i, draft in enumerate(drafts)
    )
    first = Revision.objects.filter(draft_id=OuterRef("pk"), number=1).values("pk")[:1]
    Draft.objects.filter(pk__in=[d.pk for d in drafts]).update(
        current_revision_id=Subquery(first), approved_revision_id=Subquery(first),
        state=Draft.State.APPROVED, approved_by=reviewer, approved_at=now,
    )


class NullStream:
    def __init__(self):
        self.chars = 0

    def write(self, text):
        self.chars += len(text)
        return len(text)


def export_text(**kwargs):
    stream = io.StringIO(newline="")
    batch = copy_export(stream=stream, **kwargs)
    return batch, stream.getvalue()


def texts(out):
    rows = list(csv.reader(io.StringIO(out, newline="")))
    return [dict(zip(rows[0], row, strict=True))["text"] for row in rows[1:]]


# --- Queries and memory ------------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "shopify"])
def test_an_export_takes_the_same_queries_for_3_or_300_drafts(reviewer, fmt):
    def queries(prefix, n):
        bulk_approved(n, reviewer=reviewer, prefix=prefix, source_format="shopify")
        with CaptureQueriesContext(connection) as ctx:
            batch = copy_export(stream=NullStream(), fmt=fmt, user=reviewer)
        return len(ctx.captured_queries), batch.count

    policies.can_export(reviewer)  # the user's roles are read once and cached
    few, first = queries("A", 3)
    many, second = queries("B", 300)

    assert (first, second) == (3, 303)
    assert many == few


@pytest.mark.django_db
def test_queries_grow_with_pages_not_rows(reviewer, monkeypatch):
    monkeypatch.setattr(export_rows, "PAGE_SIZE", 50)
    bulk_approved(500, reviewer=reviewer)
    with CaptureQueriesContext(connection) as ctx:
        batch = copy_export(stream=NullStream(), fmt="csv", user=reviewer)
    assert batch.count == 500
    # A fixed few (the rows' one streaming query, the marking UPDATE, the batch and its audit
    # event) plus at most one per page of 50: these revisions have no candidate, so each page
    # looks up the model versions of the whole page in one query.
    assert len(ctx.captured_queries) <= 7 + 500 // 50


@pytest.mark.django_db
def test_memory_does_not_grow_with_the_row_count(reviewer, monkeypatch):
    # Memory is bounded by the page and marking batch sizes (2000 and 5000 rows in production),
    # so both runs here are made larger than small ones.
    monkeypatch.setattr(export_rows, "PAGE_SIZE", 100)
    monkeypatch.setattr(export_files, "MARK_BATCH", 100)

    def peak(prefix, n):
        bulk_approved(n, reviewer=reviewer, prefix=prefix)
        tracemalloc.start()
        try:
            copy_export(stream=NullStream(), fmt="csv", user=reviewer,
                        filters={}, changed_only=True)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small = peak("S", 300)
    large = peak("L", 3000)  # changed_only: the 300 exported above are not written again

    assert large < small * 1.5 + 200_000, (small, large)


# --- Streamed downloads ------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_download_streams_and_marks_drafts_only_when_it_is_complete(client, reviewer,
                                                                       monkeypatch):
    monkeypatch.setattr(export_rows, "PAGE_SIZE", 10)
    bulk_approved(35, reviewer=reviewer)
    client.force_login(reviewer)

    response = client.post(reverse("copy_export"), {"format": "csv", "mode": "download"})

    assert response.status_code == 200 and response.streaming
    chunks = iter(response.streaming_content)
    assert next(chunks).startswith(b"sku,title,kind")
    next(chunks)
    batch = ExportBatch.objects.get()
    assert batch.status == ExportBatch.Status.RUNNING and batch.total == 35
    assert not Draft.objects.filter(state=Draft.State.EXPORTED).exists()
    rest = list(chunks)
    assert len(rest) >= 3  # a page at a time, not one big body
    batch.refresh_from_db()
    assert (batch.status, batch.count, batch.created_by) == ("done", 35, reviewer)
    assert Draft.objects.filter(state=Draft.State.EXPORTED).count() == 35


@pytest.mark.django_db
def test_a_cut_off_download_marks_nothing_and_says_so(client, reviewer, monkeypatch):
    monkeypatch.setattr(export_rows, "PAGE_SIZE", 10)
    bulk_approved(35, reviewer=reviewer)
    batch = exporters.export_batch_create(user=reviewer, fmt="jsonl")
    stream = exporters.export_batch_stream(batch=batch).chunks  # what the view streams

    next(stream)
    stream.close()  # what the server does with the response when the client goes away

    batch.refresh_from_db()
    assert batch.status == ExportBatch.Status.FAILED
    assert "interrupted" in batch.error
    assert not Draft.objects.filter(state=Draft.State.EXPORTED).exists()
    client.force_login(reviewer)
    html = client.get(reverse("copy_export")).content.decode()
    assert "interrupted" in html


@pytest.mark.django_db
def test_a_draft_reapproved_during_a_download_is_not_marked_with_the_old_text(
        client, editor, reviewer, monkeypatch):
    monkeypatch.setattr(export_rows, "PAGE_SIZE", 1)
    first = approve(draft_with_text("first", product__sku="A"), editor=editor, reviewer=reviewer)
    approve(draft_with_text("second", product__sku="B"), editor=editor, reviewer=reviewer)
    client.force_login(reviewer)
    response = client.post(reverse("copy_export"), {"format": "csv"})
    chunks = iter(response.streaming_content)
    next(chunks), next(chunks)  # the header and draft A went out
    approve(first, editor=editor, reviewer=reviewer, text="first, improved")

    body = b"".join(chunks).decode()

    assert "second" in body
    first.refresh_from_db()
    assert first.state == Draft.State.APPROVED and first.exported_revision_id is None
    batch, out = export_text(fmt="csv", changed_only=True)
    assert texts(out) == ["first, improved"]


@pytest.mark.django_db
def test_a_large_download_becomes_a_background_export(client, reviewer, settings, monkeypatch,
                                                      django_capture_on_commit_callbacks):
    settings.COPYDESK_EXPORT_DOWNLOAD_MAX_ROWS = 2
    sent = []
    monkeypatch.setattr(export_worker.run_export, "delay", sent.append)
    bulk_approved(3, reviewer=reviewer)
    client.force_login(reviewer)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("copy_export"), {"format": "csv"}, follow=True)

    batch = ExportBatch.objects.get()
    assert sent == [batch.pk]
    assert batch.status == ExportBatch.Status.QUEUED and batch.total == 3
    html = response.content.decode()
    assert f"Export #{batch.pk} (3 drafts) is being written in the background" in html
    assert f'hx-get="{reverse("export_batch_detail", args=[batch.pk])}"' in html


@pytest.mark.django_db
def test_a_broker_that_is_down_fails_the_export_visibly(client, reviewer, monkeypatch,
                                                         django_capture_on_commit_callbacks):
    def down(batch_id):
        raise OSError("Connection refused")

    monkeypatch.setattr(export_worker.run_export, "delay", down)
    bulk_approved(1, reviewer=reviewer)
    client.force_login(reviewer)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("copy_export"), {"format": "csv", "mode": "background"})

    batch = ExportBatch.objects.get()
    assert batch.status == ExportBatch.Status.FAILED
    assert "Could not reach the task queue" in batch.error


# --- Background exports (in process) -----------------------------------------------------------

@pytest.mark.django_db
def test_a_background_export_writes_the_file_records_it_and_marks_the_drafts(
        client, reviewer, tmp_path, settings, django_capture_on_commit_callbacks, monkeypatch):
    settings.COPYDESK_EXPORT_DIR = tmp_path / "exports"
    monkeypatch.setattr(export_worker.run_export, "delay", lambda pk: export_worker.run_export(pk))
    bulk_approved(40, reviewer=reviewer)
    client.force_login(reviewer)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("copy_export"), {
            "format": "csv", "mode": "background", "bom": "on", "locale": "en",
        })
    assert response.status_code == 302

    batch = ExportBatch.objects.get()
    assert (batch.status, batch.count, batch.total) == ("done", 40, 40)
    assert batch.created_by == reviewer and batch.filters == {"locale": "en"} and batch.bom
    assert batch.file and batch.size == (tmp_path / "exports" / batch.file).stat().st_size
    assert batch.started_at <= batch.finished_at
    assert os.listdir(tmp_path / "exports") == [batch.file]  # no temporary file left
    assert Draft.objects.filter(state=Draft.State.EXPORTED).count() == 40

    row = client.get(reverse("export_batch_detail", args=[batch.pk]), **HTMX)
    assert row.status_code == HTMX_STOP_POLLING
    link = reverse("export_batch_download", args=[batch.pk])
    assert link in row.content.decode() and "hx-trigger" not in row.content.decode()

    download = client.get(link)
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith('attachment; filename="copydesk-')
    body = b"".join(download.streaming_content)
    assert body.startswith(b"\xef\xbb\xbfsku,")
    assert len(texts(body.decode("utf-8-sig"))) == 40


@pytest.mark.django_db
def test_a_failed_background_export_keeps_the_error_and_marks_nothing(
        reviewer, tmp_path, settings, monkeypatch):
    settings.COPYDESK_EXPORT_DIR = tmp_path
    bulk_approved(5, reviewer=reviewer)

    def broken(row):
        raise OSError("disk full")

    monkeypatch.setattr(export_files, "_jsonl_line", broken)
    monkeypatch.setattr(export_worker.run_export, "delay", lambda pk: None)
    batch = exporters.export_batch_create(user=reviewer, fmt="jsonl", background=True)

    with pytest.raises(OSError):
        export_worker.run_export(batch.pk)

    batch.refresh_from_db()
    assert batch.status == ExportBatch.Status.FAILED and "disk full" in batch.error
    assert os.listdir(tmp_path) == []
    assert not Draft.objects.filter(state=Draft.State.EXPORTED).exists()
    assert export_worker.run_export(batch.pk) == 0  # a finished batch is not run again


@pytest.mark.django_db
def test_the_download_view_refuses_batches_without_a_file(client, reviewer):
    bulk_approved(1, reviewer=reviewer)
    batch = copy_export(stream=NullStream(), fmt="csv", user=reviewer)
    client.force_login(reviewer)
    assert client.get(reverse("export_batch_download", args=[batch.pk])).status_code == 404
    assert client.get(reverse("export_batch_download", args=[999])).status_code == 404


# --- Permissions -------------------------------------------------------------------------------

@pytest.mark.django_db
def test_only_reviewers_and_admins_export_poll_or_download(client, editor, reviewer, admin_user,
                                                          outsider, tmp_path, settings):
    settings.COPYDESK_EXPORT_DIR = tmp_path
    bulk_approved(2, reviewer=reviewer)
    batch = exporters.export_batch_create(user=reviewer, fmt="csv", background=True)
    exporters.export_batch_run(batch_id=batch.pk)
    urls = [reverse("export_batch_detail", args=[batch.pk]),
            reverse("export_batch_download", args=[batch.pk])]

    for user in (editor, outsider):
        client.force_login(user)
        assert client.post(reverse("copy_export"), {"format": "shopify"}).status_code == 403
        for url in urls:
            assert client.get(url, **HTMX).status_code == 403
    client.logout()
    assert client.get(urls[1]).status_code == 302  # to the login page
    for user in (reviewer, admin_user):
        client.force_login(user)
        assert client.get(urls[1]).status_code == 200
    with pytest.raises(PermissionDenied):
        exporters.export_batch_create(user=editor, fmt="csv")
    assert ExportBatch.objects.count() == 1


# --- Changed since the last export; editing after export --------------------------------------

@pytest.mark.django_db
def test_changed_only_exports_new_and_reapproved_drafts(editor, reviewer):
    kept = approve(draft_with_text("kept", product__sku="A"), editor=editor, reviewer=reviewer)
    redone = approve(draft_with_text("redone", product__sku="B"), editor=editor,
                     reviewer=reviewer)
    export_text(fmt="csv")
    approve(redone, editor=editor, reviewer=reviewer, text="redone, better")
    approve(draft_with_text("brand new", product__sku="C"), editor=editor, reviewer=reviewer)

    batch, out = export_text(fmt="csv", changed_only=True, user=reviewer)

    assert texts(out) == ["redone, better", "brand new"]
    assert batch.changed_only and batch.count == 2
    kept.refresh_from_db()
    assert kept.state == Draft.State.EXPORTED
    assert export_text(fmt="csv", changed_only=True)[0].count == 0
    # Without the option everything approved goes out again.
    assert texts(export_text(fmt="csv")[1]) == ["kept", "redone, better", "brand new"]


@pytest.mark.django_db
def test_editing_an_exported_draft_sends_it_back_through_review(editor, reviewer):
    draft = approve(draft_with_text("shipped text"), editor=editor, reviewer=reviewer)
    export_text(fmt="csv")
    draft.refresh_from_db()
    shipped = draft.exported_revision
    assert draft.state == Draft.State.EXPORTED and shipped.text == "shipped text"

    services.revision_save(draft=draft, user=editor, text="edited after export",
                           base_revision_id=draft.current_revision_id)
    draft.refresh_from_db()
    assert draft.state == Draft.State.IN_EDIT

    # Until the edit is approved the shop keeps getting the shipped text; nothing changed.
    assert texts(export_text(fmt="csv")[1]) == ["shipped text"]
    assert export_text(fmt="csv", changed_only=True)[0].count == 0
    draft.refresh_from_db()
    assert draft.exported_revision == shipped and draft.state == Draft.State.IN_EDIT

    approve(draft, editor=editor, reviewer=reviewer)
    batch, out = export_text(fmt="csv", changed_only=True)
    assert texts(out) == ["edited after export"]
    draft.refresh_from_db()
    assert draft.state == Draft.State.EXPORTED
    assert draft.exported_revision.text == "edited after export"


@pytest.mark.django_db
def test_the_export_page_offers_formats_and_lists_records(client, reviewer):
    client.force_login(reviewer)
    html = client.get(reverse("copy_export")).content.decode()
    assert 'value="shopify"' in html and 'name="changed_only"' in html
    assert 'value="background"' in html
    bulk_approved(1, reviewer=reviewer)
    copy_export(stream=NullStream(), fmt="jsonl", user=reviewer, filters={"locale": "en"},
                changed_only=True)
    html = client.get(reverse("copy_export")).content.decode()
    assert "JSON Lines" in html and "locale: en" in html and "changed only" in html


# --- A real worker -----------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_background_export_runs_on_a_real_worker_and_downloads(client, tmp_path, settings):
    ContentKind.objects.get_or_create(code="description", defaults={
        "label": "Description", "instructions": "Describe the product."})
    folder = (app.conf.broker_transport_options or {}).get("data_folder_in")
    earlier = folder and Path(folder).parent != Path(settings.BROKER_DIR)
    broker_dir = Path(folder).parent if earlier else tmp_path / "broker"
    use_broker_dir(broker_dir)
    app.control.purge()
    var_dir = tmp_path / "var"
    settings.COPYDESK_EXPORT_DIR = var_dir / "exports"
    log_dir = settings.VAR_DIR / "test-logs"
    log_dir.mkdir(exist_ok=True)
    from django.contrib.auth.models import Group

    reviewer = UserFactory(username="rey-worker")
    reviewer.groups.add(Group.objects.get_or_create(name="Reviewer")[0])
    csv_text = "Handle,Title,Body (HTML),Variant SKU\n" + "".join(
        f"h-{i:03d},Product {i},<p>old</p>,V-{i}-A\nh-{i:03d},,,V-{i}-B\n" for i in range(30)
    )
    products_import(data=csv_text.encode(), filename="products_export.csv", fmt="shopify")
    Product.objects.update(source_format="shopify")
    for product in Product.objects.all():
        draft = Draft.objects.create(product=product, kind_id="description")
        revision = Revision.objects.create(draft=draft, number=1, text=f"New <{product.sku}>")
        Draft.objects.filter(pk=draft.pk).update(
            current_revision=revision, approved_revision=revision, state=Draft.State.APPROVED,
            approved_at=timezone.now(), approved_by=reviewer)

    worker = Worker(broker_dir, log_dir / f"export-{os.getpid()}.log",
                    {"COPYDESK_VAR_DIR": str(var_dir)}).start()
    try:
        client.force_login(reviewer)
        response = client.post(reverse("copy_export"),
                               {"format": "shopify", "mode": "background"})
        assert response.status_code == 302
        batch = ExportBatch.objects.get()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            batch.refresh_from_db()
            if batch.is_finished:
                break
            time.sleep(0.5)
    finally:
        worker.stop()

    assert batch.status == ExportBatch.Status.DONE, (batch.status, batch.error)
    assert batch.count == 30 and batch.format == "shopify"
    download = client.get(reverse("export_batch_download", args=[batch.pk]))
    assert download.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode(),
                                       newline="")))
    assert rows[0] == ["Handle", "Title", "Body (HTML)", "Variant SKU"]
    assert len(rows) == 61
    assert rows[1] == ["h-000", "Product 0", "<p>New &lt;h-000&gt;</p>", "V-0-A"]
    assert rows[2] == ["h-000", "", "", "V-0-B"]
    assert Draft.objects.filter(state=Draft.State.EXPORTED).count() == 30
    assert (settings.COPYDESK_EXPORT_DIR / batch.file).is_file()
