"""Catalog import and copy export."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from .. import selectors
from ..models import Locale
from .fields import brand_filter_field, kind_filter_field
from .messages import _blank, _too_large, upload_too_large_message


class ImportForm(forms.Form):
    FORMAT_CHOICES = [
        ("auto", _("Detect automatically")),
        ("csv", "CSV"),
        ("shopify", "Shopify CSV"),
        ("jsonl", "JSON Lines"),
    ]

    file = forms.FileField(label=_("Catalog file"))
    format = forms.ChoiceField(label=_("Format"), choices=FORMAT_CHOICES, initial="auto")
    brand_name = forms.CharField(
        label=_("Brand"), required=False, max_length=200,
        widget=forms.TextInput(attrs={"list": "brand-names", "autocomplete": "off"}),
        help_text=_("Optional: sets the brand of every product in the file."),
    )
    locale = forms.ChoiceField(
        label=_("Locale"), required=False,
        choices=_blank(_("From the file, else detected")) + Locale.choices,
        help_text=_("For rows without a locale column."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        limit = settings.COPYDESK_MAX_IMPORT_BYTES
        file = self.fields["file"]
        file.help_text = gettext("At most %(limit)s.") % {"limit": filesizeformat(limit)}
        # copydesk.js refuses a file over the limit as soon as it is chosen, before any upload.
        file.widget.attrs.update({
            "data-max-bytes": str(limit),
            "data-too-large": _too_large(filename="{file}", size="{size}",
                                         limit=filesizeformat(limit)),
        })

    @classmethod
    def refused(cls, *, size: int, limit: int, filename: str = "") -> ImportForm:
        """An empty form showing why the upload was refused (before its fields were read)."""
        form = cls()
        form.cleaned_data = {}
        form.add_error("file", upload_too_large_message(size=size, limit=limit,
                                                        filename=filename))
        return form

    def clean_file(self):
        upload = self.cleaned_data["file"]
        limit = settings.COPYDESK_MAX_IMPORT_BYTES
        if upload.size > limit:
            raise forms.ValidationError(upload_too_large_message(
                size=upload.size, limit=limit, filename=upload.name))
        return upload



class ExportForm(forms.Form):
    format = forms.ChoiceField(
        label=_("Format"), choices=[("csv", "CSV"), ("jsonl", "JSON Lines")], initial="csv"
    )
    brand = brand_filter_field(by_name=True)
    kind = kind_filter_field()
    locale = forms.ChoiceField(
        label=_("Locale"), required=False, choices=_blank(_("All locales")) + Locale.choices
    )
    bom = forms.BooleanField(
        label=_("Start with a byte order mark (CSV for Excel)"), required=False,
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("bom") and cleaned.get("format") != "csv":
            self.add_error("bom", _("A byte order mark is only written for CSV."))
        return cleaned

    def filters(self) -> dict[str, str]:
        """The filters as ``exporters.copy_export`` takes them (brand name, kind code)."""
        data = self.cleaned_data
        filters = {
            "brand": data["brand"].name if data.get("brand") else "",
            "kind": data["kind"].code if data.get("kind") else "",
            "locale": data.get("locale") or "",
        }
        return {key: value for key, value in filters.items() if value}



class CatalogImportChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        when = timezone.localtime(obj.created_at).strftime("%Y-%m-%d %H:%M")
        count = ngettext("%(count)d product", "%(count)d products", obj.product_count) % {
            "count": obj.product_count}
        return f"#{obj.pk} {obj.filename} · {when} · {obj.get_format_display()} · {count}"



class CopyExportForm(ExportForm):
    """The export form with the Shopify format, the import the products came from, the
    "changed since the last export" and formula guard options and the choice between a
    download now and a file made in the background."""

    MODES = ("download", "background")

    format = forms.ChoiceField(
        label=_("Format"), initial="csv",
        choices=[("csv", "CSV"), ("jsonl", "JSON Lines"),
                 ("shopify", _("Shopify product CSV"))],
        help_text=_(
            "Shopify product CSV: the rows of the Shopify export the products came from, with "
            "the approved description, SEO title and SEO description. Products from Shopify "
            "files with different columns come as a zip with one CSV per column set."
        ),
    )
    catalog_import = CatalogImportChoiceField(
        label=_("Imported from"), queryset=selectors.catalog_import_list(),
        required=False,
        empty_label=_("All imports"),
        help_text=_("Only the products this catalog file imported."),
    )
    changed_only = forms.BooleanField(
        label=_("Only what changed since the last export"), required=False,
    )
    no_formula_guard = forms.BooleanField(
        label=_("Write copy starting with = + - @ as it is"), required=False,
        help_text=_(
            "Otherwise such copy gets a leading ' so a spreadsheet does not run it as a "
            "formula. The cells of a shop's own Shopify rows always go back as they came."
        ),
    )
    mode = forms.ChoiceField(choices=[(mode, mode) for mode in MODES], required=False)
    # The page asks what to export, then how to write it.
    field_order = ["format", "brand", "kind", "locale", "catalog_import", "changed_only", "bom",
                   "no_formula_guard"]

    def clean(self):
        bom = self.cleaned_data.get("bom")
        cleaned = super().clean()
        if bom and cleaned.get("format") == "shopify":
            # ExportForm refuses a BOM for anything but "csv"; Shopify CSV may have one too.
            self.errors.pop("bom", None)
            cleaned["bom"] = True
        return cleaned

    def filters(self) -> dict[str, str]:
        filters = super().filters()
        if self.cleaned_data.get("catalog_import"):
            filters["import"] = str(self.cleaned_data["catalog_import"].pk)
        return filters

