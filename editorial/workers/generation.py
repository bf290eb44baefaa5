"""Generating drafts: one chunk of a job at a time, in slices that beat and store as they go."""

from __future__ import annotations

import logging
import os
import socket
import time
import zlib

from celery import shared_task
from django.conf import settings

from generation.params import GenerationParams

from ..examples import approved_example_map, examples_json
from ..facts import brand_rules, kind_spec, product_facts
from ..models import GenerationJob, JobItem
from ..services import (
    ItemOutcome,
    generation_chunk_claim,
    generation_chunk_finish,
    generation_chunk_heartbeat,
    generation_results_store,
)

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
    # torch: loaded by the worker that generates, not by the web process sending the task.
    from generation.drafting import DraftSpec, Recipe, draft_requests, rank_candidates
    from generation.engine import get_engine

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
