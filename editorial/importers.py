"""Catalog import: products from a generic CSV, a Shopify product CSV export or JSON Lines.

``products_import`` is the one service; the ``import_products`` command and the upload view both
call it. It works in two passes:

1. **Read and check, in Python.** The bytes are decoded (UTF-8 with or without BOM; GB18030 only
   when the text is clearly Chinese, otherwise the file is refused), parsed into one record per
   product, and every record is validated completely: required fields, field sizes (the model's
   ``max_length`` and ``settings.COPYDESK_MAX_IMPORT_FIELD_CHARS``), locale, characters a database
   cannot store. A bad record becomes a ``RowError`` with its physical line in the file; the
   others go on.
2. **Write in batches.** Existing products are looked up by SKU (the handle for Shopify) once per
   batch; new ones are ``bulk_create``-d and changed ones ``bulk_update``-d inside one transaction
   per batch. Validation already ruled out the errors a database would raise, but if a batch
   fails anyway (a concurrent import of the same SKU, say) it is retried one product at a time so
   the failing product is reported and the rest are kept. Each product is written atomically.

Rules worth knowing:

- Re-importing a SKU updates that product (title, brand, category, attributes, source text, raw
  row, locale, source format); it never duplicates it. A column the file does not have at all
  (no ``brand``, ``category`` or ``description`` column / key) leaves that field as it is; an
  empty cell clears it. An unchanged product counts as updated (``ImportReport.unchanged`` says
  how many of those were unchanged and therefore not written).
- Every file import is recorded (``CatalogImport``: file name, format, column row, who, when) on
  each product the file sent, unchanged ones included, so an export can take one file's products.
- A SKU that appears twice in a generic CSV or JSON Lines file is an error on the later line;
  the first row is imported. (Rows of a Shopify file that share a handle are one product.)
- Locale: the ``locale`` column/key wins, then the ``locale`` argument, then detection (Han
  characters weigh about as much as a word, so text with at least one Han character per three
  Latin letters is ``zh-hans``; everything else is ``en``).
- ``brand_name`` overrides the brand of every product. Brands are matched by name (case-
  insensitively when there is no exact match); a new brand gets the locale of the first product
  in the file that uses it.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import PurePath
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections, router, transaction
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from . import policies
from .audit import audit_log
from .models import Brand, CatalogImport, Locale, Product

FORMATS = ("auto", "csv", "shopify", "jsonl")
JSONL_EXTENSIONS = (".jsonl", ".ndjson")
BATCH_SIZE = 500
DEFAULT_MAX_FIELD_CHARS = 20000

# Generic CSV and JSON Lines: these columns/keys are product fields; every other one is an
# attribute.
KNOWN_FIELDS = ("sku", "title", "brand", "category", "locale", "description")
SHOPIFY_SIGNATURE = ("handle", "title", "body (html)")
SHOPIFY_PLACEHOLDER_OPTION = ("Title", "Default Title")

_OPTION_NAME = re.compile(r"^option(\d+) name$")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_MAX_LENGTH = {
    name: Product._meta.get_field(name).max_length for name in ("sku", "title", "category")
} | {"brand": Brand._meta.get_field("name").max_length}


@dataclass
class RowError:
    line: int
    message: str
    field: str = ""

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class ImportReport:
    created: int = 0
    # Includes the products that were already up to date (see ``unchanged``).
    updated: int = 0
    errors: list[RowError] = field(default_factory=list)
    detected_format: str = ""
    encoding: str = "utf-8"
    # How many of ``updated`` had nothing to change (and were not written).
    unchanged: int = 0
    # Things the user should know that are not errors, e.g. the file was read as GB18030.
    notices: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.errors)

    def summary(self) -> str:
        return f"imported {self.created}, updated {self.updated}, failed {self.failed}"


class CatalogImportError(Exception):
    """The file as a whole cannot be imported (encoding, empty, missing required columns ...).
    The message names the file and is meant for users."""


@dataclass
class _Record:
    """One product's worth of data from the file, before validation. ``None`` means the file
    does not carry that field at all (so an update leaves it alone)."""

    line: int
    sku: str
    title: str
    brand: str | None = None
    category: str | None = None
    locale: str | None = None
    source_text: str | None = None
    # None only from the API, for an item without ``attributes``.
    attributes: dict[str, str] | None = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    # The name the file uses for each product field, for messages ("Handle", "Body (HTML)").
    labels: dict[str, str] = field(default_factory=dict)
    # (label, text) of every value the file sent, checked against the general size limit.
    cells: list[tuple[str, str]] = field(default_factory=list)

    def label(self, name: str) -> str:
        return self.labels.get(name, name)


# --- Service -----------------------------------------------------------------------------------

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
    if brand_name and len(brand_name) > _MAX_LENGTH["brand"]:
        raise CatalogImportError(
            gettext("The brand name is %(length)d characters (limit %(limit)d).")
            % {"length": len(brand_name), "limit": _MAX_LENGTH["brand"]}
        )
    default_locale = None
    if locale and locale.strip():
        default_locale = locale_normalize(locale)
        if default_locale is None:
            raise CatalogImportError(gettext("Unknown locale %(locale)s; use en or zh-hans.")
                                     % {"locale": repr(locale)})

    report = ImportReport()
    text, report.encoding = _decode(data, filename)
    if report.encoding != "utf-8":
        report.notices.append(
            gettext("%(file)s is not UTF-8; it was read as %(encoding)s (Chinese).")
            % {"file": filename, "encoding": report.encoding.upper()}
        )
    report.detected_format = fmt if fmt != "auto" else _detect_format(text, filename)
    parse = {"csv": _parse_csv, "shopify": _parse_shopify, "jsonl": _parse_jsonl}
    limit = int(getattr(settings, "COPYDESK_MAX_IMPORT_FIELD_CHARS", DEFAULT_MAX_FIELD_CHARS))

    valid: list[tuple[_Record, str]] = []
    first_line: dict[str, int] = {}
    for record in parse[report.detected_format](text, filename):
        if isinstance(record, RowError):
            report.errors.append(record)
            continue
        error = _validate(record, limit=limit, brand_name=brand_name)
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
        valid.append((record, _locale_for(record, default_locale)))

    catalog_import = None
    if valid:
        # Recorded on every product the file wrote, so an export can take this file's products.
        catalog_import = CatalogImport.objects.create(
            filename=PurePath(filename).name[:255], format=report.detected_format,
            columns=valid[0][0].raw.get("columns", []),
            created_by=user if user is not None and user.is_authenticated else None,
        )
    last = _write(valid, report=report, source_format=report.detected_format,
                  brand_name=brand_name, catalog_import=catalog_import)
    report.errors.sort(key=lambda error: error.line)
    if last is not None:
        audit_log(
            actor=user, verb="catalog.import", obj=last, filename=filename,
            format=report.detected_format, encoding=report.encoding, created=report.created,
            updated=report.updated, failed=report.failed,
            catalog_import=catalog_import.pk if catalog_import else None,
        )
    return report


# --- Decoding and format detection -------------------------------------------------------------

def _decode(data: bytes, filename: str) -> tuple[str, str]:
    """The file's text and the encoding it was read with. UTF-8 (a BOM is dropped); failing
    that GB18030 (what Chinese Excel writes) but only if the result is clearly Chinese;
    otherwise the file is refused, so nothing is ever stored as mojibake."""
    if not data.strip():
        raise CatalogImportError(gettext("%(file)s is empty.") % {"file": filename})
    body = data.removeprefix(b"\xef\xbb\xbf")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        try:
            text = body.decode("gb18030")
        except UnicodeDecodeError:
            text = None
        if text is not None and _clearly_chinese(text):
            return text, "gb18030"
        line = body.count(b"\n", 0, exc.start) + 1
        raise CatalogImportError(
            gettext("%(file)s is not UTF-8 (byte 0x%(byte)02x at line %(line)d); save it as CSV "
                    "UTF-8 and import again.")
            % {"file": filename, "byte": body[exc.start], "line": line}
        ) from None
    if not text.strip():
        raise CatalogImportError(gettext("%(file)s is empty.") % {"file": filename})
    return text, "utf-8"


def _clearly_chinese(text: str) -> bool:
    """Other 8-bit encodings (Latin-1, Windows-1252) often decode as GB18030 too, into rare or
    traditional characters that GB2312, the common simplified set, does not have. Real Chinese
    text is nearly all GB2312."""
    if "\ufffd" in text or not any(_is_han(ch) for ch in text):
        return False
    wide = [ch for ch in text if not ch.isascii()]
    if any(_is_odd(ch) for ch in text):
        return False
    common = 0
    for ch in wide:
        try:
            ch.encode("gb2312")
        except UnicodeEncodeError:
            continue
        common += 1
    return common >= 0.9 * len(wide)


def _is_han(ch: str) -> bool:
    code = ord(ch)
    return (0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF
            or 0x20000 <= code <= 0x3134F)


def _is_odd(ch: str) -> bool:
    code = ord(ch)
    return (code < 0x20 and ch not in "\t\r\n") or 0x7F <= code <= 0x9F or 0xE000 <= code <= 0xF8FF


def _detect_format(text: str, filename: str) -> str:
    suffix = PurePath(filename).suffix.lower()
    if suffix in JSONL_EXTENSIONS:
        return "jsonl"
    if suffix not in (".csv", ".tsv", ".txt") and text.lstrip().startswith("{"):
        return "jsonl"
    header = next(csv.reader(io.StringIO(_first_line(text)), delimiter=_delimiter(text)), [])
    names = {name.strip().casefold() for name in header}
    return "shopify" if set(SHOPIFY_SIGNATURE) <= names else "csv"


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line
    return ""


def _delimiter(text: str) -> str:
    """Comma, unless the header line has more semicolons (European Excel) or tabs."""
    line = _first_line(text)
    return max((",", ";", "\t"), key=line.count) if line else ","


# --- Parsing -----------------------------------------------------------------------------------

_Rows = Iterator[tuple[int, list[str]] | RowError]


def _csv_rows(text: str, filename: str) -> tuple[list[str], _Rows]:
    """The header and an iterator of (line where the record starts, cells) or RowError.
    Blank rows are skipped."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    header: list[str] | None = None
    previous = 0
    while header is None:
        try:
            row = next(reader)
        except StopIteration:
            raise CatalogImportError(gettext("%(file)s has no header row.")
                                     % {"file": filename}) from None
        except csv.Error as exc:
            raise CatalogImportError(gettext("%(file)s: cannot read the header row: %(error)s.")
                                     % {"file": filename, "error": exc}) from None
        previous = reader.line_num
        if any(cell.strip() for cell in row):
            header = row

    def rows() -> _Rows:
        nonlocal previous
        while True:
            start = previous + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                previous = reader.line_num
                yield RowError(start, gettext("malformed CSV: %(error)s") % {"error": exc})
                continue
            previous = reader.line_num
            if any(cell.strip() for cell in row):
                yield start, row

    return header, rows()


