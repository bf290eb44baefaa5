import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "copydesk.settings")

app = Celery("copydesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
