"""What an export is asked for: formats and columns, filters, the options, and how a cell is
written (formula-guarded)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from ..models import Brand, CatalogImport, ContentKind, ExportBatch, Locale
from ..services import WorkflowError

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


BOM = "\ufeff"


# A spreadsheet treats a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


# ... except a plain signed number (a negative stock level, "-3"), which it reads as a number.
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


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


def csv_cell(value) -> str:
    """A cell a spreadsheet will show as text: formula-like values get a leading quote.
    Plain signed numbers ("-3", "+1.5") are left alone; a spreadsheet reads them as numbers."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_PREFIXES) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def _plain_cell(value) -> str:
    return "" if value is None else str(value)

