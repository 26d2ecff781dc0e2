"""Request dependencies: the catalog engine, the signed-in user (from the session cookie), role checks
and CSRF checks. Fixed error messages, so tests and API clients can rely on them."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from catalog.db import session_scope
from catalog.models import Role
from core.i18n import N_
from wan_tasks.accounts import find_session

SESSION_COOKIE = "wanflow_session"
LOGIN_CSRF_COOKIE = "wanflow_login_csrf"
RANKS = {Role.viewer: 0, Role.reviewer: 1, Role.approver: 2, Role.admin: 3}
SIGN_IN_REQUIRED = N_("sign-in required")
CSRF_REFUSED = N_("missing or invalid CSRF token")
NOT_ALLOWED = N_("your role does not allow this")
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class SignInRequired(Exception):
    """No valid session: HTML pages redirect to the sign-in page, the API answers 401."""


@dataclass(frozen=True)
class CurrentUser:
    id: int
    name: str
    role: Role
    csrf_token: str
    locale: str | None = None  # the account's language; None: the browser's, else WANFLOW_LOCALE

    def at_least(self, role: Role) -> bool:
        return RANKS[self.role] >= RANKS[role]


def engine(request: Request) -> Engine:
    return request.app.state.engine


Catalog = Annotated[Engine, Depends(engine)]


async def _submitted_csrf(request: Request) -> str:
    token = request.headers.get("x-csrf-token", "")
    if not token and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        token = str((await request.form()).get("csrf_token", ""))
    return token


def _same(a: str, b: str) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


def _signed_in(catalog: Engine, token: str | None) -> CurrentUser | None:
    with session_scope(catalog) as s:
        found = find_session(s, token)
        return None if found is None else CurrentUser(found[0].id, found[0].name, found[0].role,
                                                         found[1].csrf_token, found[0].locale)


async def current_user(request: Request, catalog: Catalog) -> CurrentUser:
    """The signed-in user; on a state-changing request also checks the session's CSRF token.

    The session look-up is a blocking query: it runs in the thread pool, like the sync routes, not on the
    event loop (where it would stall every other request while it waits for the database)."""
    user = await run_in_threadpool(_signed_in, catalog, request.cookies.get(SESSION_COOKIE))
    if user is None:
        raise SignInRequired()
    request.state.user_locale = user.locale  # the language of this request's pages and messages (dashboard.i18n)
    if request.method not in SAFE_METHODS and not _same(await _submitted_csrf(request), user.csrf_token):
        raise HTTPException(403, CSRF_REFUSED)
    return user


User = Annotated[CurrentUser, Depends(current_user)]


def require(role: Role):
    """Dependency: the signed-in user must have at least ``role`` (else 403)."""

    def check(user: User) -> CurrentUser:
        if not user.at_least(role):
            raise HTTPException(403, NOT_ALLOWED)
        return user

    return check


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


async def check_login_csrf(request: Request) -> None:
    """Sign-in has no session yet: double-submit the token from the pre-sign-in cookie."""
    if not _same(await _submitted_csrf(request), request.cookies.get(LOGIN_CSRF_COOKIE, "")):
        raise HTTPException(403, CSRF_REFUSED)


def set_cookie(response, request: Request, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="lax", path="/",
                        secure=request.app.state.settings.secure_cookies)
