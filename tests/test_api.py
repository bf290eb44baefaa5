"""The REST API as a shop or a script uses it: tokens, the UI's permissions for every endpoint
and role, bulk product upsert with per-item errors, generation jobs (rate-limited), drafts with
optimistic locking (409), and the approved-copy feed whose cursor sees every approval once."""

import re
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.core.cache import cache
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from editorial import services
from editorial.models import (
    ApiToken,
    AuditEvent,
    CopyFeedEntry,
    Draft,
    GenerationJob,
    Product,
    Revision,
)
from tests.factories import (
    BrandFactory,
    ModelVersionFactory,
    ProductFactory,
    draft_with_text,
    in_review,
)

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "outsider", "editor", "reviewer", "admin_user"]


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    cache.clear()
    yield
    cache.clear()


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        _token, key = services.api_token_create(user=user, name="tests")
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def as_role(request, db):
    """An API client with a token of the role's user (none for anonymous)."""

    def make(role: str) -> APIClient:
        user = None if role == "anonymous" else request.getfixturevalue(role)
        return client_for(user)

    return make


def approved(editor, reviewer, text="Approved copy.", **kwargs) -> Draft:
    draft = in_review(editor, text=text, **kwargs)
    services.draft_approve(draft=draft, user=reviewer, revision_id=draft.current_revision_id)
    draft.refresh_from_db()
    return draft


@pytest.fixture
def world(editor):
    ModelVersionFactory(name="default-model", is_default=True)
    product = ProductFactory(sku="KETTLE-1")
    job = services.generation_job_request(products=[product], kinds=["title"], params={},
                                          user=editor)
    draft = in_review(editor)
    return {"product": product, "job": job, "draft": draft}


# --- Every endpoint × role ----------------------------------------------------------------------

def _calls(world):
    draft, job, product = world["draft"], world["job"], world["product"]
    revision = draft.current_revision_id
    return {
        "products.list": ("get", reverse("api_product_list"), None),
        "products.detail": ("get", reverse("api_product_detail", args=[product.sku]), None),
        "products.upsert": ("post", reverse("api_product_list"),
                            [{"sku": "NEW-1", "title": "A new teapot"}]),
        "jobs.list": ("get", reverse("api_job_list"), None),
        "jobs.create": ("post", reverse("api_job_list"),
                        {"skus": [product.sku], "kinds": ["description"]}),
        "jobs.detail": ("get", reverse("api_job_detail", args=[job.pk]), None),
        "jobs.cancel": ("post", reverse("api_job_cancel", args=[job.pk]), None),
        "drafts.list": ("get", reverse("api_draft_list"), None),
        "drafts.detail": ("get", reverse("api_draft_detail", args=[draft.pk]), None),
        "drafts.revise": ("post", reverse("api_draft_revisions", args=[draft.pk]),
                          {"text": "Changed through the API.", "base_revision": revision}),
        "drafts.approve": ("post", reverse("api_draft_approve", args=[draft.pk]),
                           {"revision": revision}),
        "copy.feed": ("get", reverse("api_copy_feed"), None),
    }


