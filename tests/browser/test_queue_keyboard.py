"""The keyboard shortcuts in Chromium: j/k move the selection, x ticks, Enter opens, / searches,
? shows the help (Esc closes it), e edits and Ctrl+S saves; they keep working after htmx swaps the
results and stay quiet while someone types in a field."""

import re

import pytest
from playwright.sync_api import expect

from editorial.models import Draft
from tests.factories import DraftFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

def test_queue_keyboard_shortcuts(log_in, live_server, screenshot):
    UserFactory(username="edith", roles=["Editor"])
    drafts = [DraftFactory(product__sku=f"KEY-{n}", product__title=f"Kettle {n}",
                           state=Draft.State.READY) for n in (1, 2, 3)]
    page = log_in("edith")
    expect(page.get_by_role("heading", name="Queue")).to_be_visible()
    rows = page.locator("[data-queue-row]")
    expect(rows).to_have_count(3)

    def row_link(sku):
        return page.locator("[data-row-link]", has_text=sku)

    selected = page.locator("[data-queue-row].is-selected")
    page.keyboard.press("j")
    expect(row_link("KEY-1")).to_be_focused()
    expect(selected).to_have_attribute("data-draft-id", str(drafts[0].pk))
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("j")  # stays on the last row
    expect(row_link("KEY-3")).to_be_focused()
    page.keyboard.press("k")
    expect(row_link("KEY-2")).to_be_focused()
    expect(selected).to_have_count(1)

    # x ticks the selected row's box (and again unticks it).
    box = page.get_by_role("checkbox", name="Select KEY-2 · Description")
    page.keyboard.press("x")
    expect(box).to_be_checked()
    page.keyboard.press("x")
    expect(box).not_to_be_checked()

    # / goes to the search box.
    page.keyboard.press("/")
    expect(page.get_by_label("Search")).to_be_focused()
    page.get_by_role("heading", name="Queue").click()

    # ? opens the help as a modal dialog; Esc closes it.
    page.keyboard.press("?")
    help_dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(help_dialog).to_be_visible()
    screenshot(page, "queue-01-shortcuts-help")
    page.keyboard.press("Escape")
    expect(help_dialog).to_be_hidden()

    # Typing in the search box types; j does not move the selection. htmx swaps the results.
    search = page.get_by_label("Search")
    search.click()
    search.press_sequentially("kEY-3j")
    expect(search).to_have_value("kEY-3j")
    search.fill("KEY-3")
    expect(rows).to_have_count(1)
    expect(page).to_have_url(re.compile(r"q=KEY-3"))
    # After the swap the keys work on the new rows.
    page.get_by_role("heading", name="Queue").click()
    page.keyboard.press("j")
    expect(row_link("KEY-3")).to_be_focused()
    screenshot(page, "queue-02-selected-after-swap")

    # Enter opens the selected draft, also when the focus is not on its link.
    page.get_by_role("heading", name="Queue").click()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/drafts/{drafts[2].pk}/$"))

    # The draft page does not include the help: ? fetches it.
    page.locator("h1").first.click()
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_hidden()
    # e goes to the editor; typing there is typing, not shortcuts.
    page.keyboard.press("e")
    editor = page.locator('[data-shortcut="edit"], form[data-editor] textarea').first
    expect(editor).to_be_focused()
    page.keyboard.type("jk")
    expect(editor).to_have_value(re.compile(r"jk$"))
    # Ctrl+S saves while typing in the editor; the notice takes the focus.
    page.keyboard.press("Control+s")
    saved = page.get_by_role("status").filter(has_text="Saved revision")
    expect(saved).to_be_visible()
    expect(saved).to_be_focused()
    page.context.close()


def test_reviewer_ticks_drafts_and_approves_them_with_a(log_in, live_server, screenshot):
    from editorial import services
    from tests.factories import draft_with_text

    editor = UserFactory(username="edith", roles=["Editor"])
    UserFactory(username="rey", roles=["Reviewer"])
    texts = {"REV-1": "A sturdy kettle of stainless steel.",
             "REV-2": "A sturdy kettle of stainless steel, guaranteed to please."}
    drafts = {}
    for sku, text in texts.items():
        draft = draft_with_text("Model text.", product__sku=sku)
        services.revision_save(draft=draft, user=editor, text=text,
                               base_revision_id=draft.current_revision_id)
        services.draft_submit(draft=draft, user=editor)
        drafts[sku] = draft

    page = log_in("rey")
    expect(page.locator("[data-queue-row]")).to_have_count(2)
    for _ in range(2):
        page.keyboard.press("j")
        page.keyboard.press("x")
    expect(page.locator("[data-row-check]:checked")).to_have_count(2)
    page.keyboard.press("a")
    status = page.get_by_role("status").filter(has_text="approved")
    expect(status).to_contain_text("1 draft approved, 1 skipped:")
    expect(status).to_contain_text("REV-2 · Description: Blocking flags:")
    expect(status).to_be_focused()
    screenshot(page, "queue-03-bulk-approve-report")
    states = {sku: Draft.objects.get(pk=d.pk).state for sku, d in drafts.items()}
    assert states == {"REV-1": Draft.State.APPROVED, "REV-2": Draft.State.IN_REVIEW}
    page.context.close()
