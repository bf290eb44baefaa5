"""Following a worker run (a generation job, a fine-tune) from a command line with ``--wait``."""

from __future__ import annotations

import time
from collections.abc import Callable

from editorial.models import WorkerRun


def follow(write: Callable[[str], None], load: Callable[[], WorkerRun],
           describe: Callable[[WorkerRun], str], *, every: float = 1.0) -> WorkerRun:
    """Reload the run every ``every`` seconds and write its progress line when it changes;
    returns the finished run."""
    last = None
    while True:
        run = load()
        line = describe(run)
        if line != last:
            write(line)
            last = line
        if run.is_finished:
            return run
        time.sleep(every)