def _column_index(header: list[str], filename: str, required: Iterable[str]) -> dict[str, int]:
    """Lower-cased, trimmed column name → position; refuses duplicates and missing columns."""
    index: dict[str, int] = {}
    for position, name in enumerate(header):
        key = name.strip().casefold()
        if not key:
            continue
        if key in index:
            raise CatalogImportError(gettext('%(file)s: the column "%(column)s" appears twice.')
                                     % {"file": filename, "column": name.strip()})
        index[key] = position
    missing = [name for name in required if name not in index]
    if missing:
        names = ", ".join(f'"{name}"' for name in missing)
        raise CatalogImportError(
            ngettext("%(file)s is missing the required column %(columns)s.",
                     "%(file)s is missing the required columns %(columns)s.", len(missing))
            % {"file": filename, "columns": names}
        )
    return index


def _parse_csv(text: str, filename: str) -> Iterator[_Record | RowError]:
    header, rows = _csv_rows(text, filename)
    index = _column_index(header, filename, required=("sku", "title"))
    labels = {key: header[position].strip() for key, position in index.items()}
    attribute_columns = [(header[position].strip(), position) for key, position in index.items()
                         if key not in KNOWN_FIELDS]

    for item in rows:
        if isinstance(item, RowError):
            yield item
            continue
        line, cells = item
        if len(cells) > len(header) and any(cell.strip() for cell in cells[len(header):]):
            yield RowError(line, gettext("the row has %(cells)d cells but the header has "
                                         "%(columns)d columns")
                           % {"cells": len(cells), "columns": len(header)})
            continue

        def cell(key: str, cells: list[str] = cells) -> str | None:
            position = index.get(key)
            if position is None:
                return None
            return cells[position].strip() if position < len(cells) else ""

        description = cell("description")
        yield _Record(
            line=line,
            sku=cell("sku") or "",
            title=cell("title") or "",
            brand=cell("brand"),
            category=cell("category"),
            locale=cell("locale") or None,
            source_text=_plain_newlines(description) if description is not None else None,
            attributes={name: cells[position].strip() for name, position in attribute_columns
                        if position < len(cells) and cells[position].strip()},
            raw={"columns": header, "rows": [cells]},
            labels=labels,
            cells=[(header[i].strip() if i < len(header) else f"column {i + 1}", value)
                   for i, value in enumerate(cells)],
        )


