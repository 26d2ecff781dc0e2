"""Job claims with a lease (catalog/claims.py), on SQLite and PostgreSQL: atomic under concurrent claimers,
taken over only after the lease expires, and recorded only by the current holder."""

from __future__ import annotations

import threading
import time

import pytest
from fleet_helpers import pending_jobs
from sqlalchemy import select

from catalog import claims
from catalog.db import make_engine, open_catalog, session_scope
from catalog.models import GenerationJob, JobStatus


def test_concurrent_claimers_never_share_a_job(catalog_url):
    engine = open_catalog(catalog_url)
    ids = pending_jobs(engine, 60)
    got: dict[str, list[int]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def claimer(name: str) -> None:
        eng = make_engine(catalog_url)  # its own pool, as a separate worker would have
        try:
            start.wait(30)
            while (c := claims.claim(eng, name, 3, 60)) is not None:
                got.setdefault(name, []).extend(c.job_ids)
                time.sleep(0.01)  # "generate": lets the other claimers in
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
        finally:
            eng.dispose()

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    claimed = [j for js in got.values() for j in js]
    assert sorted(claimed) == sorted(ids)  # every job once, none twice
    assert len(got) >= 2  # the claimers really competed
    with session_scope(engine) as s:
        jobs = s.scalars(select(GenerationJob)).all()
        assert {j.claims for j in jobs} == {1}
        assert all(j.status == JobStatus.running and j.lease_expires_at is not None for j in jobs)
        owner = {j: w for w, js in got.items() for j in js}
        assert all(j.claimed_by == owner[j.id] for j in jobs)


def test_expired_lease_is_taken_over_and_the_old_holder_cannot_record(catalog_url):
    engine = open_catalog(catalog_url)
    ids = pending_jobs(engine, 3)
    first = claims.claim(engine, "a", 2, 0.5)
    assert first.job_ids == ids[:2]
    second = claims.claim(engine, "b", 5, 30)
    assert second.job_ids == ids[2:]  # a's lease still runs: b gets only the free job
    time.sleep(0.7)
    third = claims.claim(engine, "b", 5, 30)
    assert third.job_ids == ids[:2]  # a's lease ran out: its jobs are claimable again
    with pytest.raises(claims.LeaseLost):
        with session_scope(engine) as s:
            claims.finish(s, ids[0], first.token)
    with session_scope(engine) as s:
        claims.finish(s, ids[0], third.token)
    assert claims.renew(engine, first.token, 30) == 0  # a holds nothing any more
    assert claims.renew(engine, third.token, 30) == 1  # b still holds ids[1]
    with session_scope(engine) as s:
        j0, j1 = s.get(GenerationJob, ids[0]), s.get(GenerationJob, ids[1])
        assert (j0.status, j0.claims, j0.claimed_by) == (JobStatus.done, 2, "b")
        assert (j1.status, j1.claims) == (JobStatus.running, 2)


def test_renewal_keeps_the_claim_and_release_gives_it_back(catalog_url):
    engine = open_catalog(catalog_url)
    ids = pending_jobs(engine, 2)
    c = claims.claim(engine, "a", 2, 0.6)
    for _ in range(3):
        time.sleep(0.3)
        assert claims.renew(engine, c.token, 0.6) == 2
    assert claims.claim(engine, "b", 2, 30) is None  # renewed: still a's
    assert claims.release(engine, c.token) == 2
    again = claims.claim(engine, "b", 2, 30)
    assert again.job_ids == ids


def test_poison_job_fails_after_max_claims_and_in_process_runs_are_not_taken(catalog_url):
    engine = open_catalog(catalog_url)
    ids = pending_jobs(engine, 2)
    with session_scope(engine) as s:  # a job `wanflow run` is making in its own process: running, no claim
        s.get(GenerationJob, ids[1]).status = JobStatus.running
    for _ in range(2):
        c = claims.claim(engine, "dies", 1, 0.2, max_claims=2)
        assert c.job_ids == [ids[0]]
        time.sleep(0.3)
    assert claims.claim(engine, "next", 1, 30, max_claims=2) is None
    with session_scope(engine) as s:
        j0, j1 = s.get(GenerationJob, ids[0]), s.get(GenerationJob, ids[1])
        assert j0.status == JobStatus.failed and "lease expired 2 times" in j0.error
        assert j1.status == JobStatus.running and j1.claim_token is None
        assert claims.unfinished(s) == 0


def test_bad_claim_arguments_are_named(catalog_url):
    engine = open_catalog(catalog_url)
    with pytest.raises(ValueError, match="n must be"):
        claims.claim(engine, "a", 0, 10)


def test_worker_that_loses_its_lease_records_nothing_and_gives_the_rest_back(catalog_url, tmp_path):
    """A worker stalls past its lease mid-shard; another worker claims the job; the first one's write is refused
    (LeaseLost), the shard is recorded as lost, and the jobs it still held go straight back to the queue."""
    import contextlib

    from catalog.models import ShardRun
    from core.settings import EngineOptions
    from wan_tasks.worker import WorkerConfig, run_worker

    engine = open_catalog(catalog_url)
    ids = pending_jobs(engine, 3)
    taken: list[claims.Claim] = []

    def stalls_then_writes(engine, job_ids, assets_dir, opts, on_step=None, claim=None):  # noqa: ANN001
        with session_scope(engine) as s:  # this worker stalled: its lease ran out...
            s.get(GenerationJob, job_ids[0]).lease_expires_at = claims.utcnow()
        taken.append(claims.claim(engine, "other", 1, 60))  # ...and another worker took the job over
        with session_scope(engine) as s:
            claims.finish(s, job_ids[0], claim)  # the stalled worker's write: refused
        return [job_ids[0]]

    cfg = WorkerConfig(worker="stalled", slot="none", shard_size=3, lease_s=60, campaign="fleet-test", poll_s=0.05,
                       idle_exit_s=0)
    opts = EngineOptions(device="cpu", max_batch=1)  # one job per batch: the takeover happens in the first
    done: list = []
    import threading

    def finish_other() -> None:  # the other worker records its job, so the campaign can finish
        while not taken:
            time.sleep(0.02)
        with session_scope(engine) as s:
            claims.finish(s, taken[0].job_ids[0], taken[0].token)
        done.append(True)

    t = threading.Thread(target=finish_other)
    t.start()
    report = run_worker(engine, tmp_path, opts, cfg, contextlib.nullcontext, generate_fn=_after_first(stalls_then_writes))
    t.join(10)
    assert taken[0].job_ids == [ids[0]] and done
    with session_scope(engine) as s:
        first = s.scalars(select(ShardRun).order_by(ShardRun.id)).first()
        assert first.status == "lost" and "no longer holds it" in first.error
        jobs = {j.id: j for j in s.scalars(select(GenerationJob))}
    assert jobs[ids[0]].claimed_by == "other" and jobs[ids[0]].status == JobStatus.done
    # the two jobs the stalled worker still held were released at once and claimed again (by itself, here)
    assert all(jobs[j].status == JobStatus.done and jobs[j].claims == 2 for j in ids[1:])
    assert report.lost == 1 and report.clips == 2


def _after_first(first_call):  # noqa: ANN001
    """The stalling generate_fn for the first batch; afterwards one that records normally under the claim."""
    from catalog.models import Asset, AssetKind

    calls = []

    def generate_fn(engine, job_ids, assets_dir, opts, on_step=None, claim=None):  # noqa: ANN001
        calls.append(job_ids)
        if len(calls) == 1:
            return first_call(engine, job_ids, assets_dir, opts, on_step, claim)
        out = []
        for j in job_ids:
            with session_scope(engine) as s:
                claims.finish(s, j, claim)
                a = Asset(kind=AssetKind.raw_clip, job_id=j, uri=f"/x/{j}.mp4", sha256="0" * 64, size=1, width=16,
                          height=16)
                s.add(a)
                s.flush()
                out.append(a.id)
        return out

    return generate_fn
