"""The web UI: every page behind login and roles, the editing and review workflow through the
views, conflict handling, htmx fragments, escaping of untrusted text and bounded queries."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from editorial import services
from editorial.models import Draft, ExportBatch, GenerationJob, JobItem, ReviewDecision
from tests.factories import (
    BrandFactory,
    DraftFactory,
    ModelVersionFactory,
    ProductFactory,
    UserFactory,
    draft_with_text,
    in_review,
    kind,
)
from tests.test_editor import hidden_value, textarea_text

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
XSS = "<script>alert(1)</script>"


@pytest.fixture
def job(editor):
    ModelVersionFactory(name="default-model", is_default=True)
    product = ProductFactory()
    return services.generation_job_request(
        products=[product], kinds=["description"], params={}, user=editor
    )


@pytest.fixture
def page_urls(job):
    draft = Draft.objects.get(job_items__job=job)
    return [
        reverse("home"),
        reverse("product_list"),
        reverse("product_detail", args=[draft.product.sku]),
        reverse("job_list"),
        reverse("job_detail", args=[job.pk]),
        reverse("draft_queue"),
        reverse("draft_detail", args=[draft.pk]),
        reverse("catalog_import"),
        reverse("copy_export"),
    ]


# --- Access ------------------------------------------------------------------------------------

def test_anonymous_users_are_sent_to_login_from_every_page(client, page_urls):
    for url in page_urls:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.url.startswith(reverse("login")), url


def test_anonymous_posts_are_sent_to_login_and_change_nothing(client):
    draft = draft_with_text("Model text.")
    response = client.post(reverse("draft_save", args=[draft.pk]),
                           {"text": "Sneaky", "base_revision_id": draft.current_revision_id})
    assert response.status_code == 302
    assert draft.revisions.count() == 1


def test_users_outside_the_copydesk_groups_get_403_everywhere(client, outsider, page_urls):
    client.force_login(outsider)
    for url in page_urls:
        assert client.get(url).status_code == 403, url
        assert client.get(url, **HTMX).status_code == 403, url


def test_login_page_renders_and_logs_in(client, editor):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b'name="password"' in response.content
    response = client.post(reverse("login"), {"username": "edith", "password": "pw-Copydesk-1"})
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 200


def test_logout_is_a_post_form_in_the_nav(client, editor):
    client.force_login(editor)
    html = client.get(reverse("home")).content.decode()
    assert f'action="{reverse("logout")}"' in html
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("home")).status_code == 302


def test_nav_shows_import_to_editors_and_export_to_reviewers(client, editor, reviewer):
    client.force_login(editor)
    html = client.get(reverse("home")).content.decode()
    assert reverse("catalog_import") in html and reverse("copy_export") not in html
    client.force_login(reviewer)
    html = client.get(reverse("home")).content.decode()
    assert reverse("copy_export") in html and reverse("catalog_import") not in html


def test_import_and_export_are_refused_without_the_role(client, editor, reviewer):
    client.force_login(reviewer)
    assert client.get(reverse("catalog_import")).status_code == 403
    client.force_login(editor)
    assert client.get(reverse("copy_export")).status_code == 403
    assert client.post(reverse("copy_export"), {"format": "csv"}).status_code == 403


def test_every_page_renders_for_an_admin(client, admin_user, page_urls):
    client.force_login(admin_user)
    for url in page_urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert b"<html" in response.content


# --- Editing -----------------------------------------------------------------------------------

def test_editor_saves_a_revision_through_the_view_and_sees_it(client, editor):
    draft = draft_with_text("Model text.")
    client.force_login(editor)
    response = client.post(
        reverse("draft_save", args=[draft.pk]),
        {"text": "A kettle, rewritten by Edith.", "base_revision_id": draft.current_revision_id},
    )
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.current_revision.text == "A kettle, rewritten by Edith."
    assert draft.current_revision.author == editor
    html = client.get(reverse("draft_detail", args=[draft.pk])).content.decode()
    assert textarea_text(html) == "A kettle, rewritten by Edith."
    assert hidden_value(html, "base_revision_id") == str(draft.current_revision_id)
    assert "Saved revision 2." in html


def test_htmx_save_returns_the_workspace_fragment(client, editor):
    draft = draft_with_text("Model text.")
    client.force_login(editor)
    response = client.post(
        reverse("draft_save", args=[draft.pk]),
        {"text": "Fragment save.", "base_revision_id": draft.current_revision_id}, **HTMX,
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert 'id="draft-workspace"' in html
    assert "Saved revision 2." in html
    assert textarea_text(html) == "Fragment save."


def test_stale_save_returns_409_with_both_texts_and_keeps_the_editors_text(client, editor):
    draft = draft_with_text("Model text.")
    loaded = draft.current_revision_id
    other = UserFactory(username="otto", roles=["Editor"])
    services.revision_save(draft=draft, user=other, text="Otto's text.", base_revision_id=loaded)
    theirs = Draft.objects.get(pk=draft.pk).current_revision

    client.force_login(editor)
    response = client.post(reverse("draft_save", args=[draft.pk]),
                           {"text": "Edith's text.", "base_revision_id": loaded})
    html = response.content.decode()
    assert response.status_code == 409
    assert "Otto&#x27;s text." in html
    assert textarea_text(html) == "Edith's text."
    assert hidden_value(html, "base_revision_id") == str(theirs.pk)
    # Nothing was lost: Edith's text is stored as a revision that is not current.
    assert draft.revisions.filter(text="Edith's text.", author=editor).exists()
    assert Draft.objects.get(pk=draft.pk).current_revision == theirs

    # Saving again from the conflict view (base = their revision) succeeds.
    response = client.post(reverse("draft_save", args=[draft.pk]),
                           {"text": "Merged text.", "base_revision_id": theirs.pk})
    assert response.status_code == 302
    assert Draft.objects.get(pk=draft.pk).current_revision.text == "Merged text."


def test_empty_save_shows_a_field_error(client, editor):
    draft = draft_with_text("Model text.")
    client.force_login(editor)
    response = client.post(reverse("draft_save", args=[draft.pk]),
                           {"text": "   ", "base_revision_id": draft.current_revision_id})
    assert response.status_code == 400
    assert "errorlist" in response.content.decode()
    assert draft.revisions.count() == 1


def test_choosing_another_candidate_makes_it_the_current_text(client, editor):
    draft = draft_with_text("First candidate.")
    second = draft.candidates.create(index=1, rank=1, text="Second candidate.",
                                     model_version=ModelVersionFactory(name="factory-model"))
    client.force_login(editor)
    response = client.post(
        reverse("candidate_choose", args=[draft.pk]),
        {"candidate_id": second.pk, "base_revision_id": draft.current_revision_id},
    )
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.current_revision.text == "Second candidate."
    assert draft.current_revision.candidate == second


def test_claim_and_submit_through_the_views(client, editor):
    draft = draft_with_text("Model text.")
    client.force_login(editor)
    assert client.post(reverse("draft_claim", args=[draft.pk])).status_code == 302
    draft.refresh_from_db()
    assert (draft.assignee, draft.state) == (editor, Draft.State.IN_EDIT)
    assert client.post(reverse("draft_submit", args=[draft.pk])).status_code == 302
    draft.refresh_from_db()
    assert draft.state == Draft.State.IN_REVIEW


def test_a_workflow_error_is_a_message_not_a_500(client, editor):
    draft = in_review(editor)
    client.force_login(editor)
    response = client.post(reverse("draft_submit", args=[draft.pk]))
    assert response.status_code == 409
    assert "cannot be submitted" in response.content.decode()


def test_writes_refuse_get(client, editor):
    draft = draft_with_text()
    client.force_login(editor)
    assert client.get(reverse("draft_save", args=[draft.pk])).status_code == 405
    assert client.get(reverse("draft_review", args=[draft.pk])).status_code == 405


def test_diff_against_the_model_candidate_is_shown(client, editor):
    draft = draft_with_text("A quick kettle.")
    services.revision_save(draft=draft, user=editor, text="A very quick kettle.",
                           base_revision_id=draft.current_revision_id)
    client.force_login(editor)
    html = client.get(reverse("draft_detail", args=[draft.pk])).content.decode()
    assert "<ins> very</ins>" in html


# --- Review ------------------------------------------------------------------------------------

def test_editor_cannot_approve(client, editor):
    draft = in_review(editor)
    client.force_login(editor)
    response = client.post(reverse("draft_review", args=[draft.pk]),
                           {"decision": "approve", "revision_id": draft.current_revision_id})
    assert response.status_code == 403
    draft.refresh_from_db()
    assert draft.state == Draft.State.IN_REVIEW
    # Nor request changes without a comment: permission comes before validation.
    response = client.post(
        reverse("draft_review", args=[draft.pk]),
        {"decision": "request_changes", "revision_id": draft.current_revision_id}, **HTMX,
    )
    assert response.status_code == 403
    assert 'id="draft-workspace"' not in response.content.decode()


def test_reviewer_approves_the_revision_they_saw(client, editor, reviewer):
    draft = in_review(editor)
    seen = draft.current_revision
    client.force_login(reviewer)
    html = client.get(reverse("draft_detail", args=[draft.pk])).content.decode()
    assert hidden_value(html, "revision_id") == str(seen.pk)
    response = client.post(reverse("draft_review", args=[draft.pk]),
                           {"decision": "approve", "revision_id": seen.pk})
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.state == Draft.State.APPROVED
    assert draft.approved_revision == seen
    assert draft.approved_by == reviewer


def test_request_changes_without_comment_shows_an_error_and_keeps_the_state(
    client, editor, reviewer
):
    draft = in_review(editor)
    client.force_login(reviewer)
    response = client.post(reverse("draft_review", args=[draft.pk]),
                           {"decision": "request_changes", "revision_id": draft.current_revision_id,
                            "comment": "  "})
    assert response.status_code == 400
    assert "a comment is required" in response.content.decode()
    draft.refresh_from_db()
    assert draft.state == Draft.State.IN_REVIEW
    assert not ReviewDecision.objects.filter(draft=draft).exists()


def test_request_changes_with_comment_is_listed_on_the_page(client, editor, reviewer):
    draft = in_review(editor)
    client.force_login(reviewer)
    response = client.post(reverse("draft_review", args=[draft.pk]),
                           {"decision": "request_changes", "revision_id": draft.current_revision_id,
                            "comment": "Mention the <b>capacity</b>."}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Mention the &lt;b&gt;capacity&lt;/b&gt;." in html
    draft.refresh_from_db()
    assert draft.state == Draft.State.CHANGES_REQUESTED


def test_approving_a_stale_revision_is_a_409_with_a_message(client, editor, reviewer):
    draft = in_review(editor)
    seen = draft.current_revision_id
    # The editor pulls it back and changes it while the reviewer is reading.
    services.revision_save(draft=draft, user=editor, text="Changed again.", base_revision_id=seen)
    services.draft_submit(draft=draft, user=editor)
    client.force_login(reviewer)
    response = client.post(reverse("draft_review", args=[draft.pk]),
                           {"decision": "approve", "revision_id": seen})
    assert response.status_code == 409
    assert "reload and review the new revision" in response.content.decode()
    draft.refresh_from_db()
    assert draft.state == Draft.State.IN_REVIEW


# --- Lists and query counts --------------------------------------------------------------------

def count_queries(client, url):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_product_list_uses_a_bounded_number_of_queries(
    client, editor, django_assert_max_num_queries
):
    client.force_login(editor)
    brand = BrandFactory()
    for product in ProductFactory.create_batch(5, brand=brand):
        DraftFactory(product=product)
    few = count_queries(client, reverse("product_list"))
    for product in ProductFactory.create_batch(55, brand=BrandFactory()):
        DraftFactory(product=product)
        DraftFactory(product=product, kind=kind("title"))
    many = count_queries(client, reverse("product_list"))
    assert few == many
    with django_assert_max_num_queries(few):
        client.get(reverse("product_list"))


def test_queue_uses_a_bounded_number_of_queries(client, editor, django_assert_max_num_queries):
    client.force_login(editor)
    for _ in range(5):
        DraftFactory(assignee=editor)
    few = count_queries(client, reverse("draft_queue"))
    for _ in range(55):
        DraftFactory(assignee=UserFactory())
    many = count_queries(client, reverse("draft_queue"))
    assert few == many
    with django_assert_max_num_queries(few):
        client.get(reverse("draft_queue") + "?state=ready")


def test_product_list_filters_and_counts_drafts(client, editor):
    kettle = ProductFactory(title="Blue kettle")
    ProductFactory(title="Red toaster")
    DraftFactory(product=kettle)
    DraftFactory(product=kettle, kind=kind("title"))
    client.force_login(editor)
    response = client.get(reverse("product_list"), {"q": "kettle"}, **HTMX)
    html = response.content.decode()
    assert "<html" not in html and 'id="product-results"' in html
    assert "Blue kettle" in html and "Red toaster" not in html
    assert re.search(r'class="num"><a [^>]*>2</a>', html)


def test_queue_filters_by_state_and_mine(client, editor):
    mine = DraftFactory(assignee=editor, state=Draft.State.IN_EDIT)
    other = DraftFactory(state=Draft.State.READY)
    client.force_login(editor)
    html = client.get(reverse("draft_queue"), {"assignee": "mine"}).content.decode()
    assert mine.product.sku in html and other.product.sku not in html
    html = client.get(reverse("draft_queue"), {"state": "ready"}, **HTMX).content.decode()
    assert "<html" not in html
    assert other.product.sku in html and mine.product.sku not in html


def test_queue_paginates(client, editor):
    for _ in range(51):
        DraftFactory()
    client.force_login(editor)
    html = client.get(reverse("draft_queue")).content.decode()
    assert "Page 1 of 2" in html
    html = client.get(reverse("draft_queue"), {"page": 2}).content.decode()
    assert "Page 2 of 2" in html


def test_dashboard_links_state_counts_into_the_queue(client, editor):
    DraftFactory(state=Draft.State.IN_REVIEW)
    client.force_login(editor)
    html = client.get(reverse("home")).content.decode()
    assert f'{reverse("draft_queue")}?state=in_review' in html


# --- Jobs --------------------------------------------------------------------------------------

def test_job_progress_fragment_polls_while_running(client, editor, job):
    client.force_login(editor)
    response = client.get(reverse("job_detail", args=[job.pk]), **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert 'id="job-progress"' in html
    assert 'hx-trigger="every 1s"' in html


def test_job_progress_fragment_stops_polling_when_finished(client, editor, job):
    GenerationJob.objects.filter(pk=job.pk).update(status=GenerationJob.Status.SUCCEEDED,
                                                   done=1)
    client.force_login(editor)
    response = client.get(reverse("job_detail", args=[job.pk]), **HTMX)
    html = response.content.decode()
    assert response.status_code == 286
    assert "<html" not in html
    assert "hx-trigger" not in html
    assert "1 done" in html


def test_job_page_shows_progress_and_drafts(client, editor, job):
    client.force_login(editor)
    html = client.get(reverse("job_detail", args=[job.pk])).content.decode()
    draft = Draft.objects.get(job_items__job=job)
    assert "<html" in html and 'hx-trigger="every 1s"' in html
    assert reverse("draft_detail", args=[draft.pk]) in html
    assert f'{reverse("draft_queue")}?job={job.pk}' in html


def test_cancel_a_job(client, editor, job):
    client.force_login(editor)
    response = client.post(reverse("job_cancel", args=[job.pk]), **HTMX)
    assert response.status_code == 286
    job.refresh_from_db()
    assert job.status == GenerationJob.Status.CANCELLED


def test_reviewers_cannot_cancel_jobs_they_cannot_start(client, outsider, job):
    client.force_login(outsider)
    assert client.post(reverse("job_cancel", args=[job.pk])).status_code == 403


# --- Generate ----------------------------------------------------------------------------------

def test_generate_for_selected_products_creates_a_job_and_redirects(client, editor):
    ModelVersionFactory(name="default-model", is_default=True)
    products = ProductFactory.create_batch(2)
    client.force_login(editor)
    response = client.post(reverse("generate"), {
        "scope": "selected", "products": [p.pk for p in products],
        "kinds": ["description", "title"], "temperature": "0.8", "candidates": "2",
        "best_of": "4",
    })
    job = GenerationJob.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("job_detail", args=[job.pk])
    assert job.total == 4
    assert (job.params["temperature"], job.params["best_of"]) == (0.8, 4)
    assert JobItem.objects.filter(job=job).count() == 4


def test_generate_for_all_matching_products_uses_the_filter(client, editor):
    ModelVersionFactory(name="default-model", is_default=True)
    ProductFactory.create_batch(3, category="kettles")
    ProductFactory(category="toasters")
    client.force_login(editor)
    response = client.post(reverse("generate") + "?category=kettles",
                           {"scope": "matching", "kinds": ["description"]})
    assert response.status_code == 302
    assert GenerationJob.objects.get().total == 3


def test_generate_with_temperature_zero_shows_the_field_error(client, editor):
    ModelVersionFactory(name="default-model", is_default=True)
    product = ProductFactory()
    client.force_login(editor)
    response = client.post(reverse("generate"), {
        "scope": "selected", "products": [product.pk], "kinds": ["description"],
        "temperature": "0",
    })
    html = response.content.decode()
    assert response.status_code == 400
    field = re.search(r'<div class="field">\s*<label for="id_temperature".*?</div>', html, re.S)
    assert field, "no temperature field"
    field = field.group(0)
    assert "must be &gt; 0 when sampling" in field
    assert not GenerationJob.objects.exists()
    # The selection is kept.
    assert re.search(rf'name="products" value="{product.pk}"[^>]*checked', html)


def test_generate_without_products_shows_a_form_error(client, editor):
    ModelVersionFactory(name="default-model", is_default=True)
    client.force_login(editor)
    response = client.post(reverse("generate"), {"scope": "selected", "kinds": ["description"]})
    assert response.status_code == 400
    assert "No products selected." in response.content.decode()


def test_generate_is_refused_to_outsiders(client, outsider):
    client.force_login(outsider)
    assert client.post(reverse("generate"), {"kinds": ["description"]}).status_code == 403


# --- Escaping ----------------------------------------------------------------------------------

def test_product_data_and_model_output_are_escaped_everywhere(client, editor):
    product = ProductFactory(title=f"Kettle {XSS}", attributes={XSS: XSS},
                             source_text=XSS)
    draft = draft_with_text(f"Candidate {XSS}", product=product)
    draft.candidates.update(flags=[{"code": "x", "severity": "warning", "message": XSS,
                                    "start": 0, "end": 1}])
    client.force_login(editor)
    for url in (reverse("product_detail", args=[product.sku]), reverse("product_list"),
                reverse("draft_queue"), reverse("draft_detail", args=[draft.pk])):
        html = client.get(url).content.decode()
        assert XSS not in html, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, url


# --- Import and export -------------------------------------------------------------------------

def test_import_shows_row_errors_with_line_numbers(client, editor):
    data = b"sku,title,colour\nK-1,Kettle,red\n,Missing SKU,blue\nK-3,,green\n"
    client.force_login(editor)
    response = client.post(reverse("catalog_import"), {
        "file": SimpleUploadedFile("catalog.csv", data, content_type="text/csv"),
        "format": "auto",
    })
    html = response.content.decode()
    assert response.status_code == 200
    assert "line 3:" in html and "line 4:" in html
    assert "Imported 1, updated 0, failed 2." in html


def test_import_of_an_unreadable_file_shows_the_message(client, editor):
    client.force_login(editor)
    response = client.post(reverse("catalog_import"), {
        "file": SimpleUploadedFile("catalog.csv", b"name,colour\nKettle,red\n"),
        "format": "csv",
    })
    assert response.status_code == 400
    assert "errorlist" in response.content.decode()


def test_export_downloads_approved_copy(client, editor, reviewer):
    draft = in_review(editor, text="Approved kettle copy.")
    services.draft_approve(draft=draft, user=reviewer, revision_id=draft.current_revision_id)
    client.force_login(reviewer)
    response = client.post(reverse("copy_export"), {"format": "csv", "bom": "on"})
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeffsku,")
    assert "Approved kettle copy." in body
    assert ExportBatch.objects.get().count == 1
    html = client.get(reverse("copy_export")).content.decode()
    assert "Recent exports" in html


def test_export_bom_with_jsonl_is_a_field_error(client, reviewer):
    client.force_login(reviewer)
    response = client.post(reverse("copy_export"), {"format": "jsonl", "bom": "on"})
    assert response.status_code == 400
    assert "only written for CSV" in response.content.decode()


def test_htmx_request_with_an_expired_session_redirects_the_whole_page(client):
    response = client.get(reverse("draft_queue"), {"state": "ready"}, **HTMX,
                          HTTP_HX_CURRENT_URL="http://testserver/drafts/?state=ready")
    assert response.status_code == 200
    assert response["HX-Redirect"].startswith(reverse("login") + "?next=")
    assert not response.content


# --- Live checks -------------------------------------------------------------------------------

def test_live_checks_return_flags_for_the_text_being_typed(client, editor):
    draft = draft_with_text("A kettle made of stainless steel.")
    client.force_login(editor)
    response = client.post(reverse("draft_check", args=[draft.pk]),
                           {"text": "Visit https://example.com <b>now</b>"}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and 'id="live-checks"' in html
    assert 'class="flag flag-' in html
    assert "<b>now</b>" not in html
    assert draft.revisions.count() == 1  # nothing saved


def test_live_checks_need_the_editor_role(client, outsider):
    draft = draft_with_text()
    client.force_login(outsider)
    response = client.post(reverse("draft_check", args=[draft.pk]), {"text": "x"}, **HTMX)
    assert response.status_code == 403


@pytest.mark.django_db
def test_the_training_link_is_in_the_header_for_admins_only(client, editor, admin_user):
    client.force_login(editor)
    assert 'href="/training/"' not in client.get("/").content.decode()
    client.force_login(admin_user)
    assert 'href="/training/"' in client.get("/").content.decode()
