"""Workflow rules as the services enforce them, whatever the caller (view, admin, API, task)."""

import pytest
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction

from editorial.models import (
    AuditEvent,
    Candidate,
    Draft,
    GenerationJob,
    JobItem,
    ReviewDecision,
    Revision,
)
from editorial.services import (
    ItemOutcome,
    RevisionConflict,
    StaleRevision,
    WorkflowError,
    candidate_choose,
    draft_approve,
    draft_claim,
    draft_reject,
    draft_request_changes,
    draft_submit,
    generation_job_cancel,
    generation_job_request,
    generation_results_store,
    revision_save,
)
from generation.params import InvalidParams
from tests.factories import ModelVersionFactory, ProductFactory, draft_with_text, in_review

pytestmark = pytest.mark.django_db


def test_save_creates_a_revision_by_the_editor_and_moves_draft_into_edit(editor):
    draft = draft_with_text("Model text.")
    model_revision = draft.current_revision
    revision = revision_save(draft=draft, user=editor, text="  Better text.\r\n",
                             base_revision_id=model_revision.pk)
    draft.refresh_from_db()
    assert (revision.text, revision.author, revision.parent, revision.number) == (
        "Better text.", editor, model_revision, 2)
    assert draft.current_revision == revision
    assert draft.state == Draft.State.IN_EDIT
    assert draft.assignee == editor
    assert AuditEvent.objects.filter(verb="revision.create", object_id=str(draft.pk)).exists()


def test_stale_save_keeps_both_revisions_and_reports_conflict(editor, reviewer):
    draft = draft_with_text("Model text.")
    base = draft.current_revision_id
    winner = revision_save(draft=draft, user=reviewer, text="Reviewer's text.",
                           base_revision_id=base)
    with pytest.raises(RevisionConflict) as conflict:
        revision_save(draft=draft, user=editor, text="Editor's text.", base_revision_id=base)
    draft.refresh_from_db()
    assert draft.current_revision == winner
    assert conflict.value.current == winner
    assert conflict.value.revision.text == "Editor's text."
    assert conflict.value.revision.parent_id == base
    assert set(draft.revisions.values_list("text", flat=True)) == {
        "Model text.", "Reviewer's text.", "Editor's text."}


def test_saving_unchanged_text_adds_no_revision(editor):
    draft = draft_with_text("Same.")
    revision = revision_save(draft=draft, user=editor, text="Same.",
                             base_revision_id=draft.current_revision_id)
    assert revision == draft.current_revision
    assert draft.revisions.count() == 1


def test_empty_text_is_refused_and_nothing_stored(editor):
    draft = draft_with_text()
    with pytest.raises(WorkflowError, match="empty"):
        revision_save(draft=draft, user=editor, text="   ",
                      base_revision_id=draft.current_revision_id)
    assert draft.revisions.count() == 1


def test_people_without_a_role_cannot_edit(outsider):
    draft = draft_with_text()
    with pytest.raises(PermissionDenied):
        revision_save(draft=draft, user=outsider, text="x",
                      base_revision_id=draft.current_revision_id)


def test_choosing_a_candidate_starts_a_revision_from_its_text(editor):
    draft = draft_with_text("First candidate.")
    other = Candidate.objects.create(draft=draft, index=1, text="Second candidate.",
                                     model_version=ModelVersionFactory(name="factory-model"))
    revision = candidate_choose(draft=draft, candidate=other, user=editor,
                                base_revision_id=draft.current_revision_id)
    assert (revision.text, revision.candidate) == ("Second candidate.", other)


def test_editor_cannot_approve(editor):
    draft = in_review(editor)
    with pytest.raises(PermissionDenied):
        draft_approve(draft=draft, user=editor, revision_id=draft.current_revision_id)
    draft.refresh_from_db()
    assert draft.state == Draft.State.IN_REVIEW


def test_approval_is_pinned_to_the_revision_the_reviewer_saw(editor, reviewer):
    draft = in_review(editor, "Approved words.")
    seen = draft.current_revision_id
    draft_approve(draft=draft, user=reviewer, revision_id=seen)
    draft.refresh_from_db()
    assert draft.state == Draft.State.APPROVED
    assert draft.approved_revision_id == seen
    assert draft.approved_by == reviewer
    assert ReviewDecision.objects.get(draft=draft).revision_id == seen


