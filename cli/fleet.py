"""`wanflow fleet`: GPU slots, planning a campaign for the fleet, running a GPU worker, and the fleet's state."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table


def register(app: typer.Typer, guard: Callable, console: Console, settings: Callable,
             input_error: type[Exception]) -> None:
    """Add the `fleet` commands to the main app (with its error handling, console and settings)."""
    fleet_app = typer.Typer(help="GPU fleet: slots, sharded campaigns, workers.", no_args_is_help=True)
    app.add_typer(fleet_app, name="fleet")
    _guard, _settings, InputError = guard, settings, input_error  # noqa: N806 — the names the commands use

    @fleet_app.command("slots")
    @_guard
    def fleet_slots(
        count: Annotated[int, typer.Option(min=1, help="GPUs in the fleet: one slot (limit 1) each.")] = 1,
        prefix: Annotated[str, typer.Option(help="Slot names are PREFIX0, PREFIX1, …")] = "wanflow-gpu-",
        names: Annotated[Optional[list[str]], typer.Option("--name", help="Explicit slot names instead.")] = None,
    ) -> None:
        """Create the GPU slots on the Prefect server in PREFECT_API_URL: strict global concurrency limits of 1."""
        from flows.shard import ensure_slots, slot_names

        t = Table("slot", "limit", "active", "in use")
        for gcl in ensure_slots(names or slot_names(count, prefix)):
            t.add_row(gcl["name"], str(gcl["limit"]), str(gcl["active"]), str(gcl["active_slots"]))
        console.print(t)

    @fleet_app.command("plan")
    @_guard
    def fleet_plan(brief: Annotated[Path, typer.Argument(help="Campaign brief (YAML).")]) -> None:
        """Validate a brief, record it and plan its jobs for the fleet, without generating anything."""
        from wan_tasks.intake import freeze_models, validate

        from catalog.db import open_catalog, session_scope
        from wan_tasks import plan

        s = _settings()
        s.ensure_dirs()
        spec = validate(brief, s)
        with session_scope(open_catalog(s.catalog_db_url)) as session:
            brief_id = plan.record_brief(session, spec)
        model, canary = freeze_models(s, brief_id, spec.brand.name, spec.canary, spec.canary_model)
        with session_scope(open_catalog(s.catalog_db_url)) as session:
            job_ids = plan.plan_jobs(session, brief_id, model, None, canary, spec.canary)
        canary_text = f"; canary {spec.canary:.0%} → {canary.ref}" if canary else ""
        console.print(f"{spec.campaign}: {len(job_ids)} job(s) planned with {model.registry_name}/{model.version} "
                      f"({model.label}){canary_text}; start GPU workers: wanflow fleet work {spec.campaign}")

    @fleet_app.command("work")
    @_guard
    def fleet_work(
        campaign: Annotated[Optional[str], typer.Argument(help="Only this campaign (default: any).")] = None,
        slot: Annotated[Optional[str], typer.Option(help="GPU slot (default WANFLOW_GPU_SLOT).")] = None,
        shard_size: Annotated[Optional[int], typer.Option(min=1, help="Jobs per claim.")] = None,
        lease: Annotated[Optional[float], typer.Option(help="Claim lease in seconds.")] = None,
        idle_exit: Annotated[float, typer.Option(help="With no campaign: leave after this long with nothing to do.")] = 0.0,
        qc: Annotated[bool, typer.Option(help="QC the clips made (on CPU threads, overlapping generation).")] = True,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        """Run a GPU worker here: claim shards and generate them in the slot until the work is done."""
        from flows.shard import generate_shard

        out = generate_shard(campaign=campaign, slot=slot, shard_size=shard_size, lease_seconds=lease,
                             idle_exit_seconds=idle_exit, qc=qc, settings=_settings())
        if as_json:
            print(json.dumps(out))
        else:
            console.print(out)

    @fleet_app.command("status")
    @_guard
    def fleet_status(
        campaign: Annotated[Optional[str], typer.Argument(help="Only this campaign.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        """Jobs by status, claims held now, and each worker's latest figures."""
        from catalog.db import open_catalog, session_scope
        from catalog.workers import fleet_status as status

        with session_scope(open_catalog(_settings().catalog_db_url)) as s:
            out = status(s, campaign)
        if as_json:
            print(json.dumps(out, default=str))
            return
        console.print(f"jobs: {out['jobs']}  queue depth: {out['queue_depth']}  claims held: {out['claims_held']}")
        t = Table("worker", "clips", "clips/h", "GPU busy", "queue", "at")
        for w in out["workers"]:
            t.add_row(w["worker"], str(w["clips"]), f"{w['clips_per_hour']:.0f}", f"{w['gpu_busy_fraction']:.0%}",
                      str(w["queue_depth"]), str(w["at"]))
        console.print(t)
