"""A refused action says why, in the user's language: on a full page (the 403 page) and in the
page an htmx action came from (plain text that the page's error line shows)."""

from django.urls import reverse

from tests.factories import draft_with_text


def _review(client, draft, **headers):
    return client.post(reverse("draft_review", args=[draft.pk]),
                       {"decision": "approve", "revision_id": draft.current_revision_id},
                       **headers)


def test_a_refused_htmx_action_answers_its_reason_as_text(client, editor):
    draft = draft_with_text()
    client.force_login(editor)
    response = _review(client, draft, HTTP_HX_REQUEST="true")
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/plain")
    assert response.content.decode() == "Only reviewers can review drafts."


def test_the_reason_is_in_the_users_language(client, editor):
    draft = draft_with_text()
    client.force_login(editor)
    response = _review(client, draft, HTTP_HX_REQUEST="true", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.content.decode() == "只有审核员可以审核草稿。"


def test_a_full_page_request_gets_the_403_page_with_the_reason(client, editor):
    draft = draft_with_text()
    client.force_login(editor)
    response = _review(client, draft)
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "You cannot do that" in html and "Only reviewers can review drafts." in html


def test_a_member_only_page_says_why_it_refuses_an_outsider(client, outsider):
    client.force_login(outsider)
    html = client.get(reverse("draft_queue")).content.decode()
    assert "Your account is not in a Copydesk group yet" in html
