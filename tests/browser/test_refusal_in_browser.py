"""An editor whose role is taken away while the draft is open: saving is refused, the page says
why in its error line, and the text they typed stays in the editor."""

import pytest
from playwright.sync_api import expect

from tests.browser.test_conflict_flow import open_draft
from tests.factories import UserFactory, draft_with_text

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_refused_save_says_why_and_keeps_the_text(browser, live_server, screenshot):
    editor = UserFactory(username="edith", roles=["Editor"])
    draft = draft_with_text("A kettle made of stainless steel.", product__sku="KET-3")
    page = open_draft(browser, live_server, "edith", draft)

    editor.groups.clear()
    typed = "A kettle of stainless steel that boils 1.7 L."
    page.get_by_label("Text").fill(typed)
    page.get_by_role("button", name="Save", exact=True).click()

    error = page.locator("#htmx-error")
    expect(error).to_have_text(
        "Your account is not in a Copydesk group yet; ask an administrator to add you.")
    expect(page.get_by_label("Text")).to_have_value(typed)
    screenshot(page, "refusal-01-save-refused")
