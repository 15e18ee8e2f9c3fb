"""Settings, all from environment variables, with safe production defaults.

DEBUG is off unless asked for. Without DATABASE_URL the app runs on an embedded SQLite file
under the data directory; without REDIS_URL Celery uses kombu's filesystem transport there.
PostgreSQL and Redis are what production and the test suite use.

One file of about 520 lines, as Django expects: each setting sits beside the comment that says
why it has its value.
"""

import datetime as dt
import secrets
from pathlib import Path

import environ
from django_guid.integrations import CeleryIntegration
from kombu import Queue

from commissary.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DATA_DIR = Path(env("COMMISSARY_DATA_DIR", default=str(BASE_DIR / "var")))
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DEBUG", default=False)


def _secret_key() -> str:
    """SECRET_KEY from the environment; otherwise one generated for this installation and
    kept in the data directory (never in the repository)."""
    configured = env("SECRET_KEY", default="")
    if configured:
        return configured
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
# Fernet keys for the merchant secrets stored in the database (payments.credentials),
# comma-separated, newest first: the first encrypts, all decrypt. Required in production (the
# system check payments.E001); make one with
# python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())".
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # Django's admin, with the staff site (its home is the work queue) as admin.site.
    "reports.admin_apps.StaffAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "pgtrigger",
    "django_celery_beat",
    "allauth",
    "allauth.account",
    "commissary.apps.AxesConfig",  # django-axes, named in the reader's language
    "csp",
    "auditlog",
    "import_export",
    "django_guid",
    # The core: owns the database cache's table (its migration makes it).
    "commissary",
    "accounts",
    "facilities",
    "ledger",
    "payments",
    "reports",
    "catalog",
    "kiosk",
    "family",
    "monitoring",
]

MIDDLEWARE = [
    # Prometheus request metrics (commissary.metrics): first and last, around everything.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # The request id of every log line (commissary.logs): a malformed incoming one is dropped,
    # then django-guid takes or makes one.
    "commissary.logs.RequestIdMiddleware",
    "django_guid.middleware.guid_middleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # kiosk.middleware's are Django's own, passed by for the kiosk API (/api/kiosk/), which
    # uses no cookies, sessions, Django users or browser sign-in.
    "kiosk.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    # By its own name: check --deploy looks for it; the API's views are exempt.
    "django.middleware.csrf.CsrfViewMiddleware",
    "kiosk.middleware.AuthenticationMiddleware",
    # Who the request is for, on its log lines (after authentication), and a staff member's
    # facility when they are assigned to one (both carried into the tasks the request queues).
    "commissary.logs.LogContextMiddleware",
    "accounts.middleware.StaffFacilityLogContextMiddleware",
    # A staff member's dates and times in their facility's timezone.
    "facilities.middleware.StaffFacilityTimezoneMiddleware",
    # Records who made each change in the audit trail.
    "kiosk.middleware.AuditlogMiddleware",
    "kiosk.middleware.MessageMiddleware",
    # Staff sessions end when idle and after a shift; signed-in pages are never cached.
    # (Both do nothing where there is no signed-in user, as on the kiosk API.)
    "commissary.middleware.StaffSessionTimeoutMiddleware",
    "commissary.middleware.NoStoreForSignedInMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

# --- Metrics (/metrics, commissary.metrics) ----------------------------------------------
# Who may read them: comma-separated networks, matched against the connection's own address.
METRICS_ALLOWED_CIDRS = env.list("METRICS_ALLOWED_CIDRS", default=["127.0.0.1/32", "::1/128"])

ROOT_URLCONF = "commissary.urls"
WSGI_APPLICATION = "commissary.wsgi.application"

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
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
# Server settings every PostgreSQL connection starts with: sent as the connection's startup
# options, or, where DATABASE_URL points at a pooler (PgBouncer in session mode refuses startup
# options), set on each new connection by commissary.db (docs/operations.md).
DATABASE_SESSION_SETTINGS = {"plan_cache_mode": "force_generic_plan"}
DATABASE_BEHIND_POOLER = env.bool("DATABASE_BEHIND_POOLER", default=False)
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'commissary.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions: writers queue for the lock instead of failing with
    # "database is locked", so the money invariants hold on the embedded database too.
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 30}
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # The kiosk order's statements are prepared (commissary.db), and only they: Django's own
    # cursors bind on the client and never prepare, and psycopg prepares nothing by itself
    # short of this many runs of a statement. Their generic plan (primary and unique keys) is
    # the one to keep, not a custom plan made again on every call; only prepared statements
    # are affected.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 2**31 - 1
    if not DATABASE_BEHIND_POOLER:
        DATABASES["default"]["OPTIONS"]["options"] = " ".join(
            f"-c {name}={value}" for name, value in DATABASE_SESSION_SETTINGS.items()
        )
