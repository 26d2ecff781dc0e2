"""The fleet: GPU slots (strict Prefect global concurrency limits) and the `generate-shard` flow.

A `generate-shard` flow run is one GPU worker's session: it claims shards of a campaign's jobs in the
catalog (row locks with SKIP LOCKED on PostgreSQL, a lease per claim) and generates each shard inside its
card's slot — a Prefect global concurrency limit of 1 acquired with ``strict=True``, so a missing limit is
an error and never an unlimited run. It keeps the model loaded across shards, runs QC of the clips it made
in Prefect's thread pool while it generates the next shard, and leaves when the campaign has nothing left.

Run it from a deployment (`generate-shard` on the `gpu` pool, one per card; the campaign flow can dispatch
them), or directly on a machine: `wanflow fleet work CAMPAIGN --slot wanflow-gpu-0`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from prefect import flow, get_run_logger, runtime
from prefect.artifacts import create_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.settings import PREFECT_API_URL
from prefect.task_runners import ProcessPoolTaskRunner
from sqlalchemy import Engine

from adapters import tracking
from catalog import claims
from catalog.db import session_scope
from core.settings import Settings
from flows import progress
from flows.context import catalog_of, flow_run_id
from flows.tasks import qc_clip
from wan_tasks.intake import brands_of_clips
from wan_tasks.worker import WorkerConfig, run_worker

SLOT_PREFIX = "wanflow-gpu-"


class SlotMissing(LookupError):
    """The GPU slot's global concurrency limit does not exist (or is inactive) on the Prefect server."""


def slot_names(count: int, prefix: str = SLOT_PREFIX) -> list[str]:
    return [f"{prefix}{i}" for i in range(count)]


def ensure_slots(names: list[str], limit: int = 1) -> list[dict[str, Any]]:
    """Create (or set to ``limit``) one global concurrency limit per GPU on the Prefect server in use."""
    out = []
    with get_client(sync_client=True) as client:
        for name in names:
            client.upsert_global_concurrency_limit_by_name(name, limit)
            gcl = client.read_global_concurrency_limit_by_name(name)
            out.append({"name": gcl.name, "limit": gcl.limit, "active": gcl.active, "active_slots": gcl.active_slots})
    return out


