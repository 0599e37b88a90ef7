"""Users, password hashing (argon2id), the signing secret, and revocable bearer tokens (PyJWT,
HS256).

* The secret is ``EQX_SECRET_KEY`` when set, else a random key generated on first start and kept
  in ``<data_dir>/secret_key`` (mode 0600), so tokens survive a restart (:func:`server_secret`).
* A token carries ``sub`` (user name), ``uid``, ``adm``, ``iat``, ``exp``, a unique ``jti`` and
  ``gen``, the user's token generation when it was issued. Logout stores the ``jti`` in
  ``revoked_tokens`` until the token would have expired; a password change bumps the user's
  generation, which revokes every token issued before (:class:`TokenService`).
* Password checks (~0.25 s of CPU and 64 MiB each) run on their own bounded pool
  (:class:`LoginPool`), not on the thread pool the rest of the server shares.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import os
import re
import secrets
import stat
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import jwt
from anyio import to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from serve.db import Database, RevokedToken, User, utcnow
from serve.settings import MIN_SECRET_CHARS, Settings, SettingsError

log = logging.getLogger("eqx.serve.auth")

_hasher = PasswordHasher()  # argon2id with the library's (RFC 9106 "low memory") parameters
T = TypeVar("T")

ALGORITHM = "HS256"
USERNAME_PATTERN = r"^[A-Za-z0-9_.@-]{1,64}$"
MIN_PASSWORD = 8
#: The generated secret's file in the data directory.
SECRET_FILE = "secret_key"


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against when the user does not exist, so that a login for an unknown
    name takes as long as one with a wrong password (no user enumeration by timing). Made on
    first use: one argon2 hash at the library's defaults costs ~0.25 s."""
    return _hasher.hash("not-a-password")


class AuthError(Exception):
    """Bad credentials or token (the message is safe to show)."""


class LoginBusy(Exception):
    """Too many password checks running or waiting (answered 429)."""


@dataclass(frozen=True)
class Principal:
    """The authenticated caller; ``jti``, ``expires_at`` (Unix seconds) and ``generation``
    describe the token it came with (None / 0 for a principal from a password check)."""

    user_id: int
    username: str
    is_admin: bool
    jti: str | None = None
    expires_at: float | None = None
    generation: int = 0


# ------------------------------------------------------------------------------- secret
def load_or_create_secret(path: Path) -> str:
    """The secret kept in ``path``, created first if missing: ``secrets.token_urlsafe(48)``
    (64 characters) written to a private temporary file and linked into place, so a reader
    never sees a half-written file and two processes starting at once agree on one secret.
    A file readable by others is made private (with a warning); a short one stops the start
    (:class:`SettingsError`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48) + "\n")
                f.flush()
                os.fsync(f.fileno())
            with contextlib.suppress(FileExistsError):  # another process won the race
                os.link(tmp, path)
                log.info("generated a new token signing secret in %s", path)
        finally:
            tmp.unlink(missing_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s was readable by others (mode %o); made it 0600", path, mode)
        path.chmod(0o600)
    secret = path.read_text().strip()
    if len(secret) < MIN_SECRET_CHARS:
        raise SettingsError(f"refusing to start: {path} holds a secret shorter than "
                            f"{MIN_SECRET_CHARS} characters; delete it to generate a new one")
    return secret


def server_secret(settings: Settings) -> str:
    """``EQX_SECRET_KEY`` if set, else the data directory's generated secret."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    return load_or_create_secret(settings.data_dir / SECRET_FILE)


# ------------------------------------------------------------------------------ passwords
def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"password must be at least {MIN_PASSWORD} characters")


def create_user(db: Database, username: str, password: str, *, is_admin: bool = False,
                exist_ok: bool = False) -> User:
    """Add a user (``eqx user add``); ``ValueError`` for a taken name or a bad password."""
    if not re.match(USERNAME_PATTERN, username):
        raise ValueError("username must be 1-64 characters of letters, digits and _ . @ -")
    _check_password(password)
    try:
        with db.session() as s:
            existing = s.scalar(select(User).where(User.username == username))
            if existing is not None:
                if exist_ok:
                    return existing
                raise ValueError(f"user {username!r} already exists")
            user = User(username=username, password_hash=hash_password(password),
                        is_admin=is_admin)
            s.add(user)
            s.flush()
            return user
    except IntegrityError:
        # Another process added the same name between the check and the insert (several
        # workers creating the first admin at once).
        if not exist_ok:
            raise ValueError(f"user {username!r} already exists") from None
        with db.session() as s:
            return s.scalars(select(User).where(User.username == username)).one()


def authenticate(db: Database, username: str, password: str) -> Principal:
    """The user whose password this is (``generation``: the user's token generation);
    :class:`AuthError` otherwise. Blocking: one argon2 verification (~0.25 s)."""
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is None:
            verify_password(_dummy_hash(), password)
            raise AuthError("incorrect username or password")
        if not verify_password(user.password_hash, password):
            raise AuthError("incorrect username or password")
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        return Principal(user.id, user.username, user.is_admin,
                         generation=user.token_generation)


