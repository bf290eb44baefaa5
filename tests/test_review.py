"""The review section of the draft page as reviewers use it: what the model wrote against what
the editor made of it, the flags, the decision pinned to the revision seen, and re-approval
after a later edit."""

import re
from html import unescape

import pytest
from django.urls import reverse

from editorial import services
from editorial.models import Draft, ReviewDecision
from tests.factories import BrandFactory, ProductFactory, draft_with_text
from tests.test_editor import busy_draft, count_queries, element, page

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def submitted(editor, model_text="A quick kettle.", edited="A very quick kettle.", **kwargs):
    draft = draft_with_text(model_text, **kwargs)
    services.revision_save(draft=draft, user=editor, text=edited,
                           base_revision_id=draft.current_revision_id)
    services.draft_submit(draft=draft, user=editor)
    draft.refresh_from_db()
    return draft


def review(client, draft, decision, comment="", **extra):
    return client.post(reverse("draft_review", args=[draft.pk]),
                       {"decision": decision, "revision_id": draft.current_revision_id,
                        "comment": comment}, **extra)


def test_reviewer_sees_the_model_candidate_to_final_text_diff_and_the_buttons(
    client, editor, reviewer
):
    draft = submitted(editor)
    client.force_login(reviewer)
    html = page(client, draft)
    panel = element(html, "review")
    assert "Review revision 2" in panel and "Saved by edith" in panel
    assert "Model candidate → this text" in panel
    assert '<p class="diff"><span>A</span><ins> very</ins><span> quick kettle.</span></p>' in panel
    assert re.search(r'<button type="submit" name="decision" value="approve" class="primary" '
                     r'data-shortcut="approve">Approve</button>', panel)
    assert 'value="request_changes"' in panel and 'value="reject"' in panel
    assert re.search(r'<textarea name="comment"[^>]*data-shortcut="request-changes"', panel)
    # The history and the discussion are on the same page.
    assert 'id="history"' in html and 'id="thread"' in html


def test_reviewer_sees_the_flags_and_how_many_block(client, editor, reviewer):
    brand = BrandFactory(name="Strict", banned_terms=["cheap"])
    draft = submitted(editor, "A kettle.", "A cheap kettle, guaranteed.",
                      product=ProductFactory(brand=brand))
    client.force_login(reviewer)
    html = page(client, draft)
    assert "2 blocking flags: see the checks below." in element(html, "review")
    checks = element(html, "live-checks")
    assert re.search(r'<mark class="flag-mark flag-mark-error"[^>]*>cheap</mark>', checks)
    assert "banned_term" in checks


def test_editors_do_not_get_the_review_section(client, editor, reviewer):
    draft = submitted(editor)
    client.force_login(editor)
    assert 'id="review"' not in page(client, draft)
    client.force_login(reviewer)
    not_in_review = draft_with_text("Ready text.")
    assert 'id="review"' not in page(client, not_in_review)


@pytest.mark.parametrize("decision", ["request_changes", "reject"])
def test_request_changes_and_reject_need_a_comment_and_focus_it(client, editor, reviewer,
                                                                 decision):
    draft = submitted(editor)
    client.force_login(reviewer)
    response = review(client, draft, decision, "  ", **HTMX)
    html = response.content.decode()
    assert response.status_code == 400
    assert "a comment is required" in html
    assert re.search(r'<textarea name="comment"[^>]*data-focus', html)
    draft.refresh_from_db()
    assert draft.state == Draft.State.IN_REVIEW
    assert not ReviewDecision.objects.exists()


def test_request_changes_comment_appears_in_the_discussion(client, editor, reviewer):
    draft = submitted(editor)
    services.comment_add(draft=draft, user=editor, text="Ready when you are.")
    client.force_login(reviewer)
    response = review(client, draft, "request_changes", "Name the <b>capacity</b>.", **HTMX)
    assert response.status_code == 200
    thread = element(response.content.decode(), "thread")
    assert thread.index("Ready when you are.") < thread.index("Request changes")
    assert "Name the &lt;b&gt;capacity&lt;/b&gt;." in thread
    assert "revision 2 by rey" in thread
    client.force_login(editor)
    assert "Name the &lt;b&gt;capacity&lt;/b&gt;." in element(page(client, draft), "thread")


def test_an_edit_after_approval_needs_a_new_approval(client, editor, reviewer):
    draft = submitted(editor, edited="Approved kettle copy.")
    first = draft.current_revision
    client.force_login(reviewer)
    assert review(client, draft, "approve").status_code == 302
    draft.refresh_from_db()
    assert (draft.state, draft.approved_revision) == (Draft.State.APPROVED, first)

    # The editor changes the approved text: back to editing, the approval stays pinned.
    client.force_login(editor)
    response = client.post(reverse("draft_save", args=[draft.pk]),
                           {"text": "Approved kettle copy, now shorter.",
                            "base_revision_id": first.pk})
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.state == Draft.State.IN_EDIT
    assert draft.approved_revision == first and draft.current_revision != first
    html = page(client, draft)
    assert "Approved: revision 2" in html
    assert "changed since approval: needs a new approval" in html

    # The reviewer sees what changed since the approval and approves the new revision.
    services.draft_submit(draft=draft, user=editor)
    draft.refresh_from_db()
    client.force_login(reviewer)
    panel = element(page(client, draft), "review")
    assert "Changes since the approved revision 2" in panel
    assert "<ins>, now shorter</ins>" in panel
    assert unescape(re.search(r'name="revision_id" value="(\d+)"', panel).group(1)) == str(
        draft.current_revision_id)
    assert review(client, draft, "approve").status_code == 302
    draft.refresh_from_db()
    assert draft.state == Draft.State.APPROVED
    assert draft.approved_revision.text == "Approved kettle copy, now shorter."
    assert ReviewDecision.objects.filter(draft=draft, decision="approve").count() == 2


def test_approval_is_refused_when_the_text_changed_after_the_reviewer_loaded_it(
    client, editor, reviewer
):
    draft = submitted(editor)
    seen = draft.current_revision_id
    client.force_login(reviewer)
    page(client, draft)
    services.revision_save(draft=draft, user=editor, text="Changed under review.",
                           base_revision_id=seen)
    services.draft_submit(draft=draft, user=editor)
    response = client.post(reverse("draft_review", args=[draft.pk]),
                           {"decision": "approve", "revision_id": seen}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 409
    assert re.search(r'role="alert" tabindex="-1" data-focus>The text changed after you opened it',
                     html)
    draft.refresh_from_db()
    assert draft.approved_revision is None and draft.state == Draft.State.IN_REVIEW


def test_the_review_page_runs_the_same_queries_for_3_or_30_revisions(client, editor, reviewer):
    few, many = busy_draft(3, editor, reviewer), busy_draft(30, editor, reviewer)
    Draft.objects.filter(pk__in=[few.pk, many.pk]).update(state=Draft.State.IN_REVIEW)
    client.force_login(reviewer)
    count_queries(client, few)
    assert count_queries(client, few) == count_queries(client, many)
    assert 'id="review"' in page(client, many)
