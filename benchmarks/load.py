"""Load: simulated editors against gunicorn + PostgreSQL on loopback, bounded in time.

Each simulated editor (a thread with its own session) loops over its own drafts: open the
queue, open a draft, save a new text, submit it, approve it (the users hold the Editor and
Reviewer roles), as the browser does it (htmx requests, CSRF header), pausing ``--think``
seconds on average before each action as a person reading and typing does. Afterwards the revisions
in the database are counted against the saves the server acknowledged.

    .venv/bin/python benchmarks/load.py [--users 50] [--seconds 60] [--workers 4 --threads 1]

Needs PostgreSQL on 127.0.0.1 (``--database-url``, default a scratch database
``copydesk_load`` that is created and dropped). The last line is
``errors: N lost: M p95_ms: X`` (errors: 5xx responses and failed requests; lost: acknowledged
saves without a stored revision). Targets on a 2-core machine: zero errors, zero lost,
p95 < 300 ms.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "load-Copydesk-1"
BASE_RE = re.compile(r'name="base_revision_id"[^>]*value="(\d+)"')
REVIEWED_RE = re.compile(r'name="revision_id"[^>]*value="(\d+)"')
SAVED_RE = re.compile(r"Saved revision (\d+)\.")


def _args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--drafts-per-user", type=int, default=4)
    parser.add_argument("--think", type=float, default=2.0,
                        help="mean seconds an editor spends between two actions (reading, "
                             "typing); uniform in [0.5x, 1.5x]; 0 = back to back")
    # The README's production command: sync workers. Threaded workers (--threads > 1) pin each
    # keep-alive connection to one process, whose GIL then serialises most of the load while
    # the other process idles (p95 1.2-3.2 s with 2 x 8 vs ~0.2-0.3 s with 4 x 1 here).
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=1,
                        help="gunicorn threads per worker (1: sync workers)")
    parser.add_argument("--database-url",
                        default="postgres://postgres@127.0.0.1:5432/copydesk_load")
    return parser.parse_args(argv)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _recreate_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _drop_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    with psycopg.connect(parsed._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.path.lstrip("/")}" WITH (FORCE)')


def _seed(users: int, drafts_per_user: int) -> list[tuple[str, list[int]]]:
    """Users with both roles, each assigned its own drafts with a first revision."""
    import django

    django.setup()
    from django.contrib.auth.models import Group, User

    from editorial.models import ContentKind, Draft, Product, Revision

    groups = list(Group.objects.filter(name__in=["Editor", "Reviewer"]))
    kind = ContentKind.objects.get(code="description")
    plan = []
    for u in range(users):
        user = User.objects.create_user(f"load{u:03d}", password=PASSWORD)
        user.groups.set(groups)
        ids = []
        for d in range(drafts_per_user):
            product = Product.objects.create(sku=f"LOAD-{u:03d}-{d}", title=f"Kettle {u}-{d}",
                                             attributes={"capacity": "1.7 L"})
            draft = Draft.objects.create(product=product, kind=kind, state="in_edit",
                                         assignee=user)
            revision = Revision.objects.create(draft=draft, number=1, author=user,
                                               text="A kettle for every kitchen.")
            Draft.objects.filter(pk=draft.pk).update(current_revision=revision)
            ids.append(draft.pk)
        plan.append((user.username, ids))
    return plan


class Editor(threading.Thread):
    def __init__(self, base: str, username: str, drafts: list[int], start: threading.Event,
                 seconds: float, think: float):
        super().__init__(daemon=True)
        import random

        import requests

        self.base, self.username, self.drafts = base, username, drafts
        self.start_event, self.seconds, self.think = start, seconds, think
        self.logged_in = threading.Event()
        self.random = random.Random(username)
        self.session = requests.Session()
        # The proxy in front of gunicorn would terminate TLS and say so.
        self.session.headers["X-Forwarded-Proto"] = "https"
        self.latencies: list[float] = []
        self.by_action: dict[str, list[float]] = {}
        self.statuses: Counter = Counter()
        self.failures = 0
        self.saves_acknowledged = 0

    def _request(self, method: str, path: str, action: str = "", **kwargs):
        if self.think:
            time.sleep(self.random.uniform(0.5, 1.5) * self.think)
        started = time.perf_counter()
        try:
            response = self.session.request(method, self.base + path, timeout=30,
                                            allow_redirects=False, **kwargs)
        except Exception as exc:
            self.failures += 1
            print(f"{self.username}: {method} {path} failed: {exc!r}", file=sys.stderr)
            return None
        elapsed = time.perf_counter() - started
        self.latencies.append(elapsed)
        self.by_action.setdefault(action or f"{method} {path}", []).append(elapsed)
        self.statuses[response.status_code] += 1
        # Cookies are marked Secure (production settings) and this is plain HTTP on loopback.
        for cookie in self.session.cookies:
            cookie.secure = False
        return response

    def _post(self, path: str, data: dict, action: str):
        token = self.session.cookies.get("csrftoken", "")
        return self._request("POST", path, action, data=data,
                             headers={"HX-Request": "true", "X-CSRFToken": token,
                                      "Referer": self.base.replace("http:", "https:", 1) + path})

    def _log_in(self) -> bool:
        self.session.get(self.base + "/accounts/login/", timeout=120)
        for cookie in self.session.cookies:
            cookie.secure = False
        response = self.session.post(
            self.base + "/accounts/login/", timeout=120, allow_redirects=False,
            data={"username": self.username, "password": PASSWORD},
            headers={"X-CSRFToken": self.session.cookies.get("csrftoken", ""),
                     "Referer": self.base.replace("http:", "https:", 1) + "/accounts/login/"})
        for cookie in self.session.cookies:
            cookie.secure = False
        if response.status_code != 302:
            print(f"{self.username}: login answered {response.status_code}", file=sys.stderr)
        return response.status_code == 302

    def run(self) -> None:
        # Logging in (a deliberately slow password hash) is the ramp-up, not the measurement.
        try:
            ok = self._log_in()
        except Exception as exc:
            print(f"{self.username}: login failed: {exc!r}", file=sys.stderr)
            ok = False
        self.logged_in.set()
        if not ok:
            self.failures += 1
            return
        self.start_event.wait()
        deadline = time.monotonic() + self.seconds
        turn = 0
        while time.monotonic() < deadline:
            draft = self.drafts[turn % len(self.drafts)]
            turn += 1
            self._request("GET", "/drafts/", "queue")
            page = self._request("GET", f"/drafts/{draft}/", "draft")
            found = BASE_RE.search(page.text) if page is not None else None
            if not found:
                continue
            text = f"A kettle for every kitchen, take {turn} by {self.username}."
            saved = self._post(f"/drafts/{draft}/save/",
                               {"text": text, "base_revision_id": found.group(1)}, "save")
            if saved is None or saved.status_code != 200 or not SAVED_RE.search(saved.text):
                continue
            self.saves_acknowledged += 1
            self._post(f"/drafts/{draft}/submit/", {}, "submit")
            page = self._request("GET", f"/drafts/{draft}/", "draft")
            found = REVIEWED_RE.search(page.text) if page is not None else None
            if found:
                self._post(f"/drafts/{draft}/review/",
                           {"decision": "approve", "revision_id": found.group(1)}, "approve")


def main(argv=None) -> int:
    args = _args(argv)
    env = {**os.environ, "DATABASE_URL": args.database_url, "DEBUG": "0",
           "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "127.0.0.1",
           "DJANGO_SETTINGS_MODULE": "copydesk.settings"}
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    _recreate_database(args.database_url)
    server = None
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env,
                       check=True)
        plan = _seed(args.users, args.drafts_per_user)
        port = _free_port()
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "copydesk.wsgi",
             "-b", f"127.0.0.1:{port}", "--workers", str(args.workers),
             "--threads", str(args.threads), "--log-level", "warning",
             # gunicorn closes idle keep-alive connections after 2 s by default, which races
             # a client that pauses about that long (a reset on its next request); a proxy
             # in front keeps connections open longer too.
             "--keep-alive", "30"],
            cwd=ROOT, env=env,
        )
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        go = threading.Event()
        editors = [Editor(base, name, drafts, go, args.seconds, args.think)
                   for name, drafts in plan]
        for editor in editors:
            editor.start()
        for editor in editors:
            editor.logged_in.wait(300)
        started = time.monotonic()
        go.set()
        for editor in editors:
            editor.join(args.seconds + 60)
        elapsed = time.monotonic() - started

        from editorial.models import ReviewDecision, Revision

        approvals = ReviewDecision.objects.filter(decision="approve").count()
        acknowledged = sum(e.saves_acknowledged for e in editors)
        stored = Revision.objects.filter(number__gt=1).count()
        latencies = sorted(x for e in editors for x in e.latencies)
        statuses = sum((e.statuses for e in editors), Counter())
        errors = sum(n for code, n in statuses.items() if code >= 500) + sum(
            e.failures for e in editors)
        quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0] * 99
        print(f"users {args.users}, {elapsed:.0f} s, think time {args.think:g} s, gunicorn "
              f"{args.workers} workers x {args.threads} threads, PostgreSQL, DEBUG=0")
        print(f"requests {len(latencies)} ({len(latencies) / elapsed:.1f}/s, logins not "
              f"counted), statuses "
              f"{dict(sorted(statuses.items()))}")
        print(f"latency ms: p50 {quantiles[49] * 1000:.0f}, p95 {quantiles[94] * 1000:.0f}, "
              f"p99 {quantiles[98] * 1000:.0f}")
        by_action: dict[str, list[float]] = {}
        for editor in editors:
            for action, values in editor.by_action.items():
                by_action.setdefault(action, []).extend(values)
        for action, values in sorted(by_action.items()):
            values.sort()
            print(f"  {action:8} n {len(values):4}  p50 {values[len(values) // 2] * 1000:5.0f} ms"
                  f"  p95 {values[int(len(values) * 0.95)] * 1000:5.0f} ms")
        print(f"saves acknowledged {acknowledged}, revisions stored {stored}, approvals "
              f"{approvals}")
        print(f"errors: {errors} lost: {max(0, acknowledged - stored)} "
              f"p95_ms: {quantiles[94] * 1000:.0f}")
        return 0
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        from django.db import connections

        connections.close_all()
        _drop_database(args.database_url)


if __name__ == "__main__":
    raise SystemExit(main())
