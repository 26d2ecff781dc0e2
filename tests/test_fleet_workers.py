"""A campaign sharded across two GPU worker processes on PostgreSQL, through the real Prefect API (the session's
test server) and its global concurrency limits, with the real tiny Wan pipeline and real ffmpeg.

Every job is recorded exactly once with a correct checksum; a worker killed with SIGKILL mid-shard loses
nothing (its jobs are taken over after their lease expires) and duplicates nothing; a GPU slot is never held
by two shards at once (the recorded slot times prove it); a missing slot fails before any job is claimed.
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
import yaml
from conftest import EXAMPLES, ROOT, _drop_postgres, _postgres_url
from sqlalchemy import select

from catalog.db import open_catalog, session_scope
from catalog.models import Asset, AssetKind, GenerationJob, JobStatus, ShardRun, WorkerMetric
from catalog.workers import max_concurrent, slot_intervals

CLIPS = 40  # 10 items × 4 variants
LEASE_S = 3.0


@pytest.fixture
def pg_settings(tmp_path):
    from core.settings import Settings

    url = _postgres_url()
    yield Settings(home=tmp_path / "home", catalog_url=url)
    _drop_postgres(url)


def _plan(settings, tmp_path: Path, campaign: str) -> list[int]:
    """A brief of CLIPS tiny clips (16×16, 5 frames, 1 step), recorded and planned for the fleet."""
    from wan_tasks import plan
    from wan_tasks.intake import resolve_models, validate

    (tmp_path / "brands").mkdir(exist_ok=True)
    (tmp_path / "brands" / "acme.yaml").write_text((EXAMPLES / "brands" / "acme.yaml").read_text("utf-8"), "utf-8")
    brief = {"campaign": campaign, "brand": "acme", "model": "wan-t2v@champion",
             "defaults": {"num_frames": 5, "fps": 16, "width": 16, "height": 16, "variants": 4, "steps": 1,
                          "guidance": 1.0, "seed": 7, "formats": ["1:1"]},
             "items": [{"id": f"shot-{i:02d}", "prompt": f"A red ACME sneaker, angle {i}"} for i in range(CLIPS // 4)]}
    path = tmp_path / "brief.yaml"
    path.write_text(yaml.safe_dump(brief), "utf-8")
    settings.ensure_dirs()
    spec = validate(path, settings)
    engine = open_catalog(settings.catalog_db_url)
    with session_scope(engine) as s:
        brief_id = plan.record_brief(s, spec)
    model, _ = resolve_models(settings, brief_id, spec.brand.name)
    with session_scope(engine) as s:
        return plan.plan_jobs(s, brief_id, model, None)


def _worker(settings, campaign: str, slot: str, name: str, log: Path) -> subprocess.Popen:
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "WANFLOW_HOME": str(settings.home), "WANFLOW_CATALOG_URL": settings.catalog_db_url,
           "WANFLOW_WORKER_NAME": name, "PREFECT_API_URL": PREFECT_API_URL.value(), "WANFLOW_DEVICE": "cpu",
           "PYTHONPATH": str(ROOT)}
    env.pop("WANFLOW_DEBUG", None)
    return subprocess.Popen([sys.executable, "-m", "cli.main", "fleet", "work", campaign, "--slot", slot,
                             "--shard-size", "4", "--lease", str(LEASE_S), "--no-qc", "--json"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=open(log, "wb"), text=True)


def _result(proc: subprocess.Popen, log: Path) -> dict:
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, f"worker failed ({proc.returncode}): {log.read_text()[-3000:]}"
    return json.loads(out.strip().splitlines()[-1])


def _check_every_job_once(settings, job_ids: list[int]) -> dict[int, GenerationJob]:
    engine = open_catalog(settings.catalog_db_url)
    with session_scope(engine) as s:
        jobs = {j.id: j for j in s.scalars(select(GenerationJob).where(GenerationJob.id.in_(job_ids)))}
        clips = s.scalars(select(Asset).where(Asset.kind == AssetKind.raw_clip)).all()
    assert len(jobs) == len(job_ids) == CLIPS
    assert {j.status for j in jobs.values()} == {JobStatus.done}
    assert sorted(a.job_id for a in clips) == sorted(job_ids)  # one raw clip per job: none lost, none twice
    for a in clips:
        data = Path(a.uri).read_bytes()
        assert hashlib.sha256(data).hexdigest() == a.sha256 and len(data) == a.size, a.uri
        assert (a.width, a.height, a.frames) == (16, 16, 5)
    assert len({a.uri for a in clips}) == CLIPS
    return jobs


def test_two_workers_share_one_gpu_slot_and_make_every_clip_once(pg_settings, tmp_path):
    from flows.shard import ensure_slots

    slot = "wanflow-test-shared-gpu"
    ensure_slots([slot], limit=1)
    job_ids = _plan(pg_settings, tmp_path, "fleet-shared")
    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
    procs = [_worker(pg_settings, "fleet-shared", slot, n, log) for n, log in zip(("a", "b"), logs)]
    reports = {r["worker"]: r for r in (_result(p, log) for p, log in zip(procs, logs))}
    jobs = _check_every_job_once(pg_settings, job_ids)
    assert {j.claims for j in jobs.values()} == {1}  # nobody died: no job was ever claimed twice
    assert set(reports) == {"a", "b"} and all(r["clips"] > 0 for r in reports.values())  # both did real work
    assert sum(r["clips"] for r in reports.values()) == CLIPS
    assert all(r["model_loads"] == 1 for r in reports.values())  # loaded once per process, across its shards
    assert all(r["shards"] >= 2 for r in reports.values()) or sum(r["shards"] for r in reports.values()) >= 4
    engine = open_catalog(pg_settings.catalog_db_url)
    with session_scope(engine) as s:
        intervals = slot_intervals(s, slot)
        assert len(intervals) == sum(r["shards"] for r in reports.values())
        assert {w for *_, w in intervals} == {"a", "b"}
        assert max_concurrent(intervals) == 1  # one card, one slot: two shards never held it at once
        metrics = s.scalars(select(WorkerMetric)).all()
        assert {m.worker for m in metrics} == {"a", "b"}
        last = {m.worker: m for m in sorted(metrics, key=lambda m: m.id)}
        assert all(m.clips_per_hour > 0 and 0 < m.gpu_busy_fraction <= 1 for m in last.values())
        assert last["a"].clips + last["b"].clips == CLIPS
    from typer.testing import CliRunner

    from cli.main import app

    out = CliRunner().invoke(app, ["fleet", "status", "fleet-shared", "--json"],
                             env={"WANFLOW_CATALOG_URL": pg_settings.catalog_db_url})
    assert out.exit_code == 0, out.output
    status = json.loads(out.output)
    assert status["jobs"] == {"done": CLIPS} and status["queue_depth"] == 0 and status["claims_held"] == 0
    assert {w["worker"]: w["clips"] for w in status["workers"]} == {w: r["clips"] for w, r in reports.items()}


def test_a_worker_killed_mid_shard_loses_and_duplicates_nothing(pg_settings, tmp_path):
    from flows.shard import ensure_slots

    ensure_slots(["wanflow-test-gpu-0", "wanflow-test-gpu-1"], limit=1)
    job_ids = _plan(pg_settings, tmp_path, "fleet-kill")
    engine = open_catalog(pg_settings.catalog_db_url)
    logs = [tmp_path / "victim.log", tmp_path / "survivor.log"]
    victim = _worker(pg_settings, "fleet-kill", "wanflow-test-gpu-0", "victim", logs[0])
    survivor = _worker(pg_settings, "fleet-kill", "wanflow-test-gpu-1", "survivor", logs[1])
    held: list[int] = []
    deadline = time.monotonic() + 120
    while not held:  # wait until the victim has finished a shard and holds a claim on unfinished jobs
        assert time.monotonic() < deadline and victim.poll() is None, logs[0].read_text()[-3000:]
        with session_scope(engine) as s:
            finished = s.scalar(select(ShardRun.id).where(ShardRun.worker == "victim", ShardRun.status == "done")
                                .limit(1))
            running = s.scalars(select(GenerationJob.id).where(GenerationJob.claimed_by == "victim",
                                                               GenerationJob.status == JobStatus.running)).all()
        if finished and running:
            held = list(running)
            victim.send_signal(signal.SIGKILL)
        else:
            time.sleep(0.01)
    victim.wait(10)
    assert victim.returncode == -signal.SIGKILL
    report = _result(survivor, logs[1])
    jobs = _check_every_job_once(pg_settings, job_ids)
    # Jobs the victim held when it died went back to the queue once their lease expired and were made by the
    # survivor, exactly once; a job the victim had already recorded was never claimed again.
    taken_over = {j.id for j in jobs.values() if j.claims == 2}
    assert taken_over and taken_over <= set(held)
    assert all(jobs[j].claimed_by == "survivor" for j in taken_over)
    assert {j.claims for j in jobs.values()} <= {1, 2}
    with session_scope(engine) as s:
        by_victim = {a.job_id for a in s.scalars(select(Asset).join(GenerationJob, Asset.job_id == GenerationJob.id)
                                                 .where(GenerationJob.claimed_by == "victim"))}
        dead_shard = s.scalars(select(ShardRun).where(ShardRun.worker == "victim", ShardRun.status == "running")).all()
        for slot in ("wanflow-test-gpu-0", "wanflow-test-gpu-1"):
            assert max_concurrent(slot_intervals(s, slot)) <= 1
    assert by_victim and not (by_victim & taken_over)
    assert len(dead_shard) == 1  # the shard it died in stays "running" in the record: nobody finished it for it
    assert report["clips"] + len(by_victim) == CLIPS and report["lost"] == 0


def test_a_missing_gpu_slot_fails_before_any_job_is_claimed(pg_settings, tmp_path):
    brief = tmp_path / "brief.yaml"
    _plan(pg_settings, tmp_path, "fleet-noslot-warm")  # builds the stand-in; then plan a brief with the CLI
    brief.write_text(brief.read_text().replace("fleet-noslot-warm", "fleet-noslot"))
    env = {**os.environ, "WANFLOW_HOME": str(pg_settings.home), "WANFLOW_CATALOG_URL": pg_settings.catalog_db_url}
    planned = subprocess.run([sys.executable, "-m", "cli.main", "fleet", "plan", str(brief)], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=180)
    assert planned.returncode == 0, planned.stderr[-2000:]
    assert f"fleet-noslot: {CLIPS} job(s) planned" in " ".join(planned.stdout.split())
    with session_scope(open_catalog(pg_settings.catalog_db_url)) as s:
        from catalog.models import Campaign

        cid = s.scalar(select(Campaign.id).where(Campaign.name == "fleet-noslot"))
        job_ids = list(s.scalars(select(GenerationJob.id).where(GenerationJob.campaign_id == cid)))
    log = tmp_path / "worker.log"
    proc = _worker(pg_settings, "fleet-noslot", "no-such-gpu-slot", "w", log)
    proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "GPU slot 'no-such-gpu-slot': no global concurrency limit" in log.read_text()
    with session_scope(open_catalog(pg_settings.catalog_db_url)) as s:
        jobs = s.scalars(select(GenerationJob).where(GenerationJob.id.in_(job_ids))).all()
        assert {(j.status, j.claims) for j in jobs} == {(JobStatus.pending, 0)}


def test_generation_under_a_claim_taken_over_mid_batch_records_and_writes_nothing(settings, tmp_path):
    """The real generation stage (tiny Wan, ffmpeg) under a claim that another worker takes over while the
    batch denoises: the clip is not recorded and its file is not put in place; the new holder's is."""
    from catalog import claims
    from core.settings import EngineOptions
    from wan_tasks.generate import generate_jobs

    job_ids = _plan(settings, tmp_path, "fleet-takeover")
    engine = open_catalog(settings.catalog_db_url)
    with session_scope(engine) as s:
        cid = s.get(GenerationJob, job_ids[0]).campaign_id
    slow = claims.claim(engine, "slow", 1, 60, cid)
    taken: list = []

    def takeover(step: int, steps: int) -> None:
        if not taken:  # the slow worker's lease runs out while it denoises; another worker claims the job
            with session_scope(engine) as s:
                s.get(GenerationJob, slow.job_ids[0]).lease_expires_at = claims.utcnow()
            taken.append(claims.claim(engine, "fast", 1, 60, cid))

    opts = EngineOptions(device="cpu")
    assert generate_jobs(engine, slow.job_ids, settings.assets_dir, opts, on_step=takeover, claim=slow.token) == []
    fast = taken[0]
    assert fast.job_ids == slow.job_ids
    with session_scope(engine) as s:
        assert s.scalar(select(Asset).where(Asset.job_id == slow.job_ids[0])) is None
        assert s.get(GenerationJob, slow.job_ids[0]).status == JobStatus.running  # still the fast worker's
    clips_dir = settings.assets_dir / "clips" / "fleet-takeover"
    assert not list(clips_dir.glob("*.mp4")) and not list(clips_dir.glob(".*"))  # nothing placed, nothing left
    [asset_id] = generate_jobs(engine, fast.job_ids, settings.assets_dir, opts, claim=fast.token)
    with session_scope(engine) as s:
        asset, job = s.get(Asset, asset_id), s.get(GenerationJob, fast.job_ids[0])
        assert (job.status, job.claims, job.claimed_by) == (JobStatus.done, 2, "fast")
        assert hashlib.sha256(Path(asset.uri).read_bytes()).hexdigest() == asset.sha256
    assert [p.name for p in clips_dir.iterdir()] == [Path(asset.uri).name]
