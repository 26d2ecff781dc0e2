"""App factory: one FastAPI app per Settings, with pages, the JSON API, static files and error pages."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from catalog.db import open_catalog
from core.settings import Settings
from dashboard.deps import SIGN_IN_REQUIRED, SignInRequired
from dashboard.routes import ab, auth, clips, compare, media, queue, users

HERE = Path(__file__).parent
API_PREFIX = "/api"
INTERNAL_ERROR = "internal error (logged on the server)"
SECURITY_HEADERS = {  # no inline scripts, nothing from elsewhere, not framable (no click-jacked approvals)
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; "
                               "form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def _when(t: datetime | None) -> str:
    if t is None:
        return "—"
    t = t if t.tzinfo else t.replace(tzinfo=timezone.utc)
    return t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def templates() -> Jinja2Templates:
    t = Jinja2Templates(directory=str(HERE / "templates"))
    t.env.auto_reload = False  # the templates ship with the package: no stat() of each template on every render
    t.env.filters["when"] = _when
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
            return JSONResponse({"detail": SIGN_IN_REQUIRED}, status_code=401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if _is_api(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return app.state.templates.TemplateResponse(
            request, "message.html", {"title": f"{exc.status_code}", "message": exc.detail, "user": None},
            status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        problems = [f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()]
        if _is_api(request):
            return JSONResponse({"detail": "; ".join(problems)}, status_code=422)
        return app.state.templates.TemplateResponse(
            request, "message.html", {"title": "Invalid request", "message": "; ".join(problems), "user": None},
            status_code=422)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception):
        # A bug: say so and close the connection cleanly (Starlette re-raises, so uvicorn logs the traceback
        # and closes the connection, which `Connection: close` announces).
        close = {"Connection": "close"}
        if _is_api(request):
            return JSONResponse({"detail": INTERNAL_ERROR}, status_code=500, headers=close)
        return PlainTextResponse(INTERNAL_ERROR, status_code=500, headers=close)

    return app


def app_from_environment() -> FastAPI:
    """The app for the settings in the environment: what each process of `review serve --workers N` builds."""
    return create_app(Settings())


__all__ = ["create_app", "app_from_environment", "HTTPException"]
