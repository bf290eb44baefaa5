"""Running or following a worker run (a generation job, a fine-tune) from a command line:
``--inline`` runs it in the command's process, ``--wait`` follows the queued run."""

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


def add_mode_arguments(parser, *, follows: str, inline: str) -> None:
    """``--wait`` (help: ``follows``) or ``--inline`` (help: ``inline``), not both."""
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--wait", action="store_true", help=follows)
    mode.add_argument("--inline", action="store_true", help=inline)


def run_or_follow(options: dict, write: Callable[[str], None], *, run_inline: Callable[[], None],
                  queued: str, follow_run: Callable[[], None]) -> None:
    """Run it here with ``--inline``, or say it is ``queued`` and return unless ``--wait``;
    then report the finished run with ``follow_run``."""
    if options["inline"]:
        run_inline()
    elif not options["wait"]:
        write(queued)
        return
    follow_run()