# A streaming read replica for reads that can wait (reports, the dashboard, CSV exports,
# statements' reads, reconciliation's screening: commissary.replica); money is never read there.
# Above this many seconds behind, or when it does not answer, those reads go to the primary.
DATABASE_REPLICA_URL = env("DATABASE_REPLICA_URL", default="")
DATABASE_REPLICA_MAX_LAG_SECONDS = env.float("DATABASE_REPLICA_MAX_LAG_SECONDS", default=30)
if DATABASE_REPLICA_URL and DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    DATABASES["replica"] = env.db_url_config(DATABASE_REPLICA_URL)
    DATABASES["replica"].update(
        CONN_MAX_AGE=DATABASES["default"]["CONN_MAX_AGE"],
        CONN_HEALTH_CHECKS=True,
        # A replica that does not answer is given up quickly: its reads go to the primary.
        OPTIONS={"connect_timeout": 2},
        # Tests read their one test database through both names.
        TEST={"MIRROR": "default"},
    )
DATABASE_ROUTERS = ["commissary.replica.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Language and time ----------------------------------------------------------------
# Chinese unless the browser's Accept-Language or the language switcher (/i18n/setlang/)
# chooses English; no language prefix in URLs.
LANGUAGE_CODE = env("LANGUAGE_CODE", default="zh-hans")
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Stored instants are UTC; each facility's own timezone decides its calendar month.
TIME_ZONE = env("TIME_ZONE", default="Asia/Shanghai")
USE_I18N = True
USE_TZ = True

# --- Static files -----------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
MEDIA_ROOT = DATA_DIR / "media"

# --- Security -------------------------------------------------------------------------
HTTPS = env.bool("HTTPS", default=False)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
# A trust-account site lives on its own host; subdomains and the preload list are on with
# HTTPS unless the operator says otherwise.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("HSTS_INCLUDE_SUBDOMAINS", default=HTTPS)
SECURE_HSTS_PRELOAD = env.bool("HSTS_PRELOAD", default=HTTPS)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SESSION_COOKIE_HTTPONLY = True
# A staff session ends after this long without a request, and this long after sign-in however
# busy (commissary.middleware); families keep Django's session age.
STAFF_IDLE_TIMEOUT_MINUTES = env.int("STAFF_IDLE_TIMEOUT_MINUTES", default=30)
STAFF_SESSION_MAX_HOURS = env.int("STAFF_SESSION_MAX_HOURS", default=10)
STAFF_LOGIN_URL = "/admin/login/"
X_FRAME_OPTIONS = "DENY"

# --- Email ----------------------------------------------------------------------------
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="commissary@localhost")
# Seconds a mail server may take to answer: the receipt task holds its payment row while it
# sends, so a mail server that hangs must not hold it for long.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
# Who hears of problems that belong to no one facility (a reconciliation finding about the
# whole ledger): comma-separated addresses.
ADMINS = [("Commissary operators", address) for address in env.list("ADMINS", default=[])]

# --- Celery ---------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
if not REDIS_URL:
    _queue_dir = DATA_DIR / "celery-queue"
    _queue_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        # Where broadcast exchanges are declared; kombu's default is "control" in the
        # working directory.
        "control_folder": str(DATA_DIR / "celery-control"),
    }
