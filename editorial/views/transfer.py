"""Catalog import and copy export."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HTMX_STOP_POLLING

from .. import exporters, importers, policies, selectors, services
from ..forms import ExportForm, ImportForm
from ..models import ExportBatch
from ._common import HtmxHttpRequest, member_required, render_page, wants_fragment


@member_required
@require_http_methods(["GET", "POST"])
def catalog_import(request: HtmxHttpRequest):
    policies.require(policies.can_import(request.user),
                     _("Only editors and admins can import products."))
    report = None
    status = 200
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                report = importers.products_import(
                    data=upload.read(),
                    filename=upload.name,
                    fmt=form.cleaned_data["format"],
                    brand_name=form.cleaned_data["brand_name"] or None,
                    locale=form.cleaned_data["locale"] or None,
                    user=request.user,
                )
            except importers.CatalogImportError as exc:
                form.add_error("file", str(exc))
        if not form.is_valid():
            status = 400
    else:
        form = ImportForm()
    context = {"form": form, "report": report, "brands": selectors.brand_list()}
    return render_page(request, "import.html", context, status=status)


class CopyExportForm(ExportForm):
    """The export form with the Shopify format, the "changed since the last export" option and
    the choice between a download now and a file made in the background."""

    MODES = ("download", "background")

    format = forms.ChoiceField(
        label=gettext_lazy("Format"), initial="csv",
        choices=[("csv", "CSV"), ("jsonl", "JSON Lines"),
                 ("shopify", gettext_lazy("Shopify product CSV"))],
        help_text=gettext_lazy(
            "Shopify product CSV: the rows of the Shopify export the products came from, with "
            "the approved description, SEO title and SEO description."
        ),
    )
    changed_only = forms.BooleanField(
        label=gettext_lazy("Only what changed since the last export"), required=False,
    )
    mode = forms.ChoiceField(choices=[(mode, mode) for mode in MODES], required=False)

    def clean(self):
        bom = self.cleaned_data.get("bom")
        cleaned = super().clean()
        if bom and cleaned.get("format") == "shopify":
            # ExportForm refuses a BOM for anything but "csv"; Shopify CSV may have one too.
            self.errors.pop("bom", None)
            cleaned["bom"] = True
        return cleaned


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
                    background=data["mode"] == "background",
                )
            except services.WorkflowError as exc:
                form.add_error(None, str(exc))
            else:
                if batch.status == ExportBatch.Status.RUNNING:
                    return _stream(batch)
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


def _stream(batch: ExportBatch) -> StreamingHttpResponse:
    content_type, _ext = exporters.EXPORT_FORMATS[batch.format]
    response = StreamingHttpResponse(exporters.export_batch_stream(batch=batch),
                                     content_type=content_type)
    response["Content-Disposition"] = (
        f'attachment; filename="{exporters.export_download_name(batch)}"'
    )
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
    content_type, _ext = exporters.EXPORT_FORMATS[batch.format]
    return FileResponse(path.open("rb"), as_attachment=True,
                        filename=exporters.export_download_name(batch),
                        content_type=content_type)
