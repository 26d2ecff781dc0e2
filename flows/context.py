"""What the flows and their tasks take from around them: the catalog of the settings a flow run was given
(built once per flow run and passed down), and the Prefect flow run they belong to."""

from __future__ import annotations

from prefect import runtime
from sqlalchemy import Engine

from catalog.db import open_catalog
from core.settings import Settings


def catalog_of(settings: Settings) -> Engine:
    """The catalog engine of ``settings`` (one per URL per process; migrated on its first open)."""
    return open_catalog(settings.catalog_db_url)


def flow_run_id() -> str | None:
    """The id of the Prefect flow run this code runs in (from a flow or one of its tasks), else None."""
    fid = runtime.flow_run.id
    return str(fid) if fid else None
