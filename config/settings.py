"""Keygrant settings, read from the environment (django-environ).

Every name an operator sets is listed in README.md ("Settings"). A `.env`
file beside manage.py is read when present. Development conveniences
(DEBUG, throwaway secrets) exist only when DEBUG is on or under the test
runner; production refuses to start without real secrets.
"""

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# Values already in the environment win over the file; ENV_FILE names another file.
environ.Env.read_env(os.environ.get("ENV_FILE", BASE_DIR / ".env"), overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
TESTING = "pytest" in sys.modules or sys.argv[1:2] == ["test"]
DEVELOPMENT = DEBUG or TESTING

# Throwaway values that only development and the tests may use; production
# refuses them (see _require_production_secret below).
DEV_SECRET_KEY = "django-insecure-keygrant-development-only"
DEV_KEY_ENCRYPTION_KEY = "ZGV2ZWxvcG1lbnQtb25seS1rZXlncmFudC1mZXJuZXQ="


def _require_production_secret(name: str, value: str, dev_value: str) -> str:
    if not DEVELOPMENT and (not value or dev_value in value):
        raise ImproperlyConfigured(
            f"{name} must be set to a real secret when DEBUG is off (the development default is refused)."
        )
    return value or dev_value


SECRET_KEY = _require_production_secret("SECRET_KEY", env.str("SECRET_KEY", default=""), DEV_SECRET_KEY)

# --- OAuth -------------------------------------------------------------------

# The public base URL: the metadata `issuer` and the `iss` parameter use it
# verbatim (RFC 8414 section 2, RFC 9207). Never derived from the request.
OAUTH_ISSUER = env.str("OAUTH_ISSUER", default="http://127.0.0.1:8000" if DEVELOPMENT else "")
_issuer = urlsplit(OAUTH_ISSUER)
if (
    _issuer.scheme not in ("https", "http")
    or not _issuer.hostname
    or _issuer.query
    or _issuer.fragment
    or OAUTH_ISSUER.endswith("/")
):
    raise ImproperlyConfigured(
        "OAUTH_ISSUER must be the public base URL, e.g. https://keys.example.com "
        "(https, no query, no fragment, no trailing slash)."
    )
ISSUER_IS_HTTPS = _issuer.scheme == "https"
if not ISSUER_IS_HTTPS and _issuer.hostname not in ("localhost", "127.0.0.1", "::1"):
    raise ImproperlyConfigured("OAUTH_ISSUER may use http:// only on a loopback host.")

OAUTH_CODE_TTL_SECONDS = env.int("OAUTH_CODE_TTL_SECONDS", default=60)
# How long a consent page stays valid between GET and POST.
OAUTH_PENDING_REQUEST_TTL_SECONDS = env.int("OAUTH_PENDING_REQUEST_TTL_SECONDS", default=600)
# RFC 8252 section 7.3: native apps on the user's own computer.
OAUTH_ALLOW_LOOPBACK_CLIENTS = env.bool("OAUTH_ALLOW_LOOPBACK_CLIENTS", default=True)
# Failed code redemptions per client address in a window; past it, failures
# are answered 429 slow_down (a right verifier always succeeds).
OAUTH_TOKEN_FAILURES_PER_ADDRESS = env.int("OAUTH_TOKEN_FAILURES_PER_ADDRESS", default=30)
OAUTH_TOKEN_FAILURE_WINDOW_SECONDS = env.int("OAUTH_TOKEN_FAILURE_WINDOW_SECONDS", default=300)

# The device authorization grant (RFC 8628) for headless tools: how long a
# user code may be entered, how often devices may poll, how many device
# authorizations one address may start per 10 minutes, and how many wrong
# user codes a person or an address may enter per 15 minutes (section 5.1).
OAUTH_DEVICE_FLOW_ENABLED = env.bool("OAUTH_DEVICE_FLOW_ENABLED", default=True)
OAUTH_DEVICE_CODE_TTL_SECONDS = env.int("OAUTH_DEVICE_CODE_TTL_SECONDS", default=600)
OAUTH_DEVICE_POLL_INTERVAL_SECONDS = env.int("OAUTH_DEVICE_POLL_INTERVAL_SECONDS", default=5)
OAUTH_DEVICE_REQUESTS_PER_ADDRESS = env.int("OAUTH_DEVICE_REQUESTS_PER_ADDRESS", default=60)
OAUTH_USER_CODE_FAILURES_ALLOWED = env.int("OAUTH_USER_CODE_FAILURES_ALLOWED", default=10)

# RFC 8707 resource indicators accepted at authorize and token: the built-in
# API (the issuer's own URL) plus any resource servers (MCP servers) the
# operator lists. A listed URL also covers the URLs below it.
OAUTH_RESOURCES = [OAUTH_ISSUER, *env.list("OAUTH_EXTRA_RESOURCES", default=[])]
# Client ID Metadata Documents (an https URL as client_id, MCP 2025-11-25).
OAUTH_CIMD_ENABLED = env.bool("OAUTH_CIMD_ENABLED", default=True)
# The whole fetch (DNS, connect, TLS, headers, body) ends within the timeout.
OAUTH_CIMD_TIMEOUT_SECONDS = env.float("OAUTH_CIMD_TIMEOUT_SECONDS", default=3.0)
OAUTH_CIMD_MAX_BYTES = env.int("OAUTH_CIMD_MAX_BYTES", default=5120)
OAUTH_CIMD_MAX_HEADER_BYTES = env.int("OAUTH_CIMD_MAX_HEADER_BYTES", default=8192)
OAUTH_CIMD_CACHE_SECONDS = env.int("OAUTH_CIMD_CACHE_SECONDS", default=300)
# A failed fetch is remembered per host; fetches per minute per host, per
# address fetched from and per client address asking (oauthprovider/cimd.py).
OAUTH_CIMD_FAILURE_CACHE_SECONDS = env.int("OAUTH_CIMD_FAILURE_CACHE_SECONDS", default=60)
OAUTH_CIMD_FETCHES_PER_MINUTE = env.int("OAUTH_CIMD_FETCHES_PER_MINUTE", default=10)
# Tests only: fetch metadata documents over http:// from loopback addresses.
OAUTH_CIMD_ALLOW_INSECURE_LOCAL_FETCH = env.bool("OAUTH_CIMD_ALLOW_INSECURE_LOCAL_FETCH", default=False)
if OAUTH_CIMD_ALLOW_INSECURE_LOCAL_FETCH and not DEVELOPMENT:
    raise ImproperlyConfigured(
        "OAUTH_CIMD_ALLOW_INSECURE_LOCAL_FETCH lifts the SSRF protections; it is refused when DEBUG is off."
    )

# --- API keys ----------------------------------------------------------------

# Comma-separated Fernet keys: the first encrypts, all decrypt (rotation).
KEY_ENCRYPTION_KEYS = [
    k.strip()
    for k in _require_production_secret(
        "KEY_ENCRYPTION_KEYS",
        env.str("KEY_ENCRYPTION_KEYS", default=""),
        DEV_KEY_ENCRYPTION_KEY,
    ).split(",")
    if k.strip()
]
for _position, _key in enumerate(KEY_ENCRYPTION_KEYS, start=1):
    # Refused at start-up (and by `manage.py check`), not when the first key is created.
    try:
        Fernet(_key)
    except (ValueError, TypeError):
        raise ImproperlyConfigured(
            f"KEY_ENCRYPTION_KEYS: entry {_position} of {len(KEY_ENCRYPTION_KEYS)} is not a Fernet key "
            "(32 url-safe base64-encoded bytes, as Fernet.generate_key() makes them)."
        ) from None
# Last-used times are written at most this often per key.
API_KEY_LAST_USED_RESOLUTION_SECONDS = env.int("API_KEY_LAST_USED_RESOLUTION_SECONDS", default=60)
# Limits people put on keys (docs/accounts.md "Limits on a key"): the expiry
# pre-selected for a new key on the keys and consent pages (0: never), and the
# most networks one key's address allowlist may hold.
API_KEY_DEFAULT_EXPIRY_DAYS = env.int("API_KEY_DEFAULT_EXPIRY_DAYS", default=90)
API_KEY_MAX_ALLOWED_NETWORKS = env.int("API_KEY_MAX_ALLOWED_NETWORKS", default=32)
if not 0 <= API_KEY_DEFAULT_EXPIRY_DAYS <= 3660 or not 1 <= API_KEY_MAX_ALLOWED_NETWORKS <= 1000:
    raise ImproperlyConfigured(
        "API_KEY_DEFAULT_EXPIRY_DAYS must be 0 (never) to 3660; API_KEY_MAX_ALLOWED_NETWORKS 1 to 1000."
    )

# --- Notifications -------------------------------------------------------------

# Mails to people about their keys (docs/accounts.md "Notices"). How work that
# follows a request runs (accounts/background.py): "thread" (a background
# thread per process), "inline" (after the commit, in the request: tests), or
# "cron" (only the management commands send mail and finish sweeps).
BACKGROUND_TASKS = env.str("BACKGROUND_TASKS", default="inline" if TESTING else "thread")
if BACKGROUND_TASKS not in ("thread", "inline", "cron"):
    raise ImproperlyConfigured("BACKGROUND_TASKS must be thread, inline or cron.")
# A failed send is retried after 1, 2, 4 ... minutes (at most 6 hours apart), this many attempts in all.
NOTIFICATION_MAX_ATTEMPTS = env.int("NOTIFICATION_MAX_ATTEMPTS", default=10)
# People are told this many days before a key an app holds expires.
KEY_EXPIRY_NOTICE_DAYS = env.int("KEY_EXPIRY_NOTICE_DAYS", default=7)
# Sent and abandoned notices are deleted by send_notifications after this many days.
NOTIFICATION_RETENTION_DAYS = env.int("NOTIFICATION_RETENTION_DAYS", default=30)

# --- Accounts ------------------------------------------------------------------

# Self-service sign-up: open in development, closed in production unless the
# operator opens it (an open provider hands API keys to anyone who registers).
SIGNUP_ENABLED = env.bool("SIGNUP_ENABLED", default=DEVELOPMENT)
# Failed sign-ins (accounts/throttle.py), counted per username from one
# client address, per address, and per username from all addresses (a much
# higher cap). Past "slowdown" failures each attempt must wait
# LOGIN_THROTTLE_DELAY_SECONDS, doubling per failure; at "lockout" attempts
# are refused for LOGIN_THROTTLE_LOCKOUT_SECONDS. See docs/accounts.md.
LOGIN_THROTTLE_WINDOW_SECONDS = env.int("LOGIN_THROTTLE_WINDOW_SECONDS", default=900)
LOGIN_THROTTLE_USERNAME_SLOWDOWN_AFTER = env.int("LOGIN_THROTTLE_USERNAME_SLOWDOWN_AFTER", default=3)
LOGIN_THROTTLE_USERNAME_LOCKOUT_AFTER = env.int("LOGIN_THROTTLE_USERNAME_LOCKOUT_AFTER", default=10)
LOGIN_THROTTLE_USERNAME_CAP = env.int("LOGIN_THROTTLE_USERNAME_CAP", default=100)
LOGIN_THROTTLE_ADDRESS_SLOWDOWN_AFTER = env.int("LOGIN_THROTTLE_ADDRESS_SLOWDOWN_AFTER", default=10)
LOGIN_THROTTLE_ADDRESS_LOCKOUT_AFTER = env.int("LOGIN_THROTTLE_ADDRESS_LOCKOUT_AFTER", default=30)
LOGIN_THROTTLE_DELAY_SECONDS = env.int("LOGIN_THROTTLE_DELAY_SECONDS", default=5)
LOGIN_THROTTLE_LOCKOUT_SECONDS = env.int("LOGIN_THROTTLE_LOCKOUT_SECONDS", default=900)
# Password-reset emails: at most this many requests per hour per client
# address (more are refused) and this many emails per hour per mailbox (more
# requests are answered as usual and send nothing: the earlier links work).
PASSWORD_RESET_REQUESTS_PER_HOUR = env.int("PASSWORD_RESET_REQUESTS_PER_HOUR", default=5)

# Second factors (docs/accounts.md "Two-factor sign-in"): who must have one
# ("none", "staff" or "all"; staff by default, since an operator's account
# reaches everyone's keys), how long the half-signed-in state between the
# password and the second step lasts, and how old the last check may be
# before a sensitive change (removing a factor, a new password, a new key)
# asks for the second factor again.
TWO_FACTOR_REQUIRED = env.str("TWO_FACTOR_REQUIRED", default="staff")
if TWO_FACTOR_REQUIRED not in ("none", "staff", "all"):
    raise ImproperlyConfigured("TWO_FACTOR_REQUIRED must be none, staff or all.")
TWO_FACTOR_SIGNIN_TTL_SECONDS = env.int("TWO_FACTOR_SIGNIN_TTL_SECONDS", default=300)
REAUTH_MAX_AGE_SECONDS = env.int("REAUTH_MAX_AGE_SECONDS", default=900)
if TWO_FACTOR_SIGNIN_TTL_SECONDS < 30 or REAUTH_MAX_AGE_SECONDS < 0:
    raise ImproperlyConfigured("TWO_FACTOR_SIGNIN_TTL_SECONDS must be >= 30 and REAUTH_MAX_AGE_SECONDS >= 0.")

# --- Operations --------------------------------------------------------------

# purge_codes keeps used and expired authorization codes this many days after
# they expire: a replayed code is only recognised (and its grant revoked, RFC
# 6749 10.5) while its row exists. See docs/operations.md.
OAUTH_CODE_RETENTION_DAYS = env.int("OAUTH_CODE_RETENTION_DAYS", default=7)
# Rows per transaction in purge_codes and rotate_key_encryption: short
# transactions, so the service keeps serving while they run.
MAINTENANCE_BATCH_SIZE = env.int("MAINTENANCE_BATCH_SIZE", default=500)
if OAUTH_CODE_RETENTION_DAYS < 0 or MAINTENANCE_BATCH_SIZE < 1:
    raise ImproperlyConfigured("OAUTH_CODE_RETENTION_DAYS must be >= 0 and MAINTENANCE_BATCH_SIZE >= 1.")

# --- Django --------------------------------------------------------------------

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS",
    default=(["localhost", "127.0.0.1", "[::1]", "testserver"] if DEVELOPMENT else [_issuer.hostname]),
)
# Behind a reverse proxy, the number of proxies whose X-Forwarded-For entries
# are trusted when finding the client's address (rate limits, audit log).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "accounts",
    "oauthprovider",
]

