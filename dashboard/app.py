"""App factory: one FastAPI app per Settings, with pages, the JSON API, static files and error pages."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from starlette.exceptions import HTTPException as StarletteHTTPException

from catalog.db import open_catalog
from core.i18n import N_
from core.settings import Settings
from dashboard import i18n
from dashboard.deps import SIGN_IN_REQUIRED, SignInRequired
from dashboard.routes import ab, auth, clips, compare, media, queue, users

HERE = Path(__file__).parent
API_PREFIX = "/api"
INTERNAL_ERROR = N_("internal error (logged on the server)")
SECURITY_HEADERS = {  # no inline scripts, nothing from elsewhere, not framable (no click-jacked approvals)
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; "
                               "form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


@pass_context
def _when(ctx, t: datetime | None) -> str:
    """A date and time in the reader's locale and the deployment's time zone (WANFLOW_TIMEZONE)."""
    return ctx["fmt"].datetime(t)


@pass_context
def _num(ctx, x: float | int | None, digits: int = 4) -> str:
    return ctx["fmt"].number(x, digits)


def templates() -> Jinja2Templates:
    t = Jinja2Templates(directory=str(HERE / "templates"), context_processors=[i18n.context])
    t.env.auto_reload = False  # the templates ship with the package: no stat() of each template on every render
    t.env.add_extension("jinja2.ext.i18n")  # {% trans %}: gettext/ngettext come per request from i18n.context
    t.env.policies["ext.i18n.trimmed"] = True  # msgids without the template's line breaks and indentation
    t.env.filters["when"] = _when
    t.env.filters["num"] = _num
    return t


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIX + "/") or request.url.path == API_PREFIX


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(title="wanflow review", version="1", docs_url=None, redoc_url=None,
                  openapi_url=f"{API_PREFIX}/openapi.json",
                  description="Review queue, clips and decisions. Sign in with POST /api/session; send the "
                              "returned csrf_token as X-CSRF-Token on every state-changing request.")
    app.state.settings = settings
    app.state.engine = open_catalog(settings.catalog_db_url)
    app.state.templates = templates()
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        return response

    for module in (auth, queue, clips, compare, media, users, ab):
        app.include_router(module.pages)
        app.include_router(module.api, prefix=API_PREFIX)

    @app.exception_handler(SignInRequired)
    async def sign_in_required(request: Request, exc: SignInRequired):
        if _is_api(request):
            return JSONResponse({"detail": i18n.say(request, SIGN_IN_REQUIRED)}, status_code=401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        detail = i18n.say(request, exc.detail) if isinstance(exc.detail, str) else exc.detail
        if _is_api(request):
            return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)
        return app.state.templates.TemplateResponse(
            request, "message.html", {"title": f"{exc.status_code}", "message": detail, "user": None},
            status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        problems = [f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()]
        if _is_api(request):
            return JSONResponse({"detail": "; ".join(problems)}, status_code=422)
        return app.state.templates.TemplateResponse(
            request, "message.html", {"title": i18n.say(request, N_("Invalid request")), "message": "; ".join(problems),
                                      "user": None},
            status_code=422)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception):
        # A bug: say so and close the connection cleanly (Starlette re-raises, so uvicorn logs the traceback
        # and closes the connection, which `Connection: close` announces).
        close = {"Connection": "close"}
        if _is_api(request):
            return JSONResponse({"detail": i18n.say(request, INTERNAL_ERROR)}, status_code=500, headers=close)
        return PlainTextResponse(i18n.say(request, INTERNAL_ERROR), status_code=500, headers=close)

    return app


def app_from_environment() -> FastAPI:
    """The app for the settings in the environment: what each process of `review serve --workers N` builds."""
    return create_app(Settings())


__all__ = ["create_app", "app_from_environment", "HTTPException"]