else:
    CELERY_BROKER_URL = REDIS_URL
    # A message a killed worker took is delivered again after this long (Redis transport).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
    }
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", default="commissary")
# Work of different kinds on queues of its own, so machines can be given the work they suit
# (docs/operations.md): money (scheduled money work and the provider calls), mail (receipts,
# digests, notices) and reports (statements, housekeeping). Named after the default queue, so
# a second installation on the same Redis (or a test) keeps its own. A worker started without
# -Q consumes every queue below, as the embedded run's single worker does.
WORK_QUEUES = {work: f"{CELERY_TASK_DEFAULT_QUEUE}.{work}" for work in ("money", "mail", "reports")}
# Each queue bound by its own name (kombu would bind every queue by the default queue's name,
# and a message would reach them all).
CELERY_TASK_QUEUES = [
    Queue(name, routing_key=name) for name in (CELERY_TASK_DEFAULT_QUEUE, *WORK_QUEUES.values())
]
CELERY_TASK_ROUTES = {
    **{
        name: {"queue": WORK_QUEUES["money"]}
        for name in (
            "ledger.tasks.roll_over_periods",
            "ledger.tasks.reconcile_ledger",
            "ledger.tasks.expire_stale_deposits",
            "ledger.tasks.work_on_run",
            "ledger.tasks.create_journal_partitions",
            "payments.tasks.poll_pending_payments",
            "payments.tasks.make_provider_call",
            "payments.tasks.retry_provider_calls",
            "monitoring.tasks.refund_stale_holds",
        )
    },
    **{
        name: {"queue": WORK_QUEUES["mail"]}
        for name in (
            "payments.tasks.send_receipt",
            "payments.tasks.queue_unsent_receipts",
            "ledger.notifications.email_approvers_of_request",
            "reports.tasks.queue_staff_digests",
            "reports.tasks.send_staff_digest",
            "catalog.tasks.escalate_overdue_disputes",
        )
    },
    **{
        name: {"queue": WORK_QUEUES["reports"]}
        for name in (
            "ledger.tasks.generate_monthly_statements",
            "monitoring.tasks.purge_monitoring_data",
        )
    },
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Pause between chunks of batch work (rollover, expiry, statements) so it yields to the hot path.
LEDGER_BATCH_PAUSE_SECONDS = env.float("LEDGER_BATCH_PAUSE_SECONDS", default=0)
# Inmates per rollover transaction: short transactions keep deposits flowing at 00:05.
LEDGER_ROLLOVER_CHUNK_SIZE = env.int("LEDGER_ROLLOVER_CHUNK_SIZE", default=50_000)
# Inmates with stale reservations per expiry transaction, and inmates per statements chunk
# (each chunk's statements are drawn before its transaction and kept in memory until it commits).
LEDGER_EXPIRY_CHUNK_SIZE = env.int("LEDGER_EXPIRY_CHUNK_SIZE", default=1_000)
LEDGER_STATEMENTS_CHUNK_SIZE = env.int("LEDGER_STATEMENTS_CHUNK_SIZE", default=500)
# A chunk of batch work claimed longer ago than this, and not done, is claimed again by another
# worker (its own died). Longer than any chunk takes; shorter than the broker's visibility
# timeout, so a worker waiting for a claim to expire is not delivered twice.
LEDGER_CHUNK_CLAIM_SECONDS = env.float("LEDGER_CHUNK_CLAIM_SECONDS", default=300)
# How long a reserved deposit waits for its payment before the expiry task releases its room.
DEPOSIT_RESERVATION_MINUTES = env.int("DEPOSIT_RESERVATION_MINUTES", default=30)
# The most any facility's deposit fee may be (facility policy changes are held to these):
# a rate in basis points (1000 = 10%) and a fixed part in fen.
DEPOSIT_FEE_MAX_RATE_BP = env.int("DEPOSIT_FEE_MAX_RATE_BP", default=1_000)
DEPOSIT_FEE_MAX_FIXED_FEN = env.int("DEPOSIT_FEE_MAX_FIXED_FEN", default=5_000)

# --- Kiosk API ------------------------------------------------------------------------
# The kiosk API answers every error in one envelope (kiosk.errors); throttles count per device
# in the default cache, so every web worker shares them when the cache is Redis.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "kiosk.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_RATES": {
        "kiosk_device": env("KIOSK_THROTTLE_RATE", default="300/min"),
        "kiosk_sign_in": env("KIOSK_SIGN_IN_THROTTLE_RATE", default="20/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Commissary kiosk API",
    "DESCRIPTION": (
        "The API commissary kiosks call: inmate sign-in, balance, catalog, orders and "
        "statement. See the contract in the project's design document."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Orders and disputes both have a "status": each its own named enum in the schema.
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": ["placed", "picked", "delivered", "cancelled"],
        "DisputeStatusEnum": ["open", "refunded", "replaced", "rejected"],
    },
    "SCHEMA_PATH_PREFIX": "/api/kiosk/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "kiosk.schema.strict_request_bodies",
        "kiosk.schema.documented_response_headers",
    ],
}
KIOSK_SESSION_IDLE_SECONDS = env.int("KIOSK_SESSION_IDLE_SECONDS", default=600)

# --- Logging --------------------------------------------------------------------------
# One JSON object a line in production, readable text under DEBUG (scripts/run sets text);
# every line carries the request id, also in the Celery tasks a request queued
# (commissary.logs, docs/operations.md#logs).
LOG_FORMAT = env("LOG_FORMAT", default="text" if DEBUG else "json")
LOGGING = logging_config(log_format=LOG_FORMAT, level=env("LOG_LEVEL", default="INFO"))
# dictConfig, and under JSON Python's warnings as log lines too.
LOGGING_CONFIG = "commissary.logs.configure"
# The request id: an incoming X-Request-ID when it is a plain UUID (commissary.logs checks that
# first), else a new one (32 hex digits); answered in the response and sent in the headers of
# the tasks the request queues. A task queued by the scheduler gets one of its own.
DJANGO_GUID = {
    "GUID_HEADER_NAME": "X-Request-ID",
    "INTEGRATIONS": [CeleryIntegration()],
}

# --- Cache ----------------------------------------------------------------------------
# Rate limits and sign-in throttles are shared by every web worker: Redis when there is
# one, else the database cache, whose table ``migrate`` makes (commissary's migration).
DATABASE_CACHE_TABLE = "commissary_cache"
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "commissary.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "commissary",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": DATABASE_CACHE_TABLE,
        }
    }