def _parse_shopify(text: str, filename: str) -> Iterator[_Record | RowError]:
    """One record per Handle; variant and image rows fold into the first row's product."""
    header, rows = _csv_rows(text, filename)
    index = _column_index(header, filename, required=("handle", "title"))
    labels = {key: header[position].strip() for key, position in index.items()}
    options = sorted(
        (int(match[1]), key) for key in index if (match := _OPTION_NAME.match(key))
    )
    metafields = [(header[position].split("(product.metafields", 1)[0].strip(), key)
                  for key, position in index.items() if "(product.metafields." in key]

    groups: dict[str, list[tuple[int, list[str]]]] = {}
    for item in rows:
        if isinstance(item, RowError):
            yield item
            continue
        line, cells = item
        handle = _cell(cells, index, "handle")
        if not handle:
            yield RowError(line, gettext("missing %(field)s") % {"field": labels["handle"]},
                           field=labels["handle"])
            continue
        groups.setdefault(handle, []).append((line, cells))

    for handle, group in groups.items():
        def first(key: str, group: list[tuple[int, list[str]]] = group) -> str | None:
            """The first non-empty value of a column; None when there is no such column."""
            if key not in index:
                return None
            return next((v for _, cells in group if (v := _cell(cells, index, key))), "")

        def distinct(key: str, group: list[tuple[int, list[str]]] = group) -> list[str]:
            values = (_cell(cells, index, key) for _, cells in group)
            return list(dict.fromkeys(value for value in values if value))

        attributes: dict[str, str] = {}
        for number, name_key in options:
            name = first(name_key)
            values = distinct(f"option{number} value")
            if name and values and (name, values) != (SHOPIFY_PLACEHOLDER_OPTION[0],
                                                      [SHOPIFY_PLACEHOLDER_OPTION[1]]):
                attributes.setdefault(name, ", ".join(values))
        tags = [tag.strip() for value in distinct("tags") for tag in value.split(",")]
        if any(tags):
            attributes["tags"] = ", ".join(dict.fromkeys(tag for tag in tags if tag))
        for name, key in metafields:
            value = first(key)
            if name and value and not value.startswith("gid://"):
                attributes.setdefault(name, value)

        category_key = "type" if first("type") or "product category" not in index \
            else "product category"
        body = first("body (html)")
        record_labels = dict(labels)
        record_labels.update(sku=labels["handle"], source_text=labels.get("body (html)", ""),
                             brand=labels.get("vendor", "brand"),
                             category=labels.get(category_key, "category"))
        yield _Record(
            line=group[0][0],
            sku=handle,
            title=first("title") or "",
            brand=first("vendor"),
            category=first(category_key),
            locale=first("locale") or None,
            source_text=html_to_text(body) if body is not None else None,
            attributes=attributes,
            raw={"columns": header, "rows": [cells for _, cells in group]},
            labels=record_labels,
            cells=[(header[i].strip() if i < len(header) else f"column {i + 1}", value)
                   for _, cells in group for i, value in enumerate(cells)],
        )


