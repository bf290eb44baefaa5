"""OpenMP's wait policy, chosen before torch loads (libgomp reads it once, at start-up).

After each parallel region libgomp's threads spin for a while before they sleep. On cores that
other processes need (the web server, the database, a second worker) that spinning made decoding
3-7x slower on a shared 2-core machine, so there threads wait passively. A worker given its own
cores (``COPYDESK_TORCH_THREADS`` set) keeps libgomp's default: on an idle 2-core machine it made
the engine 34% and batch-1 decoding 56% faster than passive waiting (benchmarks/RESULTS.md).
An ``OMP_WAIT_POLICY`` already in the environment always wins.
"""

import os


def choose_wait_policy() -> None:
    if os.environ.get("COPYDESK_TORCH_THREADS", "").strip():
        return
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
