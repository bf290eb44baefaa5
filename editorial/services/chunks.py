"""The worker's side of a job: claiming chunks, heartbeats, storing candidates, finishing jobs."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_noop

from generation.checks import check_text, is_usable, rank_score
from generation.prompts import ProductFacts

from .. import workflow
from ..audit import audit_log
from ..facts import brand_rules, kind_spec, product_facts
from ..models import Candidate, Draft, GenerationJob, JobChunk, JobItem
from .revisions import revision_create

State = Draft.State


@dataclass
class ChunkClaim:
    """A worker's hold on one chunk; ``token`` tells its heartbeats from a later claim's."""

    chunk_id: int
    job_id: int
    number: int
    token: str


def generation_chunk_claim(*, job_id: int, number: int, worker: str = "") -> ChunkClaim | None:
    """Start (or take over) a chunk. Returns None when it should be skipped: the job is finished
    or cancelled, the chunk is done, or another worker holds it with a fresh heartbeat."""
    now = timezone.now()
    stall = timedelta(seconds=settings.COPYDESK_CHUNK_STALL_SECONDS)
    with transaction.atomic():
        job = GenerationJob.objects.select_for_update().get(pk=job_id)
        if job.is_finished:
            return None
        chunk, _ = JobChunk.objects.select_for_update().get_or_create(job=job, number=number)
        if chunk.status == JobChunk.Status.DONE:
            return None
        if (chunk.status == JobChunk.Status.RUNNING and chunk.heartbeat_at
                and chunk.heartbeat_at > now - stall):
            return None
        if job.status == GenerationJob.Status.QUEUED:
            job.status = GenerationJob.Status.RUNNING
            job.started_at = now
            job.save(update_fields=["status", "started_at"])
        chunk.status = JobChunk.Status.RUNNING
        chunk.claim = uuid.uuid4().hex
        chunk.worker = worker[:200]
        chunk.claimed_at = chunk.heartbeat_at = now
        chunk.attempts += 1
        chunk.save(update_fields=["status", "claim", "worker", "claimed_at", "heartbeat_at",
                                  "attempts"])
    return ChunkClaim(chunk_id=chunk.pk, job_id=job_id, number=number, token=chunk.claim)


def generation_chunk_heartbeat(*, claim: ChunkClaim) -> bool:
    """Stamp the chunk as alive. False means stop: the job was cancelled or finished, or the
    sweeper gave the chunk to another worker."""
    beat = JobChunk.objects.filter(
        pk=claim.chunk_id, claim=claim.token, status=JobChunk.Status.RUNNING
    ).update(heartbeat_at=timezone.now())
    if not beat:
        return False
    return GenerationJob.objects.filter(
        pk=claim.job_id, status=GenerationJob.Status.RUNNING
    ).exists()


def generation_chunk_finish(*, claim: ChunkClaim) -> None:
    """Mark the chunk done once none of its items is pending (a stopped chunk stays running
    for the sweeper, unless its job is finished anyway)."""
    if JobItem.objects.filter(
        job_id=claim.job_id, chunk=claim.number, status=JobItem.Status.PENDING
    ).exists():
        return
    JobChunk.objects.filter(pk=claim.chunk_id).update(
        status=JobChunk.Status.DONE, finished_at=timezone.now()
    )


@dataclass
class ItemOutcome:
    """What the generation core produced for one job item, ready to store."""

    item_id: int
    messages: list[dict]
    texts: list[str]
    completion_tokens: list[int]
    prompt_tokens: int
    seconds: float
    seed: int
    error: str = ""
    examples: list[dict] = field(default_factory=list)
    # The facts of those examples' products: their names and values must not turn up in the
    # candidates (``check_text(examples=...)``).
    example_facts: list[ProductFacts] = field(default_factory=list)


def generation_results_store(*, job: GenerationJob, outcomes: Sequence[ItemOutcome]) -> int:
    """Store candidates for finished items and advance the job, in one transaction holding the
    job row lock; returns how many items it stored.

    A cancelled (or otherwise finished) job stores nothing. Idempotent: an item that is not
    pending any more is skipped, and the candidate unique constraint drops repeats, so a
    redelivered chunk writes nothing twice."""
    if not outcomes:
        return 0
    done = failed = tokens = 0
    seconds = 0.0
    with transaction.atomic():
        locked_job = GenerationJob.objects.select_for_update().get(pk=job.pk)
        if locked_job.is_finished:
            return 0
        items = {
            item.pk: item
            for item in JobItem.objects.select_for_update(of=("self",)).filter(
                pk__in=[o.item_id for o in outcomes], job=locked_job,
                status=JobItem.Status.PENDING,
            )
        }
        # One lock query, in primary key order, so two workers never wait on each other in a
        # circle.
        drafts = {
            d.pk: d
            for d in Draft.objects.select_for_update(of=("self",))
            .select_related("product__brand", "kind")
            .filter(pk__in=[i.draft_id for i in items.values()]).order_by("pk")
        }
        for outcome in outcomes:
            item = items.get(outcome.item_id)
            if item is None:
                continue
            draft = drafts[item.draft_id]
            item.attempts += 1
            if outcome.error or not outcome.texts:
                item.status = JobItem.Status.FAILED
                item.error = outcome.error or gettext_noop("The model returned no text.")
                item.save(update_fields=["status", "error", "attempts", "updated_at"])
                if draft.current_revision_id is None:
                    draft.state = State.FAILED
                    draft.error = item.error
                    draft.save(update_fields=["state", "error", "updated_at"])
                failed += 1
                continue
            _candidates_create(job=locked_job, draft=draft, outcome=outcome)
            item.status = JobItem.Status.DONE
            item.save(update_fields=["status", "attempts", "updated_at"])
            done += 1
            tokens += sum(outcome.completion_tokens)
            seconds += outcome.seconds
        if done or failed:
            GenerationJob.objects.filter(pk=locked_job.pk).update(
                done=F("done") + done,
                failed=F("failed") + failed,
                tokens_generated=F("tokens_generated") + tokens,
                generation_seconds=F("generation_seconds") + seconds,
            )
            generation_job_finish_if_complete(job_id=locked_job.pk)
    return done + failed


def _candidates_create(*, job: GenerationJob, draft: Draft, outcome: ItemOutcome) -> None:
    """Store the outcome's candidates, flagged, ranked and each judged usable; the draft's
    ``usable`` becomes its best candidate's. Call inside a transaction holding the draft row
    lock."""
    facts = product_facts(draft.product)
    rules = brand_rules(draft.product.brand)
    spec = kind_spec(draft.kind)
    rows = []
    for index, (text, completion_tokens) in enumerate(
        zip(outcome.texts, outcome.completion_tokens, strict=True)
    ):
        flags = check_text(text, facts=facts, kind=spec, brand=rules,
                           examples=outcome.example_facts)
        flag_dicts = [f.to_dict() for f in flags]
        rows.append(
            Candidate(
                draft=draft,
                job=job,
                index=index,
                text=text,
                prompt=outcome.messages,
                examples=outcome.examples,
                params=job.params,
                seed=outcome.seed,
                model_version_id=job.model_version_id,
                prompt_tokens=outcome.prompt_tokens,
                completion_tokens=completion_tokens,
                generation_ms=int(outcome.seconds * 1000 / max(len(outcome.texts), 1)),
                flags=flag_dicts,
                flagged=Candidate.flagged_by(flag_dicts),
                usable=is_usable(flags),
                score=rank_score(flags),
            )
        )
    # Best first: fewest and mildest flags, then the model's own order.
    for rank, row in enumerate(sorted(rows, key=lambda c: (-c.score, c.index))):
        row.rank = rank
        if rank == 0:
            draft.usable = row.usable
    Candidate.objects.bulk_create(rows, ignore_conflicts=True)
    if draft.current_revision_id is None:
        best = Candidate.objects.filter(draft=draft, job=job).order_by("rank").first()
        revision = revision_create(
            draft=draft, text=best.text, author=None, parent=None, candidate=best
        )
        draft.current_revision = revision
    ready = workflow.target("generated", draft.state)
    if ready != draft.state:
        draft.state = ready
        draft.error = ""
    draft.save(update_fields=["current_revision", "state", "error", "usable", "updated_at"])


def generation_job_finish_if_complete(*, job_id: int) -> None:
    with transaction.atomic():
        job = GenerationJob.objects.select_for_update().get(pk=job_id)
        if job.is_finished:
            return
        if JobItem.objects.filter(job=job, status=JobItem.Status.PENDING).exists():
            return
        if job.failed == 0:
            job.status = GenerationJob.Status.SUCCEEDED
        elif job.done == 0:
            job.status = GenerationJob.Status.FAILED
        else:
            job.status = GenerationJob.Status.PARTIAL
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "finished_at"])
        JobChunk.objects.filter(job=job).exclude(status=JobChunk.Status.DONE).update(
            status=JobChunk.Status.DONE, finished_at=job.finished_at
        )
        audit_log(actor=None, verb="job.finish", obj=job, status=job.status, done=job.done,
                  failed=job.failed)

