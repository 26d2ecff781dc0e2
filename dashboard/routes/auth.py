"""Sign-in and sign-out: the HTML form and the API session (both CSRF-protected)."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from catalog.db import session_scope
from core.i18n import N_
from dashboard.deps import (LOGIN_CSRF_COOKIE, SESSION_COOKIE, Catalog, User, check_login_csrf, new_login_csrf,
                            set_cookie)
from dashboard.schemas import SessionOut, SignIn
from wan_tasks.accounts import SignedIn, end_session, find_session, sign_in

pages = APIRouter(include_in_schema=False)
api = APIRouter(tags=["session"])
WRONG = N_("wrong name or password")
LOGIN_ERRORS = {"wrong": WRONG, "throttled": N_("too many failed sign-ins for this name: try again later")}


class Throttled(Exception):
    def __init__(self, seconds: float) -> None:
        self.seconds = math.ceil(seconds)
        minutes = math.ceil(seconds / 60)
        super().__init__(f"too many failed sign-ins for this name: try again in {minutes} minute"
                         f"{'s' if minutes != 1 else ''}")


def _safe_next(target: str | None) -> str:
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


def _sign_in(request: Request, catalog, name: str, password: str) -> SignedIn | None:
    """The new session, or None for a wrong name or password; raises Throttled."""
    settings = request.app.state.settings
    signed = sign_in(catalog, name, password, settings.sign_in_max_failures,
                     timedelta(minutes=settings.sign_in_window_minutes), settings.review_session_hours)
    if isinstance(signed, float):
        raise Throttled(signed)
    return signed


def _max_age(request: Request) -> int:
    return int(request.app.state.settings.review_session_hours * 3600)


def _login_form(request: Request, next: str, error: str | None = None) -> Response:
    token = new_login_csrf()
    response = request.app.state.templates.TemplateResponse(
        request, "login.html", {"csrf_token": token, "next": _safe_next(next), "error": error, "user": None},
        status_code=401 if error else 200)
    set_cookie(response, request, LOGIN_CSRF_COOKIE, token)
    return response


@pages.get("/login")
def login_page(request: Request, next: str = "/", error: str | None = None):
    """The sign-in form. ``error`` is a code (LOGIN_ERRORS); its fixed message is shown, any other text is not,
    so a link cannot make the real sign-in page say what its author wants."""
    return _login_form(request, next, LOGIN_ERRORS.get(error or ""))


@pages.post("/login", dependencies=[Depends(check_login_csrf)])
def login(request: Request, catalog: Catalog, name: Annotated[str, Form(max_length=64)],
          password: Annotated[str, Form(max_length=1024)], next: Annotated[str, Form()] = "/"):
    try:
        signed = _sign_in(request, catalog, name.strip(), password)
    except Throttled as e:
        response = _login_form(request, next, str(e))
        response.status_code = 429
        response.headers["Retry-After"] = str(e.seconds)
        return response
    if signed is None:
        return _login_form(request, next, WRONG)
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_cookie(response, request, SESSION_COOKIE, signed.token, _max_age(request))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@pages.post("/logout")
def logout(request: Request, catalog: Catalog, user: User):
    with session_scope(catalog) as s:
        end_session(s, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@api.get("/session", response_model=SessionOut)
def get_session(request: Request, catalog: Catalog):
    """Who is signed in. Anonymous callers get a pre-sign-in CSRF token (and its cookie) for POST /session."""
    with session_scope(catalog) as s:
        found = find_session(s, request.cookies.get(SESSION_COOKIE))
        if found is not None:
            return SessionOut(signed_in=True, user=found[0].name, role=found[0].role, csrf_token=found[1].csrf_token)
    token = new_login_csrf()
    response = JSONResponse(SessionOut(signed_in=False, csrf_token=token).model_dump(mode="json"))
    set_cookie(response, request, LOGIN_CSRF_COOKIE, token)
    return response


@api.post("/session", response_model=SessionOut, dependencies=[Depends(check_login_csrf)],
          responses={401: {"description": WRONG}, 403: {"description": "missing or invalid CSRF token"},
                     429: {"description": "too many failed sign-ins for this name (Retry-After says how long)"}})
def post_session(request: Request, catalog: Catalog, body: SignIn):
    """Sign in; the session cookie is set and the session's CSRF token returned."""
    try:
        signed = _sign_in(request, catalog, body.name.strip(), body.password)
    except Throttled as e:
        raise HTTPException(429, str(e), headers={"Retry-After": str(e.seconds)}) from None
    if signed is None:
        raise HTTPException(401, WRONG)
    response = JSONResponse(SessionOut(signed_in=True, user=body.name.strip(), role=signed.role,
                                       csrf_token=signed.csrf_token).model_dump(mode="json"))
    set_cookie(response, request, SESSION_COOKIE, signed.token, _max_age(request))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@api.delete("/session", status_code=204)
def delete_session(request: Request, catalog: Catalog, user: User):
    """Sign out: the session is deleted on the server, not only forgotten by the browser."""
    with session_scope(catalog) as s:
        end_session(s, request.cookies.get(SESSION_COOKIE))
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