MIDDLEWARE = [
    # /healthz and /readyz, answered before redirects and host checks (load balancers).
    "oauthprovider.availability.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A session that lacks a second factor its account must have is not signed in (accounts/signin.py).
    "accounts.signin.SecondFactorRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several workers share one file: WAL lets reads run beside a write, and
    # IMMEDIATE transactions queue writers instead of failing with "locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
# Persistent connections: a new connection per request cut /v1/me throughput
# 3-6x in the benchmark (docs/benchmarks.md). Keep workers x instances below
# PostgreSQL's max_connections.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database that hangs costs seconds, not a worker (docs/operations.md "Outages"):
    # a bounded connect, TCP keepalives and a user timeout to notice a dead peer,
    # and a server-side statement timeout for the processes that serve requests
    # (maintenance commands such as migrate may legitimately run longer).
    _serving = not sys.argv[0].endswith("manage.py") or sys.argv[1:2] == ["runserver"]
    _statement_timeout = env.int("DATABASE_STATEMENT_TIMEOUT_SECONDS", default=15 if _serving else 0)
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "connect_timeout": env.int("DATABASE_CONNECT_TIMEOUT_SECONDS", default=3),
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 2,
            "keepalives_count": 3,
            "tcp_user_timeout": env.int("DATABASE_SOCKET_TIMEOUT_SECONDS", default=10) * 1000,
            "options": f"-c statement_timeout={_statement_timeout * 1000}",
        }
    )

CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://keygrant")}
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    # A cache that hangs costs a fraction of a second, not a worker.
    CACHES["default"].setdefault("OPTIONS", {}).update(
        {
            "socket_connect_timeout": env.float("CACHE_CONNECT_TIMEOUT_SECONDS", default=0.5),
            "socket_timeout": env.float("CACHE_SOCKET_TIMEOUT_SECONDS", default=0.5),
        }
    )
# After the shared cache failed, each process leaves it alone this long before
# trying it again (accounts/shared_cache.py): meanwhile rate limits count in
# the database, so no request waits for a dead cache's timeout twice.
CACHE_RETRY_SECONDS = env.float("CACHE_RETRY_SECONDS", default=5.0)
# Where the rate-limit counters live (accounts/counters.py). DESIGN.md "Operators":
# the limits are shared by every worker without any set-up, never per-process
# memory when DEBUG is off. A cache whose increments are atomic and shared
# (Redis, Memcached) holds them across instances; anything else (the default
# local memory, file or database caches) means the database table, which
# every worker of an instance shares. Development and tests may count in memory.
_ATOMIC_SHARED_CACHES = (
    "django.core.cache.backends.redis.RedisCache",
    "django_redis.cache.RedisCache",
    "django.core.cache.backends.memcached.PyMemcacheCache",
    "django.core.cache.backends.memcached.PyLibMCCache",
)
_cache_backend = CACHES["default"]["BACKEND"]
RATE_LIMIT_STORE = (
    "cache"
    if _cache_backend in _ATOMIC_SHARED_CACHES or (DEVELOPMENT and _cache_backend.endswith(".LocMemCache"))
    else "database"
)

