"""``products_import``: a catalog file read, checked and written (the package docstring tells
how)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import PurePath

from django.conf import settings
from django.utils.translation import gettext

from .. import policies
from ..audit import audit_log
from ..models import CatalogImport
from .parsers import (
    FORMATS,
    PARSERS,
    CatalogImportError,
    Record,
    RowError,
    Source,
    detect_format,
    encoding_of,
)
from .text import locale_normalize
from .validation import DEFAULT_MAX_FIELD_CHARS, MAX_LENGTH, locale_for, validate
from .writer import ImportReport, write


def products_import(
    *,
    data: bytes,
    filename: str,
    fmt: str = "auto",
    brand_name: str | None = None,
    locale: str | None = None,
    user=None,
) -> ImportReport:
    """Import products from ``data`` (the file's bytes; ``filename`` is used for messages and
    format detection). Raises ``CatalogImportError`` for whole-file problems; row problems are in
    the returned report's ``errors``. ``user`` is checked with ``policies.can_import`` when given
    (the management command passes none)."""
    if user is not None:
        policies.require(policies.can_import(user),
                         gettext("You do not have permission to import products."))
    if fmt not in FORMATS:
        raise CatalogImportError(
            gettext("Unknown import format %(format)s; use one of %(formats)s.")
            % {"format": repr(fmt), "formats": ", ".join(FORMATS)}
        )
    brand_name = (brand_name or "").strip() or None
    if brand_name and len(brand_name) > MAX_LENGTH["brand"]:
        raise CatalogImportError(
            gettext("The brand name is %(length)d characters (limit %(limit)d).")
            % {"length": len(brand_name), "limit": MAX_LENGTH["brand"]}
        )
    default_locale = None
    if locale and locale.strip():
        default_locale = locale_normalize(locale)
        if default_locale is None:
            raise CatalogImportError(gettext("Unknown locale %(locale)s; use en or zh-hans.")
                                     % {"locale": repr(locale)})

    report = ImportReport()
    report.encoding = encoding_of(data, filename)
    if report.encoding != "utf-8":
        report.notices.append(
            gettext("%(file)s is not UTF-8; it was read as %(encoding)s (Chinese).")
            % {"file": filename, "encoding": report.encoding.upper()}
        )
    source = Source(data, report.encoding)
    report.detected_format = fmt if fmt != "auto" else detect_format(source, filename)
    limit = int(getattr(settings, "COPYDESK_MAX_IMPORT_FIELD_CHARS", DEFAULT_MAX_FIELD_CHARS))

    # Records are checked and written as they are read, a batch at a time: memory stays flat
    # whatever the file's size. Whole-file problems (encoding, header) are all found before
    # the first record, so such a file still writes nothing.
    valid = _checked(PARSERS[report.detected_format](source, filename), report=report,
                     limit=limit, brand_name=brand_name, default_locale=default_locale)
    first = next(valid, None)
    catalog_import = None
    if first is not None:
        # Recorded on every product the file wrote, so an export can take this file's products.
        catalog_import = CatalogImport.objects.create(
            filename=PurePath(filename).name[:255], format=report.detected_format,
            columns=first[0].raw.get("columns", []),
            created_by=user if user is not None and user.is_authenticated else None,
        )
    last = write(itertools.chain([first], valid) if first is not None else [], report=report,
                 source_format=report.detected_format, brand_name=brand_name,
                 catalog_import=catalog_import)
    report.errors.sort(key=lambda error: error.line)
    if last is not None:
        audit_log(
            actor=user, verb="catalog.import", obj=last, filename=filename,
            format=report.detected_format, encoding=report.encoding, created=report.created,
            updated=report.updated, failed=report.failed,
            catalog_import=catalog_import.pk if catalog_import else None,
        )
    return report


def _checked(
    records: Iterator[Record | RowError], *, report: ImportReport, limit: int,
    brand_name: str | None, default_locale: str | None,
) -> Iterator[tuple[Record, str]]:
    """The valid records and their locales; parse and check errors go to ``report``."""
    first_line: dict[str, int] = {}
    for record in records:
        if isinstance(record, RowError):
            report.errors.append(record)
            continue
        error = validate(record, limit=limit, brand_name=brand_name)
        if error is None and record.sku in first_line:
            error = RowError(
                record.line,
                gettext('duplicate %(field)s "%(sku)s" (first on line %(first)d); this row was '
                        "skipped")
                % {"field": record.label("sku"), "sku": record.sku,
                   "first": first_line[record.sku]},
                field=record.label("sku"),
            )
        if error is not None:
            report.errors.append(error)
            continue
        first_line[record.sku] = record.line
        yield record, locale_for(record, default_locale)
