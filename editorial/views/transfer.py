"""Catalog import and copy export."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HTMX_STOP_POLLING

from .. import catalog, exporters, policies, selectors, services, uploads
from ..forms import CopyExportForm, ImportForm
from ..models import ExportBatch
from ._common import HtmxHttpRequest, member_required, render_page, wants_fragment


# CSRF is checked by ``_catalog_import``: the middleware would read the body before the upload
# limit is in place. A refusal is answered before that check, and writes nothing.
@csrf_exempt
@member_required
@require_http_methods(["GET", "POST"])
def catalog_import(request: HtmxHttpRequest):
    policies.require(policies.can_import(request.user),
                     _("Only editors and admins can import products."))
    if request.method == "POST":
        limit = settings.COPYDESK_MAX_IMPORT_BYTES
        refusal = uploads.upload_refusal(request, limit=limit)
        if refusal is not None:
            form = ImportForm.refused(size=refusal.size, limit=limit, filename=refusal.filename)
            context = {"form": form, "report": None, "brands": selectors.brand_list()}
            return render_page(request, "import.html", context, status=413)
    return _catalog_import(request)


@csrf_protect
def _catalog_import(request: HtmxHttpRequest):
    report = None
    status = 200
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                report = catalog.products_import(
                    data=upload.read(),
                    filename=upload.name,
                    fmt=form.cleaned_data["format"],
                    brand_name=form.cleaned_data["brand_name"] or None,
                    locale=form.cleaned_data["locale"] or None,
                    user=request.user,
                )
            except catalog.CatalogImportError as exc:
                form.add_error("file", str(exc))
        if not form.is_valid():
            status = 400
    else:
        form = ImportForm()
    context = {"form": form, "report": report, "brands": selectors.brand_list()}
    return render_page(request, "import.html", context, status=status)


@member_required
@require_http_methods(["GET", "POST"])
def copy_export(request: HtmxHttpRequest):
    """GET shows the form and recent exports; POST streams the approved copy as a download, or
    queues a background export (asked for, or too large to download) and comes back here."""
    policies.require(policies.can_export(request.user),
                     _("Only reviewers and admins can export copy."))
    if request.method == "POST":
        form = CopyExportForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                batch = exporters.export_batch_create(
                    user=request.user, fmt=data["format"], filters=form.filters(),
                    changed_only=data["changed_only"], bom=data["bom"],
                    formula_guard=not data["no_formula_guard"],
                    background=data["mode"] == "background",
                )
                if batch.status == ExportBatch.Status.RUNNING:
                    return _stream(exporters.export_batch_stream(batch=batch))
            except services.WorkflowError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, _(
                    "Export #%(id)d (%(count)d drafts) is being written in the background; its "
                    "download link appears below when it is ready."
                ) % {"id": batch.pk, "count": batch.total})
                return redirect("copy_export")
        status = 400
    else:
        form = CopyExportForm()
        status = 200
    context = {"form": form, "batches": selectors.export_batch_recent_list(),
               "download_max_rows": exporters.download_max_rows()}
    return render_page(request, "export.html", context, status=status)


def _stream(download: exporters.ExportDownload) -> StreamingHttpResponse:
    response = StreamingHttpResponse(download.chunks, content_type=download.content_type)
    response["Content-Disposition"] = f'attachment; filename="{download.filename}"'
    response["X-Accel-Buffering"] = "no"  # let a proxy pass the rows on as they come
    return response


@member_required
@require_GET
def export_batch_detail(request: HtmxHttpRequest, batch_id: int):
    """An export's row in the recent exports table, polled by htmx while the export runs;
    a finished export answers 286 so polling stops. Without htmx: the export page."""
    policies.require(policies.can_export(request.user),
                     _("Only reviewers and admins can export copy."))
    batch = get_object_or_404(ExportBatch.objects.select_related("created_by"), pk=batch_id)
    if not wants_fragment(request):
        return redirect("copy_export")
    response = render(request, "exports/_batch_row.html", {"batch": batch})
    if batch.is_finished:
        response.status_code = HTMX_STOP_POLLING
    return response


@member_required
@require_GET
def export_batch_download(request: HtmxHttpRequest, batch_id: int):
    """The file a background export wrote; only for users who may export."""
    policies.require(policies.can_export(request.user),
                     _("Only reviewers and admins can export copy."))
    batch = get_object_or_404(ExportBatch, pk=batch_id)
    path = exporters.export_file_path(batch)
    if path is None:
        raise Http404(_("This export has no file to download."))
    return FileResponse(path.open("rb"), as_attachment=True,
                        filename=exporters.export_download_name(batch),
                        content_type=exporters.export_file_content_type(batch))
