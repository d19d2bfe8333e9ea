"""Typed settings, read from ``STOCK_TRACKER_*`` environment variables once at start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import msgspec

PREFIX = "STOCK_TRACKER_"
MIN_SECRET_LENGTH = 32

Environment = Literal["development", "production", "test"]


class SettingsError(Exception):
    """Raised when the settings are missing, malformed or unsafe for the environment."""


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    """Every setting the API and the worker read. Field ``x`` comes from ``STOCK_TRACKER_X``."""

    env: Environment = "development"
    database_url: str = ""
    # Owner connection used only by `migrate` (creates tables, roles and policies).
    migration_database_url: str = ""
    redis_url: str = ""
    # Password of the application role the migrations create (`stock_tracker_app`).
    app_db_password: str = ""
    jwt_secret: str = ""
    # Rotation: the secret being replaced. Access tokens it signed are still accepted (until they expire),
    # and API keys hashed with a key derived from it still work (docs/operations.md, "Rotating secrets").
    jwt_secret_previous: str = ""
    jwt_issuer: str = "stock-tracker"
    jwt_audience: str = "stock-tracker-api"
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    encryption_keys: str = ""
    # Rotation: keys that only decrypt (the first of ENCRYPTION_KEYS encrypts). `stock-tracker secrets
    # rotate` re-encrypts everything stored under them; then they can be removed.
    encryption_keys_previous: str = ""
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_workers: int = 1
    # Proxies whose X-Forwarded-For / -Proto uvicorn trusts (comma-separated IPs or CIDRs, or "*").
    forwarded_allow_ips: str = "127.0.0.1"
    # The worker's Prometheus listener. Loopback by default; compose binds it on the internal network only.
    worker_metrics_addr: str = "127.0.0.1"
    worker_metrics_port: int = 9100
    # Who may create an account: anyone (open), only with an invitation's token (invite_only), nobody (closed:
    # existing accounts still accept invitations while logged in).
    signup: Literal["open", "invite_only", "closed"] = "open"
    # argon2 runs on this many threads per API process (0: on the event loop — benchmarks' baseline only);
    # past workers + queue waiting calls, a sign-in is refused with 503 and Retry-After. One thread leaves the
    # event loop a core of its own on the 2-core class (bench/auth.py); raise it on bigger machines.
    password_hash_workers: int = 1
    password_hash_queue: int = 64
    # /metrics (API and worker) answers only `Authorization: Bearer <this>`; unset, only loopback clients.
    metrics_token: str = ""
    public_url: str = ""
    cors_origins: str = ""
    log_format: Literal["json", "console"] = "json"
    log_level: str = "INFO"
    request_max_body_bytes: int = 1024 * 1024
    # Connections per process. Overflow connections are closed at check-in, so under steady load they turn
    # into a connect (and type introspection) per request: size the pool for the load and keep overflow 0.
    db_pool_size: int = 20
    db_max_overflow: int = 0
    # Test each pooled connection before use. Off by default: with asyncpg a ping costs three round trips
    # (BEGIN, ";", ROLLBACK) on every checkout. Without it the first statement on a connection the server
    # dropped fails once; that invalidates the whole pool (the request answers 503, the next ones reconnect)
    # and the hot read path retries on a fresh connection by itself. See docs/decisions.md.
    db_pool_pre_ping: bool = False
    # Pooled connections older than this are replaced (also bounds what a server-side restart can strand).
    db_pool_recycle_seconds: int = 1800
    health_timeout_seconds: float = 1.0
    outbox_sweep_seconds: int = 30
    # The arq queue (separate deployments or test sessions sharing one Redis use different names).
    queue_name: str = "arq:queue"
    # Run the crons (fan-out, outbox sweep, retry sweeps) in this worker; turn off for extra workers that
    # should only take jobs.
    worker_crons: bool = True
    # Concurrent jobs per worker process: as many as the database pool (no job waits for a connection);
    # measured against 10 and 50 in docs/scaling.md#worker-concurrency.
    worker_max_jobs: int = 20
    worker_poll_delay: float = 0.1
    worker_health_check_interval: int = 30
    # Retention (the sweep every 10 minutes, docs/decisions.md): events with their webhook deliveries and
    # notifications, and suppressions; operational rows (alert-evaluation claims, Telegram updates, spent
    # refresh tokens, relayed outbox rows); finished sync runs. Stock history follows each plan's retention.
    retention_event_days: int = 30
    retention_operational_days: int = 30
    retention_sync_run_days: int = 90
    retention_batch: int = 5000
    retention_budget_seconds: float = 30.0
    # Stock history is partitioned by month: the daily cron keeps this many months ready after the current one.
    history_partitions_ahead: int = 3
    # Until alert rules exist for a tenant, a product below this many units counts as "low".
    low_stock_units: int = 5
    # A connection's first sync opens its alerts silently and sends one digest (the baseline); so does the
    # first sync after a pause longer than this (its per-product news would be this old). docs/alerts.md.
    alert_baseline_after_hours: float = 24.0
    # Keep outbound marketplace calls under the documented limits (off only for load tests against a sandbox
    # whose own limits are off).
    marketplace_rate_limits: bool = True
    # The most a sync run waits on marketplace limits (429 Retry-After, spent budgets) over all its jobs; past
    # it the run ends failed with error_code rate_limited (docs/sync.md).
    sync_max_wait_s: int = 600
    # The per-connection sync lease (lock and run heartbeat), renewed every third of it while a sync runs:
    # a dead worker's connection is free again, and its run ended by the sweep, within about this long.
    sync_lease_s: int = 30
    # How many times the sweep resumes a run whose worker stopped (a fresh job, the same run) before it ends
    # the run failed/abandoned: a sync that kills its worker every time must not loop (docs/reliability.md).
    sync_max_resumes: int = 2
    # Mount the sandbox marketplace at /sandbox (what `stock-tracker dev` does).
    sandbox_enabled: bool = False
    wb_base_url: str = ""
    ozon_base_url: str = ""
    # Outgoing webhooks may target these networks even though they are private (CIDR list; development
    # mode also allows 127.0.0.0/8). Everything loopback/private/link-local/metadata is refused otherwise.
    webhook_allowed_networks: str = ""
    # Inbound rate limiting: what to do when Redis cannot be reached ("open" admits and counts it).
    rate_limit_fail_open: bool = True
    rate_limit_enabled: bool = True
    # Token leases (app/server/lease.py): an API process that sees a caller keep coming counts up to this many
    # of its requests in one gate call and serves the rest from memory for at most RATE_LIMIT_LEASE_SECONDS
    # (revocations and cache changes still reach it at once through Redis pub/sub). 1 = every request is its
    # own round trip. The bounds this trades are in docs/api-platform.md ("Token leases").
    rate_limit_lease_tokens: int = 8
    rate_limit_lease_seconds: float = 1.0
    # Key for the keyed hashes of API keys (defaults to one derived from JWT_SECRET).
    api_key_secret: str = ""
    # Rotation: the API-key secret being replaced. Keys hashed with it keep working, and each is re-hashed
    # under the current secret the first time it is used.
    api_key_secret_previous: str = ""
    # The operator's bearer token for `GET /api/v1/admin/queue` (and its actions); unset = those routes 404.
    operator_token: str = ""
    # Error tracking (Sentry or GlitchTip). Unset: the SDK is not even imported.
    sentry_dsn: str = ""
    sentry_environment: str = ""  # default: ENV
    sentry_release: str = ""  # default: stock-tracker@<package version>
    telegram_bot_token: str = ""
    telegram_api_base: str = "https://api.telegram.org"
    telegram_webhook_secret: str = ""
    # Google Sheets push: the API base and the OAuth token endpoint (the sandbox serves both under
    # /sandbox/google/… in development; tests point these at it).
    sheets_api_base: str = "https://sheets.googleapis.com"
    sheets_token_url: str = "https://oauth2.googleapis.com/token"
    # Billing (docs/billing.md). On when a Stripe secret key is set, unless BILLING=off; BILLING=sandbox makes
    # `stock-tracker dev` wire the sandbox's Stripe stand-in when no real key is set (development only).
    billing: Literal["auto", "sandbox", "off"] = "auto"
    stripe_secret_key: str = ""
    stripe_webhook_secret: str = ""
    stripe_api_base: str = ""
    billing_default_plan: str = "self_hosted"
    billing_trial_days: int = 14
    # Where Checkout and the Customer Portal send the customer back (default: PUBLIC_URL).
    billing_return_url: str = ""
    # How long an API process trusts what it read of a tenant's read-only state (writes only).
    billing_access_cache_seconds: float = 5.0

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def billing_enabled(self) -> bool:
        """Billing is on with a Stripe key (and not switched off); without one every tenant is self-hosted."""
        return self.billing != "off" and bool(self.stripe_secret_key)

    @property
    def encryption_key_list(self) -> list[str]:
        """The keys a cipher uses: ENCRYPTION_KEYS (the first encrypts), then ENCRYPTION_KEYS_PREVIOUS."""
        out: list[str] = []
        for raw in (self.encryption_keys, self.encryption_keys_previous):
            out += [k.strip() for k in raw.split(",") if k.strip() and k.strip() not in out]
        return out

    @property
    def jwt_previous_secrets(self) -> list[str]:
        return [self.jwt_secret_previous] if self.jwt_secret_previous else []

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]


def _read_env(environ: Mapping[str, str]) -> dict[str, str]:
    fields = set(Settings.__struct_fields__)
    out: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith(PREFIX):
            name = key[len(PREFIX) :].lower()
            if name in fields:
                out[name] = value
    return out


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    dotenv_path: Path | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Settings:
    """Build and validate settings from the environment (and ``.env`` in development)."""
    env = dict(os.environ if environ is None else environ)
    if env.get(PREFIX + "ENV", "development") == "development":
        path = dotenv_path or Path.cwd() / ".env"
        if path.is_file():
            from dotenv import dotenv_values

            for key, value in dotenv_values(path).items():
                if value is not None:
                    env.setdefault(key, value)
    raw: dict[str, object] = dict(_read_env(env))
    if overrides:
        raw.update(overrides)
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"invalid setting: {exc}") from exc
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    """Refuse unsafe settings: production needs real secrets and servers."""
    problems: list[str] = []
    if settings.is_production:
        if not settings.database_url:
            problems.append(f"{PREFIX}DATABASE_URL is required in production")
        if not settings.redis_url:
            problems.append(f"{PREFIX}REDIS_URL is required in production")
        if len(settings.jwt_secret) < MIN_SECRET_LENGTH:
            problems.append(
                f"{PREFIX}JWT_SECRET is missing or shorter than {MIN_SECRET_LENGTH} characters "
                "(generate one with `stock-tracker keys`)"
            )
        if not settings.encryption_key_list:
            problems.append(f"{PREFIX}ENCRYPTION_KEYS is missing (generate one with `stock-tracker keys`)")
        if settings.telegram_bot_token and not settings.telegram_webhook_secret:
            problems.append(f"{PREFIX}TELEGRAM_WEBHOOK_SECRET is required when a bot token is set")
        if settings.billing == "sandbox":
            problems.append(f"{PREFIX}BILLING=sandbox (the Stripe stand-in) is for development only")
        if settings.billing_enabled and not settings.stripe_webhook_secret:
            problems.append(
                f"{PREFIX}STRIPE_WEBHOOK_SECRET is required when a Stripe key is set (the endpoint's signing secret)"
            )
    if settings.encryption_keys_previous and not settings.encryption_keys.strip():
        problems.append(f"{PREFIX}ENCRYPTION_KEYS_PREVIOUS needs a current {PREFIX}ENCRYPTION_KEYS to encrypt with")
    for name, raw in (
        ("ENCRYPTION_KEYS", settings.encryption_keys),
        ("ENCRYPTION_KEYS_PREVIOUS", settings.encryption_keys_previous),
    ):
        keys = [k.strip() for k in raw.split(",") if k.strip()]
        if keys:
            from cryptography.fernet import Fernet

            for i, key in enumerate(keys):
                try:
                    Fernet(key)
                except (ValueError, TypeError):
                    problems.append(f"{PREFIX}{name} entry {i + 1} is not a valid Fernet key")
    for name, value in (
        ("JWT_SECRET", settings.jwt_secret),
        ("JWT_SECRET_PREVIOUS", settings.jwt_secret_previous),
        ("OPERATOR_TOKEN", settings.operator_token),
    ):
        if value and len(value) < MIN_SECRET_LENGTH:
            problems.append(f"{PREFIX}{name} must be at least {MIN_SECRET_LENGTH} characters")
    if settings.jwt_secret_previous and settings.jwt_secret_previous == settings.jwt_secret:
        problems.append(f"{PREFIX}JWT_SECRET_PREVIOUS is the same as {PREFIX}JWT_SECRET")
    if settings.api_key_secret_previous and settings.api_key_secret_previous == settings.api_key_secret:
        problems.append(f"{PREFIX}API_KEY_SECRET_PREVIOUS is the same as {PREFIX}API_KEY_SECRET")
    if settings.sync_max_wait_s < 0:
        problems.append(f"{PREFIX}SYNC_MAX_WAIT_S cannot be negative")
    if not 1 <= settings.sync_lease_s <= 60:
        problems.append(f"{PREFIX}SYNC_LEASE_S must be between 1 and 60 seconds")
    if not 0 <= settings.sync_max_resumes <= 10:
        problems.append(f"{PREFIX}SYNC_MAX_RESUMES must be between 0 and 10")
    if not 1 <= settings.rate_limit_lease_tokens <= 64:
        problems.append(f"{PREFIX}RATE_LIMIT_LEASE_TOKENS must be between 1 (no leases) and 64")
    if not 0.05 <= settings.rate_limit_lease_seconds <= 5:
        problems.append(f"{PREFIX}RATE_LIMIT_LEASE_SECONDS must be between 0.05 and 5")
    if settings.billing_trial_days < 0:
        problems.append(f"{PREFIX}BILLING_TRIAL_DAYS cannot be negative")
    if problems:
        raise SettingsError("; ".join(problems))


def require_runtime(settings: Settings) -> None:
    """Settings the long-running processes need in every mode (api, worker)."""
    missing = [
        name
        for name, value in (
            ("DATABASE_URL", settings.database_url),
            ("REDIS_URL", settings.redis_url),
            ("JWT_SECRET", settings.jwt_secret),
            ("ENCRYPTION_KEYS", settings.encryption_keys),
        )
        if not value
    ]
    if missing:
        raise SettingsError("missing settings: " + ", ".join(PREFIX + m for m in missing))
