"""The GPU worker records clips off the GPU slot (wan_tasks/worker.py), on SQLite and PostgreSQL: recording runs
on the background thread while the next batch generates, every job is recorded exactly once under its claim
token, and a job taken over before its record is recorded by its new holder only."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest
from fleet_helpers import pending_jobs
from sqlalchemy import func, select

from catalog import claims
from catalog.db import open_catalog, session_scope
from catalog.models import Asset, AssetKind, GenerationJob, JobStatus, ShardRun
from core.settings import EngineOptions


@pytest.fixture(scope="session", autouse=True)
def prefect_api():
    """No Prefect here: the worker runs with a plain slot (conftest's server is not needed by this module)."""
    yield


def test_recording_overlaps_the_next_generation_and_each_job_is_recorded_once(catalog_url, tmp_path):
    from wan_tasks.worker import WorkerConfig, run_worker

    engine = open_catalog(catalog_url)
    ids = pending_jobs(engine, 6)
    in_slot = threading.Event()
    seen: list[tuple[str, bool]] = []  # (thread, slot held by the generation at the time) per record
    taken: list[claims.Claim] = []

    @contextlib.contextmanager
    def slot():
        in_slot.set()
        try:
            yield
        finally:
            in_slot.clear()

    def start(engine, job_ids, assets_dir, opts, on_step=None, claim=None):  # noqa: ANN001
        time.sleep(0.3)  # the "card" is busy
        return {"ids": job_ids, "claim": claim}

    def record(engine, made):  # noqa: ANN001
        if not taken:  # the first batch's first job is taken over before it is recorded
            with session_scope(engine) as s:
                s.get(GenerationJob, made["ids"][0]).lease_expires_at = claims.utcnow()
            taken.append(claims.claim(engine, "other", 1, 60))
        time.sleep(0.2)  # encoding
        seen.append((threading.current_thread().name, in_slot.is_set()))
        out = []
        for j in made["ids"]:
            with session_scope(engine) as s:
                try:
                    claims.finish(s, j, made["claim"])
                except claims.LeaseLost:
                    continue
                a = Asset(kind=AssetKind.raw_clip, job_id=j, uri=f"/x/{j}.mp4", sha256="0" * 64, size=1, width=16,
                          height=16)
                s.add(a)
                s.flush()
                out.append(a.id)
        return out

    def other_records() -> None:  # the new holder records the job it took over
        while not taken:
            time.sleep(0.02)
        with session_scope(engine) as s:
            claims.finish(s, taken[0].job_ids[0], taken[0].token)
            s.add(Asset(kind=AssetKind.raw_clip, job_id=taken[0].job_ids[0], uri="/x/other.mp4", sha256="1" * 64,
                        size=1, width=16, height=16))

    helper = threading.Thread(target=other_records)
    helper.start()
    cfg = WorkerConfig(worker="w", slot="none", shard_size=2, lease_s=60, campaign="fleet-test", poll_s=0.05)
    report = run_worker(engine, tmp_path, EngineOptions(device="cpu", max_batch=1), cfg, slot,
                        stages=(start, record))
    helper.join(10)
    assert taken and taken[0].job_ids == [ids[0]]
    assert all(name.startswith("wanflow-record") for name, _ in seen)  # never in the generating thread
    assert any(held for _, held in seen)  # a record ran while the next batch generated
    assert report.clips == 5 and report.lost == 1 and report.shards == 3
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(Asset)) == 6  # one clip per job, none twice
        jobs = {j.id: j for j in s.scalars(select(GenerationJob))}
        assert {j.status for j in jobs.values()} == {JobStatus.done} and jobs[ids[0]].claimed_by == "other"
        shards = s.scalars(select(ShardRun).order_by(ShardRun.id)).all()
        assert [sh.status for sh in shards] == ["lost", "done", "done"]
        assert all(sh.finished_at is not None and sh.gpu_finished_at <= sh.finished_at for sh in shards)
