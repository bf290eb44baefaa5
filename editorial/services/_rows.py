"""Row helpers the services share: the draft row lock, batched ids and bulk inserts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import connection
from django.db.models import QuerySet

from ..models import Draft, Product


def locked_draft(draft: Draft) -> Draft:
    return Draft.objects.select_for_update().get(pk=draft.pk)


def product_ids_of(products: Iterable[Product] | QuerySet) -> list[int]:
    if isinstance(products, QuerySet):
        return list(products.values_list("pk", flat=True))
    return [p.pk for p in products]


def in_batches(values: Sequence, size: int = 5000):
    for start in range(0, len(values), size):
        yield values[start:start + size]


def insert_rows(model, columns: Sequence[str], rows: Sequence[tuple], *,
                 ignore_conflicts: bool = False) -> None:
    """Multi-row INSERTs of ready database values, for the hundreds of thousands of rows of a
    catalog-sized job: ``bulk_create`` prepares every value of every model instance in Python,
    which costs tens of seconds at 100,000 drafts; this costs well under one.

    ``ignore_conflicts`` skips rows that break a unique constraint (SQLite >= 3.24, PostgreSQL).
    """
    if not rows:
        return
    meta = model._meta
    quote = connection.ops.quote_name
    names = ", ".join(quote(meta.get_field(c).column) for c in columns)
    placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
    max_params = connection.features.max_query_params or 30000
    per_statement = max(1, min(1000, max_params // len(columns)))
    suffix = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    if connection.vendor == "postgresql":
        # One array per column, sent in binary through psycopg's own (server-side binding)
        # cursor: a few parameters instead of one per value, and no quoting in Python.
        arrays = ", ".join(
            f"%b::{meta.get_field(c).cast_db_type(connection)}[]" for c in columns
        )
        connection.ensure_connection()
        with connection.connection.cursor() as cursor:
            for batch in in_batches(rows, 20000):
                cursor.execute(
                    f"INSERT INTO {quote(meta.db_table)} ({names}) "
                    f"SELECT * FROM unnest({arrays}){suffix}",
                    [list(column) for column in zip(*batch, strict=True)],
                )
        return
    with connection.cursor() as cursor:
        for batch in in_batches(rows, per_statement):
            cursor.execute(
                f"INSERT INTO {quote(meta.db_table)} ({names}) VALUES "
                f"{', '.join([placeholders] * len(batch))}{suffix}",
                [value for row in batch for value in row],
            )

