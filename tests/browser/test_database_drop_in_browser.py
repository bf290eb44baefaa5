"""The database connection dies in the middle of a save: the editor sees an error, keeps the
text in the editor, nothing half-written is stored, and saving again works."""

import pytest
from django.db import connection
from playwright.sync_api import expect

from editorial import services
from editorial.models import Revision
from tests.factories import UserFactory, draft_with_text

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_save_cut_off_by_a_dropped_connection_loses_nothing(log_in, screenshot, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("kills a PostgreSQL backend; CI's PostgreSQL pass runs this")
    UserFactory(username="edith", roles=["Editor"])
    draft = draft_with_text("A kettle made of stainless steel.")
    page = log_in("edith", f"/drafts/{draft.pk}/")
    editor = page.locator("[data-editor] textarea")
    expect(editor).to_be_visible()

    create = services.revisions.revision_create

    def create_then_lose_the_connection(**kwargs):
        revision = create(**kwargs)  # the row is written inside the open transaction...
        with connection.cursor() as cursor:  # ...then the server drops this connection
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return revision

    monkeypatch.setattr(services.revisions, "revision_create", create_then_lose_the_connection)
    typed = "A kettle of brushed steel, 1.7 L.\nSecond paragraph 第二段。"
    editor.fill(typed)
    page.locator("[data-editor] [data-shortcut=save]").click()
    expect(page.locator("#htmx-error")).to_be_visible()
    expect(page.locator("#htmx-error")).to_contain_text("Your text is still on this page")
    expect(editor).to_have_value(typed)
    screenshot(page, "fault-01-database-dropped-during-save")
    assert list(Revision.objects.filter(draft=draft).values_list("text", flat=True)) == [
        "A kettle made of stainless steel."]

    monkeypatch.setattr(services.revisions, "revision_create", create)
    page.locator("[data-editor] [data-shortcut=save]").click()
    expect(page.get_by_text("Saved revision 2.")).to_be_visible()
    assert Revision.objects.get(draft=draft, number=2).text == typed
