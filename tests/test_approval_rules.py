"""The rules of an approval hold on every path to it — draft page, queue, Django admin, API:
only the revision the reviewer saw, never one with a blocking flag, and with the four-eyes rule
nobody approves text they wrote or changed since the last approval."""

import re

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from rest_framework.test import APIClient

from editorial import services
from editorial.models import Draft, ReviewDecision
from tests.factories import UserFactory
from tests.factories import in_review as submitted

State = Draft.State
WITH_EMAIL = "A sturdy kettle. Questions? Write to sales@example.com today."
CLEAN = "A sturdy kettle of stainless steel."


def in_review(editor, text=CLEAN, **kwargs) -> Draft:
    return submitted(editor, text, **kwargs)


def edit_and_resubmit(draft: Draft, user, text: str) -> Draft:
    draft = Draft.objects.get(pk=draft.pk)
    if draft.state == State.IN_REVIEW:
        services.draft_request_changes(draft=draft, user=UserFactory(
            username="other-reviewer", roles=["Reviewer"]),
            revision_id=draft.current_revision_id, comment="Again, please.")
    services.revision_save(draft=draft, user=user, text=text,
                           base_revision_id=Draft.objects.get(pk=draft.pk).current_revision_id)
    services.draft_submit(draft=Draft.objects.get(pk=draft.pk), user=user)
    return Draft.objects.get(pk=draft.pk)


def admin_act(client, action, drafts, **extra):
    return client.post(reverse("admin:editorial_draft_changelist"),
                       {"action": action, "_selected_action": [d.pk for d in drafts], **extra},
                       follow=True)


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


# --- Only the revision the reviewer saw ----------------------------------------------------------

def test_admin_approval_shows_the_text_and_refuses_one_saved_after_that_page(
    client, editor, admin_user
):
    draft = in_review(editor, "The text the admin read.")
    client.force_login(admin_user)
    page = admin_act(client, "approve_current_revision", [draft]).content.decode()
    assert "The text the admin read." in page  # the confirmation page shows what is decided
    seen = re.findall(r'name="seen" value="([\d:]+)"', page)
    assert seen == [f"{draft.pk}:{draft.current_revision_id}"]

    edit_and_resubmit(draft, editor, "Totally different text, never reviewed.")
    response = admin_act(client, "approve_current_revision", [draft], post="yes", seen=seen)

    assert any("reload and review the new revision" in m for m in messages_of(response))
    draft.refresh_from_db()
    assert draft.state == State.IN_REVIEW and draft.approved_revision is None
    assert not ReviewDecision.objects.filter(decision="approve").exists()


def test_admin_approval_posted_without_the_confirmation_page_approves_nothing(
    client, editor, admin_user
):
    draft = in_review(editor)
    client.force_login(admin_user)
    response = admin_act(client, "approve_current_revision", [draft], post="yes")
    assert any("not on the confirmation page" in m for m in messages_of(response))
    draft.refresh_from_db()
    assert draft.state == State.IN_REVIEW


# --- Blocking flags, for every caller ------------------------------------------------------------

def test_the_approve_service_refuses_a_blocking_flag_and_names_it(editor, reviewer):
    draft = in_review(editor, WITH_EMAIL)
    with pytest.raises(services.BlockingFlags, match="e-mail|email") as refused:
        services.draft_approve(draft=draft, user=reviewer,
                               revision_id=draft.current_revision_id)
    assert refused.value.flags and all(f["severity"] == "error" for f in refused.value.flags)
    draft.refresh_from_db()
    assert draft.state == State.IN_REVIEW


def test_admin_action_does_not_approve_a_text_with_an_email_address(client, editor, admin_user):
    draft = in_review(editor, WITH_EMAIL)
    client.force_login(admin_user)
    page = admin_act(client, "approve_current_revision", [draft]).content.decode()
    seen = re.findall(r'name="seen" value="([\d:]+)"', page)
    response = admin_act(client, "approve_current_revision", [draft], post="yes", seen=seen)
    refusal = [m for m in messages_of(response) if str(draft) in m]
    assert refusal and "Blocking flags:" in refusal[0]
    assert re.search(r"e-?mail", refusal[0], re.I)
    draft.refresh_from_db()
    assert draft.state == State.IN_REVIEW


