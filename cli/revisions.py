"""`wanflow revisions list|run`: the clips that reviewers asked to change, and generating them again."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from catalog.db import session_scope
from catalog.models import GenerationJob
from cli.context import catalog, console, fail, guard, prefect_flows, settings
from wan_tasks.revisions import waiting_revisions

app = typer.Typer(help="Clips that reviewers asked to change.", no_args_is_help=True)


@app.command("list")
@guard
def revisions_list(campaign: Annotated[Optional[str], typer.Option(help="Only this campaign.")] = None) -> None:
    """Revision jobs waiting to be generated."""
    t = Table("job", "revision of clip", "seed", "status")
    with session_scope(catalog()) as s:
        for job_id in waiting_revisions(s, campaign):
            j = s.get(GenerationJob, job_id)
            t.add_row(str(j.id), str(j.revision_of_id), str(j.seed), j.status.value)
    console.print(t)


@app.command("run")
@guard
def revisions_run(campaign: Annotated[Optional[str], typer.Option(help="Only this campaign.")] = None) -> None:
    """Generate the clips reviewers asked to change, QC them and queue them for review (runs on the GPU worker)."""
    summary = prefect_flows().revisions.revisions(campaign, settings())
    console.print(f"{summary['jobs']} revision job(s): {len(summary['clips'])} clip(s) made, "
                  f"{summary['queued_for_review']} queued for review, {summary['failed']} failed")
    if summary["failed"]:
        fail(1, [f"{summary['failed']} revision job(s) failed; run again to retry them."])
