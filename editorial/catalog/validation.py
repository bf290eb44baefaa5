"""Checking a record completely before anything is written: required fields, field sizes, the
locale, characters a database cannot store. A bad record becomes a ``RowError`` with its line."""

from __future__ import annotations

import re
from typing import Any

from django.utils.translation import gettext

from ..models import Brand, Locale, Product
from .parsers import Record, RowError
from .text import locale_detect, locale_normalize

DEFAULT_MAX_FIELD_CHARS = 20000



_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")



MAX_LENGTH = {
    name: Product._meta.get_field(name).max_length for name in ("sku", "title", "category")
} | {"brand": Brand._meta.get_field("name").max_length}



def _too_long(label: str, length: int, limit: int) -> str:
    return (gettext('field "%(field)s" is %(length)d characters (limit %(limit)d)')
            % {"field": label, "length": length, "limit": limit})



def validate(record: Record, *, limit: int, brand_name: str | None) -> RowError | None:
    """Everything the database would refuse, so writes do not fail half-way."""
    line = record.line
    for name in ("sku", "title"):
        if not getattr(record, name):
            return RowError(line, gettext("missing %(field)s") % {"field": record.label(name)},
                            field=record.label(name))
    for name, max_length in MAX_LENGTH.items():
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



def locale_for(record: Record, default: str | None) -> str:
    if record.locale is not None:
        return locale_normalize(record.locale) or Locale.EN
    return default or locale_detect(record.title, record.source_text or "")

