"""Fine-tuning: one queued run on the GPU queue, its progress and phases written to the run."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.conf import settings

from generation.params import FineTuneConfig

from .. import services

logger = logging.getLogger(__name__)


# How often a phase without optimizer steps (an evaluation) beats the run's heartbeat: far
# below COPYDESK_FINETUNE_STALL_SECONDS, far above the cost of one UPDATE.
FINETUNE_BEAT_SECONDS = 15.0


def run_finetune(*, run_id: int) -> int | None:
    """Fine-tune one queued run: its training data from the approved edits, the core's
    training loop with progress written to the run, then the new model version registered.
    Returns the new model version's id (None when the run was not queued: a redelivery)."""
    from generation.finetune import finetune  # torch: only in the worker that trains

    run = services.finetune_run_start(run_id=run_id)
    if run is None:
        logger.info("fine-tune run %s skipped: not queued", run_id)
        return None
    started = time.perf_counter()
    try:
        train, validation, data_hash = services.finetune_run_data(run=run)
        if not train:
            raise ValueError("No approved drafts in the train split match this run's filters.")
        config = FineTuneConfig.from_dict(run.hyperparameters)
        output = services.finetune_output_dir(run.name)
        last_write = [0.0]

        def progress(step: int, total: int, loss: float) -> None:
            now = time.perf_counter()
            if step == total or now - last_write[0] >= 0.5:
                last_write[0] = now
                services.finetune_run_progress(run_id=run_id, step=step, total_steps=total,
                                               loss=loss)

        last_phase = [run.phase, time.perf_counter()]

        def on_phase(phase: str) -> None:
            now = time.perf_counter()
            if phase != last_phase[0] or now - last_phase[1] >= FINETUNE_BEAT_SECONDS:
                last_phase[:] = [phase, now]
                services.finetune_run_phase(run_id=run_id, phase=phase)

        result = finetune(
            base_path=run.base.path, output_dir=output, train=train, validation=validation,
            config=config, device=settings.COPYDESK_DEVICE, progress=progress,
            on_phase=on_phase,
        )
    except Exception as exc:  # recorded on the run, shown in the UI
        logger.exception("fine-tune run %s failed", run_id)
        services.finetune_run_fail(run_id=run_id, error=f"{type(exc).__name__}: {exc}")
        return None
    version = services.finetune_run_finish(
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
