"""Run records: one row per flow execution, linking catalog rows to Prefect and MLflow runs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog import audit
from catalog.models import Campaign, Run, utcnow


def open_run(session: Session, campaign: str, flow: str, prefect_flow_run_id: str | None,
             mlflow_run_id: str | None = None) -> int:
    campaign_id = session.scalar(select(Campaign.id).where(Campaign.name == campaign))
    if campaign_id is None:
        raise LookupError(f"unknown campaign {campaign!r}: run its brief first (wanflow run BRIEF)")
    run = Run(campaign_id=campaign_id, flow=flow, prefect_flow_run_id=prefect_flow_run_id,
              mlflow_run_id=mlflow_run_id)
    session.add(run)
    session.flush()
    audit.append(session, "wanflow", f"{flow}.started", "run", run.id,
                 {"campaign": campaign, "prefect_flow_run_id": prefect_flow_run_id, "mlflow_run_id": mlflow_run_id})
    return run.id


def close_run(session: Session, run_id: int, status: str, summary: dict[str, Any]) -> None:
    run = session.get(Run, run_id)
    run.status, run.summary, run.finished_at = status, summary, utcnow()
    audit.append(session, "wanflow", f"{run.flow}.{status}", "run", run_id,
                 {k: v for k, v in summary.items() if k != "clip_paths"})
