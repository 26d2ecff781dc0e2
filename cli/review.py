"""`wanflow review list|decide|serve|policy|due`: human review of the clips that passed QC, and the dashboard."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table
from sqlalchemy import func, select

from catalog.db import session_scope
from catalog.models import Decision, User
from cli.context import catalog, console, err, guard, prefect_flows, serve_dashboard, settings
from wan_tasks.review import decide, pending, publishable_campaign, set_due_hours, set_policy

app = typer.Typer(help="Human review of clips that passed QC.", no_args_is_help=True)


@app.command("list")
@guard
def review_list(campaign: Annotated[Optional[str], typer.Option(help="Only this campaign.")] = None) -> None:
    """List clips waiting for a decision."""
    with session_scope(catalog()) as s:
        rows = pending(s, campaign)
    t = Table("asset", "task", "campaign", "clip")
    for r in rows:
        t.add_row(str(r.asset_id), str(r.task_id), r.campaign, r.uri)
    console.print(t)


@app.command("decide")
@guard
def review_decide(
    asset: Annotated[int, typer.Argument(help="Asset id of the clip.")],
    approve: Annotated[bool, typer.Option("--approve/--reject", help="Approve or reject.")] = ...,  # type: ignore[assignment]
    reason: Annotated[str, typer.Option(help="Why (required to reject).")] = "",
    as_user: Annotated[str, typer.Option("--as", help="Who decides (recorded in the audit log).")] = ...,  # type: ignore[assignment]
) -> None:
    """Record a review decision on a clip, with an audit event."""
    with session_scope(catalog()) as s:
        d = decide(s, asset, Decision.approve if approve else Decision.reject, reason, as_user)
        publishable = publishable_campaign(s, asset)
    console.print(f"asset {asset}: {d.decision.value} by {d.reviewer}")
    if not publishable:
        return
    events = prefect_flows().events
    if events.clip_approved(publishable, asset, as_user):
        console.print(f"publishable: sent {events.CLIP_APPROVED} for campaign {publishable} to the Prefect server")


@app.command("serve")
@guard
def review_serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[Optional[int], typer.Option(min=1, max=64, help="Worker processes sharing the port "
                                                   "(default WANFLOW_DASHBOARD_WORKERS, 1); about one per core.")] = None,
) -> None:
    """Start the review dashboard (pages and JSON API). Holds no GPU: publishing is the publish flow's job."""
    with session_scope(catalog()) as s:
        users = s.scalar(select(func.count()).select_from(User))
    if not users:
        err.print("no accounts yet: create one with `wanflow users add NAME --role approver`", markup=False)
    workers = workers or settings().dashboard_workers
    console.print(f"review dashboard: http://{host}:{port}/  (API: /api, OpenAPI: /api/openapi.json)"
                  + (f", {workers} worker processes" if workers > 1 else ""))
    serve_dashboard(settings(), host, port, workers)


@app.command("policy")
@guard
def review_policy(
    brand: Annotated[str, typer.Argument(help="Brand name.")],
    two_stage: Annotated[bool, typer.Option("--two-stage/--one-stage",
                                            help="Reviewer then approver, or one approval.")] = ...,  # type: ignore[assignment]
    as_user: Annotated[str, typer.Option("--as", help="Who changes it (audit log).")] = "admin (cli)",
) -> None:
    """Set a brand's approval policy: two-stage (a reviewer, then an approver) or one stage."""
    with session_scope(catalog()) as s:
        set_policy(s, brand, two_stage, as_user)
    console.print(f"brand {brand}: {'two-stage (reviewer, then approver)' if two_stage else 'one-stage'} approval")


@app.command("due")
@guard
def review_due(
    campaign: Annotated[str, typer.Argument(help="Campaign name.")],
    hours: Annotated[Optional[int], typer.Option(help="Review SLA in hours (omit to clear).")] = None,
    as_user: Annotated[str, typer.Option("--as", help="Who changes it (audit log).")] = "admin (cli)",
) -> None:
    """Set a campaign's review SLA: each clip is due this many hours after it enters the queue."""
    with session_scope(catalog()) as s:
        n = set_due_hours(s, campaign, hours, as_user)
    console.print(f"campaign {campaign}: review due {f'{hours} h after queueing' if hours else 'not set'}; "
                  f"{n} open task(s) updated")
