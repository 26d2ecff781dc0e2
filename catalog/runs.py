"""Run records: one row per flow execution, linking catalog rows to Prefect and MLflow runs.

A run records the process running it (host, pid, the process's start time). When a run opens, every `running`
run of the same host whose process is gone (killed: no `finally` ran) is marked `crashed`, its `finished_at` the
time this was noticed. Runs of other hosts, and rows older than these columns, are left as they are.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from catalog import audit
from catalog.models import Campaign, Run, utcnow
from core.processes import process_alive, this_process


def open_run(session: Session, campaign: str, flow: str, prefect_flow_run_id: str | None,
             mlflow_run_id: str | None = None) -> int:
    campaign_id = session.scalar(select(Campaign.id).where(Campaign.name == campaign))
    if campaign_id is None:
        raise LookupError(f"unknown campaign {campaign!r}: run its brief first (wanflow run BRIEF)")
    host, pid, pid_started_at = this_process()
    run = Run(campaign_id=campaign_id, flow=flow, prefect_flow_run_id=prefect_flow_run_id,
              mlflow_run_id=mlflow_run_id, host=host, pid=pid, pid_started_at=pid_started_at)
    session.add(run)
    session.flush()
    audit.append(session, "wanflow", f"{flow}.started", "run", run.id,
                 {"campaign": campaign, "prefect_flow_run_id": prefect_flow_run_id, "mlflow_run_id": mlflow_run_id})
    mark_crashed(session, run.id)
    return run.id


def mark_crashed(session: Session, noticed_by: int) -> list[int]:
    """Mark this host's `running` runs whose process is gone as `crashed` (now); the ids marked.

    Each row changes only if it is still `running`, so two runs noticing the same crash mark (and audit) it once.
    """
    host = this_process()[0]
    marked = []
    for run in session.scalars(select(Run).where(Run.status == "running", Run.host == host, Run.id != noticed_by)):
        if process_alive(run.pid, run.pid_started_at):
            continue
        now = utcnow()
        crash = {"noticed_at": now.isoformat(), "noticed_by_run": noticed_by, "process": f"{run.host}:{run.pid}"}
        changed = session.execute(update(Run).where(Run.id == run.id, Run.status == "running").values(
            status="crashed", finished_at=now, summary={**(run.summary or {}), "crashed": crash}))
        if changed.rowcount == 1:
            audit.append(session, "wanflow", f"{run.flow}.crashed", "run", run.id, crash)
            marked.append(run.id)
    return marked


def close_run(session: Session, run_id: int, status: str, summary: dict[str, Any]) -> None:
    run = session.get(Run, run_id)
    run.status, run.summary, run.finished_at = status, summary, utcnow()
    audit.append(session, "wanflow", f"{run.flow}.{status}", "run", run_id,
                 {k: v for k, v in summary.items() if k != "clip_paths"})