# What each member role gets (editor, reviewer, admin); anonymous is always 401 and outsiders 403.
# Every member reads everything, and editors and reviewers both write copy; the exceptions are
# who imports products (not reviewers) and who approves (not editors).
EVERYONE = (200, 200, 200)
EXPECTED = {
    **dict.fromkeys(("products.list", "products.detail", "jobs.list", "jobs.detail",
                     "jobs.cancel", "drafts.list", "drafts.detail", "copy.feed"), EVERYONE),
    "jobs.create": (202, 202, 202),
    "drafts.revise": (201, 201, 201),
    "products.upsert": (200, 403, 200),
    "drafts.approve": (403, 200, 200),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", sorted(EXPECTED))
def test_every_endpoint_answers_each_role_as_the_ui_would(endpoint, role, world, as_role):
    method, url, body = _calls(world)[endpoint]
    client = as_role(role)
    response = getattr(client, method)(url, body, format="json")
    if role == "anonymous":
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == "Token"
    elif role == "outsider":
        assert response.status_code == 403
    else:
        expected = EXPECTED[endpoint][["editor", "reviewer", "admin_user"].index(role)]
        assert response.status_code == expected, response.content
    if response.status_code >= 400:
        assert "detail" in response.json()


def test_refused_writes_change_nothing(world, as_role):
    draft = world["draft"]
    response = as_role("editor").post(reverse("api_draft_approve", args=[draft.pk]),
                                      {"revision": draft.current_revision_id}, format="json")
    assert response.status_code == 403
    draft.refresh_from_db()
    assert draft.state == Draft.State.IN_REVIEW and draft.approved_revision_id is None
    response = as_role("reviewer").post(reverse("api_product_list"),
                                        [{"sku": "NOPE", "title": "No"}], format="json")
    assert response.status_code == 403
    assert not Product.objects.filter(sku="NOPE").exists()


# --- Tokens -------------------------------------------------------------------------------------

def test_a_revoked_token_is_refused_and_other_tokens_keep_working(editor):
    first, first_key = services.api_token_create(user=editor, name="shop")
    _second, second_key = services.api_token_create(user=editor, name="script")
    url = reverse("api_product_list")
    client = APIClient()
    assert client.get(url, HTTP_AUTHORIZATION=f"Token {first_key}").status_code == 200
    services.api_token_revoke(token=first, user=editor)
    assert client.get(url, HTTP_AUTHORIZATION=f"Token {first_key}").status_code == 401
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {second_key}").status_code == 200
    assert client.get(url, HTTP_AUTHORIZATION="Token not-a-key").status_code == 401


def test_only_a_hash_of_the_key_is_stored_and_use_is_recorded(editor):
    token, key = services.api_token_create(user=editor, name="shop")
    assert key not in {token.key_hash, token.prefix} and key.startswith(token.prefix)
    assert not ApiToken.objects.filter(key_hash=key).exists()
    APIClient().get(reverse("api_product_list"), HTTP_AUTHORIZATION=f"Token {key}")
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_an_inactive_users_token_is_refused(editor):
    _token, key = services.api_token_create(user=editor, name="shop")
    editor.is_active = False
    editor.save()
    response = APIClient().get(reverse("api_product_list"), HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 401


def test_the_browser_session_works_for_the_api(client, reviewer):
    client.force_login(reviewer)
    assert client.get(reverse("api_copy_feed")).status_code == 200


HTMX = {"HTTP_HX_REQUEST": "true"}


def test_account_page_creates_a_token_shows_the_key_once_and_revokes_it(client, editor):
    client.force_login(editor)
    page = client.get(reverse("account_tokens"))
    assert page.status_code == 200
    assert "You have no API tokens yet." in page.content.decode()
    assert reverse("account_tokens") in page.content.decode()  # the header link

    made = client.post(reverse("account_token_create"), {"name": "Shop <sync>"}, **HTMX)
    assert made.status_code == 201
    html = made.content.decode()
    key = re.search(r'id="new-token-key"[^>]*value="([^"]+)"', html, re.S).group(1)
    assert "Copy the key now: it is shown only once." in html
    assert "Shop &lt;sync&gt;" in html and "Shop <sync>" not in html
    assert APIClient().get(reverse("api_copy_feed"),
                           HTTP_AUTHORIZATION=f"Token {key}").status_code == 200
    # Never again: the page lists the token by its first characters only.
    again = client.get(reverse("account_tokens")).content.decode()
    assert key not in again and key[:ApiToken.PREFIX_CHARS] in again

    token = ApiToken.objects.get(user=editor)
    revoked = client.post(reverse("account_token_revoke", args=[token.pk]), **HTMX)
    assert revoked.status_code == 200 and "was revoked" in revoked.content.decode()
    assert APIClient().get(reverse("api_copy_feed"),
                           HTTP_AUTHORIZATION=f"Token {key}").status_code == 401


def test_account_page_without_htmx_and_with_errors(client, editor, reviewer):
    client.force_login(editor)
    made = client.post(reverse("account_token_create"), {"name": "Plain form"})
    assert made.status_code == 200 and 'id="new-token-key"' in made.content.decode()
    empty = client.post(reverse("account_token_create"), {"name": "  "}, **HTMX)
    assert empty.status_code == 400 and "Give the token a name." in empty.content.decode()
    # Someone else's token cannot be revoked from here.
    theirs, _key = services.api_token_create(user=reviewer, name="theirs")
    assert client.post(reverse("account_token_revoke", args=[theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.is_active
    mine = ApiToken.objects.get(user=editor)
    response = client.post(reverse("account_token_revoke", args=[mine.pk]))
    assert response.status_code == 302
    mine.refresh_from_db()
    assert not mine.is_active


def test_account_page_needs_a_copydesk_role(client, outsider):
    assert client.get(reverse("account_tokens")).status_code == 302
    client.force_login(outsider)
    assert client.get(reverse("account_tokens")).status_code == 403
    assert client.post(reverse("account_token_create"), {"name": "x"}).status_code == 403
    assert not ApiToken.objects.exists()


def test_admin_creates_a_token_showing_the_key_once_and_revokes_in_bulk(client, admin_user,
                                                                         editor):
    client.force_login(admin_user)
    response = client.post(reverse("admin:editorial_apitoken_add"),
                           {"user": editor.pk, "name": "Warehouse"})
    assert response.status_code == 200
    key = re.search(r'id="new-token-key"[^>]*value="([^"]+)"', response.content.decode()).group(1)
    token = ApiToken.objects.get(name="Warehouse")
    assert token.user == editor and key.startswith(token.prefix)
    made = AuditEvent.objects.get(verb="api_token.create", object_id=str(token.pk))
    assert made.actor == admin_user and made.data == {"name": "Warehouse", "owner": "edith"}
    assert key not in client.get(reverse("admin:editorial_apitoken_change",
                                         args=[token.pk])).content.decode()
    response = client.post(reverse("admin:editorial_apitoken_changelist"),
                           {"action": "revoke_tokens", "_selected_action": [token.pk]})
    assert response.status_code == 302
    token.refresh_from_db()
    assert not token.is_active
    assert APIClient().get(reverse("api_product_list"),
                           HTTP_AUTHORIZATION=f"Token {key}").status_code == 401


# --- Products -----------------------------------------------------------------------------------

def test_bulk_upsert_creates_updates_and_reports_each_failing_item(editor):
    BrandFactory(name="Acme")
    ProductFactory(sku="OLD-1", title="Old title", category="kitchen")
    items = [
        {"sku": "NEW-1", "title": "茶壶", "brand": "Acme", "attributes": {"colour": "red"}},
        {"sku": "OLD-1", "title": "New title"},
        {"sku": "BAD-1"},
        {"sku": "BAD-2", "title": "T", "locale": "klingon"},
        {"sku": "NEW-1", "title": "Again"},
        "not an object",
        {"sku": "BAD-3", "title": "x" * 501},
    ]
    response = client_for(editor).post(reverse("api_product_list"), items, format="json")
    assert response.status_code == 207
    body = response.json()
    assert body["created"] == [{"index": 0, "sku": "NEW-1"}]
    assert body["updated"] == [{"index": 1, "sku": "OLD-1"}]
    errors = {e["index"]: e for e in body["errors"]}
    assert sorted(errors) == [2, 3, 4, 5, 6]
    assert errors[2]["field"] == "title" and errors[2]["sku"] == "BAD-1"
    assert errors[3]["field"] == "locale"
    assert errors[4]["field"] == "sku" and "duplicate" in errors[4]["message"]
    assert errors[6]["field"] == "title"
    new = Product.objects.select_related("brand").get(sku="NEW-1")
    assert (new.title, new.brand.name, new.locale, new.attributes, new.source_format) == (
        "茶壶", "Acme", "zh-hans", {"colour": "red"}, "api")
    old = Product.objects.get(sku="OLD-1")
    # A field the item leaves out keeps its value.
    assert (old.title, old.category) == ("New title", "kitchen")
    assert not Product.objects.filter(sku__startswith="BAD").exists()


def test_bulk_upsert_of_valid_items_is_200_and_idempotent(editor):
    client = client_for(editor)
    items = [{"sku": f"S-{i}", "title": f"Product {i}"} for i in range(3)]
    first = client.post(reverse("api_product_list"), items, format="json")
    assert first.status_code == 200 and len(first.json()["created"]) == 3
    again = client.post(reverse("api_product_list"), items, format="json")
    assert again.status_code == 200
    assert again.json()["created"] == [] and len(again.json()["updated"]) == 3
    assert Product.objects.filter(sku__startswith="S-").count() == 3


def _shopify_bamboo_board():
    from editorial.catalog import products_import

    fixture = Path(__file__).resolve().parent / "fixtures" / "import" / "shopify.csv"
    report = products_import(data=fixture.read_bytes(), filename="shopify.csv", fmt="shopify")
    assert not report.errors
    return Product.objects.get(sku="bamboo-board")


def _as_it_was(product):
    return {name: getattr(product, name) for name in (
        "attributes", "raw", "source_format", "locale", "brand_id", "category", "source_text")}


def test_upserting_only_a_title_changes_nothing_else_of_a_shopify_product(editor, reviewer):
    import csv
    import io

    from editorial.exporters import copy_export

    before = _shopify_bamboo_board()
    assert before.locale == "zh-hans" and before.attributes and before.raw["rows"]
    kept = _as_it_was(before)

    response = client_for(editor).post(reverse("api_product_list"),
                                       [{"sku": "bamboo-board", "title": "楠竹砧板"}],
                                       format="json")

    assert response.status_code == 200
    assert response.json()["updated"] == [{"index": 0, "sku": "bamboo-board"}]
    after = Product.objects.get(sku="bamboo-board")
    assert after.title == "楠竹砧板"
    assert _as_it_was(after) == kept
    # Still a Shopify product: its approved copy goes back out in the shop's own rows.
    approved(editor, reviewer, text="整块楠竹，经久耐用。", product=after)
    stream = io.StringIO(newline="")
    copy_export(stream=stream, fmt="shopify", user=reviewer)
    rows = list(csv.reader(io.StringIO(stream.getvalue(), newline="")))
    assert [row[0] for row in rows[1:]] == ["bamboo-board"]
    assert rows[1][rows[0].index("Variant SKU")] == "SS-BOARD"


def test_upserted_values_sent_explicitly_replace_or_clear_fields(editor):
    _shopify_bamboo_board()
    client = client_for(editor)

    response = client.post(reverse("api_product_list"), [{
        "sku": "bamboo-board", "title": "Bamboo board", "description": "Solid bamboo.",
        "attributes": {"size": "40 x 28 cm"}, "locale": "en", "category": None, "brand": "",
    }], format="json")

    assert response.status_code == 200
    product = Product.objects.get(sku="bamboo-board")
    assert (product.title, product.source_text, product.attributes, product.locale,
            product.category, product.brand_id) == (
        "Bamboo board", "Solid bamboo.", {"size": "40 x 28 cm"}, "en", "", None)
    assert product.source_format == "shopify"
    client.post(reverse("api_product_list"),
                [{"sku": "bamboo-board", "title": "竹制砧板", "attributes": {},
                  "locale": None}], format="json")
    product.refresh_from_db()
    assert (product.attributes, product.locale) == ({}, "zh-hans")
    client.post(reverse("api_product_list"),
                [{"sku": "bamboo-board", "title": "竹制砧板", "attributes": {"a": "b"}}],
                format="json")
    client.post(reverse("api_product_list"),
                [{"sku": "bamboo-board", "title": "竹制砧板", "attributes": None}],
                format="json")
    product.refresh_from_db()
    assert product.attributes == {}


def test_a_new_product_gets_defaults_and_later_partial_updates_keep_its_fields(editor):
    client = client_for(editor)
    client.post(reverse("api_product_list"), [{"sku": "TEA-1", "title": "绿茶礼盒"}],
                format="json")
    product = Product.objects.get(sku="TEA-1")
    assert (product.locale, product.source_format, product.attributes, product.category,
            product.brand_id, product.source_text) == ("zh-hans", "api", {}, "", None, "")
    assert product.raw == {"record": {"sku": "TEA-1", "title": "绿茶礼盒"}}

    client.post(reverse("api_product_list"), [{
        "sku": "TEA-1", "title": "绿茶礼盒", "brand": "山水", "category": "茶",
        "attributes": {"重量": "250 克"}, "locale": "zh-hans",
    }], format="json")
    client.post(reverse("api_product_list"), [{"sku": "TEA-1", "title": "Green tea gift box"}],
                format="json")

    product = Product.objects.select_related("brand").get(sku="TEA-1")
    assert (product.title, product.locale, product.brand.name, product.category,
            product.attributes) == ("Green tea gift box", "zh-hans", "山水", "茶",
                                    {"重量": "250 克"})
    # The raw record is everything the API has sent, the latest value of each key.
    assert product.raw["record"] == {"sku": "TEA-1", "title": "Green tea gift box",
                                     "brand": "山水", "category": "茶",
                                     "attributes": {"重量": "250 克"}, "locale": "zh-hans"}


def test_the_schema_says_what_an_upsert_leaves_alone(client):
    body = client.get(reverse("api_schema"),
                      HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = body["paths"]["/api/v1/products/"]["post"]
    assert "a key left out keeps the product's value" in operation["description"]
    fields = body["components"]["schemas"]["ProductUpsertRequest"]["properties"]
    assert "Left out: unchanged" in fields["attributes"]["description"]
    assert "Replaces all" in fields["attributes"]["description"]
    assert "Left out: unchanged" in fields["locale"]["description"]


def test_bulk_upsert_wants_a_list_of_limited_size(editor):
    client = client_for(editor)
    response = client.post(reverse("api_product_list"), {"sku": "A", "title": "B"},
                           format="json")
    assert response.status_code == 400 and "non_field_errors" in response.json()
    with override_settings(COPYDESK_API_MAX_BULK=2):
        response = client.post(reverse("api_product_list"),
                               [{"sku": str(i), "title": "t"} for i in range(3)], format="json")
    assert response.status_code == 400


def test_product_list_is_paginated_and_filtered_and_detail_takes_the_sku(editor):
    for i in range(3):
        ProductFactory(sku=f"TEA/{i}", title=f"Teapot {i}")
    ProductFactory(sku="KETTLE", title="Kettle")
    client = client_for(editor)
    body = client.get(reverse("api_product_list"), {"q": "teapot", "page_size": 2}).json()
    assert body["count"] == 3 and len(body["results"]) == 2 and body["next"]
    detail = client.get(reverse("api_product_detail", args=["TEA/1"]))
    assert detail.status_code == 200 and detail.json()["title"] == "Teapot 1"
    assert client.get(reverse("api_product_detail", args=["NOPE"])).status_code == 404


# --- Jobs ---------------------------------------------------------------------------------------

def test_job_request_is_202_with_the_job_and_its_progress_can_be_read(editor):
    ModelVersionFactory(name="default-model", is_default=True)
    ProductFactory(sku="A")
    ProductFactory(sku="B")
    client = client_for(editor)
    response = client.post(reverse("api_job_list"), {
        "skus": ["A", "B"], "kinds": ["description", "title"],
        "params": {"temperature": 0.5, "candidates": 3, "seed": 7},
    }, format="json")
    assert response.status_code == 202, response.content
    job = response.json()
    assert (job["status"], job["total"], job["model_version"]) == ("queued", 4, "default-model")
    assert job["params"]["candidates"] == 3
    progress = client.get(reverse("api_job_detail", args=[job["id"]])).json()
    assert (progress["done"], progress["percent"]) == (0, 0)
    cancelled = client.post(reverse("api_job_cancel", args=[job["id"]]))
    assert cancelled.json()["status"] == "cancelled"
    assert GenerationJob.objects.get(pk=job["id"]).status == "cancelled"


def test_job_request_with_a_named_model_version(editor):
    ModelVersionFactory(name="default-model", is_default=True)
    ModelVersionFactory(name="tuned-v2")
    ProductFactory(sku="A")
    response = client_for(editor).post(reverse("api_job_list"), {
        "skus": ["A"], "kinds": ["title"], "model_version": "tuned-v2"}, format="json")
    assert response.status_code == 202 and response.json()["model_version"] == "tuned-v2"


def test_job_request_errors_are_per_field(editor):
    ModelVersionFactory(name="default-model", is_default=True)
    ProductFactory(sku="A")
    client = client_for(editor)
    response = client.post(reverse("api_job_list"), {
        "skus": ["A", "MISSING"], "kinds": ["nonsense"], "model_version": "nope",
        "params": {"temperature": 9, "candidates": 0},
    }, format="json")
    assert response.status_code == 400
    errors = response.json()
    assert "MISSING" in errors["skus"][0]
    assert "nonsense" in errors["kinds"][0]
    assert set(errors["params"]) == {"temperature", "candidates"}
    assert client.post(reverse("api_job_list"), {}, format="json").json().keys() == {
        "skus", "kinds"}
    # Cross-field rules of the generation parameters come back under params too.
    response = client.post(reverse("api_job_list"), {
        "skus": ["A"], "kinds": ["title"], "params": {"temperature": 0, "do_sample": True},
    }, format="json")
    assert response.status_code == 400 and "temperature" in response.json()["params"]
    assert not GenerationJob.objects.exists()


def test_generation_requests_are_rate_limited_per_user(editor, reviewer):
    ModelVersionFactory(name="default-model", is_default=True)
    ProductFactory(sku="A")
    body = {"skus": ["A"], "kinds": ["title"]}
    url = reverse("api_job_list")
    rates = {"DEFAULT_THROTTLE_RATES": {"generation": "2/minute"}}
    with override_settings(REST_FRAMEWORK={**_rest_settings(), **rates}):
        client = client_for(editor)
        assert [client.post(url, body, format="json").status_code for _ in range(3)] == [
            202, 202, 429]
        refused = client.post(url, body, format="json")
        assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
        # Reading is not limited, and another user has their own allowance.
        assert client.get(url).status_code == 200
        assert client_for(reviewer).post(url, body, format="json").status_code == 202
    assert GenerationJob.objects.count() == 3


def _rest_settings():
    from django.conf import settings

    return dict(settings.REST_FRAMEWORK)


# --- Drafts -------------------------------------------------------------------------------------

def test_draft_list_filters_by_state_brand_and_kind(editor):
    acme = BrandFactory(name="Acme")
    wanted = in_review(editor, product=ProductFactory(brand=acme))
    draft_with_text(product=ProductFactory(brand=acme))  # ready, not in review
    in_review(editor)  # another brand
    client = client_for(editor)
    for brand in (acme.pk, "Acme"):
        body = client.get(reverse("api_draft_list"),
                          {"state": "in_review", "brand": brand, "kind": "description"}).json()
        assert [d["id"] for d in body["results"]] == [wanted.pk]
    assert client.get(reverse("api_draft_list"), {"state": "bogus"}).json().keys() == {"state"}
    assert client.get(reverse("api_draft_list"), {"kind": "title"}).json()["count"] == 0


def test_draft_detail_has_candidates_and_revisions(editor):
    draft = in_review(editor, text="Edited <b>text</b>.")
    body = client_for(editor).get(reverse("api_draft_detail", args=[draft.pk])).json()
    assert body["current_text"] == "Edited <b>text</b>."
    assert [r["number"] for r in body["revisions"]] == [2, 1]
    assert body["revisions"][0]["author"] == "edith"
    assert body["candidates"][0]["text"] == "A kettle made of stainless steel."


def test_saving_a_revision_moves_the_draft_into_edit(editor):
    draft = draft_with_text()
    response = client_for(editor).post(
        reverse("api_draft_revisions", args=[draft.pk]),
        {"text": "  A better kettle.\r\n", "base_revision": draft.current_revision_id},
        format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["revision"]["text"] == "A better kettle." and body["revision"]["number"] == 2
    assert body["draft"]["state"] == "in_edit"
    assert body["draft"]["current_revision"] == body["revision"]["id"]


def test_a_stale_revision_is_409_with_the_current_one_and_the_text_is_kept(editor, reviewer):
    draft = draft_with_text()
    loaded = draft.current_revision_id
    services.revision_save(draft=draft, user=reviewer, text="Someone else's text.",
                           base_revision_id=loaded)
    response = client_for(editor).post(reverse("api_draft_revisions", args=[draft.pk]),
                                       {"text": "My text.", "base_revision": loaded},
                                       format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "stale_revision"
    assert body["current_revision"]["text"] == "Someone else's text."
    assert body["your_revision"]["text"] == "My text."
    draft.refresh_from_db()
    assert draft.current_revision.text == "Someone else's text."
    assert Revision.objects.filter(draft=draft, text="My text.").exists()


def test_revision_body_errors_are_per_field(editor):
    draft = draft_with_text()
    client = client_for(editor)
    url = reverse("api_draft_revisions", args=[draft.pk])
    response = client.post(url, {"text": "   "}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"text", "base_revision"}
    assert client.post(url, {"text": "x", "base_revision": "one"},
                       format="json").json().keys() == {"base_revision"}
    missing = client.post(reverse("api_draft_revisions", args=[999999]),
                          {"text": "x", "base_revision": None}, format="json")
    assert missing.status_code == 404


def test_approving_pins_the_revision_and_publishes_it_to_the_feed(editor, reviewer):
    draft = in_review(editor)
    response = client_for(reviewer).post(reverse("api_draft_approve", args=[draft.pk]),
                                         {"revision": draft.current_revision_id}, format="json")
    assert response.status_code == 200
    assert response.json()["state"] == "approved"
    assert response.json()["approved_revision"] == draft.current_revision_id
    feed = client_for(reviewer).get(reverse("api_copy_feed")).json()["results"]
    assert [(e["draft"], e["text"], e["is_current"]) for e in feed] == [
        (draft.pk, "Edited by a person.", True)]


def test_approving_a_stale_revision_is_409_with_the_current_one(editor, reviewer):
    draft = in_review(editor)
    seen = draft.current_revision_id
    services.revision_save(draft=draft, user=editor, text="Changed after submit.",
                           base_revision_id=seen)
    services.draft_submit(draft=draft, user=editor)
    response = client_for(reviewer).post(reverse("api_draft_approve", args=[draft.pk]),
                                         {"revision": seen}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "stale_revision"
    assert response.json()["current_revision"]["text"] == "Changed after submit."
    draft.refresh_from_db()
    assert draft.state == Draft.State.IN_REVIEW and draft.approved_revision_id is None


def test_approving_a_draft_that_is_not_in_review_is_409(editor, reviewer):
    draft = draft_with_text()
    response = client_for(reviewer).post(reverse("api_draft_approve", args=[draft.pk]),
                                         {"revision": draft.current_revision_id}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "invalid_state"
    assert client_for(reviewer).post(reverse("api_draft_approve", args=[draft.pk]), {},
                                     format="json").json().keys() == {"revision"}


# --- Copy feed ----------------------------------------------------------------------------------

def _page(client, params):
    response = client.get(reverse("api_copy_feed"), params)
    assert response.status_code == 200, response.content
    return response.json()


def test_feed_pages_see_an_approval_made_between_fetches_exactly_once(editor, reviewer):
    for i in range(3):
        approved(editor, reviewer, text=f"Copy {i}.")
    client = client_for(reviewer)
    first = _page(client, {"page_size": 2})
    assert [e["text"] for e in first["results"]] == ["Copy 0.", "Copy 1."]
    assert first["has_more"] is True
    approved(editor, reviewer, text="Copy 3.")
    second = _page(client, {"page_size": 2, "cursor": first["cursor"]})
    assert [e["text"] for e in second["results"]] == ["Copy 2.", "Copy 3."]
    third = _page(client, {"page_size": 2, "cursor": second["cursor"]})
    assert third["results"] == [] and third["has_more"] is False
    # The last cursor is where the next poll starts: nothing twice, nothing lost.
    approved(editor, reviewer, text="Copy 4.")
    fourth = _page(client, {"page_size": 2, "cursor": third["cursor"]})
    assert [e["text"] for e in fourth["results"]] == ["Copy 4."]
    # Following ``next`` is the same as passing the cursor.
    assert f"cursor={fourth['cursor']}" in fourth["next"]
    assert client.get(fourth["next"]).json()["results"] == []


def test_an_approval_that_commits_with_an_earlier_time_than_the_cursor_is_still_seen(
    editor, reviewer
):
    """An approving transaction that started (and took its time) before another one committed:
    its approved_at is older than entries the client already paged past."""
    approved(editor, reviewer, text="First.")
    client = client_for(reviewer)
    page = _page(client, {})
    assert [e["text"] for e in page["results"]] == ["First."]
    slow = in_review(editor, text="Slow approval.")
    earlier = timezone.now() - timedelta(minutes=5)
    with mock.patch("django.utils.timezone.now", return_value=earlier):
        services.draft_approve(draft=slow, user=reviewer, revision_id=slow.current_revision_id)
    later = _page(client, {"cursor": page["cursor"]})
    assert [e["text"] for e in later["results"]] == ["Slow approval."]
    assert later["results"][0]["approved_at"] < page["results"][0]["approved_at"]


def test_feed_since_filters_the_first_page_and_reapproval_appears_again(editor, reviewer):
    old = approved(editor, reviewer, text="Old copy.")
    CopyFeedEntry.objects.filter(draft=old).update(
        approved_at=timezone.now() - timedelta(days=2))
    fresh = approved(editor, reviewer, text="Fresh copy.")
    client = client_for(editor)
    since = (timezone.now() - timedelta(days=1)).isoformat()
    page = _page(client, {"since": since})
    assert [e["sku"] for e in page["results"]] == [fresh.product.sku]
    assert "since" not in page["next"]
    # Edited and approved again: a new entry; the old one is no longer current.
    services.revision_save(draft=fresh, user=editor, text="Fresh copy, edited.",
                           base_revision_id=fresh.current_revision_id)
    services.draft_submit(draft=fresh, user=editor)
    fresh.refresh_from_db()
    services.draft_approve(draft=fresh, user=reviewer, revision_id=fresh.current_revision_id)
    everything = _page(client, {})["results"]
    assert [(e["text"], e["is_current"]) for e in everything] == [
        ("Old copy.", True), ("Fresh copy.", False), ("Fresh copy, edited.", True)]


def test_feed_refuses_a_cursor_it_did_not_make(reviewer):
    client = client_for(reviewer)
    for bad in ("garbage", "eyJzIjogLTF9", "bm90IGpzb24"):
        response = client.get(reverse("api_copy_feed"), {"cursor": bad})
        assert response.status_code == 400 and "cursor" in response.json()
    assert client.get(reverse("api_copy_feed"), {"since": "yesterday"}).status_code == 400


def test_lists_cost_a_fixed_number_of_queries(editor, reviewer, django_assert_max_num_queries):
    for i in range(6):
        approved(editor, reviewer, text=f"Copy {i}.")
    client = client_for(reviewer)
    # Token look-up, its last-used stamp, roles, count/page: not one query per row.
    for url in (reverse("api_copy_feed"), reverse("api_draft_list"),
                reverse("api_product_list")):
        with django_assert_max_num_queries(6):
            response = client.get(url)
        assert response.status_code == 200 and len(response.json()["results"]) == 6
