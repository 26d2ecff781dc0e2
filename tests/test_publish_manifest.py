"""The manifest tells the truth, through `wanflow publish` in a real process, on SQLite and PostgreSQL.

A rendition that fails (here before any file of it exists: the campaign's rendition folder is blocked)
is listed under `failed` with its reason and the command exits 1; a publish killed (SIGKILL to its
process group) while renditions are being made leaves no manifest or a truthful one, and a re-run
delivers every file exactly once with no failure.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, SMALL_DELIVERABLES, SMALL_PRESETS, small_brief, write_brief

BRIEF = small_brief("manifest-test")
PRESETS = SMALL_PRESETS
EXPECTED = SMALL_DELIVERABLES


@pytest.fixture
def approved(catalog_url, tmp_path, dev_ca):
    """A campaign with two approved clips, not yet published."""
    from catalog.db import open_catalog, session_scope
    from catalog.models import Decision
    from core.settings import Settings
    from flows.campaign import campaign as run_campaign
    from wan_tasks.review import decide, pending

    write_brief(tmp_path, BRIEF, PRESETS)
    settings = Settings(home=tmp_path / "home", catalog_url=catalog_url, presets_file=tmp_path / "presets.yaml",
                        c2pa_key=dev_ca.key, c2pa_cert_chain=dev_ca.cert_chain)
    run_campaign(str(tmp_path / "brief.yaml"), settings)
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        for p in pending(s, "manifest-test"):
            decide(s, p.asset_id, Decision.approve, "", "test-approver")
    return settings


def _publish(settings, **popen) -> subprocess.Popen:
    from prefect.settings import PREFECT_API_URL

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "WANFLOW_"))}
    env |= {"WANFLOW_HOME": str(settings.home), "WANFLOW_CATALOG_URL": settings.catalog_url,
            "WANFLOW_PRESETS_FILE": str(settings.presets_file), "WANFLOW_C2PA_KEY": str(settings.c2pa_key),
            "WANFLOW_C2PA_CERT_CHAIN": str(settings.c2pa_cert_chain), "PREFECT_API_URL": PREFECT_API_URL.value(),
            "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-m", "cli.main", "publish", "manifest-test"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
                            **popen)


def _manifest(settings) -> dict | None:
    path = settings.delivery_dir / "manifest-test" / "manifest.json"
    return json.loads(path.read_text("utf-8")) if path.exists() else None


def _assert_truthful(settings, data: dict) -> None:
    """Every listed file is there, whole; every expected file is listed once, delivered or failed with a reason."""
    for f in data["files"]:
        assert hashlib.sha256(Path(f["uri"]).read_bytes()).hexdigest() == f["sha256"], f["file"]
    names = [f["file"] for f in data["files"] + data["failed"]]
    assert sorted(names) == sorted(EXPECTED), names
    assert all(f["error"] for f in data["failed"])


def _publish_to_the_end(settings, code: int) -> dict:
    """Run `wanflow publish` to completion, check its exit code, and return its manifest (checked truthful)."""
    run = _publish(settings)
    out, _ = run.communicate(timeout=600)
    assert run.returncode == code, out
    data = _manifest(settings)
    _assert_truthful(settings, data)
    return data


def test_a_failed_rendition_is_in_the_manifest_and_publish_exits_1(approved):
    blocked = approved.assets_dir / "renditions" / "manifest-test"
    blocked.parent.mkdir(parents=True, exist_ok=True)
    blocked.write_text("a file where the renditions' folder must go: every rendition fails before it exists")
    data = _publish_to_the_end(approved, 1)
    assert data["files"] == [] and len(data["failed"]) == len(EXPECTED)
    assert all("renditions/manifest-test" in f["error"] for f in data["failed"]), data["failed"]

    blocked.unlink()
    data = _publish_to_the_end(approved, 0)
    assert data["failed"] == [] and len(data["files"]) == len(EXPECTED)


def test_a_publish_killed_while_rendering_leaves_a_truthful_manifest_and_a_rerun_completes(approved):
    renditions = approved.assets_dir / "renditions" / "manifest-test"
    run = _publish(approved, start_new_session=True)
    deadline = time.monotonic() + 300
    while not (renditions.is_dir() and any(renditions.iterdir())):  # an encoder has started writing
        assert run.poll() is None and time.monotonic() < deadline, "publish ended before any rendition was made"
        time.sleep(0.02)
    os.killpg(run.pid, signal.SIGKILL)
    run.communicate(timeout=60)
    assert run.returncode == -signal.SIGKILL
    data = _manifest(approved)
    if data is not None:
        _assert_truthful(approved, data)

    data = _publish_to_the_end(approved, 0)
    assert data["failed"] == [] and len(data["files"]) == len(EXPECTED)
    assert sorted(Path(f["uri"]).name for f in data["files"]) == sorted(EXPECTED)
