"""Celery tasks: the bridge between the queue and the rest. Each takes ids, loads rows, calls
the pure core (``generation``) and stores through ``editorial.services``; retries and failure
handling live here, logic does not.

``generation`` and ``finetune`` run on the ``gpu`` queue, ``exports`` and ``sweeper`` on
``default`` (``CELERY_TASK_ROUTES``). The web process imports a worker module only to send its
task, so none loads torch at import: the model code loads inside the task."""

from importlib import import_module

MODULES = ("editorial.workers.exports", "editorial.workers.finetune",
           "editorial.workers.generation", "editorial.workers.sweeper")


def register() -> None:
    for module in MODULES:
        import_module(module)
