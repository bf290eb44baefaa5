"""Two editors on one draft, in two browser contexts: each sees the other is there, both edit,
the first save wins, the second gets the conflict view with both texts and keeps their own."""

import re

import pytest
from playwright.sync_api import expect

from editorial.models import Draft
from tests.factories import UserFactory, draft_with_text

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "pw-Copydesk-1"


def open_draft(browser, live_server, username, draft):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{live_server.url}/accounts/login/?next=/drafts/{draft.pk}/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    # The page's first heartbeat (on load) records that this editor has the draft open.
    with page.expect_response(lambda r: r.url.endswith(f"/drafts/{draft.pk}/presence/")):
        page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Copy")).to_be_visible()
    return page


def test_second_save_gets_the_conflict_view_and_keeps_its_text(browser, live_server, screenshot):
    UserFactory(username="otto", roles=["Editor"])
    UserFactory(username="edith", roles=["Editor"])
    draft = draft_with_text("A kettle made of stainless steel.", product__sku="KET-2",
                            product__title="Kettle <i>1.7 L</i>")

    otto = open_draft(browser, live_server, "otto", draft)
    edith = open_draft(browser, live_server, "edith", draft)
    presence = edith.locator("#presence")
    expect(presence).to_contain_text(
        re.compile(r"otto is also editing this draft \(since \d\d:\d\d\)")
    )
    screenshot(edith, "conflict-01-someone-else-editing")

    otto.get_by_label("Text").fill("Otto's kettle: stainless steel, 1.7 L.")
    edith_text = "Edith's kettle, guaranteed to boil fast."
    edith.get_by_label("Text").fill(edith_text)
    # Edith's live checks highlight the flagged word where it is, and the diff follows her text.
    expect(edith.locator("#live-checks mark.flag-mark-error")).to_have_text("guaranteed")
    expect(edith.locator("#check-status")).to_contain_text("1 error")
    expect(edith.locator("#live-diff ins").first).to_be_visible()
    screenshot(edith, "conflict-02-both-editing")

    # Claiming would reload the workspace and drop her unsaved text: the page asks first.
    dialogs = []

    def dismiss(dialog):
        dialogs.append(dialog.message)
        dialog.dismiss()

    edith.once("dialog", dismiss)
    edith.get_by_role("button", name="Claim").click()
    expect(edith.get_by_label("Text")).to_have_value(edith_text)
    assert dialogs and "not saved" in dialogs[0]
    assert Draft.objects.get(pk=draft.pk).assignee_id is None

    otto.get_by_role("button", name="Save").click()
    expect(otto.get_by_text("Saved revision 2.")).to_be_visible()
    expect(otto.get_by_text("Saved revision 2.")).to_be_focused()

    edith.get_by_role("button", name="Save").click()
    conflict = edith.locator("section.conflict")
    expect(conflict).to_be_visible()
    expect(conflict).to_be_focused()
    expect(conflict.get_by_role("heading", name="Someone else saved while you were editing")
           ).to_be_visible()
    expect(conflict.locator(".their-text")).to_have_text("Otto's kettle: stainless steel, 1.7 L.")
    expect(conflict.locator(".your-text")).to_have_text(edith_text)
    expect(edith.get_by_label("Text")).to_have_value(edith_text)
    screenshot(edith, "conflict-03-conflict-view")

    # Nothing was lost: Otto's text is current, Edith's is kept as a revision of its own.
    draft.refresh_from_db()
    assert draft.current_revision.text == "Otto's kettle: stainless steel, 1.7 L."
    assert draft.revisions.filter(text=edith_text, author__username="edith").exists()

    # Edith merges and saves again, now on top of Otto's revision.
    merged = "Otto's kettle: stainless steel, 1.7 L, and it boils fast."
    edith.get_by_label("Text").fill(merged)
    edith.get_by_role("button", name="Save").click()
    expect(edith.get_by_text("Saved revision 4.")).to_be_visible()
    screenshot(edith, "conflict-04-merged")
    draft = Draft.objects.get(pk=draft.pk)
    assert draft.current_revision.text == merged
    assert draft.current_revision.parent.text == "Otto's kettle: stainless steel, 1.7 L."

    # The history compares any two revisions: Edith's kept text against the merged one.
    edith.get_by_label("From revision").select_option("3")
    edith.get_by_label("To revision").select_option("4")
    edith.get_by_role("button", name="Compare").click()
    result = edith.locator("#revision-diff")
    expect(result).to_contain_text("Revision 3 → revision 4")
    expect(result).to_be_focused()
    screenshot(edith, "conflict-05-history-diff")
