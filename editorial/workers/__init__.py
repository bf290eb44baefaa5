"""Celery tasks: the bridge between the queue and the rest. Each takes ids, loads rows, calls
the pure core (``generation``) and stores through ``editorial.services``; retries and failure
handling live here, logic does not.

``generation`` and ``finetune`` run on the ``gpu`` queue, ``exports`` and ``sweeper`` on
``default`` (``CELERY_TASK_ROUTES``)."""

from . import exports, finetune, generation, sweeper

__all__ = ["exports", "finetune", "generation", "sweeper"]
