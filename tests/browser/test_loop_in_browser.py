"""The editorial loop as people do it: in Chromium, through the real pages and htmx."""

import pytest
from playwright.sync_api import expect

from editorial.models import Candidate, Draft
from tests.factories import ModelVersionFactory, UserFactory, draft_with_text

pytestmark = pytest.mark.django_db(transaction=True)

def test_editor_edits_and_submits_then_reviewer_approves(log_in, live_server, screenshot,
                                                          htmx_settled):
    UserFactory(username="edith", roles=["Editor"])
    UserFactory(username="rey", roles=["Reviewer"])
    draft = draft_with_text(
        "A kettle made of stainless steel.",
        product__sku="KET-1", product__title="Gooseneck kettle <b>0.9 L</b>",
    )
    Candidate.objects.create(draft=draft, index=1, rank=1, text="A calm, slow-pour kettle.",
                             model_version=ModelVersionFactory(name="factory-model"))

    page = log_in("edith")
    expect(page.get_by_role("link", name="KET-1").first).to_be_visible()
    screenshot(page, "01-queue")
    page.get_by_role("link", name="KET-1").first.click()
    expect(page.get_by_role("heading", name="Copy")).to_be_visible()
    # Product data is shown as text, never as markup.
    expect(page.get_by_text("Gooseneck kettle <b>0.9 L</b>").first).to_be_visible()

    page.get_by_role("button", name="Use this candidate").last.click()
    editor = page.get_by_label("Text")
    expect(editor).to_have_value("A calm, slow-pour kettle.")
    htmx_settled(page)  # the swapped-in editor's live-check trigger is listening

    # A warning the editor sees live; unlike an error flag it does not block the approval.
    edited = "A calm, slow-pour kettle in stainless steel for the perfect cup."
    editor.fill(edited)
    expect(page.locator("#live-checks")).to_contain_text("perfect")
    screenshot(page, "02-draft-live-checks")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved revision")).to_be_visible()
    page.get_by_role("button", name="Submit for review").click()
    expect(page.locator(".state").first).to_contain_text("In review")
    screenshot(page, "03-submitted")

    draft.refresh_from_db()
    assert draft.state == Draft.State.IN_REVIEW
    assert draft.current_revision.text == edited
    assert draft.current_revision.author.username == "edith"

    page = log_in("rey")
    page.goto(f"{live_server.url}/drafts/{draft.pk}/")
    expect(page.get_by_text(edited).first).to_be_visible()
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".state").first).to_contain_text("Approved")
    screenshot(page, "04-approved")

    draft.refresh_from_db()
    assert draft.state == Draft.State.APPROVED
    assert draft.approved_revision.text == edited
