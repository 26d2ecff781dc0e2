"""`wanflow fleet slots|plan|work|status`: GPU slots, planning a campaign for the fleet, running a GPU worker,
and the fleet's state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from catalog.db import session_scope
from catalog.workers import fleet_status
from cli.context import catalog, console, guard, prefect_flows, settings
from wan_tasks import plan
from wan_tasks.intake import resolve_models, validate

app = typer.Typer(help="GPU fleet: slots, sharded campaigns, workers.", no_args_is_help=True)


@app.command("slots")
@guard
def fleet_slots(
    count: Annotated[int, typer.Option(min=1, help="GPUs in the fleet: one slot (limit 1) each.")] = 1,
    prefix: Annotated[str, typer.Option(help="Slot names are PREFIX0, PREFIX1, …")] = "wanflow-gpu-",
    names: Annotated[Optional[list[str]], typer.Option("--name", help="Explicit slot names instead.")] = None,
) -> None:
    """Create the GPU slots on the Prefect server in PREFECT_API_URL: strict global concurrency limits of 1."""
    shard = prefect_flows().shard
    t = Table("slot", "limit", "active", "in use")
    for gcl in shard.ensure_slots(names or shard.slot_names(count, prefix)):
        t.add_row(gcl["name"], str(gcl["limit"]), str(gcl["active"]), str(gcl["active_slots"]))
    console.print(t)


@app.command("plan")
@guard
def fleet_plan(brief: Annotated[Path, typer.Argument(help="Campaign brief (YAML).")]) -> None:
    """Validate a brief, record it and plan its jobs for the fleet, without generating anything."""
    cfg = settings()
    cfg.ensure_dirs()
    spec = validate(brief, cfg)
    with session_scope(catalog()) as session:
        brief_id = plan.record_brief(session, spec)
    model, canary = resolve_models(cfg, brief_id, spec.brand.name, spec.canary, spec.canary_model)
    with session_scope(catalog()) as session:
        job_ids = plan.plan_jobs(session, brief_id, model, None, canary, spec.canary)
    canary_text = f"; canary {spec.canary:.0%} → {canary.ref}" if canary else ""
    console.print(f"{spec.campaign}: {len(job_ids)} job(s) planned with {model.registry_name}/{model.version} "
                  f"({model.label}){canary_text}; start GPU workers: wanflow fleet work {spec.campaign}")


@app.command("work")
@guard
def fleet_work(
    campaign: Annotated[Optional[str], typer.Argument(help="Only this campaign (default: any).")] = None,
    slot: Annotated[Optional[str], typer.Option(help="GPU slot (default WANFLOW_GPU_SLOT).")] = None,
    shard_size: Annotated[Optional[int], typer.Option(min=1, help="Jobs per claim.")] = None,
    lease: Annotated[Optional[float], typer.Option(help="Claim lease in seconds.")] = None,
    idle_exit: Annotated[float, typer.Option(help="With no campaign: leave after this long with nothing to do.")] = 0.0,
    qc: Annotated[bool, typer.Option(help="QC the clips made (in processes of its own, overlapping generation).")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Run a GPU worker here: claim shards and generate them in the slot until the work is done."""
    out = prefect_flows().shard.generate_shard(campaign=campaign, slot=slot, shard_size=shard_size,
                                               lease_seconds=lease, idle_exit_seconds=idle_exit, qc=qc,
                                               settings=settings())
    if as_json:
        print(json.dumps(out))
    else:
        console.print(out)


@app.command("status")
@guard
def fleet_status_show(
    campaign: Annotated[Optional[str], typer.Argument(help="Only this campaign.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Jobs by status, claims held now, and each worker's latest figures."""
    with session_scope(catalog()) as s:
        out = fleet_status(s, campaign)
    if as_json:
        print(json.dumps(out, default=str))
        return
    console.print(f"jobs: {out['jobs']}  queue depth: {out['queue_depth']}  claims held: {out['claims_held']}")
    t = Table("worker", "clips", "clips/h", "GPU busy", "queue", "at")
    for w in out["workers"]:
        t.add_row(w["worker"], str(w["clips"]), f"{w['clips_per_hour']:.0f}", f"{w['gpu_busy_fraction']:.0%}",
                  str(w["queue_depth"]), str(w["at"]))
    console.print(t)
