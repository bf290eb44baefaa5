"""The one bridge between the ORM and the generation core: load rows, call the engine, hand the
results to editorial services. Retries and failure handling live here, logic does not."""

from __future__ import annotations

import logging
import os
import socket
import time
import zlib

from celery import shared_task
from django.conf import settings

from editorial.examples import approved_example_map, examples_json
from editorial.facts import brand_rules, kind_spec, product_facts
from editorial.models import GenerationJob, JobItem
from editorial.services import (
    ItemOutcome,
    generation_chunk_claim,
    generation_chunk_finish,
    generation_chunk_heartbeat,
    generation_jobs_resume,
    generation_results_store,
)

from .drafting import DraftSpec, Recipe, draft_requests, rank_candidates
from .params import GenerationParams

logger = logging.getLogger(__name__)


def request_seed(base_seed: int, sku: str, kind: str) -> int:
    """A seed per draft that does not depend on database ids, so a catalog re-imported elsewhere
    regenerates the same text."""
    return (zlib.crc32(f"{sku}\x1f{kind}".encode()) ^ base_seed) & 0xFFFFFFFF


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def slice_size(engine, params: GenerationParams) -> int:
    """Requests per engine call: ``COPYDESK_ENGINE_SLICE`` if set, else one engine batch worth
    of rows, so a GPU batch stays full while the chunk still beats and stores between calls."""
    configured = settings.COPYDESK_ENGINE_SLICE
    if configured > 0:
        return configured
    rows = getattr(engine, "max_batch_rows", 32)
    return max(1, rows // params.sampled)


def _prompt_chars(prompt: list[dict]) -> int:
    return sum(len(m.get("content", "")) for m in prompt)


def run_chunk(*, job_id: int, chunk: int, worker: str = "") -> int:
    """Generate every pending item of one chunk; returns how many items it stored.

    The chunk is claimed first, then generated in slices (engine calls of a few requests):
    before each slice the worker beats the chunk's heartbeat and stops if the job was cancelled
    or the chunk was handed to another worker; after each slice the results are stored, so
    progress is current and a killed worker loses at most one slice."""
    from .engine import get_engine

    claim = generation_chunk_claim(job_id=job_id, number=chunk, worker=worker or worker_name())
    if claim is None:
        logger.info("job %s chunk %s skipped: finished, cancelled or held by another worker",
                    job_id, chunk)
        return 0
    job = GenerationJob.objects.select_related("model_version").get(pk=job_id)
    items = list(
        JobItem.objects.filter(job=job, chunk=chunk, status=JobItem.Status.PENDING)
        .select_related("draft__product__brand", "draft__kind")
        .order_by("pk")
    )
    started = time.perf_counter()
    params = GenerationParams.from_dict(job.params)
    recipe = Recipe(prompt_format=job.model_version.prompt_format)
    examples = approved_example_map(drafts=[item.draft for item in items])
    specs = []
    for item in items:
        draft = item.draft
        chosen = examples.get(draft.pk, [])
        specs.append((item, chosen, DraftSpec(
            facts=product_facts(draft.product),
            kind=kind_spec(draft.kind),
            brand=brand_rules(draft.product.brand),
            examples=[(example.facts, example.text) for example in chosen],
            seed=request_seed(params.seed, draft.product.sku, draft.kind_id),
            max_new_tokens=min(params.max_new_tokens, draft.kind.max_new_tokens),
        )))
    stored = 0
    try:
        engine = get_engine(job.model_version.path, settings.COPYDESK_DEVICE)
    except Exception as exc:  # a model that cannot load fails the drafts with the reason
        logger.exception("job %s chunk %s: model failed to load", job_id, chunk)
        prepared = [(item, [], spec.seed, chosen) for item, chosen, spec in specs]
        stored += generation_results_store(job=job, outcomes=_failed(prepared, exc))
        generation_chunk_finish(claim=claim)
        return stored
    # A stand-in engine in tests may have no tokenizer: then there is no token budget.
    requests = draft_requests([spec for _, _, spec in specs], recipe=recipe,
                              sampled=params.sampled,
                              tokenizer=getattr(engine, "tokenizer", None))
    prepared = [
        (item, prompt.stored(), request, spec, chosen)
        for (item, chosen, spec), (prompt, request) in zip(specs, requests, strict=True)
    ]
    # Similar lengths together, as the engine would batch them had it the whole chunk.
    prepared.sort(key=lambda p: (p[2].max_new_tokens, _prompt_chars(p[1]), p[0].pk))
    size = slice_size(engine, params)
    for start in range(0, len(prepared), size):
        if not generation_chunk_heartbeat(claim=claim):
            logger.info("job %s chunk %s stopped: cancelled, finished or taken over",
                        job_id, chunk)
            return stored
        part = prepared[start:start + size]
        try:
            results = engine.generate([request for _, _, request, _, _ in part], params)
        except Exception as exc:  # any model failure is recorded on the drafts
            logger.exception("job %s chunk %s failed", job_id, chunk)
            outcomes = _failed([(item, stored_prompt, request.seed, chosen)
                                for item, stored_prompt, request, _, chosen in part], exc)
        else:
            outcomes = []
            for (item, stored_prompt, request, spec, chosen), result in zip(part, results,
                                                                            strict=True):
                best = rank_candidates([c.text for c in result.candidates],
                                       [c.completion_tokens for c in result.candidates],
                                       spec, keep=params.candidates)
                outcomes.append(ItemOutcome(
                    item_id=item.pk,
                    messages=stored_prompt,
                    texts=[c.text for c in best],
                    completion_tokens=[c.completion_tokens for c in best],
                    prompt_tokens=result.prompt_tokens,
                    seconds=result.seconds,
                    seed=request.seed,
                    examples=examples_json(chosen),
                    example_facts=[example.facts for example in chosen],
                ))
        stored += generation_results_store(job=job, outcomes=outcomes)
    generation_chunk_finish(claim=claim)
    logger.info("job %s chunk %s: %d drafts in %.1fs", job_id, chunk, stored,
                time.perf_counter() - started)
    return stored


def _failed(prepared, exc: Exception) -> list[ItemOutcome]:
    """``prepared``: (item, stored prompt, seed, examples) of each draft that failed."""
    return [
        ItemOutcome(item_id=item.pk, messages=messages, texts=[], completion_tokens=[],
                    prompt_tokens=0, seconds=0.0, seed=seed, examples=examples_json(chosen),
                    error=f"Generation failed: {type(exc).__name__}: {exc}")
        for item, messages, seed, chosen in prepared
    ]


def run_job_inline(*, job_id: int) -> None:
    """Run every chunk in this process, for `generate --inline` and tests without a worker."""
    chunks = (
        JobItem.objects.filter(job_id=job_id).values_list("chunk", flat=True).distinct()
    )
    for chunk in sorted(set(chunks)):
        run_chunk(job_id=job_id, chunk=chunk, worker=f"inline:{os.getpid()}")


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def generate_chunk(job_id: int, chunk: int) -> int:
    try:
        return run_chunk(job_id=job_id, chunk=chunk)
    except Exception as exc:
        # Model failures are recorded per draft inside run_chunk; this is everything else
        # (database, bugs), shown on the job page rather than only in the worker log. The chunk
        # stays claimed; the sweeper sends it again once its heartbeat is stale.
        GenerationJob.objects.filter(pk=job_id).update(
            error=f"chunk {chunk}: {type(exc).__name__}: {exc}"[:2000]
        )
        raise


def gpu_queue_depth() -> int | None:
    """Messages waiting in the broker's generation queue, or None when the broker cannot say
    (unreachable, or tasks run eagerly)."""
    from copydesk.celery import app

    if app.conf.task_always_eager:
        return None
    queue = app.amqp.router.route({}, generate_chunk.name)["queue"].name
    try:
        with app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1)
            # A plain declare: kombu's passive one refuses an empty Redis queue as missing.
            return connection.default_channel.queue_declare(queue=queue).message_count
    except Exception as exc:  # the broker clients raise many kinds
        logger.warning("could not read the %s queue depth: %s", queue, exc)
        return None


