"""Asking for drafts: generation jobs and their chunks, cancelling, retrying and regenerating one
draft."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from generation.params import GenerationParams

from .. import broker, policies, search, selectors, workflow
from ..audit import audit_log
from ..exceptions import WorkflowError
from ..models import ContentKind, Draft, GenerationJob, JobChunk, JobItem, ModelVersion, Product
from ._rows import in_batches, insert_rows, locked_draft, product_ids_of
from .model_versions import ready_model_version

logger = logging.getLogger(__name__)

State = Draft.State


def generation_job_request(
    *,
    products: Iterable[Product] | QuerySet,
    kinds: Sequence[str],
    params: dict,
    user,
    model_version: ModelVersion | None = None,
    enqueue: bool = True,
) -> GenerationJob:
    """Create a job with one item per product × kind and, unless ``enqueue`` is off (the
    caller runs it in-process), send its chunks to the workers after commit.

    Bulk work: a catalog of 100,000 products is a handful of batched inserts and one message per
    chunk (``COPYDESK_CHUNK_SIZE`` drafts), not a query or a message per draft.

    Raises ``generation.params.InvalidParams`` or ``WorkflowError`` before anything is written.
    """
    if user is not None:
        policies.check_generate(user)
    checked = GenerationParams.from_dict(params)
    kind_rows = list(ContentKind.objects.filter(code__in=kinds))
    unknown = sorted(set(kinds) - {k.code for k in kind_rows})
    if unknown or not kinds:
        known = ", ".join(ContentKind.objects.values_list("code", flat=True))
        raise WorkflowError(
            gettext("Unknown content kind(s): %(unknown)s; choose from %(known)s.")
            % {"unknown": ", ".join(unknown) or gettext("(none given)"), "known": known}
        )
    model_version = ready_model_version(model_version)
    product_ids = product_ids_of(products)
    if not product_ids:
        raise WorkflowError(gettext("No products selected."))

    with transaction.atomic():
        kind_codes = [k.code for k in kind_rows]
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        # Drafts that exist already (another job made them) are kept as they are.
        for batch in in_batches(product_ids):
            _drafts_insert(batch, kind_codes=kind_codes, now=now)
        position = {k.code: k.position for k in kind_rows}
        draft_ids: list[int] = []
        for batch in in_batches(product_ids):
            rows = Draft.objects.filter(product_id__in=batch, kind__in=kind_codes).values_list(
                "pk", "product_id", "kind_id"
            )
            draft_ids += [pk for pk, _, _ in sorted(rows, key=lambda r: (r[1], position[r[2]]))]
        job = _job_create(
            draft_ids=draft_ids, kinds=kind_codes, params=checked, user=user,
            model_version=model_version, enqueue=enqueue,
        )
    return job


def _drafts_insert(product_ids: list[int], *, kind_codes: list[str], now) -> None:
    """A new draft per product and kind, with what it copies from its product and kind for the
    queue (``Draft.save`` does it for one draft): SKU, title, brand and the kind's position are
    taken by the database,
    only the Han/kana grams are sent. Sent as values, the texts of 100,000 drafts took longer
    than the rest of the job request; copied by an UPDATE after the INSERT, every draft was
    written (and indexed) twice."""
    grams = []
    for pk, sku, title in Product.objects.filter(pk__in=product_ids).values_list(
            "pk", "sku", "title"):
        words = search.search_grams(search.search_text(sku=sku, title=title, text=""))
        if words:
            grams.append((pk, words))
    if connection.vendor == "postgresql":
        pairs = "SELECT * FROM unnest(%s::bigint[], %s::text[]) AS g(pid, words)"
        pair_params = [[pk for pk, _ in grams], [words for _, words in grams]]
    else:
        pairs = ("SELECT json_extract(value, '$[0]') AS pid, json_extract(value, '$[1]') AS "
                 "words FROM json_each(%s)")
        pair_params = [json.dumps(grams)]
    products = ", ".join(["%s"] * len(product_ids))
    kinds = ", ".join(["%s"] * len(kind_codes))
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO editorial_draft (product_id, kind_id, state, error, created_at, "
            "updated_at, search_text, search_grams, product_brand_id, product_sku, "
            "kind_position) "
            "SELECT p.id, k.code, %s, '', %s, %s, p.sku || %s || p.title || %s, "
            "COALESCE(g.words, ''), p.brand_id, p.sku, k.position "
            f"FROM editorial_product p CROSS JOIN editorial_contentkind k "
            f"LEFT JOIN ({pairs}) g ON g.pid = p.id "
            f"WHERE p.id IN ({products}) AND k.code IN ({kinds}) ON CONFLICT DO NOTHING",
            [State.GENERATING, now, now, search.SEPARATOR, search.SEPARATOR, *pair_params,
             *product_ids, *kind_codes])


def _job_create(
    *,
    draft_ids: Sequence[int],
    kinds: Sequence[str],
    params: GenerationParams,
    user,
    model_version: ModelVersion,
    enqueue: bool,
    verb: str = "job.request",
    **audit_data,
) -> GenerationJob:
    """Call inside a transaction. The job, its items and chunks in bulk; drafts without text
    show as generating (drafts already being edited keep their state and simply receive more
    candidates); the chunks go to the workers after commit."""
    chunk_size = max(1, settings.COPYDESK_CHUNK_SIZE)
    job = GenerationJob.objects.create(
        requested_by=user if user is not None and user.is_authenticated else None,
        model_version=model_version,
        kinds=list(kinds),
        params=params.to_dict(),
        total=len(draft_ids),
    )
    for batch in in_batches(draft_ids):
        Draft.objects.filter(pk__in=batch, current_revision__isnull=True).exclude(
            state=State.GENERATING, error=""
        ).update(state=State.GENERATING, error="")
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    insert_rows(
        JobItem, ["job", "draft", "chunk", "status", "error", "attempts", "updated_at"],
        [(job.pk, draft_id, i // chunk_size, JobItem.Status.PENDING, "", 0, now)
         for i, draft_id in enumerate(draft_ids)],
    )
    chunks = (len(draft_ids) + chunk_size - 1) // chunk_size
    JobChunk.objects.bulk_create(
        [JobChunk(job=job, number=n, size=min(chunk_size, len(draft_ids) - n * chunk_size))
         for n in range(chunks)],
        batch_size=2000,
    )
    audit_log(actor=user, verb=verb, obj=job, total=job.total, kinds=job.kinds,
              model_version=model_version.name, **audit_data)
    if enqueue:
        transaction.on_commit(lambda: enqueue_chunks(job.pk, list(range(chunks))))
    return job


def enqueue_chunks(job_id: int, numbers: Sequence[int]) -> int:
    """Send chunks to the workers and stamp them as sent; returns how many were sent. A broker
    outage is recorded on the job (which stays queued) for ``resume_jobs`` to send later."""
    sent: list[int] = []
    try:
        for number in numbers:
            broker.send(broker.GENERATE_CHUNK, job_id, number)
            sent.append(number)
    except Exception as exc:  # the broker client raises many kinds
        # The job is committed; a broker outage must not turn the request into a 500.
        logger.exception("job %s: could not reach the broker", job_id)
        GenerationJob.objects.filter(pk=job_id).update(
            error=f"{GenerationJob.BROKER_DOWN} ({type(exc).__name__}); "
            "it has not been sent to a worker yet."
        )
    now = timezone.now()
    for batch in in_batches(sent):
        JobChunk.objects.filter(job_id=job_id, number__in=batch).update(sent_at=now)
    if sent and len(sent) == len(numbers):
        GenerationJob.objects.filter(pk=job_id, error__startswith=GenerationJob.BROKER_DOWN).update(
            error=""
        )
    return len(sent)


def generation_job_cancel(*, job: GenerationJob, user) -> GenerationJob:
    """Cancel a job: chunks not started are skipped, and a chunk in flight stores nothing more
    (``generation_results_store`` checks the status under the job row lock)."""
    policies.require(policies.can_generate(user))
    with transaction.atomic():
        locked = GenerationJob.objects.select_for_update().get(pk=job.pk)
        if locked.is_finished:
            return locked
        locked.status = GenerationJob.Status.CANCELLED
        locked.finished_at = timezone.now()
        locked.save(update_fields=["status", "finished_at"])
        pending = JobItem.objects.filter(job=locked, status=JobItem.Status.PENDING)
        Draft.objects.filter(
            pk__in=pending.values("draft_id"), state=State.GENERATING
        ).update(state=State.FAILED, error=gettext_noop("Generation was cancelled."))
        audit_log(actor=user, verb="job.cancel", obj=locked)
    return locked


def draft_retry_generation(*, draft: Draft, user) -> GenerationJob:
    """Generate a failed draft again, alone: a one-draft job with the parameters and model of
    the job that failed (the default ones if that model is gone or there was no job)."""
    if user is not None:
        policies.check_generate(user)
    with transaction.atomic():
        locked = locked_draft(draft)
        workflow.check("retry", locked)
        last = selectors.draft_last_job(draft=locked)
        params = GenerationParams()
        model_version = None
        if last is not None:
            params = GenerationParams.from_dict(last.params)
            if last.model_version.status == ModelVersion.Status.READY:
                model_version = last.model_version
        job = _job_create(
            draft_ids=[locked.pk], kinds=[locked.kind_id], params=params, user=user,
            model_version=ready_model_version(model_version), enqueue=True,
            verb="draft.retry_generation", draft=locked.pk,
        )
    draft.refresh_from_db()
    return job


def draft_regenerate(
    *, draft: Draft, user, params: dict, model_version: ModelVersion | None = None
) -> GenerationJob:
    """New candidates for one draft with other parameters or another model. The draft keeps its
    text and state; the candidates appear next to the old ones when the job is done.

    Raises ``InvalidParams`` or ``WorkflowError`` before anything is written."""
    policies.check_generate(user)
    checked = GenerationParams.from_dict(params)
    model_version = ready_model_version(model_version)
    with transaction.atomic():
        locked = locked_draft(draft)
        job = _job_create(
            draft_ids=[locked.pk], kinds=[locked.kind_id], params=checked, user=user,
            model_version=model_version, enqueue=True, verb="draft.regenerate", draft=locked.pk,
        )
    draft.refresh_from_db()
    return job

