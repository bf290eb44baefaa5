"""Settings come from the environment; the defaults need no server (SQLite, the embedded
broker, everything under ``var/``) and are safe to expose: DEBUG is off unless asked for (`make
run` asks), and no header a client could forge is believed unless its proxy is configured.

Production differs only by environment variables (see the configuration table in README.md).
"""

import os
import secrets
import tempfile
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from copydesk.proxy import trusted_networks

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("COPYDESK_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def secret_key_file(path: Path) -> str:
    """The key kept in ``path``, written there by the first process that needs it.

    Every process of one installation (gunicorn workers, Celery workers, commands) must sign with
    the same key, and they may start at the same moment: the key is written to a private temporary
    file and linked into place, which fails if another process got there first, so the file is
    either absent or complete and whoever loses the race reads the winner's key.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(50) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass
        finally:
            os.unlink(temporary)
    if path.stat().st_mode & 0o077:
        raise ImproperlyConfigured(
            f"{path} can be read by other users; chmod 600 it (or set SECRET_KEY).")
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < 50:
        raise ImproperlyConfigured(f"{path} holds no usable key; delete it to make a new one.")
    return key


DEBUG = env_bool("DEBUG", False)

# Without SECRET_KEY, a key made for this installation and kept in var/ (never a published
# one). Set SECRET_KEY when processes on several machines must share it.
SECRET_KEY = os.environ.get("SECRET_KEY", "") or secret_key_file(VAR_DIR / "secret_key")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    # Form widgets render through TEMPLATES (FORM_RENDERER), so templates/ may override one.
    "django.forms",
    "django_htmx",
    "template_partials",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "editorial",
]

MIDDLEWARE = [
    "copydesk.proxy.TrustedProxyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "editorial.login_limit.LoginRateLimitMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "copydesk.urls"
WSGI_APPLICATION = "copydesk.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "editorial.context_processors.roles",
            ],
        },
    },
]

FORM_RENDERER = "django.forms.renderers.TemplatesSetting"

VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'copydesk.sqlite3'}"),
        # Opening a PostgreSQL connection per request costs more CPU than most pages; a
        # connection kept per worker thread is checked before reuse, so one the server dropped
        # is replaced instead of failing the request.
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while a worker writes; IMMEDIATE makes writers queue on
    # BEGIN instead of failing half-way through a transaction with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # Worker processes in tests must see the same file, so the test database is never in memory;
    # one file per test run, so two runs at once don't trample each other.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-copydesk-{os.getpid()}.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "staticfiles"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "media/"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# The reverse proxies (addresses or networks) in front of the web server. Only requests that come
# from one of them may say, with X-Forwarded-For and X-Forwarded-Proto, who the client is and that
# it used HTTPS; from anyone else those headers are dropped (copydesk/proxy.py).
COPYDESK_TRUSTED_PROXIES = env_list("COPYDESK_TRUSTED_PROXIES", "")
trusted_networks(COPYDESK_TRUSTED_PROXIES)  # a typo stops the start, not a request later
if COPYDESK_TRUSTED_PROXIES:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Celery -----------------------------------------------------------------------------------
BROKER_DIR = Path(os.environ.get("COPYDESK_BROKER_DIR", VAR_DIR / "broker"))
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")


def filesystem_broker_options(broker_dir: Path) -> dict:
    """Transport options that keep every file of kombu's filesystem broker under
    ``broker_dir`` (its exchange tables default to ``./control`` in the working directory)."""
    for sub in ("queue", "processed", "control"):
        (broker_dir / sub).mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(broker_dir / "queue"),
        "data_folder_out": str(broker_dir / "queue"),
        "processed_folder": str(broker_dir / "processed"),
        "control_folder": str(broker_dir / "control"),
        "store_processed": False,
    }


if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = filesystem_broker_options(BROKER_DIR)
else:
    # A generation chunk may take many minutes; the broker must not hand it to another worker
    # before the hard time limit has killed the first.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * 60 * 60}
# Job state lives in the database; nobody reads Celery results.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 60 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 55 * 60
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    # The sweeper must not wait behind generation chunks.
    "editorial.workers.sweeper.*": {"queue": "default"},
    "editorial.workers.exports.*": {"queue": "default"},
    "editorial.workers.generation.*": {"queue": "gpu"},
    "editorial.workers.finetune.*": {"queue": "gpu"},
}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# `celery -A copydesk beat` runs the sweeper; without beat, `manage.py resume_jobs` (cron) does.
COPYDESK_SWEEP_SECONDS = int(os.environ.get("COPYDESK_SWEEP_SECONDS", "60"))
CELERY_BEAT_SCHEDULE = {
    "resume-stalled-jobs": {
        "task": "editorial.workers.sweeper.resume_jobs",
        "schedule": float(COPYDESK_SWEEP_SECONDS),
        "options": {"queue": "default", "expires": float(COPYDESK_SWEEP_SECONDS)},
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Copydesk ---------------------------------------------------------------------------------
COPYDESK_MODEL_DIR = Path(os.environ.get("COPYDESK_MODEL_DIR", VAR_DIR / "models"))
COPYDESK_DEVICE = os.environ.get("COPYDESK_DEVICE", "auto")
# Drafts per worker task: large enough that 100,000 drafts are a few hundred messages and a GPU
# batch stays full, small enough that a lost chunk is little work to redo.
COPYDESK_CHUNK_SIZE = int(os.environ.get("COPYDESK_CHUNK_SIZE", "256"))
# Requests per engine call inside a chunk (heartbeat, cancel check and stored progress between
# calls); 0: one engine batch worth (the engine's max batch rows / candidates).
COPYDESK_ENGINE_SLICE = int(os.environ.get("COPYDESK_ENGINE_SLICE", "0"))
# A running chunk whose heartbeat is older than this is taken to be lost and sent again; it must
# be longer than one engine call takes.
COPYDESK_CHUNK_STALL_SECONDS = int(os.environ.get("COPYDESK_CHUNK_STALL_SECONDS", "600"))
# A chunk that stalled this many times (it kills its worker: out of memory) fails its drafts.
COPYDESK_CHUNK_MAX_ATTEMPTS = int(os.environ.get("COPYDESK_CHUNK_MAX_ATTEMPTS", "3"))
# A running fine-tune whose worker has not reported progress for this long is marked failed
# (its worker was killed or ran out of memory); longer than its slowest step or evaluation.
COPYDESK_FINETUNE_STALL_SECONDS = int(os.environ.get("COPYDESK_FINETUNE_STALL_SECONDS", "1800"))
# Four-eyes rule: nobody approves a revision they wrote.
COPYDESK_FOUR_EYES = env_bool("COPYDESK_FOUR_EYES", False)
COPYDESK_MAX_IMPORT_FIELD_CHARS = int(os.environ.get("COPYDESK_MAX_IMPORT_FIELD_CHARS", "20000"))
# Largest catalog file the import page takes. A request that says it is larger is refused before
# its body is read, and an upload stops as soon as the file passes it (editorial/uploads.py).
COPYDESK_MAX_IMPORT_BYTES = int(os.environ.get("COPYDESK_MAX_IMPORT_BYTES", str(50 * 1024 * 1024)))
# Form fields other than files (an editor's text is at most ~1 MB urlencoded); uploaded files
# above FILE_UPLOAD_MAX_MEMORY_SIZE are spooled to a temporary file, not held in memory.
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = 10

# Failed logins (editorial/login_limit.py; client addresses as copydesk/proxy.py finds them): an
# address that failed COPYDESK_LOGIN_ATTEMPTS times on one user name, or
# COPYDESK_LOGIN_ATTEMPTS_PER_ADDRESS times on any, gets 429 until the window (seconds) passes.
# Once a user name has failed COPYDESK_LOGIN_ATTEMPTS times from all addresses together, the
# addresses that failed on it wait between tries, twice as long after each further failure (at
# most the window); an address that has not failed on it is still let in with the password.
COPYDESK_LOGIN_ATTEMPTS = int(os.environ.get("COPYDESK_LOGIN_ATTEMPTS", "5"))
COPYDESK_LOGIN_ATTEMPTS_PER_ADDRESS = int(
    os.environ.get("COPYDESK_LOGIN_ATTEMPTS_PER_ADDRESS", "50")
)
COPYDESK_LOGIN_WINDOW_SECONDS = int(os.environ.get("COPYDESK_LOGIN_WINDOW_SECONDS", "900"))

# --- Cache ----------------------------------------------------------------------------------
# Rate-limit counters live here. The default is per process; with several web processes set
# COPYDESK_CACHE_URL=redis://host:6379/1 so a limit holds across all of them.
COPYDESK_CACHE_URL = os.environ.get("COPYDESK_CACHE_URL", "")
if COPYDESK_CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": COPYDESK_CACHE_URL}}
elif COPYDESK_CACHE_URL:
    raise ImproperlyConfigured(
        f"COPYDESK_CACHE_URL={COPYDESK_CACHE_URL!r}: only redis://, rediss:// or unix:// URLs "
        "are supported (leave it unset for a per-process cache)."
    )

# --- REST API (/api/v1/, docs at /api/docs/) -------------------------------------------------
# Token (Authorization: Token <key>, made on the account page or in the admin) or the browser
# session; permissions are the UI's (editorial.policies). POST /api/v1/jobs/ is limited per user
# to COPYDESK_API_GENERATION_RATE ("N/second|minute|hour|day"); the counts live in the default
# cache, so give several web processes a shared cache (COPYDESK_CACHE_URL) for one limit.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "editorial.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["editorial.api.permissions.CopydeskPolicy"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "editorial.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "editorial.api.errors.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "generation": os.environ.get("COPYDESK_API_GENERATION_RATE", "60/hour"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Throttles identify anonymous clients by REMOTE_ADDR, which TrustedProxyMiddleware has set;
    # DRF's default would read X-Forwarded-For from anyone.
    "NUM_PROXIES": 0,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Copydesk API",
    "DESCRIPTION": "Products, generation jobs, drafts and the approved-copy feed.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and Redoc from the drf-spectacular-sidecar package's static files: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "editorial.api.schema.add_error_responses",
    ],
}
# Products per POST /api/v1/products/.
COPYDESK_API_MAX_BULK = int(os.environ.get("COPYDESK_API_MAX_BULK", "1000"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