def test_approving_a_revision_that_changed_meanwhile_is_refused(editor, reviewer):
    draft = in_review(editor)
    seen = draft.current_revision_id
    revision_save(draft=draft, user=editor, text="Changed during review.", base_revision_id=seen)
    draft.refresh_from_db()
    draft_submit(draft=draft, user=editor)
    with pytest.raises(StaleRevision):
        draft_approve(draft=draft, user=reviewer, revision_id=seen)
    draft.refresh_from_db()
    assert draft.state == Draft.State.IN_REVIEW
    assert draft.approved_revision is None


def test_edit_after_approval_needs_a_new_approval(editor, reviewer):
    draft = in_review(editor, "Approved words.")
    draft_approve(draft=draft, user=reviewer, revision_id=draft.current_revision_id)
    approved = draft.current_revision_id
    revision_save(draft=draft, user=editor, text="Later words.", base_revision_id=approved)
    draft.refresh_from_db()
    assert draft.state == Draft.State.IN_EDIT
    assert draft.approved_revision_id == approved  # still the pinned text, not the new one


def test_request_changes_needs_a_comment_and_returns_draft_to_editor(editor, reviewer):
    draft = in_review(editor)
    with pytest.raises(WorkflowError, match="comment"):
        draft_request_changes(draft=draft, user=reviewer, revision_id=draft.current_revision_id,
                              comment=" ")
    draft_request_changes(draft=draft, user=reviewer, revision_id=draft.current_revision_id,
                          comment="Mention the capacity.")
    draft.refresh_from_db()
    assert draft.state == Draft.State.CHANGES_REQUESTED
    assert draft.decisions.get().comment == "Mention the capacity."
    draft_claim(draft=draft, user=editor)
    draft.refresh_from_db()
    assert draft.state == Draft.State.IN_EDIT


def test_reject_records_decision(editor, reviewer):
    draft = in_review(editor)
    draft_reject(draft=draft, user=reviewer, revision_id=draft.current_revision_id,
                 comment="Off brand.")
    draft.refresh_from_db()
    assert draft.state == Draft.State.REJECTED


def test_only_drafts_in_review_can_be_approved(reviewer):
    draft = draft_with_text()
    with pytest.raises(WorkflowError, match="in review"):
        draft_approve(draft=draft, user=reviewer, revision_id=draft.current_revision_id)


def test_four_eyes_rule_stops_self_approval(reviewer, settings):
    settings.COPYDESK_FOUR_EYES = True
    draft = in_review(reviewer)
    with pytest.raises(WorkflowError, match="Four-eyes"):
        draft_approve(draft=draft, user=reviewer, revision_id=draft.current_revision_id)


def test_database_refuses_a_second_approval_of_one_revision(editor, reviewer):
    draft = in_review(editor)
    draft_approve(draft=draft, user=reviewer, revision_id=draft.current_revision_id)
    with pytest.raises(IntegrityError), transaction.atomic():
        ReviewDecision.objects.create(draft=draft, revision=draft.current_revision,
                                      reviewer=reviewer, decision="approve")


def test_database_refuses_approved_state_without_pinned_revision():
    draft = draft_with_text()
    with pytest.raises(IntegrityError), transaction.atomic():
        Draft.objects.filter(pk=draft.pk).update(state=Draft.State.APPROVED)


# --- Jobs ---------------------------------------------------------------------------------------

def request_job(editor, products, **params):
    version = ModelVersionFactory(name="job-model")
    return generation_job_request(products=products, kinds=["description", "title"],
                                  params={"candidates": 2, **params}, user=editor,
                                  model_version=version)


def test_job_request_creates_one_draft_and_item_per_product_and_kind(editor, settings):
    settings.COPYDESK_CHUNK_SIZE = 3
    products = ProductFactory.create_batch(4)
    job = request_job(editor, products)
    assert job.total == 8
    assert Draft.objects.filter(state=Draft.State.GENERATING).count() == 8
    assert sorted(set(JobItem.objects.values_list("chunk", flat=True))) == [0, 1, 2]
    again = request_job(editor, products)
    assert Draft.objects.count() == 8  # the same drafts get more candidates
    assert again.items.count() == 8


