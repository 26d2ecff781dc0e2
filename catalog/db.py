"""Engine and sessions for the catalog (SQLite embedded default, PostgreSQL for fleets), and migrations."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from core import heavy

MIGRATIONS = Path(__file__).parent / "migrations"


# Connections kept open per process: enough for the dashboard's thread pool (40 threads) under load, so that
# busy periods reuse warm connections instead of opening (and closing) one per request beyond the pool
# (SQLAlchemy's default keeps 5). At most POOL_SIZE + POOL_OVERFLOW connections per process.
POOL_SIZE = 20
POOL_OVERFLOW = 20


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        on_disk = "///" in url and path not in ("", ":memory:")  # in-memory databases keep SQLAlchemy's own pool
        pool = {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW} if on_disk else {}
        engine = create_engine(url, connect_args={"timeout": 30}, **pool)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            # Read through a memory map: after another connection commits (a decision), this connection's
            # page cache is stale and re-reading is page-by-page read() calls otherwise. Measured: the queue
            # page of 10,000 tasks between commits, 19-20 → 15-16 ms of CPU (docs/performance.md).
            cur.execute("PRAGMA mmap_size=268435456")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)


def alembic_config(url: str):  # noqa: ANN201 - alembic.config.Config
    cfg = heavy.alembic().config.Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Apply Alembic migrations (idempotent: a database at head is left alone)."""
    heavy.alembic().command.upgrade(alembic_config(url), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return heavy.alembic().runtime.migration.MigrationContext.configure(conn).get_current_revision()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: commit on success, roll back everything on error."""
    with sessionmaker(engine, expire_on_commit=False)() as session:
        with session.begin():
            yield session


def lock_key(key: str) -> int:
    """A text key as a signed 64-bit number (PostgreSQL advisory locks take a bigint)."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big", signed=True)


@contextmanager
def serialised_scope(engine: Engine, key: str) -> Iterator[Session]:
    """One transaction that runs alone among those with the same ``key``, across processes and hosts.

    PostgreSQL: a transaction-level advisory lock on the key, taken by the first statement and held until
    commit or rollback (other keys are not blocked). SQLite: ``BEGIN IMMEDIATE``, the database's single write
    lock, taken before anything is read (every writer waits, which is SQLite's model anyway).
    """
    with session_scope(engine) as session:
        conn = session.connection()
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.execute(select(func.pg_advisory_xact_lock(lock_key(key))))
        yield session


_engines: dict[str, Engine] = {}


def open_catalog(url: str, migrate: bool = True) -> Engine:
    """The catalog at ``url``: one engine per URL per process, its schema brought to head (Alembic) the first
    time it is opened in the process (``migrate=False`` skips that, e.g. to inspect an old database)."""
    if url not in _engines:
        if migrate:
            if url.startswith("sqlite"):
                make_engine(url).dispose()  # creates the parent folder
            upgrade(url)
        _engines[url] = make_engine(url)
    return _engines[url]


def dispose(url: str) -> None:
    """Close the pooled connections of a URL's engine (before dropping a test database, say)."""
    engine = _engines.pop(url, None)
    if engine is not None:
        engine.dispose()
