"""Folding the tallies that database triggers keep as rows of changes (``DraftStateTally``,
``VersionReviewTally``): readers sum the rows, and fold them back into one row per group when
they pile up."""

from __future__ import annotations

from django.db import connections, transaction

# Past this many rows a tally is folded: summing a few hundred rows costs nothing, and folding
# on every read would make readers queue on one another's deletes.
FOLD_AT = 200


def fold(model, group: str, sums: list[str]) -> None:
    """Replaces ``model``'s rows by one per ``group`` column value with the sums of ``sums``
    (groups whose sums are all zero go). On PostgreSQL the rows deleted are exactly the ones
    summed (one statement, one snapshot), so rows that concurrent transactions add meanwhile
    stay, and two folds at once each fold only the rows they deleted. SQLite writers take
    turns, so rows up to the highest id are the whole tally."""
    table = model._meta.db_table
    columns = ", ".join([group, *sums])
    totals = ", ".join(f"SUM({column})" for column in sums)
    nonzero = " OR ".join(f"SUM({column}) <> 0" for column in sums)
    connection = connections[model.objects.db]
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"WITH gone AS (DELETE FROM {table} RETURNING {columns}) "
                f"INSERT INTO {table} ({columns}) SELECT {group}, {totals} FROM gone "
                f"GROUP BY {group} HAVING {nonzero}")
            return
        cursor.execute(f"SELECT MAX(id) FROM {table}")
        (last,) = cursor.fetchone()
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {group}, {totals} FROM {table} "
            f"WHERE id <= %s GROUP BY {group} HAVING {nonzero}", [last])
        cursor.execute(f"DELETE FROM {table} WHERE id <= %s", [last])


def recount(using: str = "default") -> None:
    """Counts the row tallies again from the drafts. ``flush`` needs it: on SQLite it deletes
    the tables one by one in no fixed order, and drafts deleted after their tallies leave rows
    of -1 behind (PostgreSQL truncates them all in one statement)."""
    from django.db.models import Count

    from .metrics import scanned_review_tallies
    from .models import Draft, DraftStateTally, VersionReviewTally

    with transaction.atomic(using=using):
        DraftStateTally.objects.using(using).all().delete()
        DraftStateTally.objects.using(using).bulk_create(
            DraftStateTally(state=row["state"], drafts=row["n"])
            for row in Draft.objects.using(using).order_by().values("state")
            .annotate(n=Count("pk")))
        VersionReviewTally.objects.using(using).all().delete()
        VersionReviewTally.objects.using(using).bulk_create(
            VersionReviewTally(model_version_id=version_id, approved=row["n"],
                               unchanged=row["unchanged"], timed=row["timed"],
                               rejected=row["rejected"])
            for version_id, row in scanned_review_tallies(
                Draft.objects.using(using).order_by()).items())
