"""`wanflow db upgrade` on SQLite and PostgreSQL: an empty database, and one at the previous revision with data
in it (the fleet's claim columns arrive with defaults; its jobs can be claimed straight away)."""

from __future__ import annotations

from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from typer.testing import CliRunner

from catalog import claims
from catalog.db import alembic_config, current_revision, make_engine, upgrade

FLEET_COLUMNS = {"claim_token", "claimed_by", "lease_expires_at", "claims"}


def _head_and_previous(url: str) -> tuple[str, str]:
    """The head, and the revision before the fleet's (0007) — the release these tests upgrade from."""
    script = ScriptDirectory.from_config(alembic_config(url))
    return script.get_current_head(), script.get_revision("0007").down_revision


def _db_upgrade(url: str, monkeypatch) -> str:
    from cli.main import app

    monkeypatch.setenv("WANFLOW_CATALOG_URL", url)
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_db_upgrade_on_an_empty_database(catalog_url, monkeypatch):
    head, _ = _head_and_previous(catalog_url)
    out = _db_upgrade(catalog_url, monkeypatch)
    assert f"upgraded from revision (empty database) to {head}" in out
    engine = make_engine(catalog_url)
    try:
        assert current_revision(engine) == head
        insp = inspect(engine)
        assert FLEET_COLUMNS <= {c["name"] for c in insp.get_columns("generation_jobs")}
        assert {"shard_runs", "worker_metrics"} <= set(insp.get_table_names())
    finally:
        engine.dispose()
    assert f"already at revision {head}" in _db_upgrade(catalog_url, monkeypatch)  # idempotent


def test_db_upgrade_from_the_previous_revision_keeps_the_data(catalog_url, monkeypatch):
    head, previous = _head_and_previous(catalog_url)
    upgrade(catalog_url, previous)
    engine = make_engine(catalog_url)
    try:
        assert current_revision(engine) == previous
        assert not FLEET_COLUMNS & {c["name"] for c in inspect(engine).get_columns("generation_jobs")}
        with engine.begin() as conn:  # rows written by the previous release, in its schema
            conn.execute(text("INSERT INTO campaigns (id, name, brand, created_at) VALUES (1, 'old', 'acme', :t)"),
                         {"t": "2026-11-01 00:00:00"})
            conn.execute(text("INSERT INTO briefs (id, campaign_id, path, sha256, model_ref, content, created_at) "
                              "VALUES (1, 1, 'b.yaml', :h, 'wan-t2v@champion', '{}', :t)"),
                         {"h": "0" * 64, "t": "2026-11-01 00:00:00"})
            conn.execute(text("INSERT INTO prompt_items (id, brief_id, item_key, source_row, prompt, negative_prompt, "
                              "locale, params, status) VALUES (1, 1, 'a', 1, 'p', '', 'en', '{}', 'accepted')"))
            conn.execute(text("INSERT INTO model_versions (id, registry_name, version, variant, source, "
                              "weights_sha256, stand_in, created_at) VALUES (1, 'wan-t2v', 1, 'wan-tiny', '/m', :h, "
                              ":f, :t)"), {"h": "0" * 64, "f": True, "t": "2026-11-01 00:00:00"})
            for i in (1, 2):
                conn.execute(text("INSERT INTO generation_jobs (id, idempotency_key, campaign_id, item_id, "
                                  "model_version_id, variant_index, seed, params, status, attempts, timings, batch, "
                                  "created_at) VALUES (:i, :k, 1, 1, 1, :i, :i, '{}', :s, :a, '{}', '{}', :t)"),
                             {"i": i, "k": f"key-{i}", "s": "pending" if i == 1 else "done", "a": i - 1,
                              "t": "2026-11-01 00:00:00"})
        out = _db_upgrade(catalog_url, monkeypatch)
        assert f"upgraded from revision {previous} to {head}" in out
        assert current_revision(engine) == head
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, status, claims, claim_token FROM generation_jobs ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [(1, "pending", 0, None), (2, "done", 0, None)]
        c = claims.claim(engine, "w", 5, 30)
        assert c.job_ids == [1]  # the old pending job is claimable; the done one is not
    finally:
        engine.dispose()
