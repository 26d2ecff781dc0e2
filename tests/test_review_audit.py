"""The audit chain (append-only, hash-chained, never forked by concurrent writers, tampering found), the
migration that chains existing events, request-changes → revision job → the revisions flow, publishing an
approved clip without a GPU, and the `users` / `audit verify` commands.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
from conftest import ROOT
from fastapi.testclient import TestClient
from review_helpers import make_users, seed_campaign, sign_in
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError

from catalog import audit
from catalog.db import open_catalog, session_scope
from catalog.models import (Asset, AuditEvent, ClipStatus, GenerationJob, ItemStatus, JobStatus, PromptItem,
                            Publication, ReviewTask, Role)


def _drop_append_only_guard(engine) -> None:
    """What an attacker with DDL rights would do first: the chain must still catch the edit."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("DROP TRIGGER audit_events_append_only ON audit_events"))
        else:
            conn.execute(text("DROP TRIGGER audit_events_no_update"))
            conn.execute(text("DROP TRIGGER audit_events_no_delete"))


def _append_some(engine, n: int, actor: str = "t") -> None:
    for i in range(n):
        with session_scope(engine) as s:
            audit.append(s, actor, "test.event", "thing", i, {"i": i, "note": "ünïcode ✓"})


def _verify(engine) -> audit.ChainVerification:
    with session_scope(engine) as s:
        return audit.verify_chain(s)


def test_audit_is_append_only_and_verify_finds_an_edited_row(catalog_url):
    engine = open_catalog(catalog_url)
    _append_some(engine, 5)
    v = _verify(engine)
    assert v.ok and v.events == 5
    with pytest.raises(DBAPIError, match="append-only"):
        with engine.begin() as conn:
            conn.execute(update(AuditEvent).where(AuditEvent.id == 3).values(actor="mallory"))
    _drop_append_only_guard(engine)
    with engine.begin() as conn:
        conn.execute(update(AuditEvent).where(AuditEvent.id == 3).values(payload={"i": 99, "note": "ünïcode ✓"}))
    v = _verify(engine)
    assert (v.ok, v.broken_at) == (False, 3) and "altered" in v.problem


def test_verify_finds_deleted_rows_in_the_middle_and_at_the_end(catalog_url):
    engine = open_catalog(catalog_url)
    _append_some(engine, 5)
    _drop_append_only_guard(engine)
    with engine.begin() as conn:
        conn.execute(delete(AuditEvent).where(AuditEvent.id == 5))
    v = _verify(engine)
    assert not v.ok and "last event" in v.problem
    with engine.begin() as conn:
        conn.execute(delete(AuditEvent).where(AuditEvent.id == 2))
    v = _verify(engine)
    assert (v.ok, v.broken_at) == (False, 3) and "deleted" in v.problem


def test_concurrent_appends_never_fork_the_chain(catalog_url):
    engine = open_catalog(catalog_url)
    barrier = threading.Barrier(4)
    failures: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            barrier.wait()
            _append_some(engine, 15, name)
        except BaseException as e:  # noqa: BLE001
            failures.append(e)

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures, failures
    v = _verify(engine)
    assert v.ok and v.events == 60
    with session_scope(engine) as s:
        prevs = s.scalars(select(AuditEvent.prev_hash)).all()
        assert len(set(prevs)) == 60  # no two events claim the same predecessor: no fork


def test_migration_chains_events_written_before_it(tmp_path):
    from alembic import command

    from catalog.db import alembic_config, make_engine, upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0001")
    engine = make_engine(url)
    with engine.begin() as conn:
        for i in range(3):
            conn.execute(text("INSERT INTO audit_events (at, actor, action, entity, entity_id, payload) "
                              "VALUES ('2026-01-0%d 10:00:00.000000', 'old', 'x', 'y', %d, '{}')" % (i + 1, i)))
    upgrade(url)
    with session_scope(engine) as s:
        audit.append(s, "new", "after.upgrade", "thing")
    v = _verify(engine)
    assert v.ok and v.events == 4
    command.downgrade(alembic_config(url), "0001")
    engine.dispose()


