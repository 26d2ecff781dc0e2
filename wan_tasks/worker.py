"""A GPU worker's loop: claim a shard of jobs in the catalog, generate it in a GPU slot, record, repeat.

The model stays loaded for the life of the worker process (adapters/pipelines.py caches the pipeline), so a
worker pays for loading once however many shards it takes. Each shard is claimed atomically with a lease
(catalog/claims.py) that a heartbeat thread renews while the shard runs; the generation of the shard runs
inside ``gpu_slot()`` — in a flow, a strict Prefect global concurrency limit of one slot per card — and the
times the slot was held are written on the shard's row, which is how an oversubscribed card would show.
Clips are made with the generation stage itself (``generate.plan_batches`` / ``generate.start_jobs``) under
the claim's token, so a worker whose lease ran out cannot record a job another worker now holds.

The card never waits for the CPU: only generation runs in the slot. Encoding, hashing and recording each batch's
clips (``generate.record_jobs``) run on one background thread, in order, while the card makes the next batch —
and the next shard: a shard is closed (its row, its lease heartbeat, the report) by the same thread once its
last clip is recorded, and at most one earlier shard may still be recording when a new one is claimed. Exactly
once still holds: each clip is recorded only in the transaction that confirms the claim token
(``claims.finish``), and the heartbeat keeps the lease until the shard's last record.

After a shard (at most every ``metrics_every_s``, and at the end) the worker writes its figures to
``worker_metrics``: clips, clips/hour, GPU busy fraction (time in the slot / time since its first claim) and
queue depth (jobs claimable now).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from adapters import pipelines
from catalog import claims
from catalog.db import session_scope
from catalog.models import GenerationJob as J
from catalog.models import JobStatus, ShardRun, WorkerMetric, utcnow
from core.settings import EngineOptions
from wan_tasks import generate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerConfig:
    worker: str  # a name unique in the fleet (default: host:pid)
    slot: str  # the Prefect global concurrency limit of this worker's card
    shard_size: int = 4  # jobs per claim
    lease_s: float = 120.0  # a claim not renewed for this long may be taken over
    campaign: str | None = None  # only this campaign's jobs; None: any campaign
    idle_exit_s: float = 0.0  # with nothing to claim, wait this long for work before leaving
    poll_s: float = 1.0
    max_claims: int = 3  # a job whose lease expired this often is failed as poison
    metrics_every_s: float = 5.0  # worker_metrics rows at most this often (and always at the end)

    @staticmethod
    def default_name() -> str:
        return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class WorkerReport:
    worker: str
    slot: str
    shards: int = 0
    clips: int = 0
    lost: int = 0  # jobs whose lease this worker lost (taken over; not recorded by it)
    failed: int = 0
    gpu_busy_s: float = 0.0
    elapsed_s: float = 0.0
    model_loads: int = 0  # pipelines loaded by this process while it worked (1 for a one-model campaign)
    asset_ids: list[int] = field(default_factory=list)

    @property
    def gpu_busy_fraction(self) -> float:
        return self.gpu_busy_s / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def clips_per_hour(self) -> float:
        return 3600.0 * self.clips / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"worker": self.worker, "slot": self.slot, "shards": self.shards, "clips": self.clips,
                "lost": self.lost, "failed": self.failed, "gpu_busy_s": round(self.gpu_busy_s, 3),
                "elapsed_s": round(self.elapsed_s, 3), "gpu_busy_fraction": round(self.gpu_busy_fraction, 4),
                "clips_per_hour": round(self.clips_per_hour, 1), "model_loads": self.model_loads}


class Heartbeat:
    """Renews a claim's lease every third of its length; notices when the claim was taken over."""

    def __init__(self, engine: Engine, token: str, lease_s: float) -> None:
        self.engine, self.token, self.lease_s = engine, token, lease_s
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{token[:8]}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            try:
                if claims.renew(self.engine, self.token, self.lease_s) == 0 and not self._stop.is_set():
                    self.lost = True  # nothing held any more while the shard still runs: taken over
            except Exception as exc:  # noqa: BLE001 - a missed renewal is retried; the lease is 3× the period
                log.warning("lease renewal of %s failed: %s", self.token[:8], exc)

    def check(self, *_: object) -> None:
        """A per-step callback: stop generating clips this worker can no longer record."""
        if self.lost:
            raise claims.LeaseLost(f"claim {self.token[:8]}… was taken over while its shard ran")


