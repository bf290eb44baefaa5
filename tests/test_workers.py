"""Workers at scale and when things go wrong: chunk claims and heartbeats, the sweeper that
resumes stalled or unsent chunks, cancel stopping a chunk in flight, progress per engine call,
bulk job requests, and a real worker killed with SIGKILL mid-chunk."""

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from copydesk.celery import app
from editorial.models import (
    Candidate,
    ContentKind,
    Draft,
    GenerationJob,
    JobChunk,
    JobItem,
    ModelVersion,
    Product,
    Revision,
)
from editorial.services import (
    ItemOutcome,
    generation_chunk_claim,
    generation_chunk_heartbeat,
    generation_job_cancel,
    generation_job_request,
    generation_jobs_resume,
    generation_results_store,
    model_version_register,
)
from editorial.workers import generation as generation_worker
from editorial.workers import sweeper as sweeper_worker
from tests.factories import ModelVersionFactory, ProductFactory
from tests.worker import Worker, use_broker_dir, wait_until


class FakeEngine:
    """Stands in for the model: known text, counts its calls, runs ``during`` inside each."""

    max_batch_rows = 32

    def __init__(self, during=None):
        self.calls: list[int] = []
        self.during = during

    def generate(self, requests, params):
        from generation.engine import GeneratedText, GenerationResult

        self.calls.append(len(requests))
        if self.during:
            self.during(len(self.calls))
        return [
            GenerationResult(
                candidates=[GeneratedText(text=f"Copy {r.seed} #{i}.", completion_tokens=3,
                                          finished=True) for i in range(r.candidates)],
                prompt_tokens=10, seconds=0.01,
            )
            for r in requests
        ]


@pytest.fixture
def fake_engine(monkeypatch):
    import generation.engine

    engine = FakeEngine()
    monkeypatch.setattr(generation.engine, "get_engine", lambda path, device="auto": engine)
    return engine


@pytest.fixture
def sent(monkeypatch):
    """Chunk messages, captured instead of going to the broker."""
    messages: list[tuple[int, int]] = []
    monkeypatch.setattr(generation_worker.generate_chunk, "delay",
                        lambda job, chunk: messages.append((job, chunk)))
    return messages


def request(editor, count=4, **params):
    return generation_job_request(
        products=ProductFactory.create_batch(count), kinds=["description"],
        params={"candidates": 2, **params}, user=editor,
        model_version=ModelVersionFactory(name="worker-model"),
    )


# --- Claims and heartbeats ---------------------------------------------------------------------

@pytest.mark.django_db
def test_a_chunk_held_by_a_live_worker_is_not_claimed_twice(editor, settings):
    settings.COPYDESK_CHUNK_STALL_SECONDS = 60
    job = request(editor)
    first = generation_chunk_claim(job_id=job.pk, number=0, worker="w1")
    assert first is not None
    assert generation_chunk_claim(job_id=job.pk, number=0, worker="w2") is None
    chunk = JobChunk.objects.get(job=job, number=0)
    assert (chunk.status, chunk.worker, chunk.attempts) == (JobChunk.Status.RUNNING, "w1", 1)
    job.refresh_from_db()
    assert job.status == GenerationJob.Status.RUNNING and job.started_at


@pytest.mark.django_db
def test_a_stale_claim_is_taken_over_and_the_old_worker_stops(editor, settings):
    settings.COPYDESK_CHUNK_STALL_SECONDS = 60
    job = request(editor)
    old = generation_chunk_claim(job_id=job.pk, number=0, worker="w1")
    JobChunk.objects.update(heartbeat_at=timezone.now() - timedelta(seconds=61))
    new = generation_chunk_claim(job_id=job.pk, number=0, worker="w2")
    assert new is not None and new.token != old.token
    assert generation_chunk_heartbeat(claim=old) is False
    assert generation_chunk_heartbeat(claim=new) is True
    assert JobChunk.objects.get().attempts == 2


@pytest.mark.django_db
def test_a_finished_chunk_delivered_again_does_nothing(editor, fake_engine):
    job = request(editor)
    assert generation_worker.run_chunk(job_id=job.pk, chunk=0) == 4
    assert generation_worker.run_chunk(job_id=job.pk, chunk=0) == 0
    assert len(fake_engine.calls) == 1
    assert Candidate.objects.count() == 8
    assert JobChunk.objects.get().status == JobChunk.Status.DONE


