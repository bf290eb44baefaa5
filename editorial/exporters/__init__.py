"""Approved copy out of Copydesk: selectors for the rows and services that write them.

Exports always take a draft's *last approved* revision, never its current one, whatever state
the draft is in now: text edited after approval waits for a new approval, and until then the
draft (in edit or in review again) goes on exporting the text approved before. A column the shop
once got from Copydesk therefore never falls back to what it sent us.

Formats: generic CSV, JSON Lines, and Shopify product CSV (the rows a Shopify export sent us,
variants included and in order, with the approved copy in ``Body (HTML)``, ``SEO Title`` and
``SEO Description``). One CSV has one column row: products that came from Shopify files with
different columns are exported as a zip with one CSV per column set. The formula guard applies
to the text Copydesk writes; the cells a shop sent go back byte for byte.

How an export runs, whatever the caller (management command, streamed download, Celery task):

1. Rows are read with one query per format (``values_list(...).iterator(chunk_size=PAGE_SIZE)``:
   tuples, no model instances, no per-row queries) and rendered one page at a time, so memory
   stays flat however many drafts there are. Nothing is written to the database while reading,
   and no transaction is held open on the drafts: editors keep saving during a long export.
2. The approved revision ids written are spooled to a temporary file (8 bytes each).
3. When the whole file has been produced, one short transaction marks exactly those revisions'
   drafts exported (``exported_revision`` = that revision; an approved draft's state becomes
   exported, a draft in edit or review keeps its state) and records the ``ExportBatch``. A
   draft re-approved meanwhile is not marked with the old text; an export that fails or a
   download that is cut off marks nothing.
4. A zip (several Shopify column sets, or asked for) is written through ``zipfile`` onto a sink
   that hands on each page's compressed bytes, so it streams like a single file.
"""

from .batches import (
    DOWNLOAD_MAX_ROWS,
    PROGRESS_SECONDS,
    ExportDownload,
    copy_export,
    download_max_rows,
    export_batch_create,
    export_batch_run,
    export_batch_stream,
    export_dir,
    export_download_name,
    export_file_content_type,
    export_file_path,
)
from .options import (
    BOM,
    CSV_FORMATS,
    EXPORT_COLUMNS,
    EXPORT_FORMATS,
    FILTER_KEYS,
    FORMULA_PREFIXES,
    MAX_SHOPIFY_FILES,
    SHOPIFY_COLUMNS,
    SHOPIFY_HTML_COLUMNS,
    ZIP_CONTENT_TYPE,
    ArchiveRequired,
    ExportOptions,
    ShopifyFile,
    catalog_import_find,
    catalog_import_label,
    csv_cell,
    export_filters_clean,
)
from .rows import PAGE_SIZE, approved_copy_rows, export_count, export_options_clean, html_paragraphs

__all__ = [
    "ArchiveRequired",
    "BOM",
    "CSV_FORMATS",
    "DOWNLOAD_MAX_ROWS",
    "EXPORT_COLUMNS",
    "EXPORT_FORMATS",
    "ExportDownload",
    "ExportOptions",
    "FILTER_KEYS",
    "FORMULA_PREFIXES",
    "MARK_BATCH",
    "MAX_SHOPIFY_FILES",
    "PAGE_SIZE",
    "PROGRESS_SECONDS",
    "SHOPIFY_COLUMNS",
    "SHOPIFY_HTML_COLUMNS",
    "ShopifyFile",
    "ZIP_CONTENT_TYPE",
    "approved_copy_rows",
    "catalog_import_find",
    "catalog_import_label",
    "copy_export",
    "csv_cell",
    "download_max_rows",
    "export_batch_create",
    "export_batch_run",
    "export_batch_stream",
    "export_count",
    "export_dir",
    "export_download_name",
    "export_file_content_type",
    "export_file_path",
    "export_filters_clean",
    "export_options_clean",
    "html_paragraphs",
]
