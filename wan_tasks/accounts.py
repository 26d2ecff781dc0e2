"""Dashboard accounts and sign-in sessions.

Passwords are hashed with argon2id (argon2-cffi's defaults); there is no default password: every
account is created with `wanflow users add` (password from a prompt or $WANFLOW_PASSWORD), and only the
demo creates users itself, printing their generated passwords. A session is a random token in an
HttpOnly cookie; the catalog keeps only its sha256, with the session's CSRF token and expiry.
Sign-ins (and failed attempts), sign-outs, new users and role changes are audit events. Those events
also throttle guessing: after ``max_failures`` failed sign-ins of one name within a window (since its last
successful one), that name's sign-in is refused without checking the password until the oldest of them
leaves the window (:func:`sign_in_wait`). The count lives in the catalog, so every dashboard replica
sees it, and :func:`sign_in` counts and checks in one transaction serialised per name (a PostgreSQL advisory
lock on the name, SQLite's write lock): parallel attempts for one name wait for each other, so at most
``max_failures`` passwords are checked per window however many arrive at once.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from catalog import audit
from catalog.db import serialised_scope
from catalog.models import AuditEvent, Role, User, WebSession, utcnow
from core.i18n import LocaleError, check_locale

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MIN_PASSWORD = 10
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against when the name is unknown, so a miss takes as long as a wrong password.
    Made on first use: argon2 is deliberately slow, and a command that signs nobody in should not pay for it."""
    return _hasher.hash("not a real password, for constant-time misses")


class AccountError(ValueError):
    """Bad input for an account (name, role, password) or an unknown user."""


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise AccountError(f"role: {value!r} is not one of {', '.join(r.value for r in Role)}") from None


def add_user(session: Session, name: str, role: Role, password: str, actor: str) -> User:
    if not NAME_RE.match(name):
        raise AccountError(f"name: {name!r} must be 1-64 of a-z 0-9 . _ - (starting with a letter or digit)")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password: at least {MIN_PASSWORD} characters")
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise AccountError(f"name: user {name!r} already exists (change a role with `wanflow users set-role`)")
    user = User(name=name, role=role, password_hash=_hasher.hash(password))
    session.add(user)
    session.flush()
    audit.append(session, actor, "user.created", "user", user.id, {"name": name, "role": role.value})
    return user


def set_role(session: Session, name: str, role: Role, actor: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise AccountError(f"name: no user {name!r}")
    before, user.role = user.role, role
    audit.append(session, actor, "user.role_changed", "user", user.id,
                 {"name": name, "from": before.value, "to": role.value})
    return user


def set_locale(session: Session, name: str, locale: str | None, actor: str) -> User:
    """The user's dashboard language (``en``, ``ja``), or None to follow the browser (an audit event)."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise AccountError(f"name: no user {name!r}")
    try:
        value = None if locale in (None, "", "default", "browser") else check_locale(locale)
    except LocaleError as exc:
        raise AccountError(str(exc)) from None
    before, user.locale = user.locale, value
    audit.append(session, actor, "user.locale_changed", "user", user.id, {"name": name, "from": before, "to": value})
    return user


def authenticate(session: Session, name: str, password: str) -> User | None:
    """The user if the password matches (an audit event either way); None otherwise."""
    user = session.scalar(select(User).where(User.name == name))
    try:
        ok = _hasher.verify(user.password_hash if user else _dummy_hash(), password) and user is not None
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or not user.active:
        audit.append(session, name[:128] or "(empty)", "user.sign_in_failed", "user", user.id if user else None,
                     {"reason": "inactive account" if ok else "wrong name or password"})
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    audit.append(session, user.name, "user.signed_in", "user", user.id, {"role": user.role.value})
    return user


def sign_in_wait(session: Session, name: str, max_failures: int, window: timedelta) -> float:
    """Seconds before ``name`` may try to sign in again (0: now). A refusal is itself an audit event."""
    actor = name[:128] or "(empty)"
    now = utcnow()
    since = now - window
    last_ok = session.scalar(select(func.max(AuditEvent.at)).where(
        AuditEvent.action == "user.signed_in", AuditEvent.actor == actor, AuditEvent.at >= since))
    failures = list(session.scalars(
        select(AuditEvent.at).where(AuditEvent.action == "user.sign_in_failed", AuditEvent.actor == actor,
                                    AuditEvent.at >= (last_ok or since)).order_by(AuditEvent.at.desc())
        .limit(max_failures)))
    if len(failures) < max_failures:
        return 0.0
    oldest = failures[-1] if failures[-1].tzinfo else failures[-1].replace(tzinfo=now.tzinfo)
    wait = max(1.0, (oldest + window - now).total_seconds())
    audit.append(session, actor, "user.sign_in_throttled", "user", None,
                 {"failures": max_failures, "window_minutes": window.total_seconds() / 60,
                  "retry_after_s": round(wait)})
    return wait


@dataclass(frozen=True)
class SignedIn:
    token: str  # the session cookie
    csrf_token: str
    role: Role


def sign_in(engine: Engine, name: str, password: str, max_failures: int, window: timedelta,
            session_hours: float) -> SignedIn | float | None:
    """Sign ``name`` in: a new session, or the seconds to wait (throttled, password not checked), or None for
    a wrong name or password. Counting the failures and checking the password are one transaction that runs
    alone for this name (see the module docstring), so the count cannot be raced."""
    with serialised_scope(engine, f"sign-in:{name[:128]}") as s:
        wait = sign_in_wait(s, name, max_failures, window)
        if wait:
            return wait  # the refusal is recorded (committed) before it is answered
        user = authenticate(s, name, password)
        if user is None:
            return None
        token, csrf = start_session(s, user, session_hours)
        return SignedIn(token, csrf, user.role)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(session: Session, user: User, hours: float) -> tuple[str, str]:
    """A new session for ``user``: returns (cookie token, CSRF token)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = utcnow()
    session.execute(delete(WebSession).where(WebSession.expires_at < now))
    session.add(WebSession(token_sha256=_digest(token), user_id=user.id, csrf_token=csrf, created_at=now,
                           expires_at=now + timedelta(hours=hours)))
    return token, csrf


def find_session(session: Session, token: str | None) -> tuple[User, WebSession] | None:
    if not token or len(token) > 128:
        return None
    found = session.execute(select(WebSession, User).join(User, User.id == WebSession.user_id)
                            .where(WebSession.token_sha256 == _digest(token))).first()  # one query per request
    if found is None:
        return None
    row, user = found
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=utcnow().tzinfo)
    if expires < utcnow():
        return None
    return (user, row) if user.active else None


def end_session(session: Session, token: str | None) -> None:
    found = find_session(session, token)
    if found is None:
        return
    user, row = found
    session.delete(row)
    audit.append(session, user.name, "user.signed_out", "user", user.id, {})