def _cell(cells: list[str], index: dict[str, int], key: str) -> str:
    position = index.get(key)
    return cells[position].strip() if position is not None and position < len(cells) else ""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _parse_jsonl(text: str, filename: str) -> Iterator[_Record | RowError]:
    # split("\n"), not splitlines(): JSON strings may hold U+2028 and friends, and line numbers
    # must match what an editor shows.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            yield RowError(number, gettext("malformed JSON: %(error)s (column %(column)d)")
                           % {"error": exc.msg, "column": exc.colno})
            continue
        except (ValueError, RecursionError) as exc:
            yield RowError(number, gettext("malformed JSON: %(error)s") % {"error": exc})
            continue
        if not isinstance(obj, dict):
            yield RowError(number, gettext("the line is not a JSON object"))
            continue
        keys = {key.strip().casefold(): key for key in obj}
        values: dict[str, str | None] = {}
        problem = None
        for name in KNOWN_FIELDS:
            if name not in keys:
                values[name] = None
                continue
            value = obj[keys[name]]
            if value is None:
                values[name] = ""
            elif isinstance(value, str | int | float) and not isinstance(value, bool):
                values[name] = str(value).strip()
            else:
                problem = RowError(number, gettext('field "%(field)s" must be a string')
                                   % {"field": keys[name]}, field=keys[name])
                break
        if problem is None and "attributes" in keys \
                and not isinstance(obj[keys["attributes"]], dict | None):
            problem = RowError(number, gettext('"%(field)s" is not an object')
                               % {"field": keys["attributes"]}, field=keys["attributes"])
        if problem is not None:
            yield problem
            continue

        attributes: dict[str, str] = {}
        extra = {key: value for key, value in obj.items()
                 if key.strip().casefold() not in (*KNOWN_FIELDS, "attributes")}
        nested = obj.get(keys["attributes"]) if "attributes" in keys else None
        for key, value in (extra | (nested or {})).items():
            text_value = _stringify(value)
            if key.strip() and text_value:
                attributes[key.strip()] = text_value
        description = values["description"]
        yield _Record(
            line=number,
            sku=values["sku"] or "",
            title=values["title"] or "",
            brand=values["brand"],
            category=values["category"],
            locale=values["locale"] or None,
            source_text=_plain_newlines(description) if description is not None else None,
            attributes=attributes,
            raw={"record": obj},
            labels={name: keys[name] for name in KNOWN_FIELDS if name in keys},
            cells=[(keys[name], value) for name, value in values.items() if value],
        )


