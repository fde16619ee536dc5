"""Dashboard operators: people who log in to reports and customer data.

Separate from the device registry on purpose: a tap's credential is on a board in a shop and
must never open customer data. Passwords are chosen by people, so they are stored as scrypt
hashes (slow to brute-force if the database leaks); sessions are random tokens of which only
the SHA-256 is stored.
"""
import datetime as dt
import functools
import hashlib
import hmac
import os
import re
import secrets

from sqlalchemy import delete, select

from tilltap.storage import database
from tilltap.storage.schema import operator_sessions, operators

SESSION_HOURS = 12
_SCRYPT = (2 ** 14, 8, 1)  # n, r, p: ~50 ms per check, 16 MiB
_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


class OperatorError(ValueError):
    """A refused operator change (bad name, short password, duplicate)."""


def hash_password(password, salt=None):
    n, r, p = _SCRYPT
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return "scrypt$%d$%d$%d$%s$%s" % (n, r, p, salt.hex(), digest.hex())


def check_password(password, stored):
    try:
        _, n, r, p, salt, digest = stored.split("$")
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r),
                             p=int(p), dklen=len(digest) // 2)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)


def add(engine, username, password):
    """Creates an operator (`tilltap operators add`)."""
    if not _USERNAME.match(username or ""):
        raise OperatorError("username must be 1-64 characters of A-Z a-z 0-9 _ . @ -")
    if len(password or "") < 8:
        raise OperatorError("password must have at least 8 characters")
    with engine.begin() as conn:
        if conn.execute(select(operators.c.username)
                        .where(operators.c.username == username)).first():
            raise OperatorError("%s already exists" % username)
        conn.execute(operators.insert().values(username=username, created_at=database.utcnow(),
                                               password_hash=hash_password(password)))


@functools.cache
def _unknown_user_hash():
    """A hash checked for unknown names: one scrypt then, as for a known name, so the answer's
    time does not tell which names exist."""
    return hash_password(secrets.token_urlsafe(16))


def verify(engine, username, password):
    """True if username/password is an operator's login (one scrypt check either way)."""
    with engine.connect() as conn:
        stored = conn.execute(select(operators.c.password_hash).where(
            operators.c.username == username)).scalar()
    if stored is None:
        check_password(password or "", _unknown_user_hash())
        return False
    return check_password(password or "", stored)


def _sha(token):
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(engine, username):
    """A new session token for a verified operator (goes into the session cookie)."""
    token = secrets.token_urlsafe(32)
    now = database.utcnow()
    with engine.begin() as conn:
        conn.execute(delete(operator_sessions).where(operator_sessions.c.expires_at < now))
        conn.execute(operator_sessions.insert().values(
            token_sha256=_sha(token), username=username,
            expires_at=now + dt.timedelta(hours=SESSION_HOURS)))
    return token


def session_user(engine, token):
    """The operator of a live session token, else None."""
    with engine.connect() as conn:
        row = conn.execute(select(operator_sessions.c.username, operator_sessions.c.expires_at)
                           .where(operator_sessions.c.token_sha256 == _sha(token))).first()
    if row is None:
        return None
    expires = row.expires_at
    if expires.tzinfo is None:  # SQLite returns it naive; stored as UTC
        expires = expires.replace(tzinfo=dt.timezone.utc)
    return row.username if expires > database.utcnow() else None


def end_session(engine, token):
    with engine.begin() as conn:
        conn.execute(delete(operator_sessions)
                     .where(operator_sessions.c.token_sha256 == _sha(token)))
