"""Users, password hashing (argon2id) and bearer tokens (PyJWT, HS256 with ``exp``)."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select

from serve.db import Database, User, utcnow

_hasher = PasswordHasher()  # argon2id with the library's (RFC 9106 "low memory") parameters


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against when the user does not exist, so that a login for an unknown
    name takes as long as one with a wrong password (no user enumeration by timing). Made on
    first use: one argon2 hash at the library's defaults costs ~0.3 s."""
    return _hasher.hash("not-a-password")

ALGORITHM = "HS256"
USERNAME_PATTERN = r"^[A-Za-z0-9_.@-]{1,64}$"
MIN_PASSWORD = 8


class AuthError(Exception):
    """Bad credentials or token (the message is safe to show)."""


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    user_id: int
    username: str
    is_admin: bool


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def create_user(db: Database, username: str, password: str, *, is_admin: bool = False,
                exist_ok: bool = False) -> User:
    """Add a user (``eqx user add``); ``ValueError`` for a taken name or a bad password."""
    import re

    if not re.match(USERNAME_PATTERN, username):
        raise ValueError("username must be 1-64 characters of letters, digits and _ . @ -")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"password must be at least {MIN_PASSWORD} characters")
    with db.session() as s:
        existing = s.scalar(select(User).where(User.username == username))
        if existing is not None:
            if exist_ok:
                return existing
            raise ValueError(f"user {username!r} already exists")
        user = User(username=username, password_hash=hash_password(password), is_admin=is_admin)
        s.add(user)
        s.flush()
        return user


def authenticate(db: Database, username: str, password: str) -> Principal:
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is None:
            verify_password(_dummy_hash(), password)
            raise AuthError("incorrect username or password")
        if not verify_password(user.password_hash, password):
            raise AuthError("incorrect username or password")
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        return Principal(user.id, user.username, user.is_admin)


def issue_token(principal: Principal, secret: str, ttl_s: int) -> str:
    now = utcnow()
    claims = {"sub": principal.username, "uid": principal.user_id, "adm": principal.is_admin,
              "iat": now, "exp": now + dt.timedelta(seconds=ttl_s)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_token(token: str, secret: str) -> Principal:
    """Verify signature and expiry; ``AuthError`` otherwise."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM],
                            options={"require": ["exp", "sub", "uid"]})
    except jwt.ExpiredSignatureError:
        raise AuthError("token expired") from None
    except jwt.PyJWTError:
        raise AuthError("invalid token") from None
    return Principal(int(claims["uid"]), str(claims["sub"]), bool(claims.get("adm", False)))