class Recorder:
    """Runs the CPU's half of each batch (and each shard's closing) off the GPU slot: one thread, in order.

    ``inline``: run everything at once in the caller's thread (the one-call ``generate_fn`` of tests)."""

    def __init__(self, inline: bool = False) -> None:
        self._pool = None if inline else ThreadPoolExecutor(max_workers=1, thread_name_prefix="wanflow-record")
        self._shards: deque[Future] = deque()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        if self._pool is not None:  # the caller's context (a Prefect flow run's, for QC tasks submitted by on_clips)
            return self._pool.submit(contextvars.copy_context().run, fn, *args)
        done: Future = Future()
        done.set_result(fn(*args))
        return done

    def close_shard(self, fn: Callable[[], None]) -> None:
        self._shards.append(self.submit(fn))

    def wait(self, pending: int = 0) -> None:
        """Until at most ``pending`` shards are still recording (an error closing one is raised here)."""
        while len(self._shards) > pending:
            self._shards.popleft().result()

    def shutdown(self) -> None:
        try:
            self.wait(0)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)


def run_worker(engine: Engine, assets_dir: Path, opts: EngineOptions, cfg: WorkerConfig,
               gpu_slot: Callable[[], AbstractContextManager], on_clips: Callable[[list[int]], None] | None = None,
               on_shard: Callable[[WorkerReport, int], None] | None = None,  # (report, queue depth)
               flow_run_id: str | None = None, generate_fn: Callable[..., list[int]] | None = None,
               stages: tuple[Callable[..., Any], Callable[..., list[int]]] | None = None) -> WorkerReport:
    """Claim and generate shards until the campaign is finished (or, with no campaign, until idle_exit_s).

    ``stages`` (start, record) stand in for (``generate.start_jobs``, ``generate.record_jobs``), same signatures,
    in the benchmarks, which time the orchestration around a generation of fixed length; ``generate_fn`` (one
    call doing both, like ``generate.generate_jobs``) runs everything in the slot, in the caller's thread (tests).
    """
    report = WorkerReport(worker=cfg.worker, slot=cfg.slot)
    if generate_fn is not None:
        start_fn, record_fn = generate_fn, (lambda _engine, made: made)
    else:
        start_fn, record_fn = stages or (generate.start_jobs, generate.record_jobs)
    recorder = Recorder(inline=generate_fn is not None)
    loads0 = pipelines.load_count
    cid = None
    if cfg.campaign is not None:
        with engine.connect() as conn:
            cid = claims.campaign_id(conn, cfg.campaign)
    t0, idle_since, last_metrics = time.monotonic(), None, float("-inf")
    try:
        while True:
            recorder.wait(pending=1)  # at most one earlier shard still recording while this one generates
            c = claims.claim(engine, cfg.worker, cfg.shard_size, cfg.lease_s, cid, cfg.max_claims)
            if c is None:
                recorder.wait(0)  # what is still being recorded counts as unfinished: finish it first
                with engine.connect() as conn:
                    left = claims.unfinished(conn, cid)
                idle_since = idle_since or time.monotonic()
                idle = time.monotonic() - idle_since
                if cid is None and cfg.idle_exit_s > 0 and idle >= cfg.idle_exit_s:
                    break  # a fleet worker with nothing to do for idle_exit_s
                if left == 0 and (cid is not None or idle >= cfg.idle_exit_s):
                    break  # the campaign (or the whole queue) is finished
                time.sleep(cfg.poll_s)  # other workers hold the rest: wait for them to finish or their leases to expire
                continue
            idle_since = None
            _run_shard(engine, assets_dir, opts, cfg, c, cid, gpu_slot, report, on_clips, flow_run_id,
                       start_fn, record_fn, recorder)
            report.elapsed_s = time.monotonic() - t0
            report.model_loads = pipelines.load_count - loads0
            if time.monotonic() - last_metrics >= cfg.metrics_every_s:  # queue depth is a count: not after every shard
                last_metrics = time.monotonic()
                depth = _write_metrics(engine, report, cid, flow_run_id)
                if on_shard is not None:
                    on_shard(report, depth)
    finally:
        recorder.shutdown()
    report.elapsed_s = time.monotonic() - t0
    report.model_loads = pipelines.load_count - loads0
    if report.shards:
        depth = _write_metrics(engine, report, cid, flow_run_id)
        if on_shard is not None:
            on_shard(report, depth)
    return report