# --- Progress and cancel -----------------------------------------------------------------------

@pytest.mark.django_db
def test_progress_is_stored_after_every_engine_call(editor, fake_engine, settings):
    settings.COPYDESK_ENGINE_SLICE = 2
    job = request(editor, count=5)
    seen = []
    fake_engine.during = lambda call: seen.append(GenerationJob.objects.get(pk=job.pk).done)
    generation_worker.run_chunk(job_id=job.pk, chunk=0)
    assert fake_engine.calls == [2, 2, 1]
    assert seen == [0, 2, 4]
    job.refresh_from_db()
    assert (job.status, job.done, job.total) == (GenerationJob.Status.SUCCEEDED, 5, 5)
    assert job.tokens_generated == 5 * 2 * 3


@pytest.mark.django_db
def test_cancel_while_a_chunk_is_generating_stores_nothing_more(editor, fake_engine, settings):
    settings.COPYDESK_ENGINE_SLICE = 2
    job = request(editor, count=6)

    def cancel_during_second_call(call):
        if call == 2:
            generation_job_cancel(job=job, user=editor)

    fake_engine.during = cancel_during_second_call
    generation_worker.run_chunk(job_id=job.pk, chunk=0)
    assert fake_engine.calls == [2, 2]  # the third engine call never starts
    job.refresh_from_db()
    assert (job.status, job.done) == (GenerationJob.Status.CANCELLED, 2)
    assert Candidate.objects.count() == 4  # the first call's two drafts only
    assert Draft.objects.filter(state=Draft.State.FAILED).count() == 4
    assert JobItem.objects.filter(status=JobItem.Status.PENDING).count() == 4


@pytest.mark.django_db
def test_results_arriving_after_cancel_are_dropped(editor):
    job = request(editor, count=1)
    generation_job_cancel(job=job, user=editor)
    outcomes = [ItemOutcome(item_id=item.pk, messages=[], texts=["Late copy."],
                            completion_tokens=[2], prompt_tokens=5, seconds=0.1, seed=1)
                for item in job.items.all()]
    assert generation_results_store(job=job, outcomes=outcomes) == 0
    assert not Candidate.objects.exists()


@pytest.mark.django_db
def test_eta_follows_the_rate_since_the_job_started(editor):
    job = request(editor, count=4)
    assert job.eta_seconds() is None
    now = timezone.now()
    job.status = GenerationJob.Status.RUNNING
    job.started_at = now - timedelta(seconds=30)
    job.done, job.failed = 2, 1
    assert job.eta_seconds(now=now) == pytest.approx(10)
    job.status = GenerationJob.Status.SUCCEEDED
    assert job.eta_seconds(now=now) is None


