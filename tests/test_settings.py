"""Settings come from the environment, with defaults that run on a bare laptop."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def settings_in_subprocess(env: dict, expression: str) -> subprocess.CompletedProcess:
    code = ("import django; django.setup(); from django.conf import settings; "
            f"print({expression})")
    clean = {k: v for k, v in os.environ.items()
             if k not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL",
                          "CELERY_BROKER_URL", "COPYDESK_MODEL_DIR", "COPYDESK_TRUSTED_PROXIES"}}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
        env={**clean, "DJANGO_SETTINGS_MODULE": "copydesk.settings", **env},
    )


@pytest.mark.django_db
def test_sqlite_runs_in_wal_mode_so_the_web_reads_while_a_worker_writes():
    if connection.vendor != "sqlite":
        pytest.skip("WAL is SQLite's; CI's SQLite pass runs this")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"


def test_defaults_need_no_server_and_keep_debug_off(tmp_path):
    result = settings_in_subprocess(
        {"COPYDESK_VAR_DIR": str(tmp_path)},
        "settings.DATABASES['default']['ENGINE'], settings.CELERY_BROKER_URL, "
        "settings.COPYDESK_MODEL_DIR, settings.DEBUG",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"django.db.backends.sqlite3 filesystem:// {tmp_path / 'models'} False"
    )


def test_the_local_demo_scripts_turn_debug_on_for_the_web_server_only():
    """Debug pages and static files from runserver are for `make run` and `make web`."""
    run = (ROOT / "scripts" / "run.sh").read_text()
    assert 'DEBUG="${DEBUG:-1}" .venv/bin/python manage.py runserver' in run
    assert "DEBUG" not in next(line for line in run.splitlines() if "celery" in line)
    makefile = (ROOT / "Makefile").read_text()
    web = makefile[makefile.index("\nweb:"):].split("\n\n")[0]
    assert "DEBUG=$${DEBUG:-1} $(BIN)/python manage.py runserver" in web


def test_production_variables_are_read_from_the_environment(tmp_path):
    result = settings_in_subprocess(
        {"COPYDESK_VAR_DIR": str(tmp_path), "DEBUG": "0", "SECRET_KEY": "x" * 60,
         "ALLOWED_HOSTS": "copy.example.com", "COPYDESK_MODEL_DIR": "/srv/models",
         "DATABASE_URL": "postgres://copy:pw@db.internal:5432/copydesk",
         "CELERY_BROKER_URL": "redis://redis.internal:6379/0"},
        "settings.DATABASES['default']['HOST'], settings.DATABASES['default']['NAME'], "
        "settings.CELERY_BROKER_URL, settings.ALLOWED_HOSTS, settings.COPYDESK_MODEL_DIR, "
        "settings.DEBUG, settings.SESSION_COOKIE_SECURE",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "db.internal copydesk redis://redis.internal:6379/0 ['copy.example.com'] /srv/models "
        "False True"
    )


def test_without_a_secret_key_one_is_made_once_kept_private_and_shared_by_every_process(
        tmp_path):
    """gunicorn's workers start at the same moment and must all sign with the same key; no
    published development key is ever used."""
    code = ("import django; django.setup(); from django.conf import settings; "
            "print(settings.SECRET_KEY)")
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    env = {**clean, "DJANGO_SETTINGS_MODULE": "copydesk.settings",
           "COPYDESK_VAR_DIR": str(tmp_path)}
    starting = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for _ in range(6)]
    keys = set()
    for process in starting:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        keys.add(out.strip())
    assert len(keys) == 1
    key = keys.pop()
    assert len(key) >= 50 and "insecure" not in key
    path = tmp_path / "secret_key"
    assert path.read_text().strip() == key
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir() if "secret" in p.name] == ["secret_key"]
    # A later start reuses it, with DEBUG on or off.
    later = settings_in_subprocess({"COPYDESK_VAR_DIR": str(tmp_path), "DEBUG": "1"},
                                   "settings.SECRET_KEY")
    assert later.stdout.strip() == key
    # A key file others can read is refused rather than used.
    path.chmod(0o644)
    exposed = settings_in_subprocess({"COPYDESK_VAR_DIR": str(tmp_path)}, "1")
    assert exposed.returncode != 0 and "chmod 600" in exposed.stderr


def test_a_secret_key_from_the_environment_wins_and_writes_nothing(tmp_path):
    result = settings_in_subprocess({"COPYDESK_VAR_DIR": str(tmp_path), "SECRET_KEY": "k" * 60},
                                    "settings.SECRET_KEY")
    assert result.stdout.strip() == "k" * 60
    assert not (tmp_path / "secret_key").exists()


def test_proxy_headers_are_believed_only_when_a_proxy_is_configured(tmp_path):
    expression = "settings.SECURE_PROXY_SSL_HEADER, settings.COPYDESK_TRUSTED_PROXIES"
    production = {"COPYDESK_VAR_DIR": str(tmp_path), "DEBUG": "0", "SECRET_KEY": "x" * 60}
    alone = settings_in_subprocess(production, expression)
    assert alone.returncode == 0, alone.stderr
    assert alone.stdout.strip() == "None []"
    proxied = settings_in_subprocess(
        {**production, "COPYDESK_TRUSTED_PROXIES": "10.0.0.5, fd00::/8"}, expression)
    assert proxied.stdout.strip() == "('HTTP_X_FORWARDED_PROTO', 'https') ['10.0.0.5', 'fd00::/8']"
    typo = settings_in_subprocess({**production, "COPYDESK_TRUSTED_PROXIES": "10.0.0.300"}, "1")
    assert typo.returncode != 0
    assert "'10.0.0.300' is not an IP address or network" in typo.stderr


def test_filesystem_broker_writes_nothing_outside_its_folder(tmp_path):
    """kombu keeps its exchange tables in ``./control`` unless told otherwise: a worker started
    from the checkout used to leave them in the repository."""
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    code = ("import django; django.setup(); from copydesk.celery import app; "
            "app.send_task('editorial.workers.generation.generate_chunk', args=[0], queue='gpu')")
    clean = {k: v for k, v in os.environ.items() if k not in {"CELERY_BROKER_URL", "DATABASE_URL"}}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True,
        env={**clean, "DJANGO_SETTINGS_MODULE": "copydesk.settings", "PYTHONPATH": str(ROOT),
             "COPYDESK_VAR_DIR": str(tmp_path / "var")},
    )
    assert result.returncode == 0, result.stderr
    assert list(workdir.iterdir()) == []
    assert (tmp_path / "var" / "broker" / "control" / "gpu.exchange").exists()
    assert len(list((tmp_path / "var" / "broker" / "queue").iterdir())) == 1


def test_a_redis_cache_url_gives_every_process_one_cache(tmp_path):
    """Rate limits (API generation requests) count in the default cache: with several web
    processes they only hold if the processes share it."""
    env = {"COPYDESK_VAR_DIR": str(tmp_path), "COPYDESK_CACHE_URL": "redis://127.0.0.1:6379/14"}
    key = f"copydesk-test-{os.getpid()}"
    setter = settings_in_subprocess(
        env, f"__import__('django.core.cache').core.cache.cache.set('{key}', 'shared', 30)")
    assert setter.returncode == 0, setter.stderr
    getter = settings_in_subprocess(
        env, f"__import__('django.core.cache').core.cache.cache.get('{key}')")
    assert getter.returncode == 0, getter.stderr
    assert getter.stdout.strip() == "shared"


def test_an_unsupported_cache_url_is_refused_with_the_reason(tmp_path):
    result = settings_in_subprocess(
        {"COPYDESK_VAR_DIR": str(tmp_path), "COPYDESK_CACHE_URL": "memcached://cache:11211"}, "1")
    assert result.returncode != 0
    assert "only redis://, rediss:// or unix:// URLs are supported" in result.stderr