# --- Sign-in: family depositors (django-allauth) and lockout (django-axes) ----------------
AUTHENTICATION_BACKENDS = [
    # First, so a locked-out username and address is refused before any password check.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "family:home"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_REDIRECT_URL = "/"
ACCOUNT_EMAIL_SUBJECT_PREFIX = ""
# Depositors are known by their email alone: no made-up username on pages, in emails or to
# staff; emails speak in the site's name (family.adapter).
ACCOUNT_ADAPTER = "family.adapter.DepositorAccountAdapter"
ACCOUNT_USER_DISPLAY = "family.adapter.user_display"
# Failed sign-ins are throttled per address here and locked out by django-axes per username
# and address; allauth's own per-account limit is left out, since anyone anywhere could trip it.
ACCOUNT_RATE_LIMITS = {"login_failed": "10/m/ip"}
# Sign-in failures lock by username and address together, so nobody can lock a staff
# member or a family out from elsewhere.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=30))
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_LOCKOUT_TEMPLATE = "account/locked_out.html"
AXES_USERNAME_CALLABLE = "accounts.signin.username_of_attempt"
# Failed admin sign-ins per address (any usernames) before the address waits (django-ratelimit
# rate: count/period).
ADMIN_SIGN_IN_FAILURES_PER_ADDRESS = env("ADMIN_SIGN_IN_FAILURES_PER_ADDRESS", default="20/h")
AXES_IPWARE_PROXY_COUNT = env.int("PROXY_COUNT", default=0) or None

# --- Browser policy: Content-Security-Policy (django-csp) and Permissions-Policy -------
# No inline script or style anywhere, the admin's pages included; no outside host. QR codes
# on receipts are data: images.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
PERMISSIONS_POLICY = {
    feature: []
    for feature in (
        "accelerometer",
        "camera",
        "geolocation",
        "gyroscope",
        "microphone",
        "payment",
        "usb",
    )
}

# --- Family deposits and payment providers ---------------------------------------------
# Where providers send their callbacks: the site's own address as the outside world sees it.
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
# The sandbox provider creates money out of nothing; it is refused unless this is set.
PAYMENTS_SANDBOX = env.bool("PAYMENTS_SANDBOX", default=False)
# How long monitoring keeps decided holds (money records are kept regardless).
MONITORING_RETENTION_DAYS = env.int("MONITORING_RETENTION_DAYS", default=7 * 365)
PAYMENTS_SANDBOX_SECRET = env("PAYMENTS_SANDBOX_SECRET", default="")
# The key of the keyed hash that stores a provider's payer id (payments.payers): set it once
# and keep it, since a new key makes earlier payers unmatchable. Unset: derived from SECRET_KEY.
PAYER_HASH_KEY = env("PAYER_HASH_KEY", default="")
# Real providers' merchant accounts for every facility without one of its own (a facility's
# own account is stored encrypted in the database). Keys are PEM text; see docs/payments.md.
PAYMENTS_ALIPAY = {
    "app_id": env("ALIPAY_APP_ID", default=""),
    "seller_id": env("ALIPAY_SELLER_ID", default=""),
    "app_private_key": env("ALIPAY_APP_PRIVATE_KEY", default=""),
    "alipay_public_key": env("ALIPAY_PUBLIC_KEY", default=""),
    "gateway": env("ALIPAY_GATEWAY", default="https://openapi.alipay.com/gateway.do"),
}
PAYMENTS_WECHAT = {
    "mchid": env("WECHATPAY_MCHID", default=""),
    "appid": env("WECHATPAY_APPID", default=""),
    "private_key": env("WECHATPAY_PRIVATE_KEY", default=""),
    "cert_serial_no": env("WECHATPAY_CERT_SERIAL_NO", default=""),
    "apiv3_key": env("WECHATPAY_APIV3_KEY", default=""),
    "platform_public_key": env("WECHATPAY_PLATFORM_PUBLIC_KEY", default=""),
    "platform_public_key_id": env("WECHATPAY_PLATFORM_PUBLIC_KEY_ID", default=""),
    "gateway": env("WECHATPAY_GATEWAY", default="https://api.mch.weixin.qq.com"),
}
# Link look-ups: at most this many an hour per depositor and per address.
LINK_ATTEMPTS_PER_HOUR = env.int("LINK_ATTEMPTS_PER_HOUR", default=10)
# --- Audit trail ------------------------------------------------------------------------
# Changes are stored as JSON so auditors can filter and read them; never the secrets
# (password and PIN hashes, device key hashes), which each registration excludes.
AUDITLOG_STORE_JSON_CHANGES = True
AUDITLOG_INCLUDE_ALL_MODELS = False