AUTH_USER_MODEL = "accounts.User"
# Django's model backend and database sessions, each reading its row with one
# fixed statement (accounts/backends.py, accounts/sessions.py). Django's own
# backend stays listed so that sessions it made keep working.
AUTHENTICATION_BACKENDS = ["accounts.backends.UserBackend", "django.contrib.auth.backends.ModelBackend"]
SESSION_ENGINE = "accounts.sessions"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:home"
LOGOUT_REDIRECT_URL = "accounts:login"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEVELOPMENT
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# EMAIL_URL, e.g. smtp+tls://user:password@smtp.example.com:587 (console in development).
_email = env.email_url("EMAIL_URL", default="consolemail://" if DEVELOPMENT else "smtp://localhost:25")
MAILERS = {"default": {"BACKEND": _email["EMAIL_BACKEND"]}}
if _email["EMAIL_BACKEND"].endswith("smtp.EmailBackend"):
    MAILERS["default"]["OPTIONS"] = {
        "host": _email.get("EMAIL_HOST") or "localhost",
        "port": _email.get("EMAIL_PORT") or 25,
        "username": _email.get("EMAIL_HOST_USER") or "",
        "password": _email.get("EMAIL_HOST_PASSWORD") or "",
        "use_tls": bool(_email.get("EMAIL_USE_TLS")),
        "use_ssl": bool(_email.get("EMAIL_USE_SSL")),
        # A mail server that hangs must not hold a sender (and its claim) forever.
        "timeout": env.int("EMAIL_TIMEOUT_SECONDS", default=10),
    }
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="keygrant@localhost")

