"""Catalog import and copy export."""

from __future__ import annotations

from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from .. import exporters, importers, policies, selectors, services
from ..forms import ExportForm, ImportForm
from ._common import HtmxHttpRequest, member_required, render_page


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


@member_required
@require_http_methods(["GET", "POST"])
def copy_export(request: HtmxHttpRequest):
    """GET shows the form; POST writes the approved copy as a download."""
    policies.require(policies.can_export(request.user),
                     _("Only reviewers and admins can export copy."))
    if request.method == "POST":
        form = ExportForm(request.POST)
        if form.is_valid():
            fmt = form.cleaned_data["format"]
            content_type, ext = exporters.EXPORT_FORMATS[fmt]
            response = HttpResponse(content_type=content_type)
            stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
            response["Content-Disposition"] = (
                f'attachment; filename="copydesk-{stamp}.{ext}"'
            )
            try:
                exporters.copy_export(
                    stream=response, fmt=fmt, user=request.user, filters=form.filters(),
                    destination="download", bom=form.cleaned_data["bom"],
                )
            except services.WorkflowError as exc:
                form.add_error(None, str(exc))
            else:
                return response
        status = 400
    else:
        form = ExportForm()
        status = 200
    context = {"form": form, "batches": selectors.export_batch_recent_list()}
    return render_page(request, "export.html", context, status=status)
