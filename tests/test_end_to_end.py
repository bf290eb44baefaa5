"""The whole loop through a real Celery worker process and the real default model:
import → job → worker generates → edit → submit → approve → export."""

import csv
import io
import os
import time

import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse

from copydesk.celery import app
from editorial.catalog import products_import
from editorial.exporters import copy_export
from editorial.models import Draft, GenerationJob, ModelVersion
from editorial.services import generation_job_request, model_version_register
from tests.factories import UserFactory
from tests.worker import Worker, use_broker_dir

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

CATALOG = (
    "sku,title,brand,category,locale,material,capacity\n"
    "E2E-KETTLE,Gooseneck kettle,Nordkit,kitchen,en,stainless steel,0.9 L\n"
    "E2E-TEA,明前龙井绿茶,山水茶舍,tea,zh-hans,绿茶,100 g\n"
).encode()


@pytest.fixture(scope="module")
def worker(tmp_path_factory, default_model_dir, django_db_setup, django_db_blocker):
    broker_dir = tmp_path_factory.mktemp("broker")
    use_broker_dir(broker_dir)
    with django_db_blocker.unblock():
        app.control.purge()
        log_dir = settings.VAR_DIR / "test-logs"
        log_dir.mkdir(exist_ok=True)
        process = Worker(broker_dir, log_dir / f"worker-{os.getpid()}.log").start()
    yield process
    process.stop()


@pytest.fixture
def default_model(default_model_dir):
    return model_version_register(
        name="SmolLM2-135M-Instruct", path=str(default_model_dir),
        source=ModelVersion.Source.PACKAGED, make_default=True,
    )


def wait_for(job: GenerationJob, timeout: float = 240) -> GenerationJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.is_finished:
            return job
        time.sleep(0.5)
    raise AssertionError(
        f"job {job.pk} still {job.status} after {timeout}s: {job.done}/{job.total}"
    )


def test_catalog_to_export_through_worker_and_browser_views(worker, default_model, client):
    editor = UserFactory(username="e2e-editor", roles=["Editor"])
    reviewer = UserFactory(username="e2e-reviewer", roles=["Reviewer"])
    report = products_import(data=CATALOG, filename="catalog.csv")
    assert report.summary() == "imported 2, updated 0, failed 0"

    from editorial.models import Product

    job = generation_job_request(
        products=Product.objects.all(), kinds=["description", "title"],
        params={"candidates": 2, "max_new_tokens": 12, "seed": 7}, user=editor,
    )
    job = wait_for(job)
    assert job.status == GenerationJob.Status.SUCCEEDED, job.error
    assert (job.done, job.failed, job.total) == (4, 0, 4)
    assert job.tokens_generated > 0

    drafts = Draft.objects.select_related("current_revision").order_by("pk")
    assert [d.state for d in drafts] == [Draft.State.READY] * 4
    for draft in drafts:
        candidates = list(draft.candidates.all())
        assert 1 <= len(candidates) <= 2
        assert all(c.text.strip() for c in candidates)
        assert all(c.model_version_id == default_model.pk for c in candidates)
        assert all(c.prompt and c.prompt[0]["role"] == "system" for c in candidates)
        assert draft.current_revision.author is None  # the model's starting point

    draft = drafts.get(product__sku="E2E-KETTLE", kind="description")
    edited = "A gooseneck kettle in stainless steel that holds 0.9 L, for a slow, even pour."
    client.force_login(editor)
    page = client.get(reverse("draft_detail", args=[draft.pk]))
    assert page.status_code == 200
    response = client.post(
        reverse("draft_save", args=[draft.pk]),
        {"text": edited, "base_revision_id": draft.current_revision_id},
    )
    assert response.status_code in (200, 302)
    draft.refresh_from_db()
    assert draft.current_revision.text == edited
    assert draft.current_revision.author == editor
    client.post(reverse("draft_submit", args=[draft.pk]))
    draft.refresh_from_db()
    assert draft.state == Draft.State.IN_REVIEW

    client.force_login(reviewer)
    client.post(reverse("draft_review", args=[draft.pk]),
                {"decision": "approve", "revision_id": draft.current_revision_id})
    draft.refresh_from_db()
    assert draft.state == Draft.State.APPROVED
    assert draft.approved_revision.text == edited

    stream = io.StringIO()
    batch = copy_export(stream=stream, fmt="csv", user=reviewer)
    rows = list(csv.DictReader(io.StringIO(stream.getvalue())))
    assert batch.count == 1
    assert [(r["sku"], r["kind"], r["text"], r["approved_by"]) for r in rows] == [
        ("E2E-KETTLE", "description", edited, "e2e-reviewer")
    ]
    assert rows[0]["model_version"] == "SmolLM2-135M-Instruct"


def test_generate_command_waits_for_the_worker(worker, default_model, capsys):
    products_import(data=CATALOG, filename="catalog.csv")
    call_command("generate", "--sku", "E2E-TEA", "--kinds", "slogan", "--candidates", "1",
                 "--max-new-tokens", "8", "--wait")
    out = capsys.readouterr().out
    assert "succeeded: 1 done, 0 failed of 1" in out
    draft = Draft.objects.get(product__sku="E2E-TEA", kind="slogan")
    assert draft.state == Draft.State.READY
    assert draft.candidates.get().text.strip()