@pytest.fixture
def sqlite_settings(tmp_path, dev_ca):
    """Flow-level tests run on SQLite only: the catalog code under them is covered on both databases above."""
    from catalog.db import dispose
    from core.settings import Settings

    settings = Settings(home=tmp_path / "home", catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}",
                        c2pa_key=dev_ca.key, c2pa_cert_chain=dev_ca.cert_chain)  # publishing signs every file
    yield settings
    dispose(settings.catalog_db_url)


def test_request_changes_makes_a_linked_revision_job_that_the_revisions_flow_generates(sqlite_settings, tiny_model):
    from dashboard import create_app
    from flows.revisions import revisions

    settings = sqlite_settings
    ids = seed_campaign(settings, model_source=str(tiny_model), variants=1)
    make_users(settings, rita=Role.reviewer)
    c = TestClient(create_app(settings))
    t = sign_in(c, "rita")

    def ask(asset_id, **body):
        return c.post(f"/api/clips/{asset_id}/decision", json={"decision": "request_changes", **body},
                      headers={"X-CSRF-Token": t})

    engine = open_catalog(settings.catalog_db_url)
    with session_scope(engine) as s:
        old_job = s.get(GenerationJob, s.get(Asset, ids[0]).job_id)
        old_key, old_prompt = old_job.idempotency_key, s.get(PromptItem, old_job.item_id).prompt
    assert "nothing to change" in ask(ids[0], prompt=old_prompt).json()["detail"]
    r = ask(ids[0], prompt="A red sneaker next to a Nike shoe")
    assert r.status_code == 422 and "blocked" in r.json()["detail"] and "nike" in r.json()["detail"]
    r = ask(ids[0], prompt="A red sneaker on a blue pedestal, slow turn", seed=4242, reason="pedestal colour")
    assert r.status_code == 200, r.text
    job_id = r.json()["revision_job_id"]
    with session_scope(engine) as s:
        job = s.get(GenerationJob, job_id)
        item = s.get(PromptItem, job.item_id)
        assert (job.revision_of_id, job.seed, job.status) == (ids[0], 4242, JobStatus.pending)
        assert job.idempotency_key != old_key
        assert (item.status, item.item_key, item.prompt) == (ItemStatus.revision, "hero~r1",
                                                             "A red sneaker on a blue pedestal, slow turn")
        assert s.get(Asset, ids[0]).status == ClipStatus.changes_requested

    summary = revisions(None, settings)  # what `wanflow revisions run` does on the GPU worker
    assert (summary["jobs"], summary["failed"], summary["queued_for_review"]) == (1, 0, 1)
    again = revisions(None, settings)
    assert again["jobs"] == 0  # idempotent: nothing waits any more
    new_id = summary["clips"][0]
    with session_scope(engine) as s:
        assert s.scalar(select(ReviewTask.status).where(ReviewTask.asset_id == new_id)).value == "pending"
    page = c.get(f"/clips/{new_id}").text
    assert f"revision of <a href=\"/clips/{ids[0]}\">clip #{ids[0]}</a>" in page
    assert f'href="/clips/{ids[0]}"' in page and "blue pedestal" in page
    detail = c.get(f"/api/clips/{ids[0]}").json()
    assert detail["revisions"] == [{"job_id": job_id, "status": "done", "seed": 4242, "asset_id": new_id}]


