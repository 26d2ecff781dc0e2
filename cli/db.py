"""`wanflow db upgrade`: bring the catalog database to the newest schema (Alembic), then sweep what killed writes
left behind; `wanflow db sweep`: only the sweep (:mod:`wan_tasks.sweep`)."""

from __future__ import annotations

import typer
from sqlalchemy import Engine, make_url

from catalog.db import current_revision, make_engine, upgrade
from cli.context import catalog, console, guard, settings
from wan_tasks.sweep import sweep

app = typer.Typer(help="Catalog database.", no_args_is_help=True)


def _sweep(engine: Engine) -> None:
    cfg = settings()
    done = sweep(cfg, engine)
    console.print(f"sweep (grace {cfg.temp_grace_s:g} s, WANFLOW_TEMP_GRACE_S): {done}", soft_wrap=True)
    for path in done.removed:
        console.print(f"  removed {path}", highlight=False, soft_wrap=True)


@app.command("upgrade")
@guard
def db_upgrade() -> None:
    """Apply catalog migrations (Alembic) to the configured database; says from which revision to which. Then
    removes the temporary files killed writes left behind (as `wanflow db sweep`)."""
    url = settings().catalog_db_url
    engine = make_engine(url)
    before = current_revision(engine)
    upgrade(url)
    after = current_revision(engine)
    shown = make_url(url).render_as_string(hide_password=True)
    if before == after:
        console.print(f"catalog already at revision {after}: {shown}")
    else:
        console.print(f"catalog upgraded from revision {before or '(empty database)'} to {after}: {shown}")
    try:
        _sweep(engine)
    finally:
        engine.dispose()


@app.command("sweep")
@guard
def db_sweep() -> None:
    """Remove the temporary files that killed writes left in the asset store, model cache, reports and local
    delivery folder: only files named as temporary, untouched for WANFLOW_TEMP_GRACE_S seconds (default 3600),
    and not staged under a live claim. Safe while other runs and workers write."""
    _sweep(catalog())