@shared_task(ignore_result=True)
def resume_jobs() -> str:
    """The periodic sweeper (see CELERY_BEAT_SCHEDULE): stalled, unsent and lost chunks are
    sent again."""
    report = generation_jobs_resume()
    if report.sent or report.given_up or report.finished or report.runs or report.runs_failed:
        logger.info("resume_jobs: %s", report.summary())
    return report.summary()


# --- Fine-tuning ----------------------------------------------------------------------------------


def finetune_output_dir(name: str):
    """Where run ``name`` saves its model: directly inside the model folder's ``finetuned``,
    checked again here because a save deletes what is there (a run recorded before the name
    rules, or written to the database by hand, must not reach anywhere else)."""
    from pathlib import Path

    from .finetune import output_dir_in

    return output_dir_in(Path(settings.COPYDESK_MODEL_DIR) / "finetuned", name)


# How often a phase without optimizer steps (an evaluation) beats the run's heartbeat: far
# below COPYDESK_FINETUNE_STALL_SECONDS, far above the cost of one UPDATE.
FINETUNE_BEAT_SECONDS = 15.0


def run_finetune(*, run_id: int) -> int | None:
    """Fine-tune one queued run: its training data from the approved edits, the core's
    training loop with progress written to the run, then the new model version registered.
    Returns the new model version's id (None when the run was not queued: a redelivery)."""
    from editorial.services import (
        finetune_run_data,
        finetune_run_fail,
        finetune_run_finish,
        finetune_run_phase,
        finetune_run_progress,
        finetune_run_start,
    )

    from .finetune import FineTuneConfig, finetune

    run = finetune_run_start(run_id=run_id)
    if run is None:
        logger.info("fine-tune run %s skipped: not queued", run_id)
        return None
    started = time.perf_counter()
    try:
        train, validation, data_hash = finetune_run_data(run=run)
        if not train:
            raise ValueError("No approved drafts in the train split match this run's filters.")
        config = FineTuneConfig.from_dict(run.hyperparameters)
        output = finetune_output_dir(run.name)
        last_write = [0.0]

        def progress(step: int, total: int, loss: float) -> None:
            now = time.perf_counter()
            if step == total or now - last_write[0] >= 0.5:
                last_write[0] = now
                finetune_run_progress(run_id=run_id, step=step, total_steps=total, loss=loss)

        last_phase = [run.phase, time.perf_counter()]

        def on_phase(phase: str) -> None:
            now = time.perf_counter()
            if phase != last_phase[0] or now - last_phase[1] >= FINETUNE_BEAT_SECONDS:
                last_phase[:] = [phase, now]
                finetune_run_phase(run_id=run_id, phase=phase)

        result = finetune(
            base_path=run.base.path, output_dir=output, train=train, validation=validation,
            config=config, device=settings.COPYDESK_DEVICE, progress=progress,
            on_phase=on_phase,
        )
    except Exception as exc:  # recorded on the run, shown in the UI
        logger.exception("fine-tune run %s failed", run_id)
        finetune_run_fail(run_id=run_id, error=f"{type(exc).__name__}: {exc}")
        return None
    version = finetune_run_finish(
        run_id=run_id, output_dir=result.output_dir, metrics=result.metrics(),
        data_hash=data_hash, train_records=result.train_records,
        validation_records=result.validation_records,
    )
    logger.info("fine-tune run %s: %s in %.1fs", run_id, version.name,
                time.perf_counter() - started)
    return version.pk


# Fine-tuning is long: its own limits, below the Redis visibility timeout (2 h).
@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             soft_time_limit=105 * 60, time_limit=110 * 60)
def finetune_model(run_id: int) -> int | None:
    return run_finetune(run_id=run_id)
