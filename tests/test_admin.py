import io
import re

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.contrib.messages import get_messages
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from editorial import services
from editorial.exporters import copy_export
from editorial.models import (
    ApiToken,
    AuditEvent,
    Brand,
    Candidate,
    CatalogImport,
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
MODELS = [Brand, CatalogImport, ContentKind, Product, ModelVersion, GenerationJob, JobItem, Draft,
          Candidate, Revision, ReviewDecision, ExportBatch, AuditEvent]


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
    brand = BrandFactory(name=f"Brand {n} {SCRIPT}", voice=SCRIPT,
                         banned_terms=["<b>cheap</b>"])
    draft = in_review(
        editor, product__sku=f"SKU-{n}-{SCRIPT}", product__title=f"Title {SCRIPT}",
        product__brand=brand, product__attributes={"note": SCRIPT, "材料": "不锈钢"},
        product__raw={"columns": ["Title"], "rows": [[SCRIPT]]},
    )
    candidate = draft.candidates.get()
    candidate.flags = [{"code": SCRIPT, "severity": "warn", "message": SCRIPT}]
    candidate.params = {"note": SCRIPT}
    candidate.save()
    # Markup is a blocking flag now: the reviewer approves a plain edit of the model's text.
    services.draft_request_changes(draft=draft, user=reviewer, comment=SCRIPT,
                                   revision_id=draft.current_revision_id)
    services.revision_save(draft=draft, user=editor, text="Kettle.",
                           base_revision_id=draft.current_revision_id)
    services.draft_submit(draft=draft, user=editor)
    draft.refresh_from_db()
    services.draft_approve(draft=draft, user=reviewer, revision_id=draft.current_revision_id,
                           comment=SCRIPT)
    copy_export(stream=io.StringIO(), fmt="csv", user=reviewer, destination=SCRIPT)
    job = GenerationJob.objects.create(model_version=candidate.model_version, requested_by=editor,
                                       kinds=["description"], params={"note": SCRIPT}, total=1,
                                       error=SCRIPT)
    JobItem.objects.create(job=job, draft=draft, error=SCRIPT)
    Product.objects.filter(pk=draft.product_id).update(catalog_import=CatalogImport.objects.create(
        filename=f"{SCRIPT}.csv", format="csv", columns=["sku", SCRIPT], created_by=editor))
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


def _confirmed(client, action, drafts, **extra):
    """An action that first shows the drafts' texts: read that page, then confirm it, posting
    the revisions it showed (as the reviewer's browser does)."""
    page = _act(client, action, drafts)
    assert page.status_code == 200
    seen = re.findall(r'name="seen" value="([\d:]+)"', page.content.decode())
    return _act(client, action, drafts, post="yes", seen=seen, **extra)


def _messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_approve_action_approves_drafts_in_review_and_reports_the_rest(
    superuser_client, editor
):
    ready = draft_with_text("Not submitted yet.")
    waiting = in_review(editor, "Please approve me.")

    response = _confirmed(superuser_client, "approve_current_revision", [waiting, ready])

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

    response = _confirmed(superuser_client, "request_changes", [draft],
                          comment="Mention the capacity.")

    assert "Changes requested on 1 draft." in _messages(response)
    draft.refresh_from_db()
    assert draft.state == Draft.State.CHANGES_REQUESTED
    assert ReviewDecision.objects.get(draft=draft).comment == "Mention the capacity."


def test_reject_action(superuser_client, editor):
    draft = in_review(editor)

    response = _confirmed(superuser_client, "reject", [draft], comment="Off brand.")

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

    response = _confirmed(client, "approve_current_revision", [draft])

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

    response = _confirmed(client, "approve_current_revision", [draft])

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


def test_the_make_default_action_switches_the_default_model(superuser_client):
    old = ModelVersion.objects.create(name="smol", path="/m/smol", is_default=True)
    new = ModelVersion.objects.create(name="gemma", path="/m/gemma")
    failed = ModelVersion.objects.create(name="broken", path="/m/broken",
                                         status=ModelVersion.Status.FAILED)
    response = superuser_client.post(changelist(ModelVersion), {
        "action": "make_default", "_selected_action": [new.pk]}, follow=True)
    assert "New jobs now generate with gemma." in response.content.decode()
    assert list(ModelVersion.objects.filter(is_default=True)) == [new]
    assert AuditEvent.objects.filter(verb="model.default").count() == 1

    response = superuser_client.post(changelist(ModelVersion), {
        "action": "make_default", "_selected_action": [failed.pk]}, follow=True)
    assert "only a ready model can be the default" in response.content.decode()
    response = superuser_client.post(changelist(ModelVersion), {
        "action": "make_default", "_selected_action": [old.pk, new.pk]}, follow=True)
    assert "Select exactly one model version." in response.content.decode()
    assert list(ModelVersion.objects.filter(is_default=True)) == [new]
    # The change form shows the flag but cannot set it (two defaults would break the desk).
    page = superuser_client.get(reverse("admin:editorial_modelversion_change", args=[old.pk]))
    assert 'name="is_default"' not in page.content.decode()


# --- API tokens and accounts --------------------------------------------------------------------

def _token_actions(client):
    response = client.get(reverse("admin:editorial_apitoken_changelist"))
    assert response.status_code == 200
    form = response.context["action_form"]  # None when no action is offered
    return [] if form is None else [name for name, _label in form.fields["action"].choices]


def test_only_the_owner_and_admins_revoke_a_token(client, editor):
    token, _key = services.api_token_create(user=editor, name="Shop sync")
    staff_reviewer = UserFactory(username="staff-rey", roles=["Reviewer"], is_staff=True)
    client.force_login(staff_reviewer)

    assert "revoke_tokens" not in _token_actions(client)
    client.post(reverse("admin:editorial_apitoken_changelist"),
                {"action": "revoke_tokens", "_selected_action": [token.pk]})
    token.refresh_from_db()
    assert token.is_active
    with pytest.raises(PermissionDenied):
        services.api_token_revoke(token=token, user=staff_reviewer)
    token.refresh_from_db()
    assert token.is_active

    staff_admin = UserFactory(username="staff-admin", roles=["Admin"], is_staff=True)
    client.force_login(staff_admin)
    assert "revoke_tokens" in _token_actions(client)
    response = client.post(reverse("admin:editorial_apitoken_changelist"),
                           {"action": "revoke_tokens", "_selected_action": [token.pk]},
                           follow=True)
    assert "1 token was revoked." in _messages(response)
    token.refresh_from_db()
    assert not token.is_active
    event = AuditEvent.objects.get(verb="api_token.revoke")
    assert event.actor == staff_admin and event.data["owner"] == "edith"


def test_a_token_is_made_for_its_maker_unless_a_superuser_makes_it(client, admin_user, editor,
                                                                   reviewer):
    staff_admin = UserFactory(username="staff-admin", roles=["Admin"], is_staff=True)
    client.force_login(staff_admin)
    add = reverse("admin:editorial_apitoken_add")
    assert 'name="user"' not in client.get(add).content.decode()
    # A crafted form cannot name someone else: the token is the maker's own.
    assert client.post(add, {"user": reviewer.pk, "name": "As rey"}).status_code == 200
    assert ApiToken.objects.get(name="As rey").user == staff_admin
    with pytest.raises(PermissionDenied):
        services.api_token_create(user=staff_admin, owner=reviewer, name="As rey")
    assert not ApiToken.objects.filter(user=reviewer).exists()

    client.force_login(admin_user)
    assert 'name="user"' in client.get(add).content.decode()
    client.post(add, {"user": editor.pk, "name": "Warehouse"})
    assert ApiToken.objects.get(name="Warehouse").user == editor
    event = AuditEvent.objects.get(verb="api_token.create", data__name="Warehouse")
    assert event.actor == admin_user and event.data["owner"] == "edith"


def _user_change(user):
    return reverse("admin:auth_user_change", args=[user.pk])


GRANTS = ('name="is_superuser"', 'name="groups"', 'name="user_permissions"', 'name="is_staff"')


def test_admins_who_are_not_superusers_cannot_grant_roles_permissions_or_superuser(
        client, admin_user):
    staff_admin = UserFactory(username="staff-admin", roles=["Admin"], is_staff=True)
    client.force_login(staff_admin)
    page = client.get(_user_change(staff_admin)).content.decode()
    assert not [field for field in GRANTS if field in page]

    response = client.post(_user_change(staff_admin), {
        "username": "staff-admin", "email": "staff-admin@example.com", "is_active": "on",
        "is_staff": "on", "is_superuser": "on",
        "groups": [Group.objects.get(name="Admin").pk, Group.objects.get(name="Reviewer").pk],
        "user_permissions": [Permission.objects.get(codename="delete_user").pk],
    })
    assert response.status_code == 302
    staff_admin.refresh_from_db()
    assert not staff_admin.is_superuser
    assert list(staff_admin.groups.values_list("name", flat=True)) == ["Admin"]
    assert not staff_admin.user_permissions.exists()

    client.force_login(admin_user)
    page = client.get(_user_change(staff_admin)).content.decode()
    assert all(field in page for field in GRANTS)


def test_admins_who_are_not_superusers_cannot_take_over_other_accounts(client, admin_user):
    staff_admin = UserFactory(username="staff-admin", roles=["Admin"], is_staff=True)
    other_staff = UserFactory(username="staff-rey", roles=["Reviewer"], is_staff=True)
    member = UserFactory(username="rey", roles=["Reviewer"])
    client.force_login(staff_admin)

    for target in (admin_user, other_staff):
        assert client.post(_user_change(target), {"username": "mine", "is_active": "on"}
                           ).status_code == 403
    for target in (admin_user, other_staff, member):
        url = reverse("admin:auth_user_password_change", args=[target.pk])
        assert client.get(url).status_code == 403
        assert client.post(url, {"password1": "taken-Over-9", "password2": "taken-Over-9"}
                           ).status_code == 403
        target.refresh_from_db()
        assert target.check_password("pw-Copydesk-1")
    own = reverse("admin:auth_user_password_change", args=[staff_admin.pk])
    assert client.get(own).status_code == 200
    # Plain accounts stay manageable: deactivating one who left.
    assert client.post(_user_change(member), {"username": "rey", "email": "rey@example.com"}
                       ).status_code == 302
    member.refresh_from_db()
    assert not member.is_active
