"""Races between people, run for real: threads with their own database connections released at
the same moment. On PostgreSQL they truly overlap (row locks decide); on SQLite the write lock
serialises them. Either way the outcome must be one of the allowed ones."""

import threading

import pytest
from django.db import connection, connections

from editorial import services
from editorial.models import Draft, ReviewDecision, Revision
from tests.factories import UserFactory, draft_with_text

pytestmark = pytest.mark.django_db(transaction=True)


def race(*actions):
    """Run each action in its own thread, all released together; return what each returned or
    raised."""
    barrier = threading.Barrier(len(actions))
    outcomes = [None] * len(actions)

    def run(index, action):
        try:
            barrier.wait(timeout=10)
            outcomes[index] = action()
        except Exception as exc:  # the outcome under test
            outcomes[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


def test_two_editors_saving_from_the_same_base_one_wins_both_texts_kept():
    draft = draft_with_text("A kettle made of stainless steel.")
    base = draft.current_revision_id
    edith, otto = UserFactory(roles=["Editor"]), UserFactory(roles=["Editor"])
    outcomes = race(
        lambda: services.revision_save(draft=Draft.objects.get(pk=draft.pk), user=edith,
                                       text="Edith's kettle text.", base_revision_id=base),
        lambda: services.revision_save(draft=Draft.objects.get(pk=draft.pk), user=otto,
                                       text="Otto's kettle text.", base_revision_id=base),
    )
    conflicts = [o for o in outcomes if isinstance(o, services.RevisionConflict)]
    wins = [o for o in outcomes if isinstance(o, Revision)]
    assert len(wins) == 1 and len(conflicts) == 1, outcomes
    draft.refresh_from_db()
    assert draft.current_revision_id == wins[0].pk
    texts = set(Revision.objects.filter(draft=draft).values_list("text", flat=True))
    assert {"Edith's kettle text.", "Otto's kettle text."} <= texts


def test_two_reviewers_approving_at_once_make_one_approval():
    draft = draft_with_text("A kettle made of stainless steel.")
    editor = UserFactory(roles=["Editor"])
    services.draft_submit(draft=draft, user=editor)
    revision = draft.current_revision_id
    rey, rita = UserFactory(roles=["Reviewer"]), UserFactory(roles=["Reviewer"])
    outcomes = race(*(
        (lambda user=user: services.draft_approve(draft=Draft.objects.get(pk=draft.pk),
                                                  user=user, revision_id=revision))
        for user in (rey, rita)
    ))
    assert sum(isinstance(o, Draft) for o in outcomes) == 1, outcomes
    assert sum(isinstance(o, services.WorkflowError) for o in outcomes) == 1, outcomes
    assert ReviewDecision.objects.filter(draft=draft, decision="approve").count() == 1
    draft.refresh_from_db()
    assert draft.state == Draft.State.APPROVED and draft.approved_revision_id == revision


def test_approve_racing_an_edit_is_pinned_to_the_revision_the_reviewer_saw():
    draft = draft_with_text("A kettle made of stainless steel.")
    editor, reviewer = UserFactory(roles=["Editor"]), UserFactory(roles=["Reviewer"])
    services.draft_submit(draft=draft, user=editor)
    seen = draft.current_revision_id
    outcomes = race(
        lambda: services.draft_approve(draft=Draft.objects.get(pk=draft.pk), user=reviewer,
                                       revision_id=seen),
        lambda: services.revision_save(draft=Draft.objects.get(pk=draft.pk), user=editor,
                                       text="A kettle of brushed steel.", base_revision_id=seen),
    )
    draft.refresh_from_db()
    approval = ReviewDecision.objects.filter(draft=draft, decision="approve").first()
    if isinstance(outcomes[0], Draft):
        # Approved first: the approval holds the text the reviewer saw, and the later edit
        # took the draft out of the approved state until someone approves again.
        assert approval.revision_id == seen
        assert draft.approved_revision_id == seen
        assert draft.state != Draft.State.APPROVED or draft.current_revision_id == seen
    else:
        # Edited first: the approval of the old text was refused, nothing approved.
        assert isinstance(outcomes[0], services.WorkflowError), outcomes
        assert approval is None and draft.approved_revision_id is None
    assert Revision.objects.filter(draft=draft, text="A kettle of brushed steel.").exists()


def test_the_race_helper_really_overlaps_on_postgresql():
    """Guard for the tests above: on PostgreSQL both threads must be inside the database at the
    same time, or the races would be sequential by accident."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers; CI's PostgreSQL pass runs this")
    inside = threading.Barrier(2)

    def hold():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        inside.wait(timeout=5)  # both connections open and used at once
        return True

    assert race(hold, hold) == [True, True]


def test_two_exports_at_once_write_the_same_rows_and_two_records():
    import csv
    import io

    from editorial.exporters import copy_export
    from editorial.models import ExportBatch

    editor, reviewer = UserFactory(roles=["Editor"]), UserFactory(roles=["Reviewer"])
    for number in range(30):
        draft = draft_with_text(f"Copy number {number}.", product__sku=f"EXP-{number:02d}")
        services.draft_submit(draft=draft, user=editor)
        services.draft_approve(draft=draft, user=reviewer, revision_id=draft.current_revision_id)
    streams = [io.StringIO(), io.StringIO()]
    outcomes = race(*(
        (lambda stream=stream: copy_export(stream=stream, fmt="csv", user=reviewer))
        for stream in streams
    ))
    assert all(isinstance(o, ExportBatch) for o in outcomes), outcomes
    files = [sorted((r["sku"], r["text"]) for r in csv.DictReader(io.StringIO(s.getvalue())))
             for s in streams]
    assert files[0] == files[1] and len(files[0]) == 30
    assert sorted(b.count for b in ExportBatch.objects.all()) == [30, 30]
    assert Draft.objects.filter(state=Draft.State.EXPORTED).count() == 30
    assert not Draft.objects.filter(exported_revision__isnull=True).exists()
