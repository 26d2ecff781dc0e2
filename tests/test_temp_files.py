"""Temporary files of killed writes: one name for all of them (core.files.temp_path_for / is_temp), a sweep that
removes only those, only past a grace period and never a live claim's; and, with real `wanflow run` and `wanflow
publish` processes SIGKILLed through their process group at seeded random moments on SQLite and PostgreSQL, an
asset store and delivery folder with no temporary file (and no clip lost or duplicated) after a completed run."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, SMALL_DELIVERABLES, SMALL_PRESETS, small_brief, write_brief

from core.files import Sweep, is_temp, sweep_temps, temp_path_for, temp_token

TOKEN = "0123456789abcdef" * 2


# --- the name -----------------------------------------------------------------------------------------------

def test_every_temporary_name_is_recognised_and_keeps_its_suffix(tmp_path):
    dest = tmp_path / "clips" / "shoe-v0-abc.mp4"
    tmp = temp_path_for(dest)
    assert tmp.parent == dest.parent and tmp.name.startswith(".shoe-v0-abc.mp4.") and tmp.suffix == ".mp4"
    assert is_temp(tmp) and temp_token(tmp) != temp_token(temp_path_for(dest))  # a fresh uuid each time
    staged = temp_path_for(dest, token=TOKEN)
    assert temp_token(staged) == TOKEN
    nested = temp_path_for(staged)  # the atomic write of a staged clip, the label image of an unsigned rendition
    label = temp_path_for(temp_path_for(dest), suffix=".label.png")
    assert is_temp(nested) and is_temp(label) and label.name.endswith(".tmp.label.png")
    assert is_temp(temp_path_for(tmp_path / "wan-tiny", suffix=""))  # a folder written atomically
    with pytest.raises(ValueError, match="32 hex"):
        temp_path_for(dest, token="not-a-token")


@pytest.mark.parametrize("name", [
    "shoe-v0-abc.mp4", "manifest.json", ".hidden", ".shoe.mp4.tmp.mp4", f"shoe.mp4.{TOKEN}.tmp.mp4",
    f".shoe.mp4.{TOKEN.upper()}.tmp.mp4", f".shoe.mp4.{TOKEN[:-1]}.tmp.mp4", f".shoe.mp4.{TOKEN}.tmp.a.b.c",
    f".shoe.mp4.{TOKEN}.tmpx", f".shoe.mp4.{TOKEN}.part"])
def test_other_names_are_not_temporary(name):
    assert not is_temp(Path(name))


# --- the sweep ----------------------------------------------------------------------------------------------

def _age(path: Path, seconds: float) -> Path:
    t = time.time() - seconds
    os.utime(path, (t, t), follow_symlinks=False)
    return path


def test_the_sweep_removes_old_temporaries_only(tmp_path):
    store, outside = tmp_path / "assets", tmp_path / "outside"
    (store / "clips" / "c").mkdir(parents=True)
    outside.mkdir()
    dest = store / "clips" / "c" / "shoe.mp4"
    keep = {  # never temporary, however old
        dest: b"the clip", store / "clips" / "c" / ".shoe.mp4.tmp.mp4": b"looks temporary, is not",
        store / "manifest.json": b"{}", store / "clips" / f"shoe.mp4.{TOKEN}.tmp.mp4": b"not hidden",
    }
    for path, data in keep.items():
        path.write_bytes(data)
        _age(path, 10_000)
    old = temp_path_for(dest)
    old.write_bytes(b"x" * 100)
    _age(old, 7200)
    young = temp_path_for(dest)
    young.write_bytes(b"y" * 10)
    folder = temp_path_for(store / "wan-tiny", suffix="")  # an atomic folder: judged by its newest file
    (folder / "transformer").mkdir(parents=True)
    (folder / "transformer" / "weights").write_bytes(b"w" * 7)
    _age(folder / "transformer" / "weights", 7200), _age(folder / "transformer", 7200), _age(folder, 7200)
    target = outside / "data"
    target.mkdir()
    (target / "precious").write_bytes(b"p")
    link = temp_path_for(store / "linked", suffix="")
    link.symlink_to(target, target_is_directory=True)
    _age(link, 7200)
    link_size = link.lstat().st_size

    done = sweep_temps([store], grace_s=3600)
    assert sorted(done.removed) == sorted([old, folder, link]) and done.kept == [young]
    assert done.bytes == 100 + 7 + link_size
    assert not old.exists() and not folder.exists() and not link.is_symlink() and young.exists()
    assert (target / "precious").read_bytes() == b"p"  # the link was removed, never followed
    assert {p: p.read_bytes() for p in keep} == keep
    assert "3 temporary files removed" in str(done)

    assert sweep_temps([store], grace_s=0).removed == [young]  # grace 0: everything temporary goes
    assert sweep_temps([store, tmp_path / "missing"], grace_s=0) == Sweep()
    assert {p: p.read_bytes() for p in keep} == keep


def test_a_live_claims_staged_clip_and_its_encode_are_kept(tmp_path):
    dest = tmp_path / "clips" / "shoe.mp4"
    dest.parent.mkdir()
    staged = temp_path_for(dest, token=TOKEN)
    encoding = temp_path_for(staged)
    other = temp_path_for(dest, token="f" * 32)
    for p in (staged, encoding, other):
        p.write_bytes(b"")
    done = sweep_temps([tmp_path], grace_s=0, live={TOKEN}.__contains__)
    assert done.removed == [other] and sorted(done.kept) == sorted([staged, encoding])


def test_the_sweep_keeps_what_a_live_claim_staged_in_the_catalog(catalog_url, tmp_path):
    """wan_tasks.sweep asks the catalog which claims are live: a held lease protects its files, an expired one not."""
    from fleet_helpers import pending_jobs

    from catalog import claims
    from catalog.db import open_catalog
    from core.settings import Settings
    from wan_tasks.sweep import sweep, temp_roots

    settings = Settings(home=tmp_path / "home", catalog_url=catalog_url, publish_dir=tmp_path / "out",
                        temp_grace_s=0)
    engine = open_catalog(catalog_url)
    pending_jobs(engine, 2)
    held, lapsed = claims.claim(engine, "a", 1, 600), claims.claim(engine, "b", 1, 0.01)
    time.sleep(0.05)
    clips = settings.assets_dir / "clips" / "fleet-test"
    clips.mkdir(parents=True)
    mine, theirs = temp_path_for(clips / "a.mp4", token=held.token), temp_path_for(clips / "b.mp4", token=lapsed.token)
    delivered = temp_path_for(tmp_path / "out" / "fleet-test" / "a-square.mp4")
    delivered.parent.mkdir(parents=True)
    for p in (mine, theirs, delivered):
        p.write_bytes(b"half")
    assert {settings.assets_dir, settings.models_dir, tmp_path / "out"} <= set(temp_roots(settings))
    done = sweep(settings, engine)
    assert sorted(done.removed) == sorted([theirs, delivered]) and done.kept == [mine] and done.bytes == 8
    assert claims.release(engine, held.token) == 1
    assert sweep(settings, engine).removed == [mine]


def test_db_sweep_and_db_upgrade_report_what_they_removed(tmp_path, catalog_url):
    from test_cli import wanflow

    home = tmp_path / "home"
    clip = home / "assets" / "clips" / "c" / "shoe.mp4"
    clip.parent.mkdir(parents=True)
    clip.write_bytes(b"clip")
    temp_path_for(clip).write_bytes(b"half")
    r = wanflow("db", "sweep", home=home, WANFLOW_CATALOG_URL=catalog_url)
    assert r.returncode == 0, r.stderr
    assert "0 temporary files removed (0 bytes), 1 kept" in r.stdout  # younger than the default hour
    r = wanflow("db", "upgrade", home=home, WANFLOW_CATALOG_URL=catalog_url, WANFLOW_TEMP_GRACE_S="0")
    assert r.returncode == 0, r.stderr
    assert "catalog already at revision" in r.stdout and "1 temporary files removed (4 bytes)" in r.stdout
    assert [p.name for p in clip.parent.iterdir()] == ["shoe.mp4"]


# --- kill -9 at random moments in run and publish ------------------------------------------------------------

BRIEF = small_brief("sweep-test")
PRESETS = SMALL_PRESETS
EXPECTED = SMALL_DELIVERABLES
KILLS = 2  # per command and catalog, each at a seeded random moment while files are being written


def _temps(*roots: Path) -> list[Path]:
    return [Path(d, n) for root in roots for d, dirs, files in os.walk(root) for n in dirs + files
            if is_temp(Path(n))]


def _hidden(*roots: Path) -> list[Path]:
    return [Path(d, n) for root in roots for d, dirs, files in os.walk(root) for n in dirs + files
            if n.startswith(".")]


def _kill_at_random(args: list[str], env: dict[str, str], roots: list[Path], rng: random.Random,
                    most: int) -> list[Path]:
    """Start `wanflow ARGS` in its own process group; SIGKILL the group a random 0–200 ms after the n-th new
    temporary file (n random in 1–``most``) shows under ``roots``: while some write is under way. The temporary
    files the kill left; [] if the command ended first."""
    before = set(_temps(*roots))  # what earlier kills left: the command sweeps them; they are no trigger
    nth, delay = rng.randint(1, most), rng.uniform(0, 0.2)
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    deadline, seen = time.monotonic() + 300, set()
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            seen |= set(_temps(*roots)) - before
            if len(seen) >= nth:
                time.sleep(delay)
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
                return sorted(set(_temps(*roots)) - before)
            time.sleep(0.005)
        assert proc.poll() is not None, f"wanflow {' '.join(args)} neither wrote {nth} temporary files nor ended"
        return []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def _complete(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_no_temporary_file_survives_kills_in_run_and_publish(tmp_path, catalog_url, dev_ca):
    from prefect.settings import PREFECT_API_URL
    from sqlalchemy import select

    from catalog.db import dispose, open_catalog, session_scope
    from catalog.models import Asset, AssetKind, Decision, GenerationJob, JobStatus
    from core.settings import Settings
    from wan_tasks.review import decide, pending

    write_brief(tmp_path, BRIEF, PRESETS)
    settings = Settings(home=tmp_path / "home", catalog_url=catalog_url, presets_file=tmp_path / "presets.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "WANFLOW_"))}
    env |= {"WANFLOW_HOME": str(settings.home), "WANFLOW_CATALOG_URL": catalog_url, "WANFLOW_TEMP_GRACE_S": "0",
            "WANFLOW_PRESETS_FILE": str(settings.presets_file), "WANFLOW_C2PA_KEY": str(dev_ca.key),
            "WANFLOW_C2PA_CERT_CHAIN": str(dev_ca.cert_chain), "PREFECT_API_URL": PREFECT_API_URL.value(),
            "COLUMNS": "200"}
    store, out = settings.assets_dir, settings.delivery_dir
    roots = [store, settings.models_dir, settings.home_dir / "reports", out]
    rng = random.Random(12)
    left = []  # what each kill left: the sweep has something to do

    for _ in range(KILLS):
        left += _kill_at_random(["run", str(tmp_path / "brief.yaml")], env, roots, rng, most=2)
    print("left by the killed runs:", *left, sep="\n")
    _complete(["run", str(tmp_path / "brief.yaml")], env)
    assert _temps(*roots) == [] and _hidden(store) == []
    engine = open_catalog(catalog_url)
    with session_scope(engine) as s:
        jobs = list(s.scalars(select(GenerationJob)))
        clips = list(s.scalars(select(Asset).where(Asset.kind == AssetKind.raw_clip)))
        assert len(jobs) == 2 and {j.status for j in jobs} == {JobStatus.done}
        assert sorted(c.job_id for c in clips) == sorted(j.id for j in jobs)  # one clip per job: none lost, none twice
        assert all(_sha(Path(c.uri)) == c.sha256 for c in clips)
        assert sorted(p.name for p in (store / "clips" / "sweep-test").iterdir()) == sorted(Path(c.uri).name
                                                                                               for c in clips)
        for p in pending(s, "sweep-test"):
            decide(s, p.asset_id, Decision.approve, "", "test-approver")

    for _ in range(KILLS):
        left += _kill_at_random(["publish", "sweep-test"], env, roots, rng, most=6)
    print("left by all kills:", *left, sep="\n")
    _complete(["publish", "sweep-test"], env)
    assert _temps(*roots) == [] and _hidden(store, out) == []
    manifest = json.loads((out / "sweep-test" / "manifest.json").read_text("utf-8"))
    assert manifest["failed"] == [] and sorted(f["file"] for f in manifest["files"]) == sorted(EXPECTED)
    assert all(_sha(Path(f["uri"])) == f["sha256"] for f in manifest["files"])
    assert sorted(p.name for p in (out / "sweep-test").iterdir()) == sorted([*EXPECTED, "manifest.json"])
    with session_scope(engine) as s:
        made = list(s.scalars(select(Asset).where(Asset.kind != AssetKind.raw_clip)))
        assert len(made) == len(EXPECTED) and all(_sha(Path(a.uri)) == a.sha256 for a in made)
        assert sorted(p.name for p in (store / "renditions" / "sweep-test").iterdir()) == sorted(
            Path(a.uri).name for a in made)
    dispose(catalog_url)
    assert left, "no kill left a temporary file: the sweep was not exercised"