def test_clip_approved_in_the_dashboard_is_published_by_the_publish_flow(sqlite_settings):
    from dashboard import create_app
    from flows.publish import publish

    settings = sqlite_settings
    ids = seed_campaign(settings, items=("hero",), variants=2)
    make_users(settings, alex=Role.approver)
    c = TestClient(create_app(settings))
    t = sign_in(c, "alex")
    assert c.post(f"/api/clips/{ids[0]}/decision", json={"decision": "approve"},
                  headers={"X-CSRF-Token": t}).status_code == 200
    summary = publish("dash-test", settings)  # CPU only: the `publish` deployment runs this on the cpu pool
    assert (summary["clips"], summary["publications"]) == (1, 3)  # one 1:1 rendition + poster + animated preview
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        parents = {s.get(Asset, p.asset_id).parent_id for p in s.scalars(select(Publication))}
        assert parents == {ids[0]}
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        assert audit.verify_chain(s).ok


def _wanflow(*args: str, home, url: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "WANFLOW_"))}
    environ |= {"WANFLOW_HOME": str(home), "WANFLOW_CATALOG_URL": url, **env}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=environ, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_users_and_audit_verify_commands(tmp_path):
    url, home = f"sqlite:///{tmp_path / 'catalog.db'}", tmp_path / "home"
    r = _wanflow("users", "add", "rita", "--role", "reviewer", home=home, url=url)
    assert r.returncode == 2 and "WANFLOW_PASSWORD" in r.stderr  # no password, no terminal: refused
    r = _wanflow("users", "add", "rita", "--role", "boss", home=home, url=url, WANFLOW_PASSWORD="x" * 12)
    assert r.returncode == 2 and "role" in r.stderr and "Traceback" not in r.stderr
    r = _wanflow("users", "add", "rita", "--role", "reviewer", home=home, url=url, WANFLOW_PASSWORD="short")
    assert r.returncode == 2 and "at least" in r.stderr
    r = _wanflow("users", "add", "rita", "--role", "reviewer", home=home, url=url, WANFLOW_PASSWORD="x" * 12)
    assert r.returncode == 0, r.stderr
    assert _wanflow("users", "set-role", "rita", "approver", home=home, url=url).returncode == 0
    r = _wanflow("audit", "verify", home=home, url=url)
    assert r.returncode == 0 and "intact: 2 event(s)" in r.stdout, r.stdout + r.stderr
    engine = open_catalog(url)
    with session_scope(engine) as s:
        roles = [(e.action, e.payload.get("role") or e.payload.get("to")) for e in s.scalars(select(AuditEvent))]
        assert roles == [("user.created", "reviewer"), ("user.role_changed", "approver")]
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == 2
    _drop_append_only_guard(engine)
    with engine.begin() as conn:
        conn.execute(update(AuditEvent).where(AuditEvent.id == 1).values(payload={"name": "rita", "role": "admin"}))
    r = _wanflow("audit", "verify", home=home, url=url)
    assert r.returncode == 1 and "BROKEN at event 1" in r.stderr and "altered" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("command", [["review", "serve"], ["review", "policy"], ["review", "due"], ["users", "add"],
                                     ["users", "set-role"], ["users", "list"], ["audit", "verify"],
                                     ["revisions", "run"], ["revisions", "list"]])
def test_dashboard_commands_have_help(command, tmp_path):
    r = _wanflow(*command, "--help", home=tmp_path / "home", url=f"sqlite:///{tmp_path / 'c.db'}")
    assert r.returncode == 0 and "Usage" in r.stdout, r.stderr


def test_review_policy_and_due_commands(tmp_path):
    url, home = f"sqlite:///{tmp_path / 'catalog.db'}", tmp_path / "home"
    r = _wanflow("review", "policy", "acme", "--two-stage", home=home, url=url)
    assert r.returncode == 0 and "two-stage" in r.stdout
    r = _wanflow("review", "due", "no-such-campaign", "--hours", "24", home=home, url=url)
    assert r.returncode == 2 and "unknown campaign" in r.stderr and "Traceback" not in r.stderr
    with session_scope(open_catalog(url)) as s:
        from wan_tasks.review import two_stage

        assert two_stage(s, "acme") is True
        assert [e.action for e in s.scalars(select(AuditEvent))] == ["review.policy_changed"]