@pytest.mark.django_db
def test_job_page_shows_time_left(client, editor):
    job = request(editor, count=4)
    GenerationJob.objects.filter(pk=job.pk).update(
        status=GenerationJob.Status.RUNNING, done=2,
        started_at=timezone.now() - timedelta(minutes=10),
    )
    client.force_login(editor)
    html = client.get(f"/jobs/{job.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert "Time left" in html
    assert re.search(r"about (9|10)\W+minutes", html)  # 2 of 4 in 10 minutes


# --- Bulk requests -----------------------------------------------------------------------------

@pytest.mark.django_db
def test_job_request_queries_and_messages_do_not_grow_per_draft(
    editor, settings, sent, django_capture_on_commit_callbacks
):
    settings.COPYDESK_CHUNK_SIZE = 64
    version = ModelVersionFactory(name="worker-model")
    ProductFactory.create_batch(300)
    queries = []
    for count in (30, 300):
        products = Product.objects.order_by("pk")[:count]
        with django_capture_on_commit_callbacks(execute=True), \
                CaptureQueriesContext(connection) as captured:
            generation_job_request(products=products, kinds=["description", "title"],
                                   params={}, user=editor, model_version=version)
        queries.append(len(captured))
    # Batched inserts: the count grows by batches of hundreds of rows, never per draft.
    assert queries[1] < 40, queries
    job = GenerationJob.objects.order_by("-pk").first()
    assert job.total == 600 and job.chunks.count() == 10
    assert [n for j, n in sent if j == job.pk] == list(range(10))  # sent after commit
    assert JobChunk.objects.filter(job=job, sent_at__isnull=True).count() == 0
    assert sorted(JobChunk.objects.filter(job=job).values_list("size", flat=True)) == (
        [24] + [64] * 9)


# --- The sweeper -------------------------------------------------------------------------------

@pytest.mark.django_db
def test_sweeper_resends_stalled_chunks_only(editor, settings, sent):
    settings.COPYDESK_CHUNK_SIZE = 2
    settings.COPYDESK_CHUNK_STALL_SECONDS = 600
    job = request(editor, count=6)
    sent.clear()
    for number in (0, 1):
        generation_chunk_claim(job_id=job.pk, number=number, worker="dead")
    JobChunk.objects.filter(number=0).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    report = generation_jobs_resume()
    assert report.stalled == {job.pk: [0]} and report.unsent == {}
    assert sent == [(job.pk, 0)]
    chunk = JobChunk.objects.get(number=0)
    assert chunk.status == JobChunk.Status.QUEUED and chunk.sent_at is not None
    assert JobChunk.objects.get(number=1).status == JobChunk.Status.RUNNING


@pytest.mark.django_db
def test_chunks_of_a_job_requested_while_the_broker_was_down_are_sent_later(
    editor, monkeypatch, django_capture_on_commit_callbacks
):
    def broker_down(*args):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(generation_worker.generate_chunk, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        job = request(editor, count=2)
    job.refresh_from_db()
    assert job.status == GenerationJob.Status.QUEUED
    assert "broker is unavailable" in job.error
    assert JobChunk.objects.get(job=job).sent_at is None

    sent = []
    monkeypatch.setattr(generation_worker.generate_chunk, "delay", lambda j, c: sent.append((j, c)))
    assert generation_jobs_resume(unsent_grace_seconds=60).sent == 0  # too young yet
    call_command("resume_jobs", "--unsent-grace-seconds", "0")
    assert sent == [(job.pk, 0)]
    job.refresh_from_db()
    assert job.error == ""
    assert JobChunk.objects.get(job=job).sent_at is not None


@pytest.mark.django_db
@pytest.mark.parametrize("depth, resent", [(0, True), (3, False), (None, False)])
def test_sweeper_resends_sent_chunks_only_when_the_broker_queue_is_empty(
    editor, settings, sent, depth, resent
):
    # A broker restarted without persistence forgets queued messages; an empty queue while
    # chunks still wait says so. A long queue, or a broker that cannot answer, resends nothing.
    settings.COPYDESK_CHUNK_SIZE = 2
    job = request(editor, count=6)
    JobChunk.objects.update(sent_at=timezone.now() - timedelta(minutes=20))
    generation_chunk_claim(job_id=job.pk, number=0, worker="alive")
    sent.clear()
    report = generation_jobs_resume(lost_seconds=600, queue_depth=lambda: depth)
    assert report.lost == ({job.pk: [1, 2]} if resent else {})
    assert sent == ([(job.pk, 1), (job.pk, 2)] if resent else [])
    JobChunk.objects.update(sent_at=timezone.now())
    sent.clear()
    assert generation_jobs_resume(lost_seconds=600, queue_depth=lambda: 0).lost == {}
    assert sent == []


@pytest.mark.django_db
def test_a_chunk_that_keeps_killing_workers_fails_its_drafts(editor, settings, sent):
    settings.COPYDESK_CHUNK_MAX_ATTEMPTS = 2
    job = request(editor, count=2)
    for _ in range(2):
        generation_chunk_claim(job_id=job.pk, number=0, worker="oom")
        JobChunk.objects.update(heartbeat_at=timezone.now() - timedelta(hours=1))
    sent.clear()
    report = generation_jobs_resume()
    assert report.given_up == 1 and sent == []
    job.refresh_from_db()
    assert (job.status, job.failed) == (GenerationJob.Status.FAILED, 2)
    assert set(Draft.objects.values_list("state", flat=True)) == {Draft.State.FAILED}
    assert "stopped each time it generated this chunk" in Draft.objects.first().error


@pytest.mark.django_db
def test_sweeper_leaves_cancelled_jobs_alone(editor, sent):
    job = request(editor, count=2)
    generation_chunk_claim(job_id=job.pk, number=0, worker="w")
    JobChunk.objects.update(heartbeat_at=timezone.now() - timedelta(hours=1), sent_at=None)
    generation_job_cancel(job=job, user=editor)
    sent.clear()
    report = generation_jobs_resume(stall_seconds=0, unsent_grace_seconds=0)
    assert (report.stalled, report.unsent, sent) == ({}, {}, [])


def test_beat_runs_the_sweeper_on_the_default_queue():
    entry = settings.CELERY_BEAT_SCHEDULE["resume-stalled-jobs"]
    assert entry["task"] == sweeper_worker.resume_jobs.name
    assert app.amqp.router.route({}, sweeper_worker.resume_jobs.name)["queue"].name == "default"
    assert app.amqp.router.route({}, generation_worker.generate_chunk.name)["queue"].name == "gpu"


# --- A real worker, killed -----------------------------------------------------------------------

def half_done_chunk(job):
    """A chunk that has stored some of its drafts and not all (the worker is mid-chunk)."""
    for number in job.chunks.values_list("number", flat=True):
        statuses = list(job.items.filter(chunk=number).values_list("status", flat=True))
        if JobItem.Status.DONE in statuses and JobItem.Status.PENDING in statuses:
            return number
    return None


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_chunk_loses_nothing(tiny_model_dir, tmp_path, settings):
    # No serialized rollback: the seeded rows may be gone after other transactional tests, so
    # the one content kind needed is made here.
    ContentKind.objects.get_or_create(code="description", defaults={
        "label": "Description", "instructions": "Describe the product.", "max_new_tokens": 200})
    # This process's producer keeps the broker folder it was first given (an earlier test may
    # have set one): the workers use the same folder.
    folder = (app.conf.broker_transport_options or {}).get("data_folder_in")
    earlier = folder and Path(folder).parent != Path(settings.BROKER_DIR)
    broker_dir = Path(folder).parent if earlier else tmp_path / "broker"
    use_broker_dir(broker_dir)
    app.control.purge()
    settings.COPYDESK_CHUNK_SIZE = 4
    log_dir = settings.VAR_DIR / "test-logs"
    log_dir.mkdir(exist_ok=True)
    env = {"COPYDESK_ENGINE_SLICE": "1", "COPYDESK_TORCH_THREADS": "1"}
    model_version_register(name="tiny-killed", path=str(tiny_model_dir),
                           source=ModelVersion.Source.LOCAL, make_default=True)
    ProductFactory.create_batch(8)

    first = Worker(broker_dir, log_dir / f"killed-{os.getpid()}.log", env).start()
    try:
        job = generation_job_request(
            products=Product.objects.all(), kinds=["description"], user=None,
            params={"do_sample": False, "max_new_tokens": 48},
        )
        number = wait_until(lambda: half_done_chunk(job), 120, "a half-done chunk")
        first.kill()
    finally:
        first.stop()
    lost = JobChunk.objects.get(job=job, number=number)
    assert lost.status == JobChunk.Status.RUNNING
    assert job.items.filter(chunk=number, status=JobItem.Status.PENDING).exists()

    report = generation_jobs_resume(stall_seconds=0)
    assert report.stalled == {job.pk: [number]}
    second = Worker(broker_dir, log_dir / f"resumed-{os.getpid()}.log", env).start()
    try:
        wait_until(lambda: GenerationJob.objects.get(pk=job.pk).is_finished, 180,
                   "the job to finish")
    finally:
        second.stop()

    job.refresh_from_db()
    assert (job.status, job.done, job.failed, job.total) == (
        GenerationJob.Status.SUCCEEDED, 8, 0, 8), job.error
    for draft in Draft.objects.filter(job_items__job=job):
        # Greedy decoding: exactly one candidate per draft, whoever generated it.
        assert list(draft.candidates.values_list("job_id", "index")) == [(job.pk, 0)]
        assert Revision.objects.filter(draft=draft).count() == 1
        assert draft.state == Draft.State.READY
    assert JobChunk.objects.get(job=job, number=number).attempts == 2
    assert set(job.chunks.values_list("status", flat=True)) == {JobChunk.Status.DONE}
