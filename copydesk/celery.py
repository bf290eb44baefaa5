import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "copydesk.settings")

app = Celery("copydesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
# The tasks live in editorial/workers/, not in a "tasks" module per app.
app.autodiscover_tasks(["editorial.workers"], related_name=None)
