"""What the services ask of the Celery broker: send a worker task, and how many generation
chunks wait in its queue.

Tasks are sent by name from the app's registry (every process registers the workers' tasks
when Django is ready, ``EditorialConfig.ready``), so the services never import
``editorial.workers``, which call the services."""

from __future__ import annotations

import logging

from copydesk.celery import app

logger = logging.getLogger(__name__)

GENERATE_CHUNK = "editorial.workers.generation.generate_chunk"
FINETUNE_MODEL = "editorial.workers.finetune.finetune_model"
RUN_EXPORT = "editorial.workers.exports.run_export"


def send(task_name: str, *args) -> None:
    """``task.delay(*args)`` for the registered task: its routes and options, run in-process
    when tasks run eagerly. Raises whatever the broker client raises when it is down."""
    app.tasks[task_name].delay(*args)


def gpu_queue_depth() -> int | None:
    """Messages waiting in the broker's generation queue, or None when the broker cannot say
    (unreachable, or tasks run eagerly)."""
    if app.conf.task_always_eager:
        return None
    queue = app.amqp.router.route({}, GENERATE_CHUNK)["queue"].name
    try:
        with app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1)
            # A plain declare: kombu's passive one refuses an empty Redis queue as missing.
            return connection.default_channel.queue_declare(queue=queue).message_count
    except Exception as exc:  # the broker clients raise many kinds
        logger.warning("could not read the %s queue depth: %s", queue, exc)
        return None
