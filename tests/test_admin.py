import io

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from editorial import services
from editorial.exporters import copy_export
from editorial.models import (
    AuditEvent,
    Brand,
    Candidate,
    ContentKind,
    Draft,
    ExportBatch,
    GenerationJob,
    JobItem,
    ModelVersion,
    Product,
    ReviewDecision,
    Revision,
)
from tests.factories import BrandFactory, UserFactory, draft_with_text, kind

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
MODELS = [Brand, ContentKind, Product, ModelVersion, GenerationJob, JobItem, Draft, Candidate,
          Revision, ReviewDecision, ExportBatch, AuditEvent]


def changelist(model):
    return reverse(f"admin:editorial_{model._meta.model_name}_changelist")


def change(obj):
    return reverse(f"admin:editorial_{obj._meta.model_name}_change", args=[obj.pk])


def in_review(editor, text=f"Kettle {SCRIPT}", **kwargs):
    draft = draft_with_text(text, **kwargs)
    services.draft_submit(draft=draft, user=editor)
    draft.refresh_from_db()
    return draft


def hostile_world(editor, reviewer, n: int = 0):
    """One of everything, with markup in every piece of product data and model output."""
    brand = BrandFactory(name=f"Brand {n} {SCRIPT}", voice=SCRIPT, banned_terms=[SCRIPT])
    draft = in_review(
        editor, product__sku=f"SKU-{n}-{SCRIPT}", product__title=f"Title {SCRIPT}",
        product__brand=brand, product__attributes={"note": SCRIPT, "材料": "不锈钢"},
        product__raw={"columns": ["Title"], "rows": [[SCRIPT]]},
    )
    candidate = draft.candidates.get()
    candidate.flags = [{"code": SCRIPT, "severity": "warn", "message": SCRIPT}]
    candidate.params = {"note": SCRIPT}
    candidate.save()
    services.draft_approve(draft=draft, user=reviewer, revision_id=draft.current_revision_id,
                           comment=SCRIPT)
    copy_export(stream=io.StringIO(), fmt="csv", user=reviewer, destination=SCRIPT)
    job = GenerationJob.objects.create(model_version=candidate.model_version, requested_by=editor,
                                       kinds=["description"], params={"note": SCRIPT}, total=1,
                                       error=SCRIPT)
    JobItem.objects.create(job=job, draft=draft, error=SCRIPT)
    return draft


@pytest.fixture
def world(editor, reviewer):
    return hostile_world(editor, reviewer)


@pytest.fixture
def superuser_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_every_model_is_registered():
    for model in MODELS:
        assert admin.site.is_registered(model), model
    assert admin.site.site_header == "Copydesk admin"


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_changelist_and_change_page_load_and_escape_product_data(superuser_client, world, model):
    response = superuser_client.get(changelist(model))
    assert response.status_code == 200
    assert SCRIPT not in response.content.decode()

    obj = model.objects.first()
    assert obj is not None
    response = superuser_client.get(change(obj))
    assert response.status_code == 200
    content = response.content.decode()
    assert SCRIPT not in content
    if model not in {ContentKind, ModelVersion}:
        assert ESCAPED in content or "&lt;script&gt;" in content


def test_product_page_shows_attributes_pretty_printed(superuser_client, world):
    response = superuser_client.get(change(world.product))
    content = response.content.decode()
    assert "&quot;note&quot;: &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;" in content
    assert "不锈钢" in content  # not \\u-escaped
    assert "\n  &quot;note&quot;" in content  # indented, one key a line


def test_changelist_search_finds_sku_title_and_text(superuser_client, world):
    for term in ["SKU-0", "Title", "Kettle"]:
        response = superuser_client.get(changelist(Draft), {"q": term})
        assert response.status_code == 200
        assert response.context["cl"].result_count == 1, term


def test_changelists_do_not_query_per_row(superuser_client, editor, reviewer):
    hostile_world(editor, reviewer, 0)

    def queries():
        counts = {}
        for model in MODELS:
            with CaptureQueriesContext(connection) as ctx:
                response = superuser_client.get(changelist(model))
            assert response.status_code == 200
            counts[model.__name__] = len(ctx.captured_queries)
        return counts

    few = queries()
    for n in range(1, 4):
        hostile_world(editor, reviewer, n)
    assert queries() == few


def test_history_cannot_be_added_or_changed(superuser_client, world):
    for model in [Revision, Candidate, ReviewDecision, AuditEvent, ExportBatch, JobItem]:
        add = reverse(f"admin:editorial_{model._meta.model_name}_add")
        assert superuser_client.get(add).status_code == 403
        obj = model.objects.first()
        response = superuser_client.post(change(obj), {})
        assert response.status_code == 403, model
    world.refresh_from_db()
    revision = world.approved_revision
    assert Revision.objects.get(pk=revision.pk).text == revision.text
    # Drafts are view-only too: their state moves only through the services.
    assert superuser_client.post(change(world), {"state": "rejected"}).status_code == 403
    world.refresh_from_db()
    assert world.state == Draft.State.EXPORTED


