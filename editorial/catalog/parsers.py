"""Reading a catalog file: decoding, format detection, and one ``Record`` per product from a
generic CSV, a Shopify product CSV or JSON Lines (``PARSERS``). Nothing is validated or written
here, and nothing touches the database."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from django.utils.translation import gettext, ngettext

from generation.text import is_han, plain_text

from .text import html_to_text

FORMATS = ("auto", "csv", "shopify", "jsonl")



JSONL_EXTENSIONS = (".jsonl", ".ndjson")



# Generic CSV and JSON Lines: these columns/keys are product fields; every other one is an
# attribute.
KNOWN_FIELDS = ("sku", "title", "brand", "category", "locale", "description")



SHOPIFY_SIGNATURE = ("handle", "title", "body (html)")



SHOPIFY_PLACEHOLDER_OPTION = ("Title", "Default Title")



_OPTION_NAME = re.compile(r"^option(\d+) name$")



@dataclass
class RowError:
    line: int
    message: str
    field: str = ""

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"



class CatalogImportError(Exception):
    """The file as a whole cannot be imported (encoding, empty, missing required columns ...).
    The message names the file and is meant for users."""



@dataclass
class Record:
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



_BOM = b"\xef\xbb\xbf"



# Checked and read in slices of about this many bytes, each ending after a newline byte: no
# UTF-8 or GB18030 character contains one, so every slice decodes on its own.
_SLICE_BYTES = 1 << 20



def _slices(data: bytes, offset: int) -> Iterator[tuple[int, memoryview]]:
    """(position after ``offset``, slice) of ``data[offset:]``, without copying it."""
    view = memoryview(data)
    start = offset
    while start < len(data):
        end = data.find(b"\n", start + _SLICE_BYTES)
        end = len(data) if end < 0 else end + 1
        yield start - offset, view[start:end]
        start = end



class _ChineseTally:
    """Whether a whole text, told slice by slice, is clearly Chinese. Other 8-bit encodings
    (Latin-1, Windows-1252) often decode as GB18030 too, into rare or traditional characters
    that GB2312, the common simplified set, does not have. Real Chinese text is nearly all
    GB2312."""

    def __init__(self) -> None:
        self.odd = self.han = False
        self.wide = self.common = 0

    def add(self, text: str) -> None:
        if self.odd:
            return
        if "\ufffd" in text or any(_is_odd(ch) for ch in text):
            self.odd = True
            return
        self.han = self.han or any(is_han(ch) for ch in text)
        for ch in text:
            if ch.isascii():
                continue
            self.wide += 1
            try:
                ch.encode("gb2312")
            except UnicodeEncodeError:
                continue
            self.common += 1

    def clearly_chinese(self) -> bool:
        return not self.odd and self.han and self.common >= 0.9 * self.wide



def encoding_of(data: bytes, filename: str) -> str:
    """The encoding a catalog file is read with, checked over the whole file without holding
    its text: UTF-8 (a BOM is dropped); failing that GB18030 (what Chinese Excel writes) but
    only if the result is clearly Chinese; otherwise the file is refused, so nothing is ever
    stored as mojibake."""
    if not data or data.isspace():
        raise CatalogImportError(gettext("%(file)s is empty.") % {"file": filename})
    offset = len(_BOM) if data.startswith(_BOM) else 0
    blank = True
    for start, piece in _slices(data, offset):
        try:
            text = str(piece, "utf-8")
        except UnicodeDecodeError as exc:
            return _gb18030_or_refuse(data, offset, start + exc.start, filename)
        blank = blank and (not text or text.isspace())
    if blank:
        raise CatalogImportError(gettext("%(file)s is empty.") % {"file": filename})
    return "utf-8"



def _gb18030_or_refuse(data: bytes, offset: int, position: int, filename: str) -> str:
    """A file that is not UTF-8 (from ``position`` on, after ``offset``)."""
    tally = _ChineseTally()
    try:
        for _start, piece in _slices(data, offset):
            tally.add(str(piece, "gb18030"))
    except UnicodeDecodeError:
        tally.odd = True
    if tally.clearly_chinese():
        return "gb18030"
    line = data.count(b"\n", offset, offset + position) + 1
    raise CatalogImportError(
        gettext("%(file)s is not UTF-8 (byte 0x%(byte)02x at line %(line)d); save it as CSV "
                "UTF-8 and import again.")
        % {"file": filename, "byte": data[offset + position], "line": line}
    )



def decode(data: bytes, filename: str) -> tuple[str, str]:
    """The file's whole text and the encoding it was read with (``encoding_of``)."""
    encoding = encoding_of(data, filename)
    return str(data.removeprefix(_BOM), encoding), encoding



def _is_odd(ch: str) -> bool:
    code = ord(ch)
    return (code < 0x20 and ch not in "\t\r\n") or 0x7F <= code <= 0x9F or 0xE000 <= code <= 0xF8FF