@dataclass
class _Shard:
    status: str = "done"
    error: str | None = None
    made: list[int] = field(default_factory=list)
    started: Any = None
    finished: Any = None


def _run_shard(engine: Engine, assets_dir: Path, opts: EngineOptions, cfg: WorkerConfig,
               c: claims.Claim, cid: int | None, gpu_slot: Callable[[], AbstractContextManager],
               report: WorkerReport, on_clips: Callable[[list[int]], None] | None, flow_run_id: str | None,
               start_fn: Callable[..., Any], record_fn: Callable[..., list[int]], recorder: Recorder) -> None:
    with session_scope(engine) as s:
        shard = ShardRun(campaign_id=cid, worker=cfg.worker, slot=cfg.slot, claim_token=c.token, job_ids=c.job_ids,
                         status="running", prefect_flow_run_id=flow_run_id)
        s.add(shard)
        s.flush()
        shard_id = shard.id
    st = _Shard()
    hb = Heartbeat(engine, c.token, cfg.lease_s).__enter__()  # until the shard's last clip is recorded

    def record(made: Any) -> None:  # on the recorder's thread
        try:
            new = record_fn(engine, made)
        except Exception as exc:  # noqa: BLE001 - the failed clips are recorded failed; the shard says why
            st.status, st.error = "failed", f"{type(exc).__name__}: {exc}"
            log.error("shard %d: recording failed: %s", shard_id, st.error)
            return
        st.made += new
        if new and on_clips is not None:
            on_clips(new)  # QC starts now, on CPU, while the card generates

    def close() -> None:  # on the recorder's thread, after the shard's last record
        hb.__exit__(None, None, None)
        lost = _count_lost(engine, c)
        with session_scope(engine) as s:
            shard = s.get(ShardRun, shard_id)
            shard.gpu_started_at, shard.gpu_finished_at, shard.finished_at = st.started, st.finished, utcnow()
            shard.status = "lost" if lost and st.status == "done" else st.status
            shard.error = st.error
        failed = len(_failed(engine, c))
        report.shards += 1
        report.clips += len(st.made)
        report.asset_ids += st.made
        report.lost += lost
        report.failed += failed

    try:
        batches, _ = generate.plan_batches(engine, c.job_ids, opts)
        with gpu_slot():
            st.started, m0 = utcnow(), time.monotonic()
            try:
                for batch in batches:
                    try:
                        made = start_fn(engine, batch, assets_dir, opts, on_step=hb.check, claim=c.token)
                    except claims.LeaseLost as exc:
                        st.status, st.error = "lost", str(exc)
                        claims.release(engine, c.token)  # what it still holds goes back to the queue now
                        break
                    except Exception as exc:  # noqa: BLE001 - the batch's jobs are recorded failed; go on
                        st.status, st.error = "failed", f"{type(exc).__name__}: {exc}"
                        log.error("shard %d: batch %s failed: %s", shard_id, batch, st.error)
                        continue
                    recorder.submit(record, made)
            finally:
                st.finished = utcnow()
                report.gpu_busy_s += time.monotonic() - m0
    except BaseException as exc:  # interrupted (or the slot could not be had): give the jobs back, say why
        with contextlib.suppress(Exception):
            claims.release(engine, c.token)
        st.status, st.error = "failed", f"{type(exc).__name__}: {exc}"
        recorder.close_shard(close)
        with contextlib.suppress(Exception):
            recorder.wait(0)
        raise
    recorder.close_shard(close)


def _count_lost(engine: Engine, c: claims.Claim) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(J).where(J.id.in_(c.job_ids), J.claim_token != c.token))


def _failed(engine: Engine, c: claims.Claim) -> list[int]:
    with engine.connect() as conn:
        return list(conn.scalars(select(J.id).where(J.id.in_(c.job_ids), J.claim_token == c.token,
                                                    J.status == JobStatus.failed)))


def _write_metrics(engine: Engine, report: WorkerReport, cid: int | None, flow_run_id: str | None) -> int:
    with session_scope(engine) as s:
        depth = claims.queue_depth(s, cid)
        s.add(WorkerMetric(worker=report.worker, campaign_id=cid, prefect_flow_run_id=flow_run_id, clips=report.clips,
                           clips_per_hour=report.clips_per_hour, gpu_busy_fraction=report.gpu_busy_fraction,
                           queue_depth=depth, details={**report.as_dict(), "pid": os.getpid()}))
    return depth
