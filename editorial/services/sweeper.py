"""Recovering work a worker or the broker lost: re-sending chunks and fine-tunes, giving up on
stuck ones."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_noop

from .. import broker
from ..audit import audit_log
from ..models import FineTuneRun, GenerationJob, JobChunk, JobItem
from .chunks import ItemOutcome, generation_job_finish_if_complete, generation_results_store
from .finetune import enqueue_finetune
from .generation_jobs import enqueue_chunks

logger = logging.getLogger(__name__)


@dataclass
class ResumeReport:
    """What ``generation_jobs_resume`` did: chunks sent again (by job id), chunks given up
    (their items failed) and jobs closed."""

    stalled: dict[int, list[int]] = field(default_factory=dict)
    unsent: dict[int, list[int]] = field(default_factory=dict)
    lost: dict[int, list[int]] = field(default_factory=dict)
    runs: list[int] = field(default_factory=list)  # fine-tune runs sent again
    runs_failed: list[int] = field(default_factory=list)  # fine-tunes whose worker died
    given_up: int = 0
    finished: int = 0
    sent: int = 0

    def summary(self) -> str:
        stalled = sum(len(v) for v in self.stalled.values())
        unsent = sum(len(v) for v in self.unsent.values())
        lost = sum(len(v) for v in self.lost.values())
        return (f"{stalled} stalled, {unsent} unsent and {lost} lost chunk(s) sent again "
                f"({self.sent} messages), {self.given_up} chunk(s) given up, "
                f"{self.finished} job(s) closed, {len(self.runs)} fine-tune run(s) sent again, "
                f"{len(self.runs_failed)} failed (worker lost)")


def generation_jobs_resume(
    *, stall_seconds: float | None = None, unsent_grace_seconds: float = 60,
    lost_seconds: float | None = None, queue_depth=None, user=None,
) -> ResumeReport:
    """The sweeper (Celery beat and ``manage.py resume_jobs``): finds the work that no worker
    will do and sends it again.

    * a running chunk whose heartbeat is older than ``stall_seconds`` (default
      ``COPYDESK_CHUNK_STALL_SECONDS``): its worker died or was killed. After
      ``COPYDESK_CHUNK_MAX_ATTEMPTS`` claims its pending items fail instead (a chunk that kills
      every worker must not loop for ever);
    * a queued chunk never sent (the broker was down when the job was requested) whose job is
      older than ``unsent_grace_seconds``;
    * a queued chunk sent more than ``lost_seconds`` ago (default the stall time) while the
      broker's gpu queue is empty: its message was lost (a broker restarted without
      persistence). ``queue_depth`` (default ``broker.gpu_queue_depth``) asks the
      broker; while it cannot answer nothing is resent, and a long queue is never doubled;
    * a job left running with nothing pending is closed;
    * a fine-tune run still queued because the broker was down when it was requested (older
      than ``unsent_grace_seconds``), or whose message was lost (queued longer than
      ``lost_seconds`` while the gpu queue is empty), is sent again; a running one without a
      heartbeat for ``COPYDESK_FINETUNE_STALL_SECONDS`` is failed.

    Safe to run at any time and from several places: each chunk is taken back with a
    conditional update, and workers write idempotently."""
    stall = settings.COPYDESK_CHUNK_STALL_SECONDS if stall_seconds is None else stall_seconds
    now = timezone.now()
    report = ResumeReport()
    active = [GenerationJob.Status.QUEUED, GenerationJob.Status.RUNNING]
    stalled = JobChunk.objects.filter(
        status=JobChunk.Status.RUNNING, heartbeat_at__lt=now - timedelta(seconds=stall),
        job__status__in=active,
    ).values_list("pk", "job_id", "number", "attempts", "heartbeat_at")
    for chunk_id, job_id, number, attempts, heartbeat_at in stalled:
        if attempts >= settings.COPYDESK_CHUNK_MAX_ATTEMPTS:
            if _chunk_give_up(chunk_id=chunk_id, job_id=job_id, number=number,
                              attempts=attempts, heartbeat_at=heartbeat_at):
                report.given_up += 1
            continue
        taken = JobChunk.objects.filter(
            pk=chunk_id, status=JobChunk.Status.RUNNING, heartbeat_at=heartbeat_at
        ).update(status=JobChunk.Status.QUEUED, claim="", sent_at=None)
        if taken:
            report.stalled.setdefault(job_id, []).append(number)
    unsent = JobChunk.objects.filter(
        status=JobChunk.Status.QUEUED, sent_at__isnull=True, job__status__in=active,
        job__created_at__lt=now - timedelta(seconds=unsent_grace_seconds),
    ).values_list("job_id", "number")
    for job_id, number in unsent:
        if number not in report.stalled.get(job_id, ()):
            report.unsent.setdefault(job_id, []).append(number)
    lost = settings.COPYDESK_CHUNK_STALL_SECONDS if lost_seconds is None else lost_seconds
    waiting = list(JobChunk.objects.filter(
        status=JobChunk.Status.QUEUED, sent_at__lt=now - timedelta(seconds=lost),
        job__status__in=active,
    ).values_list("job_id", "number"))
    if queue_depth is None:
        queue_depth = broker.gpu_queue_depth
    # Asked at most once, and only when something waits.
    broker_empty = functools.cache(lambda: queue_depth() == 0)
    if waiting and broker_empty():
        for job_id, number in waiting:
            report.lost.setdefault(job_id, []).append(number)
    for job_id in sorted(set(report.stalled) | set(report.unsent) | set(report.lost)):
        numbers = sorted(report.stalled.get(job_id, []) + report.unsent.get(job_id, [])
                         + report.lost.get(job_id, []))
        report.sent += enqueue_chunks(job_id, numbers)
        audit_log(actor=user, verb="job.resume", obj=GenerationJob(pk=job_id),
                  stalled=report.stalled.get(job_id, []), unsent=report.unsent.get(job_id, []),
                  lost=report.lost.get(job_id, []))
    running = GenerationJob.objects.filter(status=GenerationJob.Status.RUNNING).exclude(
        pk__in=JobItem.objects.filter(status=JobItem.Status.PENDING).values("job_id")
    ).values_list("pk", flat=True)
    for job_id in running:
        generation_job_finish_if_complete(job_id=job_id)
        report.finished += 1
    report.runs = _finetune_runs_resume(
        unsent_before=now - timedelta(seconds=unsent_grace_seconds),
        lost_before=now - timedelta(seconds=lost), broker_empty=broker_empty,
    )
    report.runs_failed = _finetune_runs_fail_stalled(
        before=now - timedelta(seconds=settings.COPYDESK_FINETUNE_STALL_SECONDS))
    return report


def _finetune_runs_fail_stalled(*, before) -> list[int]:
    """Fail the running fine-tunes whose worker stopped beating before ``before``: the message
    a dead worker held finds the run claimed, so nobody would ever finish it."""
    stalled = list(FineTuneRun.objects.filter(
        status=FineTuneRun.Status.RUNNING, heartbeat_at__lt=before,
    ).values_list("pk", "heartbeat_at"))
    failed = []
    for run_id, heartbeat_at in stalled:
        if FineTuneRun.objects.filter(
            pk=run_id, status=FineTuneRun.Status.RUNNING, heartbeat_at=heartbeat_at
        ).update(
            status=FineTuneRun.Status.FAILED, finished_at=timezone.now(),
            error=gettext_noop("The worker stopped while fine-tuning (killed, or out of memory); "
                               "no progress since then. Start the run again."),
        ):
            logger.warning("fine-tune run %s failed: no heartbeat since %s", run_id,
                           heartbeat_at)
            failed.append(run_id)
    return failed


def _finetune_runs_resume(*, unsent_before, lost_before, broker_empty) -> list[int]:
    """Fine-tune runs sent again: those the broker was down for, and those whose message it
    lost. A run's claim (``finetune_run_start``) takes it only once, so a second message for
    a run that did arrive does nothing."""
    queued = FineTuneRun.objects.filter(status=FineTuneRun.Status.QUEUED)
    unsent = list(queued.filter(error__startswith=FineTuneRun.BROKER_DOWN,
                                created_at__lt=unsent_before).values_list("pk", flat=True))
    waiting = list(queued.filter(error="", created_at__lt=lost_before)
                   .values_list("pk", flat=True))
    lost = waiting if waiting and broker_empty() else []
    return [run_id for run_id in sorted(unsent + lost) if enqueue_finetune(run_id)]


def _chunk_give_up(*, chunk_id: int, job_id: int, number: int, attempts: int, heartbeat_at
                   ) -> bool:
    """Fail the pending items of a chunk that stalled on every attempt."""
    taken = JobChunk.objects.filter(
        pk=chunk_id, status=JobChunk.Status.RUNNING, heartbeat_at=heartbeat_at
    ).update(status=JobChunk.Status.DONE, claim="", finished_at=timezone.now())
    if not taken:
        return False
    error = gettext_noop("A worker stopped each time it generated this chunk (out of memory, or "
                         "killed); it was given up.")
    pending = JobItem.objects.filter(job_id=job_id, chunk=number, status=JobItem.Status.PENDING)
    outcomes = [
        ItemOutcome(item_id=pk, messages=[], texts=[], completion_tokens=[], prompt_tokens=0,
                    seconds=0.0, seed=0, error=error)
        for pk in pending.values_list("pk", flat=True)
    ]
    generation_results_store(job=GenerationJob(pk=job_id), outcomes=outcomes)
    logger.warning("job %s chunk %s given up after %s attempts", job_id, number, attempts)
    return True