def _stringify(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return ", ".join(text for item in value if (text := _stringify(item)))
    # Numbers and booleans as JSON writes them (true, not True); objects as JSON.
    return json.dumps(value, ensure_ascii=False)


def _plain_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


# --- HTML → plain text -------------------------------------------------------------------------

_BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption",
    "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav",
    "ol", "p", "pre", "section", "table", "tbody", "thead", "tfoot", "tr", "ul",
})
_CELL_TAGS = frozenset({"td", "th"})
_SKIP_TAGS = frozenset({"script", "style", "template", "noscript", "head", "title"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in _SKIP_TAGS:
            self._skipping += 1
        elif tag in _BLOCK_TAGS:
            self._break()
        elif tag in _CELL_TAGS:
            self._parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self._break()

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self._parts.append(data)

    def _break(self) -> None:
        # HTML whitespace rules: runs of whitespace (newlines and &nbsp; included) are one space.
        line = " ".join("".join(self._parts).split())
        if line:
            self.lines.append(line)
        self._parts = []

    def text(self) -> str:
        self.close()
        self._break()
        return "\n".join(self.lines)


def html_to_text(body: str) -> str:
    """Plain text from a product's HTML body: paragraphs, headings and list items become lines,
    entities are unescaped, tags (and script/style content) removed. Text without any tags keeps
    its own line breaks."""
    if "<" not in body:
        lines = (" ".join(line.split()) for line in html.unescape(body).splitlines())
        return "\n".join(line for line in lines if line)
    parser = _TextExtractor()
    parser.feed(body)
    return parser.text()


# --- Validation --------------------------------------------------------------------------------

def locale_normalize(value: str) -> str | None:
    """``Locale`` value for what people write ("en-US", "zh_CN", "zh-Hans" ...); None when it
    is not one Copydesk supports (traditional Chinese included)."""
    parts = value.strip().casefold().replace("_", "-").split("-")
    if parts[0] in ("en", "english"):
        return Locale.EN
    if parts[0] in ("zh", "chinese") and "hant" not in parts and (
        len(parts) == 1 or "hans" in parts or parts[1] in ("cn", "sg", "my")
    ):
        return Locale.ZH_HANS
    return None


def locale_detect(*texts: str) -> str:
    han = latin = 0
    for text in texts:
        for ch in text:
            if _is_han(ch):
                han += 1
            elif ch.isascii() and ch.isalpha():
                latin += 1
    return Locale.ZH_HANS if han and han * 3 >= latin else Locale.EN


def _too_long(label: str, length: int, limit: int) -> str:
    return (gettext('field "%(field)s" is %(length)d characters (limit %(limit)d)')
            % {"field": label, "length": length, "limit": limit})


def _validate(record: _Record, *, limit: int, brand_name: str | None) -> RowError | None:
    """Everything the database would refuse, so writes do not fail half-way."""
    line = record.line
    for name in ("sku", "title"):
        if not getattr(record, name):
            return RowError(line, gettext("missing %(field)s") % {"field": record.label(name)},
                            field=record.label(name))
    for name, max_length in _MAX_LENGTH.items():
        value = getattr(record, name)
        if name == "brand" and brand_name:
            continue
        if value and len(value) > max_length:
            label = record.label(name)
            return RowError(line, _too_long(label, len(value), max_length), field=label)
    for label, value in record.cells:
        if len(value) > limit:
            return RowError(line, _too_long(label, len(value), limit), field=label)
    attributes = record.attributes or {}
    derived = [(record.label("source_text"), record.source_text or ""), *attributes.items()]
    for label, value in derived:
        if len(value) > limit:
            return RowError(line, _too_long(label, len(value), limit), field=label)
    for name in attributes:
        if len(name) > limit:
            return RowError(line, gettext("an attribute name is %(length)d characters "
                                          "(limit %(limit)d)")
                            % {"length": len(name), "limit": limit})
    if record.locale is not None and locale_normalize(record.locale) is None:
        label = record.label("locale")
        return RowError(line, gettext('unknown locale "%(locale)s" (use en or zh-hans)')
                        % {"locale": record.locale}, field=label)
    bad = _unstorable(record.raw)
    if bad is not None:
        return RowError(line, gettext("the row contains a character that cannot be stored "
                                      "(%(character)s)") % {"character": bad})
    return None


def _unstorable(value: Any) -> str | None:
    """NUL and lone surrogates (from JSON escapes): PostgreSQL refuses both."""
    if isinstance(value, str):
        match = _UNSTORABLE.search(value)
        return None if match is None else f"U+{ord(match[0]):04X}"
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if isinstance(value, list):
        for item in value:
            found = _unstorable(item)
            if found is not None:
                return found
    return None


def _locale_for(record: _Record, default: str | None) -> str:
    if record.locale is not None:
        return locale_normalize(record.locale) or Locale.EN
    return default or locale_detect(record.title, record.source_text or "")


# --- Writing -----------------------------------------------------------------------------------

class _Brands:
    """Brands by name, loaded once; new ones are created inside the caller's transaction and
    only remembered once it has committed."""

    def __init__(self) -> None:
        self.by_name = {brand.name: brand for brand in Brand.objects.all()}
        self.by_folded = {}
        for brand in self.by_name.values():
            self.by_folded.setdefault(brand.name.casefold(), brand)
        self.pending: dict[str, Brand] = {}

    def get(self, name: str, locale: str) -> Brand:
        brand = (self.by_name.get(name) or self.pending.get(name)
                 or self.by_folded.get(name.casefold()))
        if brand is None:
            brand, _ = Brand.objects.get_or_create(name=name, defaults={"locale": locale})
            self.pending[name] = brand
        return brand

    def commit(self) -> None:
        for name, brand in self.pending.items():
            self.by_name[name] = brand
            self.by_folded.setdefault(name.casefold(), brand)
        self.pending = {}

    def rollback(self) -> None:
        self.pending = {}


_UPDATE_FIELDS = ["title", "brand", "category", "attributes", "source_text", "raw", "locale",
                  "source_format", "catalog_import", "updated_at"]


def _update_rows(products: list[Product]) -> None:
    """``bulk_update`` for many rows, ~10x faster: one parametrised UPDATE sent with
    ``executemany`` (pipelined by psycopg 3) instead of ``bulk_update``'s CASE WHEN per field,
    which takes seconds per thousand rows on both SQLite and PostgreSQL. Values are prepared by
    the model fields themselves, so JSON is encoded exactly as ``save()`` would."""
    connection = connections[router.db_for_write(Product)]
    quote = connection.ops.quote_name
    fields = [Product._meta.get_field(name) for name in _UPDATE_FIELDS]
    primary_key = Product._meta.pk
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
    sql = (f"UPDATE {quote(Product._meta.db_table)} SET {assignments} "
           f"WHERE {quote(primary_key.column)} = %s")
    params = [
        [f.get_db_prep_save(getattr(product, f.attname), connection) for f in fields]
        + [primary_key.get_db_prep_save(product.pk, connection)]
        for product in products
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def _write(
    items: list[tuple[_Record, str | None]], *, report: ImportReport, source_format: str,
    brand_name: str | None, keep_origin: bool = False,
    catalog_import: CatalogImport | None = None,
) -> Product | None:
    """Write validated records in batches; returns the last product written (for the audit).

    Each item is a record and its locale; ``None`` (only from the API) keeps an existing
    product's locale and detects a new one's. With ``keep_origin`` (the API) an existing product
    keeps its source format and raw row, so a product imported from a shop file still exports
    to that shop; one that came in through the API has the sent keys merged into its raw
    record. ``catalog_import`` (a file import) is recorded on every product of the file, the
    unchanged ones included; without it a product keeps the import it came from."""
    brands = _Brands()
    last: Product | None = None
    pending = [items[start:start + BATCH_SIZE] for start in range(0, len(items), BATCH_SIZE)]
    while pending:
        batch = pending.pop(0)
        try:
            with transaction.atomic():
                created, updated, unchanged, written = _write_batch(
                    batch, brands=brands, source_format=source_format, brand_name=brand_name,
                    keep_origin=keep_origin, catalog_import=catalog_import,
                )
        except DatabaseError as exc:
            brands.rollback()
            if len(batch) > 1:
                # Find the culprit: the same records again, one transaction each.
                pending[:0] = [[item] for item in batch]
            else:
                record = batch[0][0]
                report.errors.append(RowError(
                    record.line, gettext("could not be saved: %(error)s") % {"error": exc}))
            continue
        brands.commit()
        report.created += created
        report.updated += updated
        report.unchanged += unchanged
        last = written or last
    return last


def _merged(stored: Any, sent: dict[str, Any]) -> dict[str, Any]:
    """``sent`` laid over ``stored`` one level down: {"record": {...}} keeps the keys an
    update did not send."""
    merged = dict(stored) if isinstance(stored, dict) else {}
    for key, value in sent.items():
        before = merged.get(key)
        merged[key] = ({**before, **value} if isinstance(before, dict) and isinstance(value, dict)
                       else value)
    return merged


def _write_batch(
    batch: list[tuple[_Record, str | None]], *, brands: _Brands, source_format: str,
    brand_name: str | None, keep_origin: bool, catalog_import: CatalogImport | None = None,
) -> tuple[int, int, int, Product | None]:
    """Call inside a transaction. Returns (created, updated, unchanged, last product)."""
    existing = {product.sku: product
                for product in Product.objects.filter(sku__in=[r.sku for r, _ in batch])}
    now = timezone.now()
    to_create: list[Product] = []
    to_update: list[Product] = []
    # Unchanged products the file sent again: they now come from this import.
    restamp: list[int] = []
    origin = {"catalog_import_id": catalog_import.pk} if catalog_import is not None else {}
    unchanged = 0
    last = None
    for record, locale in batch:
        name = brand_name if brand_name else record.brand
        product = existing.get(record.sku)
        if locale is None:
            locale = product.locale if product is not None else locale_detect(
                record.title, record.source_text or "")
        values: dict[str, Any] = {"title": record.title, "locale": locale}
        if record.attributes is not None:
            values["attributes"] = record.attributes
        if product is None or not keep_origin:
            values.update(raw=record.raw, source_format=source_format)
        elif product.source_format == source_format:
            values["raw"] = _merged(product.raw, record.raw)
        if name is not None:
            # Compared and set by id: reading ``product.brand`` would cost a query per row.
            brand = brands.get(name, locale) if name else None
            values["brand_id"] = brand.pk if brand else None
        if record.category is not None:
            values["category"] = record.category
        if record.source_text is not None:
            values["source_text"] = record.source_text
        if product is None:
            product = Product(sku=record.sku, **values, **origin)
            to_create.append(product)
        elif any(getattr(product, key) != value for key, value in values.items()):
            for key, value in (values | origin).items():
                setattr(product, key, value)
            product.updated_at = now
            to_update.append(product)
        else:
            unchanged += 1
            if origin and product.catalog_import_id != catalog_import.pk:
                product.catalog_import_id = catalog_import.pk
                restamp.append(product.pk)
        last = product
    if to_create:
        Product.objects.bulk_create(to_create)
    if to_update:
        _update_rows(to_update)
    if restamp:
        Product.objects.filter(pk__in=restamp).update(catalog_import=catalog_import)
    return len(to_create), len(to_update) + unchanged, unchanged, last
