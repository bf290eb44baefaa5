"""The tallies that database triggers keep as rows of changes (``DraftStateTally``,
``VersionReviewTally``): readers sum the rows and fold them back into one row per group when
they pile up; the same figures counted from the drafts, for a scan limited to some drafts and
for counting the tallies again after a flush."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import connections, transaction

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from .models import Draft

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


def scanned_review_tallies(reviewed: QuerySet[Draft],
                           version_ids: list[int] | None = None) -> dict[int, dict]:
    """Per version (``version_ids``, default every one), from ``reviewed`` (the drafts
    counted): approved (``n``), of those unchanged and timed, and rejected."""
    from django.db.models import Count, Q

    from .models import Draft

    state = Draft.State
    # Each reviewed draft keeps the version it counts for (``Draft.review_*``: the origin of
    # its approved revision, or of a rejected draft's current one); this reads the draft rows
    # alone, from the draft_review_figures index, and counts in the database.
    is_approved = Q(state__in=[state.APPROVED, state.EXPORTED])
    counted = reviewed.filter(state__in=[state.APPROVED, state.EXPORTED, state.REJECTED])
    counted = (counted.filter(review_version__isnull=False) if version_ids is None
               else counted.filter(review_version__in=version_ids))
    return {
        row["review_version"]: row
        for row in counted
        .values("review_version")
        .annotate(n=Count("pk", filter=is_approved),
                  unchanged=Count("pk", filter=is_approved & Q(review_unchanged=True)),
                  timed=Count("pk", filter=is_approved & Q(approved_at__isnull=False)),
                  rejected=Count("pk", filter=Q(state=state.REJECTED)))
    }


def recount(using: str = "default") -> None:
    """Counts the row tallies again from the drafts. ``flush`` needs it: on SQLite it deletes
    the tables one by one in no fixed order, and drafts deleted after their tallies leave rows
    of -1 behind (PostgreSQL truncates them all in one statement)."""
    from django.db.models import Count

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
