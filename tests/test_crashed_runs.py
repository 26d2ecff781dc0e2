"""A run killed with SIGKILL stays `running` only until the next run opens: that one sees the process recorded on
the row (host, pid, the process's start time) is gone and marks the run `crashed` at the time it noticed — on
SQLite and PostgreSQL, with a real `wanflow run` killed through its process group. Plus the 0008 migration from
the previous revision."""

from __future__ import annotations

import socket
import subprocess

from sqlalchemy import inspect, select, text
from test_bootstrap_recovery import _env, _kill_when
from test_cli import GOOD, ROOT, WANFLOW, write

from catalog.db import alembic_config, current_revision, make_engine, session_scope, upgrade
from catalog.models import Run, utcnow

RUN_COLUMNS = {"host", "pid", "pid_started_at"}


def _runs(url: str) -> list[Run]:
    engine = make_engine(url)
    try:
        with session_scope(engine) as s:
            rows = list(s.scalars(select(Run).order_by(Run.id)))
            s.expunge_all()
            return rows
    finally:
        engine.dispose()


def test_a_killed_run_is_marked_crashed_by_the_next(tmp_path, catalog_url):
    brief, home = write(tmp_path, GOOD), tmp_path / "home"
    env = _env(home) | {"WANFLOW_CATALOG_URL": catalog_url}

    def running() -> bool:
        try:
            return any(r.status == "running" for r in _runs(catalog_url))
        except Exception:  # noqa: BLE001 - the catalog is not created yet
            return False

    proc = subprocess.Popen([*WANFLOW, "run", str(brief)], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert _kill_when(proc, running), "the run finished before it could be killed"
    killed = _runs(catalog_url)[0]
    assert (killed.status, killed.host, killed.pid) == ("running", socket.gethostname(), proc.pid)
    assert killed.pid_started_at and killed.finished_at is None
    before = utcnow()
    done = subprocess.run([*WANFLOW, "run", str(brief)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = _runs(catalog_url)
    assert [r.status for r in runs] == ["crashed", "completed"]
    noticed = runs[0].finished_at.replace(tzinfo=before.tzinfo) if runs[0].finished_at.tzinfo is None else runs[0].finished_at
    assert before <= noticed <= utcnow()
    assert runs[0].summary["crashed"]["noticed_by_run"] == runs[1].id


def test_a_live_run_is_not_marked(catalog_url):
    """A run whose process is alive (this one) stays running when another opens; a recycled pid does not fool it."""
    from catalog.db import open_catalog
    from catalog.models import Campaign
    from catalog.runs import open_run

    engine = open_catalog(catalog_url)
    with session_scope(engine) as s:
        s.add(Campaign(name="c", brand="acme"))
        s.flush()
        live = open_run(s, "c", "campaign", None)
        recycled = open_run(s, "c", "campaign", None)
        s.get(Run, recycled).pid_started_at -= 60  # same pid, another process start: not ours
    with session_scope(engine) as s:
        open_run(s, "c", "campaign", None)
    with session_scope(engine) as s:
        assert s.get(Run, live).status == "running"
        assert s.get(Run, recycled).status == "crashed"


def test_upgrade_from_the_previous_revision_keeps_running_rows(catalog_url):
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(catalog_url))
    head = script.get_current_head()
    upgrade(catalog_url, "0007")  # the revision before 0008 added the run-process columns
    engine = make_engine(catalog_url)
    try:
        assert not RUN_COLUMNS & {c["name"] for c in inspect(engine).get_columns("runs")}
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO campaigns (id, name, brand, created_at) VALUES (1, 'old', 'acme', :t)"),
                         {"t": "2026-11-01 00:00:00"})
            conn.execute(text("INSERT INTO runs (id, campaign_id, flow, status, summary, started_at) "
                              "VALUES (1, 1, 'campaign', 'running', '{}', :t)"), {"t": "2026-11-01 00:00:00"})
        upgrade(catalog_url, "head")
        assert current_revision(engine) == head
        with engine.connect() as conn:
            row = conn.execute(text("SELECT status, host, pid, pid_started_at FROM runs")).one()
        assert tuple(row) == ("running", None, None, None)  # an old row: its process is unknown, left alone
    finally:
        engine.dispose()