def set_password(db: Database, username: str, new_password: str,
                 old_password: str | None = None) -> int:
    """Change a user's password and revoke all of its tokens (the token generation goes up);
    returns the new generation. With ``old_password`` it must match (:class:`AuthError`).
    ``ValueError`` for an unknown user or a too-short password. Blocking (two argon2 runs,
    outside the database's write lock, which the moves of every session need)."""
    _check_password(new_password)
    with db.session() as s:
        current = s.scalar(select(User.password_hash).where(User.username == username))
    if current is None:
        raise ValueError(f"no user {username!r}")
    if old_password is not None and not verify_password(current, old_password):
        raise AuthError("old_password is incorrect")
    new_hash = hash_password(new_password)
    with db.write() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is None:
            raise ValueError(f"no user {username!r}")
        if user.password_hash != current:  # changed meanwhile: the old password was not proof
            raise AuthError("old_password is incorrect")
        user.password_hash = new_hash
        user.token_generation += 1
        return user.token_generation


class LoginPool:
    """Password checks on ``workers`` threads of their own, at most ``max_pending`` running or
    waiting; beyond that :meth:`run` raises :class:`LoginBusy` at once. Used from the event
    loop only (the pending count needs no lock)."""

    def __init__(self, workers: int, max_pending: int):
        self.max_pending = max_pending
        self.pending = 0
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="eqx-login")

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        if self.pending >= self.max_pending:
            raise LoginBusy(f"too many logins in progress ({self.max_pending}); retry shortly")
        self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            self.pending -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


# ---------------------------------------------------------------------------------- tokens
#: The generation recorded for a user id that does not exist (deleted): above any token's.
_NO_USER = 2**62


@dataclass
class _UserTokens:
    """What a user's tokens are checked against, as read at ``read_at`` (monotonic s)."""

    generation: int
    revoked: frozenset[str]
    read_at: float


class TokenService:
    """Issues and verifies tokens, and revokes them.

    Verification is the signature and claims (PyJWT) plus in-memory checks: the token's
    ``jti`` is not revoked and its ``gen`` is not below the user's current generation. This
    process's own revocations (logout, password change) are kept in memory and take effect at
    once; what the database says (revocations by another process, e.g. another worker) is
    read per user at most every ``cache_s`` seconds (0: on every check).
    """

    def __init__(self, db: Database, secret: str, ttl_s: int, cache_s: float):
        self.db = db
        self.ttl_s = ttl_s
        self.cache_s = cache_s
        self._secret = secret
        self._users: dict[int, _UserTokens] = {}
        self._revoked: dict[str, float] = {}  # jti -> expiry (Unix s), revoked here
        self._generation_floor: dict[int, int] = {}  # user id -> generation, set here

    def issue(self, principal: Principal) -> str:
        """A token for ``principal`` (its ``generation`` must be the user's current one)."""
        now = utcnow()
        claims = {"sub": principal.username, "uid": principal.user_id,
                  "adm": principal.is_admin, "iat": now,
                  "exp": now + dt.timedelta(seconds=self.ttl_s),
                  "jti": secrets.token_urlsafe(16), "gen": principal.generation}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def decode(self, token: str) -> Principal:
        """Signature, expiry and claims only (no revocation check); :class:`AuthError`."""
        try:
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM],
                                options={"require": ["exp", "iat", "sub", "uid", "jti", "gen"]})
            return Principal(int(claims["uid"]), str(claims["sub"]), bool(claims.get("adm")),
                             jti=str(claims["jti"]), expires_at=float(claims["exp"]),
                             generation=int(claims["gen"]))
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except (jwt.PyJWTError, TypeError, ValueError):
            raise AuthError("invalid token") from None

    async def verify(self, token: str) -> Principal:
        """The token's principal if it is valid and not revoked; :class:`AuthError`."""
        p = self.decode(token)
        entry = self._users.get(p.user_id)
        if entry is None or time.monotonic() - entry.read_at > self.cache_s:
            entry = await to_thread.run_sync(self._read_user, p.user_id)
        if (p.jti in self._revoked or p.jti in entry.revoked
                or p.generation < max(entry.generation,
                                      self._generation_floor.get(p.user_id, 0))):
            raise AuthError("token revoked")
        return p

    def _read_user(self, user_id: int) -> _UserTokens:
        """The user's generation and unexpired revoked ids, from the database (cached; a user
        that does not exist gets a generation no token has). Blocking."""
        with self.db.session() as s:
            generation = s.scalar(select(User.token_generation).where(User.id == user_id))
            revoked = frozenset(s.scalars(select(RevokedToken.jti).where(
                RevokedToken.user_id == user_id, RevokedToken.expires_at > utcnow())))
        entry = _UserTokens(_NO_USER if generation is None else generation, revoked,
                            time.monotonic())
        self._users[user_id] = entry
        return entry

    def revoke(self, principal: Principal) -> None:
        """Revoke one token (logout) until it expires; expired revocations are purged on the
        way, here and in the database. Blocking."""
        if principal.jti is None or principal.expires_at is None:
            raise ValueError("only a principal from a token can be revoked")
        now = time.time()
        self._revoked = {j: e for j, e in self._revoked.items() if e > now}
        self._revoked[principal.jti] = principal.expires_at
        with self.db.write() as s:
            s.execute(delete(RevokedToken).where(RevokedToken.expires_at <= utcnow()))
            if s.get(RevokedToken, principal.jti) is None:
                s.add(RevokedToken(jti=principal.jti, user_id=principal.user_id,
                                   expires_at=dt.datetime.fromtimestamp(principal.expires_at,
                                                                        dt.UTC)))

    def revoke_all(self, user_id: int, generation: int) -> None:
        """Refuse the user's tokens below ``generation`` from now on (after a password change,
        which stored that generation in the database)."""
        self._generation_floor[user_id] = max(generation,
                                              self._generation_floor.get(user_id, 0))
