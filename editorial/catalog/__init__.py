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

The pieces are public, for the import service, the API's bulk upsert and the benchmarks:
``parsers`` (decoding, format detection, a ``Record`` per product), ``text`` (HTML bodies as
text, locales), ``validation`` (``validate``, ``locale_for``) and ``writer`` (``write``,
``ImportReport``).
"""

from .importing import products_import
from .parsers import FORMATS, PARSERS, CatalogImportError, Record, RowError, decode, detect_format
from .text import html_to_text, locale_detect, locale_normalize
from .validation import locale_for, validate
from .writer import ImportReport, write

__all__ = [
    "FORMATS",
    "PARSERS",
    "CatalogImportError",
    "ImportReport",
    "Record",
    "RowError",
    "decode",
    "detect_format",
    "html_to_text",
    "locale_detect",
    "locale_for",
    "locale_normalize",
    "products_import",
    "validate",
    "write",
]
