"""The catalog schema and its transactional rules, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, inspect, select

from catalog.db import current_revision, open_catalog, session_scope, upgrade
from catalog.models import Asset, AssetKind, AuditEvent, Campaign, ClipStatus, Decision, ReviewTask
from wan_tasks.review import ReviewError, decide

TABLES = {"campaigns", "briefs", "prompt_items", "model_versions", "runs", "generation_jobs", "assets",
          "qc_results", "review_tasks", "review_decisions", "publications", "audit_events", "audit_head", "users",
          "web_sessions", "review_policies", "qc_validations"}


def test_migrations_create_every_table_and_are_idempotent(catalog_url):
    engine = open_catalog(catalog_url)
    upgrade(catalog_url)  # a second upgrade at head changes nothing
    from alembic.script import ScriptDirectory

    from catalog.db import alembic_config

    assert current_revision(engine) == ScriptDirectory.from_config(alembic_config(catalog_url)).get_current_head()
    columns = {c["name"] for c in inspect(engine).get_columns("generation_jobs")}
    assert {"memory_policy", "dtype", "batch"} <= columns  # 0005: how each clip was made
    assert TABLES <= set(inspect(engine).get_table_names())


def _clip_in_review(engine) -> int:
    with session_scope(engine) as s:
        asset = Asset(kind=AssetKind.raw_clip, uri="/x.mp4", sha256="0" * 64, size=1, width=16, height=16,
                      status=ClipStatus.in_review)
        s.add(asset)
        s.flush()
        s.add(ReviewTask(asset_id=asset.id))
        return asset.id


def test_one_decision_per_clip_with_an_audit_event(catalog_url):
    engine = open_catalog(catalog_url)
    asset_id = _clip_in_review(engine)
    with session_scope(engine) as s:
        decide(s, asset_id, Decision.approve, "", "alice")
    with pytest.raises(ReviewError, match="already decided"):
        with session_scope(engine) as s:
            decide(s, asset_id, Decision.reject, "too late", "bob")
    with session_scope(engine) as s:
        assert s.get(Asset, asset_id).status == ClipStatus.approved
        events = s.scalars(select(AuditEvent).where(AuditEvent.entity_id == asset_id)).all()
        assert [(e.actor, e.action) for e in events] == [("alice", "review.approve")]


def test_reject_needs_a_reason_and_writes_nothing_without_one(catalog_url):
    engine = open_catalog(catalog_url)
    asset_id = _clip_in_review(engine)
    with pytest.raises(ReviewError, match="reason"):
        with session_scope(engine) as s:
            decide(s, asset_id, Decision.reject, "  ", "alice")
    with session_scope(engine) as s:
        assert s.get(Asset, asset_id).status == ClipStatus.in_review
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_failed_transaction_leaves_nothing(catalog_url):
    engine = open_catalog(catalog_url)
    with pytest.raises(RuntimeError):
        with session_scope(engine) as s:
            s.add(Campaign(name="half-written", brand="acme"))
            s.flush()
            raise RuntimeError("crash mid-write")
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(Campaign)) == 0


def test_migration_0002_keeps_the_audit_hash_it_was_written_with():
    """0002 chains existing events with a frozen copy of the hash; it must agree with catalog.audit, whose hash
    every existing chain depends on (a change to either breaks `wanflow audit verify` on old catalogs)."""
    import importlib.util
    from datetime import datetime, timedelta, timezone

    from catalog import audit
    from catalog.db import MIGRATIONS

    spec = importlib.util.spec_from_file_location("m0002", MIGRATIONS / "versions" / "0002_review_dashboard.py")
    m0002 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m0002)
    assert m0002.GENESIS == audit.GENESIS
    for at in (datetime(2026, 11, 25, 10, 8, 14, 283519), datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=9)))):
        for payload in ({}, {"reason": "ブランド外", "n": 3, "nested": {"b": [1, 2], "a": None}}):
            args = (7, at, "maria", "review.approve", "asset", 42, payload, "ab" * 32)
            assert m0002.event_hash(*args) == audit.event_hash(*args)
    assert m0002.event_hash(1, at, "a", "b", "c", None, {}, audit.GENESIS) != audit.event_hash(
        1, at, "a", "b", "c", None, {"x": 1}, audit.GENESIS)
