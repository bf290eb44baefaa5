"""Background exports, on the ``default`` queue."""

from celery import shared_task

from .. import exporters


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_export(batch_id: int) -> int:
    """Write a queued background export's file (progress on the batch). A failure is recorded on
    the batch by the service and not retried: the user asks again from the export page."""
    return exporters.export_batch_run(batch_id=batch_id)
