"""The OpenAPI schema and the interactive docs; schemathesis fuzzes every operation in-process
(WSGI) and finds no server error and no answer that the schema does not describe."""

import hypothesis
import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from django.urls import reverse
from schemathesis import checks

from copydesk.wsgi import application
from editorial import services
from tests.factories import ModelVersionFactory, ProductFactory, draft_with_text

pytestmark = pytest.mark.django_db

# Bounded, so the fuzzing stays well under a minute on a CI machine.
EXAMPLES = 10


@pytest.mark.parametrize("role", ["anonymous", "outsider", "editor", "reviewer", "admin_user"])
def test_schema_and_docs_are_served_to_everyone(client, request, role):
    if role != "anonymous":
        client.force_login(request.getfixturevalue(role))
    schema = client.get(reverse("api_schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    body = schema.json()
    assert body["openapi"].startswith("3.")
    assert {"/api/v1/products/", "/api/v1/products/{sku}/", "/api/v1/jobs/",
            "/api/v1/jobs/{job_id}/", "/api/v1/jobs/{job_id}/cancel/", "/api/v1/drafts/",
            "/api/v1/drafts/{draft_id}/", "/api/v1/drafts/{draft_id}/revisions/",
            "/api/v1/drafts/{draft_id}/approve/", "/api/v1/copy/"} <= set(body["paths"])
    assert "tokenAuth" in body["components"]["securitySchemes"]
    assert "429" in body["paths"]["/api/v1/jobs/"]["post"]["responses"]
    for name in ("api_docs", "api_redoc"):
        docs = client.get(reverse(name))
        assert docs.status_code == 200
        html = docs.content.decode()
        # Served from our own static files, never a CDN.
        assert "/static/drf_spectacular_sidecar/" in html
        assert "cdn.jsdelivr" not in html and "unpkg.com" not in html


def test_unknown_api_paths_answer_json_404(client):
    response = client.get("/api/v1/nothing-here/")
    assert response.status_code == 404 and response.json() == {"detail": "Not found."}


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def wsgi_in_test_transaction():
    """The WSGI handler closes the database connection after each request (as Django's test
    client prevents too): keep it open, the test's transaction lives on it."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(db, wsgi_in_test_transaction, admin_user, editor):
    ModelVersionFactory(name="default-model", is_default=True)
    products = [ProductFactory(sku=f"FUZZ-{i}") for i in range(3)]
    services.generation_job_request(products=products, kinds=["title"], params={},
                                    user=editor)
    draft = draft_with_text()
    services.draft_submit(draft=draft, user=editor)


@pytest.fixture
def admin_key(api_schema, admin_user):
    return services.api_token_create(user=admin_user, name="fuzz")[1]


# Loaded when the module is collected (the schema view needs no database);
# ``schemathesis.pytest.from_fixture`` does not work with pytest 9.
schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", application)
# Random examples only: the coverage phase's hundreds of boundary cases per operation would take
# minutes here. (`schemathesis run` in a nightly job can run them all.)
schema.config.phases.coverage.enabled = False


@schema.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_api_conforms_to_its_schema(case, admin_key):
    response = case.call(headers={"Authorization": f"Token {admin_key}"})
    case.validate_response(response, checks=[
        checks.not_a_server_error,
        checks.status_code_conformance,
        checks.content_type_conformance,
        checks.response_schema_conformance,
    ])