def test_api_approval_of_a_text_with_an_email_address_is_a_409_listing_the_flag(
    editor, reviewer
):
    draft = in_review(editor, WITH_EMAIL)
    response = api(reviewer).post(reverse("api_draft_approve", args=[draft.pk]),
                                  {"revision": draft.current_revision_id}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "blocking_flags"
    assert body["flags"] and body["flags"][0]["severity"] == "error"
    assert any(re.search(r"e-?mail", f["message"], re.I) for f in body["flags"])
    draft.refresh_from_db()
    assert draft.state == State.IN_REVIEW


def test_draft_page_approval_of_a_blocked_text_is_refused_with_the_flag(
    client, editor, reviewer
):
    draft = in_review(editor, WITH_EMAIL)
    client.force_login(reviewer)
    response = client.post(reverse("draft_review", args=[draft.pk]),
                           {"decision": "approve", "revision_id": draft.current_revision_id},
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 409
    assert "Blocking flags:" in response.content.decode()
    draft.refresh_from_db()
    assert draft.state == State.IN_REVIEW


def test_a_blocked_text_can_still_be_sent_back_or_rejected(editor, reviewer):
    draft = in_review(editor, WITH_EMAIL)
    services.draft_request_changes(draft=draft, user=reviewer,
                                   revision_id=draft.current_revision_id,
                                   comment="Take the address out.")
    draft.refresh_from_db()
    assert draft.state == State.CHANGES_REQUESTED


# --- Four-eyes -----------------------------------------------------------------------------------

@pytest.fixture
def four_eyes(settings):
    settings.COPYDESK_FOUR_EYES = True


def test_a_colleagues_one_character_edit_does_not_make_a_reviewers_text_someone_elses(
    four_eyes, editor, reviewer
):
    draft = in_review(reviewer, "A sturdy kettle of stainless steel, written by the reviewer")
    draft = edit_and_resubmit(draft, editor,
                              "A sturdy kettle of stainless steel, written by the reviewer.")
    assert draft.current_revision.author == editor
    with pytest.raises(services.WorkflowError, match="Four-eyes"):
        services.draft_approve(draft=draft, user=reviewer,
                               revision_id=draft.current_revision_id)
    draft.refresh_from_db()
    assert draft.state == State.IN_REVIEW

    colleague = UserFactory(username="colleague", roles=["Reviewer"])
    services.draft_approve(draft=draft, user=colleague, revision_id=draft.current_revision_id)
    draft.refresh_from_db()
    assert draft.state == State.APPROVED


def test_text_a_reviewer_wrote_before_the_last_approval_no_longer_stops_them(
    four_eyes, editor, reviewer
):
    """Once someone else approved it, the reviewer's old text has had its second pair of eyes;
    a later edit by an editor is theirs to review."""
    draft = in_review(reviewer, "Written by the reviewer.")
    colleague = UserFactory(username="colleague", roles=["Reviewer"])
    services.draft_approve(draft=draft, user=colleague, revision_id=draft.current_revision_id)
    draft = edit_and_resubmit(draft, editor, "Written by the reviewer, then the editor.")
    services.draft_approve(draft=draft, user=reviewer, revision_id=draft.current_revision_id)
    draft.refresh_from_db()
    assert draft.state == State.APPROVED and draft.approved_by == reviewer


def test_four_eyes_holds_in_the_queue_and_the_admin(four_eyes, client, editor, admin_user):
    draft = in_review(admin_user, "Written by the admin")
    draft = edit_and_resubmit(draft, editor, "Written by the admin.")
    client.force_login(admin_user)
    page = admin_act(client, "approve_current_revision", [draft]).content.decode()
    seen = re.findall(r'name="seen" value="([\d:]+)"', page)
    response = admin_act(client, "approve_current_revision", [draft], post="yes", seen=seen)
    assert any("Four-eyes" in m for m in messages_of(response))

    result = services.draft_bulk_approve(drafts=[draft], user=admin_user,
                                         seen={draft.pk: draft.current_revision_id})
    assert result.done == [] and "Four-eyes" in result.skipped[0][1]
    draft.refresh_from_db()
    assert draft.state == State.IN_REVIEW


def test_without_four_eyes_a_reviewer_may_approve_their_own_text(editor, reviewer, settings):
    settings.COPYDESK_FOUR_EYES = False
    draft = in_review(reviewer)
    services.draft_approve(draft=draft, user=reviewer, revision_id=draft.current_revision_id)
    draft.refresh_from_db()
    assert draft.state == State.APPROVED