def test_job_request_with_bad_params_writes_nothing(editor):
    with pytest.raises(InvalidParams) as error:
        request_job(editor, ProductFactory.create_batch(1), temperature=0)
    assert error.value.field == "temperature"
    assert not GenerationJob.objects.exists()
    assert not Draft.objects.exists()


def test_job_request_with_unknown_kind_names_the_choices(editor):
    with pytest.raises(WorkflowError, match="Unknown content kind.*poem.*description"):
        generation_job_request(products=ProductFactory.create_batch(1), kinds=["poem"],
                               params={}, user=editor, model_version=ModelVersionFactory())


def outcomes_for(job, texts=("Kettle copy one.", "Kettle copy two.")):
    return [
        ItemOutcome(item_id=item.pk, messages=[{"role": "system", "content": "s"}],
                    texts=list(texts), completion_tokens=[5] * len(texts), prompt_tokens=40,
                    seconds=0.5, seed=1)
        for item in job.items.all()
    ]


def test_results_store_candidates_model_revision_and_progress(editor):
    job = request_job(editor, ProductFactory.create_batch(2))
    generation_results_store(job=job, outcomes=outcomes_for(job))
    job.refresh_from_db()
    assert (job.status, job.done, job.failed, job.tokens_generated) == (
        GenerationJob.Status.SUCCEEDED, 4, 0, 40)
    for draft in Draft.objects.all():
        assert draft.state == Draft.State.READY
        assert draft.candidates.count() == 2
        assert draft.current_revision.author is None
        assert draft.current_revision.candidate.rank == 0


def test_a_chunk_delivered_twice_adds_no_duplicate_candidates(editor):
    job = request_job(editor, ProductFactory.create_batch(2))
    outcomes = outcomes_for(job)
    generation_results_store(job=job, outcomes=outcomes)
    JobItem.objects.update(status=JobItem.Status.PENDING)  # as if the ack was lost
    generation_results_store(job=job, outcomes=outcomes)
    assert Candidate.objects.count() == 8
    assert Revision.objects.count() == 4


def test_failed_item_marks_draft_failed_with_the_error(editor):
    job = request_job(editor, ProductFactory.create_batch(1))
    failing = [ItemOutcome(item_id=i.pk, messages=[], texts=[], completion_tokens=[],
                           prompt_tokens=0, seconds=0, seed=1, error="CUDA out of memory")
               for i in job.items.all()]
    generation_results_store(job=job, outcomes=failing)
    job.refresh_from_db()
    assert job.status == GenerationJob.Status.FAILED
    assert set(Draft.objects.values_list("state", "error")) == {
        (Draft.State.FAILED, "CUDA out of memory")}


def test_cancelled_job_stops_and_marks_waiting_drafts(editor):
    job = request_job(editor, ProductFactory.create_batch(1))
    generation_job_cancel(job=job, user=editor)
    job.refresh_from_db()
    assert job.status == GenerationJob.Status.CANCELLED
    assert set(Draft.objects.values_list("state", flat=True)) == {Draft.State.FAILED}


def test_deleting_a_product_with_approved_and_exported_drafts_deletes_them_all(editor, reviewer):
    """Deleting used to blank the approved draft's pinned revision first, which the database's
    check constraint refused (an IntegrityError in the admin)."""
    draft = draft_with_text("A kettle made of stainless steel.")
    draft_submit(draft=draft, user=editor)
    draft_approve(draft=draft, user=reviewer, revision_id=draft.current_revision_id)
    Draft.objects.filter(pk=draft.pk).update(state=Draft.State.EXPORTED,
                                             exported_revision=draft.current_revision_id)
    draft.product.delete()
    assert not Draft.objects.filter(pk=draft.pk).exists()
    assert not Revision.objects.filter(draft_id=draft.pk).exists()


def test_a_revision_a_draft_points_at_cannot_be_deleted_alone(editor):
    from django.db.models import RestrictedError

    draft = draft_with_text("A kettle made of stainless steel.")
    with pytest.raises(RestrictedError):
        draft.current_revision.delete()
    assert Draft.objects.get(pk=draft.pk).current_revision_id is not None