def ensure_pools(pools: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Create the work pools the deployments name (`gpu`, `cpu`; process type by default) if missing."""
    out = []
    with get_client(sync_client=True) as client:
        for name, kind in (pools or {"gpu": "process", "cpu": "process"}).items():
            try:
                client.create_work_pool(WorkPoolCreate(name=name, type=kind))
            except ObjectAlreadyExists:
                pass
            pool = client.read_work_pool(name)
            out.append({"name": pool.name, "type": pool.type, "paused": pool.is_paused})
    return out


def check_slot(name: str) -> Any:
    """The slot's limit, or SlotMissing: a worker refuses to claim jobs it could not run within a slot."""
    with get_client(sync_client=True) as client:
        try:
            gcl = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            raise SlotMissing(f"GPU slot {name!r}: no global concurrency limit of that name on the Prefect server "
                              f"({PREFECT_API_URL.value() or 'ephemeral'}); create it with "
                              f"`wanflow fleet slots --count N` or `prefect gcl create {name} --limit 1`") from None
    if not gcl.active:
        raise SlotMissing(f"GPU slot {name!r} is inactive on the Prefect server; activate it "
                          f"(`prefect gcl update {name} --enable`)")
    return gcl


def gpu_slot(name: str, settings: Settings) -> Callable[[], AbstractContextManager]:
    """The context manager a shard's generation runs in: one slot of the card's limit, strict."""
    def held() -> AbstractContextManager:
        return concurrency(name, occupy=1, strict=True, lease_duration=settings.slot_lease_s,
                           timeout_seconds=settings.slot_timeout_s)

    return held


def slot_if_deployed(settings: Settings) -> AbstractContextManager:
    """The card's slot for in-process generation (campaign with gpu_workers=0, revisions) when the flow run
    comes from a deployment — i.e. a `gpu` pool worker shares the card with generate-shard runs. A run from
    the CLI on a laptop (no deployment) needs no slot and no Prefect server."""
    if runtime.deployment.id is None:
        return nullcontext()
    check_slot(settings.gpu_slot)
    return gpu_slot(settings.gpu_slot, settings)()


@flow(name="generate-shard", log_prints=True, task_runner=ProcessPoolTaskRunner())
def generate_shard(campaign: str | None = None, slot: str | None = None, shard_size: int | None = None,
                   lease_seconds: float | None = None, idle_exit_seconds: float = 0.0, qc: bool = True,
                   settings: Settings | None = None) -> dict[str, Any]:
    """Claim shards of ``campaign`` (or of any campaign) and generate them in this worker's GPU slot.

    Each recorded clip's QC runs in a process of its own (Prefect's process pool, one per core) while the card
    makes the next shard: in threads of this process, QC's Python (OCR, NudeNet, VBench) took the GIL and the
    cores from the worker's own loop, 6.15 s per clip against 1.2 s in processes on 2 cores (bench/fleet.py,
    docs/performance.md). A campaign flow's QC stays on threads: its pool lives for one campaign, too short to pay
    for starting processes on a laptop."""
    settings = settings or Settings()
    settings.ensure_dirs()
    log = get_run_logger()
    slot = slot or settings.gpu_slot
    check_slot(slot)  # before claiming anything: a missing limit fails here, not after jobs were taken
    cfg = WorkerConfig(worker=settings.worker_name or WorkerConfig.default_name(), slot=slot,
                       shard_size=shard_size or settings.shard_size, lease_s=lease_seconds or settings.lease_s,
                       campaign=campaign, idle_exit_s=idle_exit_seconds, max_claims=settings.max_claims,
                       poll_s=min(1.0, (lease_seconds or settings.lease_s) / 4))
    engine = catalog_of(settings)
    checks: list[Any] = []
    series: list[dict[str, Any]] = []
    bar = progress.start(f"generate-shard {campaign or '*'}", total=_queue(engine, campaign))

    def on_clips(asset_ids: list[int]) -> None:
        bar.done(len(asset_ids))
        if qc:
            checks.extend(_submit_qc(settings, asset_ids))  # QC in processes of its own while the next shard generates

    def on_shard(report, queue_depth: int) -> None:  # noqa: ANN001
        series.append(report.as_dict() | {"queue_depth": queue_depth})

    report = run_worker(engine, settings.assets_dir, settings.engine_options, cfg, gpu_slot(slot, settings),
                        on_clips=on_clips, on_shard=on_shard, flow_run_id=flow_run_id())
    for c in checks:
        c.wait()
    progress.stop(bar)
    out = report.as_dict() | {"campaign": campaign, "qc_checked": len(checks)}
    _log_mlflow(settings, out, series)
    log.info("%s on %s: %d shard(s), %d clip(s), %d lost, %d failed, GPU busy %.0f%%, %.0f clips/h, %d model load(s)",
             cfg.worker, slot, report.shards, report.clips, report.lost, report.failed,
             100 * report.gpu_busy_fraction, report.clips_per_hour, report.model_loads)
    create_markdown_artifact(key=f"worker-{_key(cfg.worker)}", markdown=_worker_markdown(out),
                             description=f"GPU worker {cfg.worker} on {slot}")
    return out


def _queue(engine: Engine, campaign: str | None) -> int:
    with engine.connect() as conn:
        cid = claims.campaign_id(conn, campaign) if campaign else None
        return claims.unfinished(conn, cid)


def _submit_qc(settings: Settings, asset_ids: list[int]) -> list[Any]:
    """QC each clip under its own campaign's brand rules (a worker of any campaign may have made it)."""
    with session_scope(catalog_of(settings)) as s:
        brands = brands_of_clips(s, asset_ids, settings.brands_dir)
    return [qc_clip.submit(settings, asset_id, brand) for asset_id, brand in brands.items()]


def _log_mlflow(settings: Settings, out: dict[str, Any], series: list[dict[str, Any]]) -> None:
    try:
        tracking.log_worker(settings.mlflow_uri, settings.mlflow_artifacts_dir, out, series)
    except Exception as exc:  # noqa: BLE001 - metrics are also in the catalog; a tracking outage must not fail work
        get_run_logger().warning("worker metrics not logged to MLflow: %s", exc)


def _key(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name.lower())[:60]


def _worker_markdown(out: dict[str, Any]) -> str:
    return f"""# GPU worker `{out['worker']}` — slot `{out['slot']}`

| campaign | shards | clips | lost leases | failed | GPU busy | clips/hour | model loads |
|---|---|---|---|---|---|---|---|
| {out['campaign'] or 'any'} | {out['shards']} | {out['clips']} | {out['lost']} | {out['failed']} | {out['gpu_busy_fraction']:.0%} | {out['clips_per_hour']} | {out['model_loads']} |
"""