# --- Security headers ------------------------------------------------------------

# Nothing is loaded from another origin and no page can be framed.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
}
X_FRAME_OPTIONS = "DENY"
# Site-wide: no Referer to other origins. The authorization endpoint sends
# "no-referrer" itself (DESIGN.md); site-wide "no-referrer" would make
# browsers send "Origin: null" with every form, which CSRF checks refuse.
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# HTTPS-only settings follow the scheme of the public URL, so that a loopback
# http:// issuer still runs with DEBUG off.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=ISSUER_IS_HTTPS and not DEVELOPMENT)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=False) else None
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if ISSUER_IS_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = ISSUER_IS_HTTPS
# The preload flag only makes the site eligible for browsers' HSTS lists.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=ISSUER_IS_HTTPS)
SESSION_COOKIE_SECURE = ISSUER_IS_HTTPS
CSRF_COOKIE_SECURE = ISSUER_IS_HTTPS
if not ISSUER_IS_HTTPS:
    # A loopback http:// issuer cannot use HTTPS-only settings; say so once
    # here instead of in every `check --deploy`.
    SILENCED_SYSTEM_CHECKS = [
        "security.W004",  # HSTS
        "security.W008",  # SSL redirect
        "security.W012",  # secure session cookie
        "security.W016",  # secure CSRF cookie
    ]

# Error reports never carry a code, verifier, key or secret (config/reporting.py).
DEFAULT_EXCEPTION_REPORTER_FILTER = "config.reporting.SecretsFilter"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
