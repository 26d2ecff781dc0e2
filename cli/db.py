"""`wanflow db upgrade`: bring the catalog database to the newest schema (Alembic)."""

from __future__ import annotations

import typer
from sqlalchemy import make_url

from catalog.db import current_revision, make_engine, upgrade
from cli.context import console, guard, settings

app = typer.Typer(help="Catalog database.", no_args_is_help=True)


@app.command("upgrade")
@guard
def db_upgrade() -> None:
    """Apply catalog migrations (Alembic) to the configured database; says from which revision to which."""
    url = settings().catalog_db_url
    engine = make_engine(url)
    before = current_revision(engine)
    upgrade(url)
    after = current_revision(engine)
    engine.dispose()
    shown = make_url(url).render_as_string(hide_password=True)
    if before == after:
        console.print(f"catalog already at revision {after}: {shown}")
    else:
        console.print(f"catalog upgraded from revision {before or '(empty database)'} to {after}: {shown}")
