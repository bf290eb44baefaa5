import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "copydesk.settings")

app = Celery("copydesk")
app.config_from_object("django.conf:settings", namespace="CELERY")


def _worker_modules() -> tuple[str, ...]:
    """The tasks live in editorial/workers/, not in a "tasks" module per app; read once Django
    has loaded the apps."""
    from editorial.workers import MODULES

    return MODULES


app.autodiscover_tasks(_worker_modules, related_name=None)
