"""The periodic sweeper (``CELERY_BEAT_SCHEDULE``, or ``manage.py resume_jobs`` from cron)."""

from __future__ import annotations

import logging

from celery import shared_task

from ..services import generation_jobs_resume

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def resume_jobs() -> str:
    """The periodic sweeper (see CELERY_BEAT_SCHEDULE): stalled, unsent and lost chunks are
    sent again."""
    report = generation_jobs_resume()
    if report.sent or report.given_up or report.finished or report.runs or report.runs_failed:
        logger.info("resume_jobs: %s", report.summary())
    return report.summary()
