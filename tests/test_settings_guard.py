"""Guards on the worker settings that reliability depends on: a chunk is acknowledged only after
it is stored, one at a time per GPU worker, and killed by its time limit before the broker gives
it to another worker."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from copydesk.celery import app
from editorial.workers.generation import generate_chunk
from editorial.workers.sweeper import resume_jobs

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, django
django.setup()
from django.conf import settings
from copydesk.celery import app
print(json.dumps({
    "visibility_timeout": app.conf.broker_transport_options.get("visibility_timeout"),
    "time_limit": app.conf.task_time_limit,
    "soft_time_limit": app.conf.task_soft_time_limit,
    "acks_late": app.conf.task_acks_late,
    "reject_on_worker_lost": app.conf.task_reject_on_worker_lost,
    "prefetch": app.conf.worker_prefetch_multiplier,
    "stall": settings.COPYDESK_CHUNK_STALL_SECONDS,
    "sweep": settings.COPYDESK_SWEEP_SECONDS,
}))
"""


@pytest.fixture(scope="module")
def production():
    """The Celery configuration as production loads it (Redis broker, DEBUG off)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "copydesk.settings", "DEBUG": "0",
           "SECRET_KEY": "x" * 50, "ALLOWED_HOSTS": "copy.example.com",
           "CELERY_BROKER_URL": "redis://redis.internal:6379/0"}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_time_limits_are_below_the_brokers_visibility_timeout(production):
    assert production["soft_time_limit"] < production["time_limit"]
    assert production["time_limit"] < production["visibility_timeout"]


def test_chunks_are_acknowledged_late_one_at_a_time(production):
    assert production["acks_late"] is True
    assert production["reject_on_worker_lost"] is True
    assert production["prefetch"] == 1
    assert generate_chunk.acks_late is True
    assert generate_chunk.reject_on_worker_lost is True


def test_generation_goes_to_the_gpu_queue_and_the_sweeper_does_not(production):
    route = app.amqp.router.route
    assert route({}, generate_chunk.name)["queue"].name == "gpu"
    assert route({}, resume_jobs.name)["queue"].name == "default"
    assert app.conf.worker_prefetch_multiplier == 1 and app.conf.task_acks_late is True


def test_the_sweeper_runs_well_within_the_stall_threshold(production):
    assert 0 < production["sweep"] < production["stall"]
    assert production["stall"] < production["visibility_timeout"]
