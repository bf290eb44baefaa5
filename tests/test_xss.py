"""Hostile text in every product field, in model output, in an editor's revision and in a
comment is shown as text on every page, in the admin and in the API: never as markup."""

import pytest
from django.urls import reverse

from editorial import services
from editorial.models import AuditEvent, Brand, Candidate, GenerationJob, Product, ReviewDecision
from tests.factories import ModelVersionFactory, draft_with_text

PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">click</a>',
    '<div hx-get="/admin/" hx-trigger="load">',
    "</textarea><script>alert(2)</script>",
    '"><svg onload=alert(3)>',
]
HOSTILE = " ".join(PAYLOADS)
# For fields of at most 200 characters (names, category).
SHORT = PAYLOADS[0] + PAYLOADS[1] + PAYLOADS[5]
# What must never appear in an HTML response: each payload's opening as live markup.
LIVE = ["<script>alert", "<img src=x", '<a href="javascript:', "<div hx-get=", "<svg onload"]


@pytest.fixture
def hostile(db, admin_user):
    brand = Brand.objects.create(name=f"Brand {SHORT}", voice=HOSTILE, audience=HOSTILE,
                                 banned_terms=[HOSTILE], required_terms=[HOSTILE])
    draft = draft_with_text(
        f"Revision {HOSTILE}",
        product__sku="XSS-1", product__title=f"Title {HOSTILE}", product__brand=brand,
        product__category=f"Category {SHORT}", product__source_text=f"Source {HOSTILE}",
        product__attributes={f"key {HOSTILE}": f"value {HOSTILE}"},
    )
    model_version = ModelVersionFactory(name=f"model {SHORT}")
    Candidate.objects.create(draft=draft, index=1, rank=1, model_version=model_version,
                             text=f"Candidate {HOSTILE}",
                             flags=[{"code": "x", "severity": "error", "message": HOSTILE,
                                     "start": 0, "end": 5}])
    services.comment_add(draft=draft, user=admin_user, text=f"Comment {HOSTILE}")
    services.draft_submit(draft=draft, user=admin_user)
    draft.refresh_from_db()
    services.draft_request_changes(draft=draft, user=admin_user,
                                   revision_id=draft.current_revision_id,
                                   comment=f"Review {HOSTILE}")
    job = GenerationJob.objects.create(model_version=model_version, requested_by=admin_user,
                                       error=HOSTILE)
    return {"draft": draft, "job": job, "product": Product.objects.get(sku="XSS-1"),
            "brand": brand}


def assert_inert(response, where):
    assert response.status_code == 200, f"{where}: HTTP {response.status_code}"
    body = response.content.decode()
    live = [marker for marker in LIVE if marker in body]
    assert not live, f"{where}: live markup {live}"


def test_every_page_shows_hostile_text_as_text(client, admin_user, hostile):
    client.force_login(admin_user)
    draft, job = hostile["draft"], hostile["job"]
    pages = {
        "dashboard": reverse("home"),
        "products": reverse("product_list"),
        "product": reverse("product_detail", args=["XSS-1"]),
        "queue": reverse("draft_queue"),
        "queue search": reverse("draft_queue") + "?q=%3Cscript%3E",
        "draft": reverse("draft_detail", args=[draft.pk]),
        "jobs": reverse("job_list"),
        "job": reverse("job_detail", args=[job.pk]),
        "export": reverse("copy_export"),
    }
    for where, url in pages.items():
        assert_inert(client.get(url), where)
    # The live check echoes the editor's text back into the page.
    check = client.post(reverse("draft_check", args=[draft.pk]), {"text": HOSTILE},
                        HTTP_HX_REQUEST="true")
    assert_inert(check, "live check")


def test_the_admin_shows_hostile_text_as_text(client, admin_user, hostile):
    client.force_login(admin_user)
    draft = hostile["draft"]
    objects = {
        "brand": hostile["brand"], "product": hostile["product"], "draft": draft,
        "candidate": draft.candidates.filter(text__startswith="Candidate").get(),
        "revision": draft.current_revision,
        "reviewdecision": ReviewDecision.objects.get(draft=draft),
        "draftcomment": draft.comments.get(), "generationjob": hostile["job"],
    }
    for name, obj in objects.items():
        assert_inert(client.get(reverse(f"admin:editorial_{name}_changelist")),
                     f"admin {name} list")
        assert_inert(client.get(reverse(f"admin:editorial_{name}_change", args=[obj.pk])),
                     f"admin {name} page")
    assert_inert(client.get(reverse("admin:editorial_auditevent_changelist")), "admin audit")
    assert AuditEvent.objects.exists()


def test_the_api_returns_hostile_text_as_json_strings(client, admin_user, hostile):
    client.force_login(admin_user)
    draft = hostile["draft"]
    product = client.get(f"/api/v1/products/{hostile['product'].sku}/")
    detail = client.get(f"/api/v1/drafts/{draft.pk}/")
    for response in (product, detail):
        assert response.status_code == 200
        assert response["Content-Type"].startswith("application/json")
        assert response["X-Content-Type-Options"] == "nosniff"
    # The text comes back exactly as stored: escaping is the HTML renderer's job, not the API's.
    assert product.json()["title"] == f"Title {HOSTILE}"
    assert f"Candidate {HOSTILE}" in [c["text"] for c in detail.json()["candidates"]]
