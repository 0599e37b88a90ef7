"""Persistence: SQLAlchemy 2 models, the engine, and schema migrations (Alembic).

Everything the server does is stored as it happens: users (and the tokens revoked before their
expiry), simulation sessions (with their result), every streamed move, training jobs, registered
policies and metric exports. SQLite by default (a file under the data directory), any
SQLAlchemy URL through ``DATABASE_URL``.

The schema is owned by the Alembic migrations in ``serve/migrations`` (``upgrade head`` runs at
startup, see :func:`migrate`); the models here must match the latest migration (a test checks it).

Access is synchronous (SQLite); the app calls it through a thread pool so the event loop never
waits on the disk. Times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator):
    """A DateTime that always comes back timezone-aware UTC (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    # Tokens carry the generation they were issued in; a password change bumps it, which
    # revokes every token issued before.
    token_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class RevokedToken(Base):
    """A token revoked before its expiry (logout); kept until ``expires_at``, then purged."""

    __tablename__ = "revoked_tokens"
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class Policy(Base):
    """A playable trained policy (an ``eqx_jax.train.export_policy`` file)."""

    __tablename__ = "policies"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    path: Mapped[str] = mapped_column(Text)  # the policy.eqx file
    source: Mapped[str] = mapped_column(String(16))  # "run" (startup) or "job"
    algorithm: Mapped[str] = mapped_column(String(16), default="ppo")
    agent_type: Mapped[str] = mapped_column(String(16))  # supplier | retailer | both
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    performance_metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    job_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    trained_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SimSession(Base):
    """One negotiation: the request, its live status, and its result."""

    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    #: The worker process running it (:mod:`serve.bus`); None for a session of an old server.
    worker_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    #: The registry game played (``eqx_jax.games.registry``), its scenario where it takes one.
    game_name: Mapped[str] = mapped_column(String(32), default="price", server_default="price")
    scenario: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: Every seat in order: ``[{"agent", "policy", "style"}, ...]`` (None for an old session).
    seats: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    # The price game's valuations (currency units); None in the other games.
    supplier_valuation: Mapped[float | None] = mapped_column(Float, nullable=True)
    retailer_valuation: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_rounds: Mapped[int] = mapped_column(Integer)
    supplier_style: Mapped[str] = mapped_column(String(16))
    retailer_style: Mapped[str] = mapped_column(String(16))
    supplier_policy: Mapped[str] = mapped_column(String(64))
    retailer_policy: Mapped[str] = mapped_column(String(64))
    deterministic: Mapped[bool] = mapped_column(Boolean, default=True)
    move_delay_s: Mapped[float] = mapped_column(Float, default=0.0)
    seed: Mapped[int] = mapped_column(Integer)
    game: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the EnvParams played
    current_round: Mapped[int] = mapped_column(Integer, default=0)
    deal_reached: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    final_price: Mapped[float | None] = mapped_column(Float, nullable=True)
    total_rounds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    supplier_reward: Mapped[float | None] = mapped_column(Float, nullable=True)
    retailer_reward: Mapped[float | None] = mapped_column(Float, nullable=True)
    nash_distance: Mapped[float | None] = mapped_column(Float, nullable=True)
    pareto_efficiency: Mapped[float | None] = mapped_column(Float, nullable=True)
    equilibrium_price: Mapped[float | None] = mapped_column(Float, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # final message
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Message(Base):
    """One streamed move, stored before it is sent."""

    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("session_id", "seq", name="uq_messages_session_seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)  # 0, 1, ... within the session
    agent: Mapped[str] = mapped_column(String(16))
    round: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))
    price: Mapped[float | None] = mapped_column(Float, nullable=True)
    text: Mapped[str] = mapped_column(Text)
    phraser: Mapped[str] = mapped_column(String(32))
    quality: Mapped[float | None] = mapped_column(Float, nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # exactly what was streamed
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Job(Base):
    """A training job (an ``eqx train`` subprocess)."""

    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    #: The worker process whose trainer runs it (``eqx worker`` or an API worker).
    worker_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    #: Trainer starts so far (a retry after a killed trainer resumes from the checkpoint).
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    agent_type: Mapped[str] = mapped_column(String(16))
    algorithm: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    run_dir: Mapped[str] = mapped_column(Text)
    estimated_duration_minutes: Mapped[float] = mapped_column(Float)
    updates_done: Mapped[int] = mapped_column(Integer, default=0)
    total_updates: Mapped[int] = mapped_column(Integer)
    last_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    policy_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Export(Base):
    """A metrics export file and its expiry."""

    __tablename__ = "exports"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    format: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(Text)
    session_ids: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


# ------------------------------------------------------------------------------ engine
def make_engine(url: str, pool_size: int = 10, max_overflow: int = 10) -> Engine:
    """An engine for ``url``; SQLite gets WAL and a busy timeout so the streaming writers and
    readers (thread pool) do not block each other."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a killed process (only an OS crash can lose the last
            # commits), and is several times faster than FULL for many small commits.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=pool_size,
                         max_overflow=max_overflow)


class Database:
    """The engine plus a session factory."""

    def __init__(self, url: str, pool_size: int = 10, max_overflow: int = 10):
        self.url = url
        self.engine = make_engine(url, pool_size, max_overflow)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = threading.Lock()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on error."""
        s = self._factory()
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A unit of work that writes. Writers take a process-wide lock first: SQLite allows
        one writer at a time, and its busy handler *sleeps* (1, 2, 5, 10, ... ms) when a
        writer finds the database locked, which with 100 sessions writing every move made
        latencies jump; waiting on a Python lock wakes the next writer at once."""
        with self._write_lock, self.session() as s:
            yield s

    def migrate(self) -> None:
        migrate(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(url: str | None = None):
    """A programmatic Alembic config (works from an installed package, no alembic.ini)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


#: The PostgreSQL advisory lock held while migrating (any constant; "eqx" in ASCII).
MIGRATION_LOCK = 0x657178


def migrate(engine: Engine) -> None:
    """``alembic upgrade head`` on ``engine``, once however many workers start together: on
    PostgreSQL under a transaction-scoped advisory lock, so the second worker waits for the
    first and then finds the schema at head (SQLite serialises writers itself)."""
    from alembic import command

    cfg = alembic_config(str(engine.url.render_as_string(hide_password=False)))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