def _act(client, action, drafts, **extra):
    return client.post(
        changelist(Draft),
        {"action": action, "_selected_action": [d.pk for d in drafts], **extra},
        follow=True,
    )


def _messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_approve_action_approves_drafts_in_review_and_reports_the_rest(
    superuser_client, editor
):
    ready = draft_with_text("Not submitted yet.")
    waiting = in_review(editor, "Please approve me.")

    response = _act(superuser_client, "approve_current_revision", [waiting, ready])

    assert response.status_code == 200
    messages = _messages(response)
    assert "1 draft approved." in messages
    assert any(str(ready) in m and "Only drafts in review" in m for m in messages)
    waiting.refresh_from_db()
    ready.refresh_from_db()
    assert waiting.state == Draft.State.APPROVED
    assert waiting.approved_revision_id == waiting.current_revision_id
    assert ReviewDecision.objects.get(draft=waiting).decision == "approve"
    assert ready.state == Draft.State.READY


def test_request_changes_asks_for_a_comment_first(superuser_client, editor):
    draft = in_review(editor)

    page = _act(superuser_client, "request_changes", [draft])
    assert page.status_code == 200
    assert 'name="comment"' in page.content.decode()
    assert SCRIPT not in page.content.decode()
    draft.refresh_from_db()
    assert draft.state == Draft.State.IN_REVIEW

    response = _act(superuser_client, "request_changes", [draft], post="yes",
                    comment="Mention the capacity.")

    assert "Changes requested on 1 draft." in _messages(response)
    draft.refresh_from_db()
    assert draft.state == Draft.State.CHANGES_REQUESTED
    assert ReviewDecision.objects.get(draft=draft).comment == "Mention the capacity."


def test_reject_action(superuser_client, editor):
    draft = in_review(editor)

    response = _act(superuser_client, "reject", [draft], post="yes", comment="Off brand.")

    assert "1 draft rejected." in _messages(response)
    draft.refresh_from_db()
    assert draft.state == Draft.State.REJECTED


def test_reviewer_on_staff_sees_drafts_and_can_approve(client, editor):
    reviewer = UserFactory(username="staff-reviewer", roles=["Reviewer"], is_staff=True)
    draft = in_review(editor, "Ready for review.")
    client.force_login(reviewer)

    assert client.get(changelist(Draft)).status_code == 200
    page = client.get(change(draft))
    assert page.status_code == 200
    assert "Ready for review." in page.content.decode()
    assert client.get(changelist(Revision)).status_code == 200
    # View-only elsewhere: no adding products.
    assert client.get(reverse("admin:editorial_product_add")).status_code == 403

    response = _act(client, "approve_current_revision", [draft])

    assert "1 draft approved." in _messages(response)
    draft.refresh_from_db()
    assert draft.state == Draft.State.APPROVED
    assert draft.approved_by == reviewer


def test_staff_without_the_reviewer_role_is_refused_by_the_service(client, editor):
    clerk = UserFactory(username="clerk", is_staff=True)
    clerk.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_draft", "change_draft"])
    )
    draft = in_review(editor)
    client.force_login(clerk)

    response = _act(client, "approve_current_revision", [draft])

    assert "Only reviewers can review drafts." in _messages(response)
    draft.refresh_from_db()
    assert draft.state == Draft.State.IN_REVIEW


def test_editor_without_staff_cannot_enter_admin(client, editor):
    client.force_login(editor)

    for url in [reverse("admin:index"), changelist(Draft)]:
        response = client.get(url)
        assert response.status_code == 302
        assert reverse("admin:login") in response["Location"]


def test_only_superusers_delete_history(client, world):
    staff_admin = UserFactory(username="staff-admin", roles=["Admin"], is_staff=True)
    client.force_login(staff_admin)
    event = AuditEvent.objects.first()
    delete = reverse("admin:editorial_auditevent_delete", args=[event.pk])
    assert client.get(delete).status_code == 403
    assert client.get(reverse("admin:editorial_draft_delete", args=[world.pk])).status_code == 403
    # Configuration stays editable for admins.
    assert client.get(change(kind("title"))).status_code == 200


def test_job_page_links_to_its_items(superuser_client, world):
    job = GenerationJob.objects.get()
    page = superuser_client.get(change(job)).content.decode()
    url = f"{changelist(JobItem)}?job__id__exact={job.pk}"
    assert f'href="{url}"' in page
    response = superuser_client.get(url)
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1


def test_cancel_job_action_calls_the_service(superuser_client, world):
    job = GenerationJob.objects.get()

    superuser_client.post(changelist(GenerationJob),
                          {"action": "cancel_jobs", "_selected_action": [job.pk]})

    job.refresh_from_db()
    assert job.status == GenerationJob.Status.CANCELLED
    assert AuditEvent.objects.filter(verb="job.cancel").exists()
