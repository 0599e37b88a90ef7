"""Server settings: environment variables (prefix ``EQX_``) via pydantic-settings.

Every field can be set as ``EQX_<FIELD>`` (e.g. ``EQX_SECRET_KEY``, ``EQX_LLM_BACKEND``); the
spec's plain names ``DATABASE_URL``, ``OLLAMA_HOST`` and ``OLLAMA_MODEL`` work too. Lists (CORS
origins) are JSON (``EQX_CORS_ORIGINS='["http://localhost:3000"]'``) or comma-separated.

Units: durations in seconds (``*_s``), sizes in bytes, rates per minute.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

#: The development secret. ``EQX_MODE=production`` refuses to start with it.
DEFAULT_SECRET = "eqx-dev-secret-change-me-0123456789abcdef"

#: The message printed (one line) when production mode meets the default secret.
PRODUCTION_SECRET_ERROR = (
    "refusing to start: EQX_MODE=production needs EQX_SECRET_KEY set to a private value "
    "(at least 32 characters), not the default development secret"
)


class SettingsError(ValueError):
    """A setting that makes the server refuse to start (one clear line)."""


class Settings(BaseSettings):
    """All server settings; see docs/server.md for the table."""

    model_config = SettingsConfigDict(env_prefix="EQX_", extra="ignore", populate_by_name=True)

    # --- mode and secrets
    mode: Literal["development", "production"] = Field(
        "development", description="production refuses the default secret")
    secret_key: str = Field(DEFAULT_SECRET, description="HS256 key for the JWTs")
    token_ttl_s: int = Field(3600, ge=60, le=30 * 86400, description="JWT lifetime, seconds")
    admin_user: str | None = Field(None, description="first admin, created at startup if absent")
    admin_password: str | None = Field(None, description="the first admin's password")

    # --- storage
    data_dir: Path = Field(Path("runs/server"),
                           description="SQLite file, exports and job run directories")
    database_url: str | None = Field(
        None, validation_alias=AliasChoices("EQX_DATABASE_URL", "DATABASE_URL", "database_url"),
        description="any SQLAlchemy URL; default sqlite:///<data_dir>/eqx.db")
    default_policy_dir: Path = Field(
        Path("runs/default"), description="run directory registered as policy 'default'")

    # --- HTTP
    host: str = Field("127.0.0.1", description="eqx serve bind address")
    port: int = Field(8000, ge=1, le=65535, description="eqx serve port")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:3000", "http://127.0.0.1:3000"],
        description="allowed CORS origins")
    rate_limit_per_minute: float = Field(
        120.0, gt=0, description="per-user token bucket refill, requests per minute")
    rate_limit_burst: int = Field(60, ge=1, description="per-user bucket size, requests")
    login_attempts_per_minute: float = Field(
        10.0, gt=0, description="login attempts per client IP per minute (bucket of the same size)")
    ws_max_message_bytes: int = Field(
        4096, ge=64, le=1 << 20, description="client WebSocket frames above this: close 1008")
    ws_auth_timeout_s: float = Field(
        5.0, gt=0, description="wait for a {token} first message when ?token= is absent")

    # --- simulations
    max_running_sessions: int = Field(
        1000, ge=1, description="simulations running at once; more get 429")
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
        50_000_000, ge=1, description="largest total_timesteps a job may ask for")

    # --- exports
    export_ttl_s: int = Field(3600, ge=1, description="seconds an export download URL lives")
    max_export_sessions: int = Field(10_000, ge=1, description="session ids per export")

    # --- LLM phrasing (passed to serve.phrasing.PhrasingSettings)
    llm_backend: Literal["ollama", "openai", "embedded", "template"] = Field(
        "embedded", description="who phrases the moves")
    ollama_host: str = Field(
        "http://localhost:11434",
        validation_alias=AliasChoices("EQX_OLLAMA_HOST", "OLLAMA_HOST", "ollama_host"))
    ollama_model: str = Field(
        "llama3", validation_alias=AliasChoices("EQX_OLLAMA_MODEL", "OLLAMA_MODEL", "ollama_model"))
    openai_base_url: str = "http://127.0.0.1:8081/v1"
    openai_model: str = "default"
    openai_api_key: str | None = None
    embedded_model_path: str | None = None
    embedded_threads: int = Field(1, ge=1)
    embedded_port: int | None = None
    embedded_ctx: int = Field(1024, ge=128, description="embedded LLM context, tokens")
    llm_timeout_s: float = Field(10.0, gt=0, description="per LLM call, seconds")
    llm_max_pending: int = Field(8, ge=1, description="LLM calls queued + running; beyond: "
                                                       "template")
    llm_max_concurrent: int = Field(1, ge=1, description="LLM calls in flight at once")
    llm_num_predict: int = Field(60, ge=1, description="max new tokens per message")
    llm_temperature: float = Field(0.7, ge=0)
    llm_retries: int = Field(1, ge=0, description="regenerations after a guard failure")
    llm_prompt: str | None = Field(None, description="phrasing prompt variant (None: the "
                                                     "phrasing module's default)")

    @field_validator("cors_origins", mode="before")
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

    def check(self) -> None:
        """Raise :class:`SettingsError` (one line) for settings that must stop the server."""
        if self.mode == "production" and (self.secret_key == DEFAULT_SECRET
                                          or len(self.secret_key) < 32):
            raise SettingsError(PRODUCTION_SECRET_ERROR)
        if bool(self.admin_user) != bool(self.admin_password):
            raise SettingsError("EQX_ADMIN_USER and EQX_ADMIN_PASSWORD must be set together")

    def phrasing_settings(self):
        """The :class:`serve.phrasing.PhrasingSettings` built from the LLM fields."""
        from serve.phrasing import PhrasingSettings

        values = dict(
            backend=self.llm_backend, ollama_host=self.ollama_host,
            ollama_model=self.ollama_model, openai_base_url=self.openai_base_url,
            openai_model=self.openai_model, openai_api_key=self.openai_api_key,
            embedded_model_path=self.embedded_model_path,
            embedded_threads=self.embedded_threads, embedded_port=self.embedded_port,
            embedded_ctx=self.embedded_ctx, timeout_s=self.llm_timeout_s,
            max_pending=self.llm_max_pending, max_concurrent=self.llm_max_concurrent,
            num_predict=self.llm_num_predict, temperature=self.llm_temperature,
            retries=self.llm_retries, prompt=self.llm_prompt)
        # Pass only what this version of the phrasing module knows (None: its default).
        known = PhrasingSettings.model_fields
        return PhrasingSettings(**{k: v for k, v in values.items()
                                   if k in known and v is not None})
