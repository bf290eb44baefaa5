"""Redis restarted while a job runs, with a real worker process and a private redis-server:
the desk keeps serving editors and reviewers while the broker is down, a job requested
meanwhile waits in a clear "broker unavailable" state, and after the restart (which loses every
queued message) the sweeper sends the lost and unsent chunks again and both jobs complete with
exactly the candidates they should have."""

import os
import time

import pytest
from django.urls import reverse

from editorial.broker import gpu_queue_depth
from editorial.models import (
    Candidate,
    ContentKind,
    Draft,
    GenerationJob,
    JobChunk,
    ModelVersion,
    Product,
    Revision,
)
from editorial.services import (
    generation_job_request,
    generation_jobs_resume,
    model_version_register,
)
from tests.factories import ProductFactory, UserFactory
from tests.worker import RedisServer, Worker, producer_on, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def job_state(job_id: int):
    job = GenerationJob.objects.get(pk=job_id)
    return job.status, job.done, job.failed, job.total


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def test_redis_restart_while_a_job_runs_loses_nothing(
    redis_server, tiny_model_dir, settings, client
):
    # Transactional test: the seeded kind may be gone after other transactional tests.
    ContentKind.objects.get_or_create(code="description", defaults={
        "label": "Description", "instructions": "Describe the product.", "max_new_tokens": 200})
    settings.COPYDESK_CHUNK_SIZE = 2
    model_version_register(name="tiny-restart", path=str(tiny_model_dir),
                           source=ModelVersion.Source.LOCAL, make_default=True)
    editor = UserFactory(username="outage-editor", roles=["Editor"])
    reviewer = UserFactory(username="outage-reviewer", roles=["Reviewer"])
    first_products = ProductFactory.create_batch(8)
    later_products = ProductFactory.create_batch(2)
    log_dir = settings.VAR_DIR / "test-logs"
    log_dir.mkdir(exist_ok=True)
    env = {"CELERY_BROKER_URL": redis_server.url, "COPYDESK_ENGINE_SLICE": "1",
           "COPYDESK_TORCH_THREADS": "1"}
    params = {"do_sample": False, "max_new_tokens": 24}

    with producer_on(redis_server.url):
        assert gpu_queue_depth() == 0
        worker = Worker(None, log_dir / f"redis-restart-{os.getpid()}.log", env).start()
        try:
            job = generation_job_request(
                products=Product.objects.filter(pk__in=[p.pk for p in first_products]),
                kinds=["description"], user=editor, params=params,
            )
            wait_until(lambda: job_state(job.pk)[1] >= 1, 120, "the first draft")
            redis_server.stop()
            assert gpu_queue_depth() is None  # the sweeper cannot see the queue: resends nothing
            assert generation_jobs_resume(lost_seconds=0).sent == 0

            # Editing and review go on while the broker is down.
            draft = Draft.objects.filter(job_items__job=job, state=Draft.State.READY).first()
            client.force_login(editor)
            assert client.get(reverse("draft_queue")).status_code == 200
            assert client.get(reverse("draft_detail", args=[draft.pk])).status_code == 200
            response = client.post(reverse("draft_save", args=[draft.pk]), {
                "text": "Written while the broker was down.",
                "base_revision_id": draft.current_revision_id,
            })
            assert response.status_code in (200, 302)
            draft.refresh_from_db()
            assert draft.current_revision.text == "Written while the broker was down."
            assert client.post(reverse("draft_submit", args=[draft.pk])).status_code == 302
            for page in ("home", "job_list"):
                assert client.get(reverse(page)).status_code == 200

            # A generation request meanwhile: no 500, a job that says it waits for the broker.
            started = time.monotonic()
            response = client.post(reverse("generate"), {
                "scope": "selected", "products": [p.pk for p in later_products],
                "kinds": ["description"], "do_sample": "", "max_new_tokens": "24",
                "candidates": "1",
            })
            assert response.status_code == 302, response.content[:500]
            assert time.monotonic() - started < 15
            waiting = GenerationJob.objects.latest("pk")
            assert waiting.pk != job.pk and waiting.status == GenerationJob.Status.QUEUED
            assert waiting.awaiting_broker
            page = client.get(response.url).content.decode()
            assert "The broker is unavailable" in page

            client.force_login(reviewer)
            response = client.post(reverse("draft_review", args=[draft.pk]), {
                "decision": "approve", "revision_id": draft.current_revision_id})
            assert response.status_code == 302
            draft.refresh_from_db()
            assert draft.state == Draft.State.APPROVED

            redis_server.start()
            # What beat's sweep does every minute: the restart lost the queued chunks of the
            # first job (sent, never started, the queue is empty) and the second job was
            # never sent.
            reports = []

            def sweep_until_done():
                reports.append(generation_jobs_resume(lost_seconds=5, unsent_grace_seconds=0))
                return all(GenerationJob.objects.get(pk=pk).is_finished
                           for pk in (job.pk, waiting.pk))

            wait_until(sweep_until_done, 240, "both jobs to finish")
        finally:
            worker.stop()
    assert any(job.pk in report.lost for report in reports)
    assert any(waiting.pk in report.unsent for report in reports)

    for finished, products in ((job, first_products), (waiting, later_products)):
        status, done, failed, total = job_state(finished.pk)
        assert (status, done, failed, total) == (
            GenerationJob.Status.SUCCEEDED, len(products), 0, len(products)
        ), GenerationJob.objects.get(pk=finished.pk).error
        for product in products:
            # Greedy decoding: exactly one candidate per draft, however often it was sent.
            assert list(Candidate.objects.filter(draft__product=product).values_list(
                "job_id", "index")) == [(finished.pk, 0)]
    waiting.refresh_from_db()
    assert waiting.error == "" and not waiting.awaiting_broker
    assert set(JobChunk.objects.values_list("status", flat=True)) == {JobChunk.Status.DONE}
    assert Revision.objects.filter(draft=draft).count() == 2
    assert settings.CELERY_BROKER_URL != redis_server.url  # the shared broker was never touched
