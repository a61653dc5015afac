"""Configuration classes; every key can be overridden from the environment."""

from __future__ import annotations

import os
from typing import Any, ClassVar

DEFAULT_SECRET_KEY = "dev-only-not-secret"  # noqa: S105 - the known value production refuses
# Secret keys printed in tutorials and templates, which people paste and forget: anyone who has
# read the same page can sign a session cookie for any user. Compared lower-cased, without
# spaces, dashes and underscores. The first is the original Flask-Tracking series' own.
PUBLISHED_SECRET_KEYS = frozenset(
    {
        "flasksessioninsecuresecretkey",
        "devonlynotsecret",
        "dev",
        "development",
        "developmentkey",
        "secret",
        "secretkey",
        "mysecretkey",
        "yoursecretkey",
        "supersecret",
        "supersecretkey",
        "changeme",
        "changethis",
        "pleasechangeme",
        "replaceme",
        "youwillneverguess",
        "hardtoguessstring",
        "thisisasecret",
        "notsecret",
        "insecure",
        "areallyreallyreallyreallylongsecretkey",
    }
)


class BaseConfiguration:
    """Settings shared by every configuration."""

    DEBUG = False
    TESTING = False
    SECRET_KEY = DEFAULT_SECRET_KEY
    REQUIRE_SECRET_KEY = False
    # Where the app keeps its data: the SQLite database, the event store, the spool. None means
    # the user's data directory, or the instance folder where an older version left its data
    # (resolved in create_app: data_directory).
    DATA_DIR: str | None = None
    # None means "the embedded SQLite database in DATA_DIR" (resolved in create_app).
    SQLALCHEMY_DATABASE_URI: str | None = None
    # The event store (events/): None means the embedded DuckDB file DATA_DIR/events.duckdb.
    # EVENTS_MEMORY_LIMIT and EVENTS_THREADS bound the embedded engine ("" and 0: DuckDB's
    # defaults, 80 % of memory and every core).
    EVENTS_DATABASE_URL: str | None = None
    EVENTS_MEMORY_LIMIT = "1GB"
    EVENTS_THREADS = 0
    # How much the embedded engine's write-ahead log grows before it is written into the file
    # (DuckDB's default is 16MB). Each of those checkpoints rewrites the open day's changed
    # row groups, so the writer checkpointing every few seconds spent a third of a refresh on
    # it; larger means rarer, at the price of a longer log to replay after a crash.
    EVENTS_CHECKPOINT_THRESHOLD = "128MB"
    # Set by `serve` for its workers: the socket of the process that owns the embedded store.
    EVENTS_SOCKET: str | None = None
    SQLALCHEMY_ENGINE_OPTIONS: ClassVar[dict[str, Any]] = {"pool_pre_ping": True}
    # Seconds a SQLite write waits for another writer to finish (see database.py).
    SQLITE_BUSY_TIMEOUT = 15.0
    WTF_CSRF_ENABLED = True
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    HASH_ROUNDS = 210_000
    # A login session ends this many days after logging in, or after this many days unused.
    LOGIN_SESSION_DAYS = 30
    LOGIN_SESSION_IDLE_DAYS = 7
    MIN_PASSWORD_LENGTH = 8
    LOGIN_RATE_LIMIT_IP = "20 per 10 minutes"
    LOGIN_RATE_LIMIT_EMAIL = "5 per 10 minutes"
    # Every registration attempt counts, made or not: listing addresses by trying them is slow.
    REGISTER_RATE_LIMIT_IP = "10 per hour"
    REGISTER_RATE_LIMIT_EMAIL = "3 per hour"
    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_HEADERS_ENABLED = True
    PROXY_COUNT = 0
    STORE_VISITOR_IP = False
    RESPECT_DNT = True
    MAX_URL_LENGTH = 2048  # of a tracked page's URL
    # The longest request URL (path and query string) the app reads: longer ones get a 414 in
    # the usual error envelope. Granian itself refuses URLs over 64 KiB with a bare 414.
    MAX_REQUEST_URL_LENGTH = 16 * 1024
    HSTS_SECONDS = 365 * 24 * 3600  # sent over HTTPS only; 0 leaves HSTS to the proxy
    VISITS_PER_PAGE = 50
    GEOIP_PROVIDER = "mmdb"
    GEOIP_DATABASE_PATH: str | None = None
    GEOIP_HTTP_URL: str | None = None
    GEOIP_HTTP_TIMEOUT = 0.5
    GEOIP_CACHE_SIZE = 10_000
    # Collection: accepted events go to a local spool; a writer stores them in batches.
    SPOOL_DIR: str | None = None  # default: DATA_DIR/spool
    SPOOL_MAX_BYTES = 1024**3  # past this the collector answers 503 instead of growing
    SPOOL_SEGMENT_BYTES = 16 * 1024**2
    # A segment is sealed at this age, so the writer can delete it (with the raw addresses it
    # holds) soon after storing it, however quiet the site.
    SPOOL_SEGMENT_SECONDS = 2.0
    # `flask-tracking serve`: Python threads per Granian worker, i.e. how many requests one
    # worker runs at once (`serve --threads` overrides it). Granian's own default for WSGI is
    # half its backpressure (256 here); the collector's requests never wait on anything, and
    # 256 threads taking turns at one GIL cost the workers a fifth of their CPU per event under
    # load and doubled the tail latency (docs/benchmarks.md). A few threads still let a worker
    # answer events while a dashboard request waits on the store.
    SERVE_THREADS = 4
    INGEST_WRITER = "thread"  # "thread": in the serving process; "off": `flask-tracking writer`
    INGEST_BATCH_SIZE = 5000
    INGEST_FLUSH_INTERVAL = 0.5  # seconds between writer passes
    # The writer thread's nice value above the serving process's (Linux; 0: the same), so that
    # under a burst the workers answering visitors get the CPU first and the spool takes up
    # the difference.
    WRITER_NICE = 10
    # /readyz reports the node not ready when the writer's last completed pass is older than
    # this (it touches DATA_DIR's spool/writer.heartbeat every INGEST_FLUSH_INTERVAL when well).
    WRITER_HEARTBEAT_MAX_AGE = 60.0
    # Retention (ops/jobs.py): events and sessions of site-local days older than this many
    # days are deleted, unless a site sets its own; 0 keeps everything. Daily rollups stay
    # unless RETENTION_KEEP_ROLLUPS is off. The purge runs every RETENTION_INTERVAL seconds in
    # the writer's process, RETENTION_BATCH_DAYS days of a site per transaction.
    RETENTION_DAYS = 0
    RETENTION_KEEP_ROLLUPS = True
    RETENTION_INTERVAL = 3600.0
    RETENTION_BATCH_DAYS = 7
    # The largest file a site's Imports page accepts (bytes); the command line has no limit.
    IMPORT_MAX_BYTES = 256 * 1024 * 1024
    # Prometheus metrics at /metrics (docs/operations.md lists them): off unless enabled; with
    # a token, only for `Authorization: Bearer <token>` (Prometheus's `authorization` setting).
    METRICS_ENABLED = False
    METRICS_TOKEN: str | None = None
    # Where `serve`'s processes keep their metrics files (emptied at each start).
    METRICS_DIR: str | None = None  # default: DATA_DIR/metrics
    INGEST_SITE_CACHE_SECONDS = 10.0
    INGEST_SITE_MISS_INTERVAL = 1.0  # an id found missing is not looked up again for this long
    # Query parameters kept in stored URLs besides utm_*; the rest may be private (tokens, e-mails).
    INGEST_ALLOWED_QUERY: ClassVar[list[str]] = ["ref", "source", "page", "lang"]
    MAX_EVENT_BODY = 8 * 1024
    # Abuse limits on the collector, per worker process: events a second per visitor address
    # and per site, and the bursts they may save up. Over them an event is dropped as
    # "rate_limited" (202 and the drop header, never a 429). 0 turns a limit off. Why these
    # numbers: docs/security.md#collector-rate-limits.
    COLLECTOR_IP_RATE = 20.0
    COLLECTOR_IP_BURST = 100.0
    COLLECTOR_SITE_RATE = 2_000.0
    COLLECTOR_SITE_BURST = 20_000.0
    # Reports: the writer recomputes the open days' sessions and markers at most this often, so
    # reports lag stored events by up to this many seconds (realtime never does).
    ROLLUP_INTERVAL = 5.0
    # The JSON API (/api/v1): per-key rate limits, and the largest JSON body it reads.
    API_RATE_LIMIT = "600 per minute"
    API_EVENTS_RATE_LIMIT = "100 per second"
    MAX_API_BODY = 64 * 1024
    # Outgoing email (mail/): SMTP settings, also read plainly from the environment as
    # MAIL_SERVER, MAIL_PORT, … With no MAIL_SERVER, messages are written to the log instead
    # (development). MAIL_USE_TLS is STARTTLS (port 587 usually), MAIL_USE_SSL implicit TLS
    # (465). The writer's `mail` job sends what is queued every MAIL_INTERVAL seconds and
    # retries a failure with backoff (30 s doubling to 1 h), MAIL_MAX_ATTEMPTS times in all.
    MAIL_SERVER = ""
    MAIL_PORT = 25
    MAIL_USE_TLS = False
    MAIL_USE_SSL = False
    MAIL_USERNAME = ""
    MAIL_PASSWORD = ""
    MAIL_FROM = "Flask-Tracking <flask-tracking@localhost>"
    # The server's certificate is always verified (system authorities); a relay with a private
    # or self-signed certificate needs its CA here (a PEM file).
    MAIL_CA_FILE: str | None = None
    MAIL_INTERVAL = 2.0
    MAIL_MAX_ATTEMPTS = 10
    MAIL_KEEP_DAYS = 7  # sent and given-up messages are deleted after this (they hold links)
    # How often the writer's `reports` job looks for scheduled email reports that are due.
    REPORTS_INTERVAL = 60.0
    # Alerts (notify/alerts.py): the writer's `alerts` job reads every rule this often and
    # sends what fired or recovered; a webhook or Slack delivery waits ALERTS_TIMEOUT seconds
    # for an answer and is retried with backoff, ALERTS_MAX_ATTEMPTS times in all. Webhook
    # URLs that resolve to loopback, private or link-local addresses are refused unless
    # ALERTS_ALLOW_PRIVATE_TARGETS is on (a receiver on your own network).
    ALERTS_INTERVAL = 60.0
    ALERTS_TIMEOUT = 5.0
    ALERTS_MAX_ATTEMPTS = 8
    ALERTS_ALLOW_PRIVATE_TARGETS = False
    # Plans, quotas and payments (billing/, docs/billing.md): off ("none") for self-hosting;
    # "local" checks out on the app itself (development, demos); "stripe" through Stripe,
    # with STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET. All four are also read plainly from
    # the environment. The plans are BILLING_PLANS_FILE (TOML), or built-in examples when
    # unset. The writer's `billing` job updates each account's standing every
    # BILLING_INTERVAL seconds (quotas, trials, ends, purges).
    BILLING_PROVIDER = "none"
    BILLING_PLANS_FILE = ""
    STRIPE_SECRET_KEY = ""
    STRIPE_WEBHOOK_SECRET = ""
    STRIPE_API_BASE = ""  # another Stripe-compatible server (tests); empty: Stripe's own
    BILLING_INTERVAL = 60.0
    # The address people reach this server at (https://stats.example.com): links in emails are
    # built on it. Unset, the request's own address is used — set it in production, or a
    # forged Host header could put someone else's address into a password-reset link.
    PUBLIC_URL: str | None = None
    # Registration sends a link to confirm the address; with this on, an account cannot be
    # used until it is confirmed.
    REQUIRE_EMAIL_VERIFICATION = False
    # Links sent by email: a password reset works once, for this long; an address
    # confirmation (registration, email change) for EMAIL_TOKEN_MAX_AGE.
    PASSWORD_RESET_MAX_AGE = 3600
    EMAIL_TOKEN_MAX_AGE = 3 * 24 * 3600
    # The account security log (settings page): events kept this many days.
    AUDIT_LOG_DAYS = 180
    # Two-factor login: how long "remember this browser" lasts, and codes tried per user.
    TWO_FACTOR_REMEMBER_DAYS = 30
    TWO_FACTOR_RATE_LIMIT = "5 per 10 minutes"
    # Single sign-on with OpenID Connect (users/sso.py), on when OIDC_ISSUER is set (the URL
    # whose /.well-known/openid-configuration describes the provider); OIDC_ISSUER,
    # OIDC_CLIENT_ID and OIDC_CLIENT_SECRET are also read plainly from the environment. The
    # provider's redirect URI for this app is PUBLIC_URL + /login/sso/callback.
    OIDC_ISSUER = ""
    OIDC_CLIENT_ID = ""
    OIDC_CLIENT_SECRET = ""
    # Only addresses at these domains may log in by single sign-on (a list, or a string of
    # names separated by commas or spaces); empty: any address the provider vouches for.
    OIDC_ALLOWED_DOMAINS: ClassVar[list[str]] = []
    # Whether a first login by single sign-on makes an account (else only existing accounts,
    # matched by a verified address, and invited people who registered, can use it).
    OIDC_CREATE_USERS = True
    # Whether passwords still log in once single sign-on is on (off: the provider only).
    OIDC_PASSWORD_LOGIN = True
    OIDC_TIMEOUT = 10.0  # seconds for each call to the provider
    OIDC_NAME = "single sign-on"  # the login button reads "Log in with <this>"
    # Days an invitation to a site's team can be accepted (teams/rules.py).
    INVITATION_DAYS = 7
    # Asking for a reset link: per address and per client, every request counts.
    PASSWORD_RESET_RATE_LIMIT_IP = "10 per hour"  # noqa: S105 - a rate, not a password
    PASSWORD_RESET_RATE_LIMIT_EMAIL = "3 per hour"  # noqa: S105 - a rate
    LOG_LEVEL = "INFO"
    LOG_FORMAT = "text"
    ERROR_LOG_PATH: str | None = None