class Source:
    """A catalog file's text, read from the start as often as a parser needs (a Shopify file
    twice) without ever being held whole: a 100,000-product file decoded and parsed at once
    held ~6 kB per product."""

    def __init__(self, data: bytes | str, encoding: str = "utf-8") -> None:
        self.data = data
        self.encoding = encoding
        self._head: tuple[str, str] | None = None

    def open(self, newline: str) -> io.TextIOBase:
        if isinstance(self.data, str):
            return io.StringIO(self.data, newline=newline)
        buffer = io.BytesIO(self.data)
        if self.data.startswith(_BOM):
            buffer.seek(len(_BOM))
        return io.TextIOWrapper(buffer, encoding=self.encoding, newline=newline)

    def head(self) -> tuple[str, str]:
        """(the first line that is not blank, the first character that is not whitespace),
        each as reading the whole text would find them."""
        if self._head is None:
            text, line, char = "", None, None
            with self.open(newline="") as stream:
                while line is None:
                    piece = stream.read(1 << 16)
                    text += piece
                    lines = text.splitlines()
                    found = next((i for i, item in enumerate(lines) if item.strip()), None)
                    if found is not None and (found < len(lines) - 1 or not piece):
                        line = lines[found]
                    elif not piece:
                        line = ""
                    if char is None and (text.strip() or not piece):
                        char = text.lstrip()[:1]
            self._head = (line, char)
        return self._head



def _source(text: str | Source) -> Source:
    return text if isinstance(text, Source) else Source(text)



def detect_format(text: str | Source, filename: str) -> str:
    suffix = PurePath(filename).suffix.lower()
    if suffix in JSONL_EXTENSIONS:
        return "jsonl"
    first_line, first_char = _source(text).head()
    if suffix not in (".csv", ".tsv", ".txt") and first_char == "{":
        return "jsonl"
    header = next(csv.reader(io.StringIO(first_line), delimiter=_delimiter(first_line)), [])
    names = {name.strip().casefold() for name in header}
    return "shopify" if set(SHOPIFY_SIGNATURE) <= names else "csv"



def _delimiter(line: str) -> str:
    """Comma, unless the header line has more semicolons (European Excel) or tabs."""
    return max((",", ";", "\t"), key=line.count) if line else ","



_Rows = Iterator[tuple[int, list[str]] | RowError]



def _csv_rows(source: Source, filename: str) -> tuple[list[str], _Rows]:
    """The header and an iterator of (line where the record starts, cells) or RowError.
    Blank rows are skipped."""
    reader = csv.reader(source.open(newline=""), delimiter=_delimiter(source.head()[0]))
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



def parse_csv(text: str | Source, filename: str) -> Iterator[Record | RowError]:
    header, rows = _csv_rows(_source(text), filename)
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
        yield Record(
            line=line,
            sku=cell("sku") or "",
            title=cell("title") or "",
            brand=cell("brand"),
            category=cell("category"),
            locale=cell("locale") or None,
            source_text=plain_text(description) if description is not None else None,
            attributes={name: cells[position].strip() for name, position in attribute_columns
                        if position < len(cells) and cells[position].strip()},
            raw={"columns": header, "rows": [cells]},
            labels=labels,
            cells=[(header[i].strip() if i < len(header) else f"column {i + 1}", value)
                   for i, value in enumerate(cells)],
        )



def parse_shopify(text: str | Source, filename: str) -> Iterator[Record | RowError]:
    """One record per Handle; variant and image rows fold into the first row's product, in
    the order of the handles' first rows. The file is read twice: first for the last row of
    each handle, so a product is handed on as soon as its rows are read (at once where they
    follow each other, as in Shopify's exports) instead of after the whole file."""
    source = _source(text)
    header, rows = _csv_rows(source, filename)
    index = _column_index(header, filename, required=("handle", "title"))
    labels = {key: header[position].strip() for key, position in index.items()}
    options = sorted(
        (int(match[1]), key) for key in index if (match := _OPTION_NAME.match(key))
    )
    metafields = [(header[position].split("(product.metafields", 1)[0].strip(), key)
                  for key, position in index.items() if "(product.metafields." in key]

    # By hash, not by handle: two handles with one hash only keep a product waiting longer.
    last: dict[int, int] = {}
    for position, item in enumerate(_csv_rows(source, filename)[1]):
        if not isinstance(item, RowError) and (handle := _cell(item[1], index, "handle")):
            last[hash(handle)] = position

    waiting: dict[str, list[tuple[int, list[str]]]] = {}
    for position, item in enumerate(rows):
        if isinstance(item, RowError):
            yield item
            continue
        line, cells = item
        handle = _cell(cells, index, "handle")
        if not handle:
            yield RowError(line, gettext("missing %(field)s") % {"field": labels["handle"]},
                           field=labels["handle"])
            continue
        waiting.setdefault(handle, []).append((line, cells))
        while waiting and last[hash(oldest := next(iter(waiting)))] <= position:
            yield _shopify_record(oldest, waiting.pop(oldest), header=header, index=index,
                                  labels=labels, options=options, metafields=metafields)
    for handle, group in waiting.items():
        yield _shopify_record(handle, group, header=header, index=index, labels=labels,
                              options=options, metafields=metafields)



def _shopify_record(
    handle: str, group: list[tuple[int, list[str]]], *, header: list[str],
    index: dict[str, int], labels: dict[str, str], options: list[tuple[int, str]],
    metafields: list[tuple[str, str]],
) -> Record:
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
    return Record(
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



def parse_jsonl(text: str | Source, filename: str) -> Iterator[Record | RowError]:
    # Lines end at "\n" only, not as splitlines() has it: JSON strings may hold U+2028 and
    # friends, and line numbers must match what an editor shows.
    for number, line in enumerate(_source(text).open(newline="\n"), start=1):
        line = line.removesuffix("\n")
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
        yield Record(
            line=number,
            sku=values["sku"] or "",
            title=values["title"] or "",
            brand=values["brand"],
            category=values["category"],
            locale=values["locale"] or None,
            source_text=plain_text(description) if description is not None else None,
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



# Format name -> the parser that reads a file of it into records (and ``RowError``s).
PARSERS = {"csv": parse_csv, "shopify": parse_shopify, "jsonl": parse_jsonl}
