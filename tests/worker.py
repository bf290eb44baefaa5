"""A real Celery worker process for integration tests, on whatever broker and database the
suite runs against (Redis + PostgreSQL in CI's first pass, filesystem + SQLite in the second)."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlparse

from django.conf import settings
from django.db import connection

from copydesk.celery import app
from copydesk.settings import filesystem_broker_options

ROOT = Path(__file__).resolve().parent.parent


def database_url_for_tests() -> str:
    """The URL of the test database pytest-django created, for processes started by a test."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    user = quote(db.get("USER") or "")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{user}{password}@{host}{port}/{db['NAME']}"


def require_broker() -> None:
    """A test that needs the broker fails with a clear message when it is down; never skips."""
    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis://"):
        return
    parsed = urlparse(url)
    try:
        socket.create_connection((parsed.hostname, parsed.port or 6379), timeout=3).close()
    except OSError as exc:
        raise AssertionError(f"Redis broker at {url} is not reachable: {exc}") from exc


def wait_until(predicate, timeout: float, what: str):
    """``predicate()``'s first truthy value, polled until ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Worker:
    def __init__(self, broker_dir: Path | None, log_path: Path, extra_env: dict | None = None):
        self.broker_dir = broker_dir
        self.log_path = log_path
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen | None = None
        self.lines: queue.Queue[str] = queue.Queue()

    def start(self, timeout: float = 90) -> Worker:
        require_broker()
        env = {**os.environ, "DATABASE_URL": database_url_for_tests(),
               "CELERY_BROKER_URL": settings.CELERY_BROKER_URL, **self.extra_env}
        if self.broker_dir is not None:
            env["COPYDESK_BROKER_DIR"] = str(self.broker_dir)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "copydesk", "worker", "-Q", "gpu,default",
             "--pool=solo", "--concurrency=1", "--prefetch-multiplier=1", "-l", "info",
             "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited early:\n{self.log_path.read_text()}")
            try:
                if "ready." in self.lines.get(timeout=1):
                    return self
            except queue.Empty:
                continue
        raise AssertionError(f"worker not ready in {timeout}s:\n{self.log_path.read_text()}")

    def _pump(self) -> None:
        with self.log_path.open("w") as log:
            for line in self.process.stdout:
                log.write(line)
                log.flush()
                self.lines.put(line)

    @property
    def pid(self) -> int:
        assert self.process is not None, "worker not started"
        return self.process.pid

    def kill(self) -> None:
        """``kill -9``: the worker gets no chance to acknowledge, requeue or clean up."""
        os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def use_broker_dir(broker_dir: Path) -> None:
    """Point this process's producer at a private filesystem-broker folder, so a developer's
    running demo worker never steals the test's messages. Call before this process first talks
    to the broker: connections read the options when the pool creates them."""
    if not settings.CELERY_BROKER_URL.startswith("filesystem://"):
        return
    app.conf.broker_transport_options = filesystem_broker_options(broker_dir)


class RedisServer:
    """A private redis-server on a free loopback port that a test may stop and start again
    (the suite's shared Redis is never touched). Like CI's Redis it keeps nothing on disk, so
    a restart loses every queued message."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = _free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise AssertionError("redis-server is not installed (apt-get install redis-server)")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder), "--daemonize", "no"],
            stdout=(self.folder / "redis.log").open("a"), stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ping():
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"redis-server did not start on port {self.port}:\n"
                             f"{(self.folder / 'redis.log').read_text()}")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _forget_producer_pools() -> None:
    # Not closed: kombu keeps each pool in a process-wide registry by broker address, and a
    # closed one would be handed back to the next user of that address.
    app._pool = None
    app.amqp._producer_pool = None


@contextmanager
def producer_on(broker_url: str):
    """Send this process's task messages to ``broker_url`` for the duration (the request views
    and the sweeper publish from the test process). The read and write URLs are set because
    Celery prefers a ``CELERY_BROKER_URL`` environment variable (CI sets one) to ``broker_url``."""
    names = ("broker_read_url", "broker_write_url", "broker_transport_options")
    saved = {name: app.conf.get(name) for name in names}
    _forget_producer_pools()
    app.conf.broker_read_url = app.conf.broker_write_url = broker_url
    app.conf.broker_transport_options = {"visibility_timeout": 2 * 60 * 60}
    try:
        yield
    finally:
        _forget_producer_pools()
        for name, value in saved.items():
            app.conf[name] = value