class DevelopmentConfiguration(BaseConfiguration):
    """Local development: debug on, readable errors."""

    DEBUG = True
    HASH_ROUNDS = 1_000


DebugConfiguration = DevelopmentConfiguration  # the original tutorial's name


class TestConfiguration(BaseConfiguration):
    """Fast, isolated tests: in-memory SQLite, CSRF off, one hash round."""

    TESTING = True
    SQLALCHEMY_DATABASE_URI = "sqlite://"
    EVENTS_DATABASE_URL = "duckdb:///:memory:"
    EVENTS_MEMORY_LIMIT = "500MB"
    EVENTS_THREADS = 2
    WTF_CSRF_ENABLED = False
    HASH_ROUNDS = 1
    GEOIP_PROVIDER = "none"
    RATELIMIT_ENABLED = True
    INGEST_WRITER = "off"  # tests drain the spool explicitly with ingest.drain(app)
    INGEST_SITE_MISS_INTERVAL = 0.0


class ProductionConfiguration(BaseConfiguration):
    """Production: secure cookies and a real secret key, or no start at all."""

    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    REQUIRE_SECRET_KEY = True


CONFIGURATIONS: dict[str, type[BaseConfiguration]] = {
    "development": DevelopmentConfiguration,
    "debug": DevelopmentConfiguration,
    "production": ProductionConfiguration,
    "test": TestConfiguration,
    "testing": TestConfiguration,
}


TRUE = frozenset({"1", "true", "yes", "on"})


def read_plainly(config: dict[str, Any], keys: tuple[str, ...]) -> None:
    """Take these keys from the environment by their plain names as well (MAIL_SERVER, …);
    the FLASK_TRACKING_ name, which from_prefixed_env has read already, wins."""
    for key in keys:
        if os.environ.get(key) and f"FLASK_TRACKING_{key}" not in os.environ:
            config[key] = os.environ[key]


def as_flag(value: object) -> bool:
    """A setting's truth: "1", "true", "yes", "on" (any case) from the environment, else bool."""
    return value.strip().lower() in TRUE if isinstance(value, str) else bool(value)


def configuration_from_environment() -> type[BaseConfiguration]:
    """Return the configuration class named by FLASK_TRACKING_CONFIG (default development)."""
    name = os.environ.get("FLASK_TRACKING_CONFIG", "development").strip().lower()
    try:
        return CONFIGURATIONS[name]
    except KeyError:
        choices = ", ".join(sorted(CONFIGURATIONS))
        raise RuntimeError(f"FLASK_TRACKING_CONFIG={name!r} is not one of: {choices}") from None
