"""The one bridge between the ORM and the generation core: load rows, call the engine, hand the
results to editorial services. Retries and failure handling live here, logic does not."""

from __future__ import annotations

import logging
import time
import zlib

from celery import shared_task
from django.conf import settings

from editorial.facts import brand_rules, kind_spec, product_facts
from editorial.models import GenerationJob, JobItem
from editorial.services import (
    ItemOutcome,
    generation_job_mark_running,
    generation_results_store,
)

from .params import GenerationParams
from .prompts import build_messages

logger = logging.getLogger(__name__)


def request_seed(base_seed: int, sku: str, kind: str) -> int:
    """A seed per draft that does not depend on database ids, so a catalog re-imported elsewhere
    regenerates the same text."""
    return (zlib.crc32(f"{sku}\x1f{kind}".encode()) ^ base_seed) & 0xFFFFFFFF


def run_chunk(*, job_id: int, chunk: int) -> int:
    """Generate every pending item of one chunk; returns how many items it handled."""
    from .engine import GenerationRequest, get_engine

    if not generation_job_mark_running(job_id=job_id):
        logger.info("job %s chunk %s skipped: job finished or cancelled", job_id, chunk)
        return 0
    job = GenerationJob.objects.select_related("model_version").get(pk=job_id)
    items = list(
        JobItem.objects.filter(job=job, chunk=chunk, status=JobItem.Status.PENDING)
        .select_related("draft__product__brand", "draft__kind")
        .order_by("pk")
    )
    if not items:
        return 0
    params = GenerationParams.from_dict(job.params)
    prepared = []
    for item in items:
        draft = item.draft
        messages = build_messages(
            facts=product_facts(draft.product),
            kind=kind_spec(draft.kind),
            brand=brand_rules(draft.product.brand),
        )
        seed = request_seed(params.seed, draft.product.sku, draft.kind_id)
        max_new = min(params.max_new_tokens, draft.kind.max_new_tokens)
        prepared.append((item, messages, GenerationRequest(
            messages=messages, candidates=params.candidates, seed=seed, max_new_tokens=max_new,
        )))
    started = time.perf_counter()
    try:
        engine = get_engine(job.model_version.path, settings.COPYDESK_DEVICE)
        results = engine.generate([request for _, _, request in prepared], params)
    except Exception as exc:  # any model failure is recorded on the drafts
        logger.exception("job %s chunk %s failed", job_id, chunk)
        outcomes = [
            ItemOutcome(item_id=item.pk, messages=messages, texts=[], completion_tokens=[],
                        prompt_tokens=0, seconds=0.0, seed=request.seed,
                        error=f"Generation failed: {type(exc).__name__}: {exc}")
            for item, messages, request in prepared
        ]
    else:
        outcomes = [
            ItemOutcome(
                item_id=item.pk,
                messages=messages,
                texts=[c.text for c in result.candidates],
                completion_tokens=[c.completion_tokens for c in result.candidates],
                prompt_tokens=result.prompt_tokens,
                seconds=result.seconds,
                seed=request.seed,
            )
            for (item, messages, request), result in zip(prepared, results, strict=True)
        ]
    generation_results_store(job=job, outcomes=outcomes)
    logger.info("job %s chunk %s: %d drafts in %.1fs", job_id, chunk, len(items),
                time.perf_counter() - started)
    return len(items)


def run_job_inline(*, job_id: int) -> None:
    """Run every chunk in this process, for `generate --inline` and tests without a worker."""
    chunks = (
        JobItem.objects.filter(job_id=job_id).values_list("chunk", flat=True).distinct()
    )
    for chunk in sorted(set(chunks)):
        run_chunk(job_id=job_id, chunk=chunk)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def generate_chunk(job_id: int, chunk: int) -> int:
    try:
        return run_chunk(job_id=job_id, chunk=chunk)
    except Exception as exc:
        # Model failures are recorded per draft inside run_chunk; this is everything else
        # (database, bugs), shown on the job page rather than only in the worker log.
        GenerationJob.objects.filter(pk=job_id).update(
            error=f"chunk {chunk}: {type(exc).__name__}: {exc}"[:2000]
        )
        raise
