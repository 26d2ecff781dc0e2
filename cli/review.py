"""`wanflow` commands of the review dashboard: `review serve|policy|due`, `users`, `audit verify`, `revisions`.

Registered on the main app by importing this module from cli.main (same exit codes, same `_guard`).
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer
from rich.table import Table

from cli.main import InputError, _fail, _guard, _settings, app, console, err, review_app

users_app = typer.Typer(help="Review dashboard accounts and roles.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit trail.", no_args_is_help=True)
revisions_app = typer.Typer(help="Clips that reviewers asked to change.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")
app.add_typer(revisions_app, name="revisions")


@review_app.command("serve")
@_guard
def review_serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
) -> None:
    """Start the review dashboard (pages and JSON API). Holds no GPU: publishing is the publish flow's job."""
    import uvicorn
    from sqlalchemy import func, select

    from catalog.db import open_catalog, session_scope
    from catalog.models import User
    from dashboard import create_app

    settings = _settings()
    dashboard = create_app(settings)
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        users = s.scalar(select(func.count()).select_from(User))
    if not users:
        err.print("no accounts yet: create one with `wanflow users add NAME --role approver`", markup=False)
    console.print(f"review dashboard: http://{host}:{port}/  (API: /api, OpenAPI: /api/openapi.json)")
    uvicorn.run(dashboard, host=host, port=port, log_level="warning")


@review_app.command("policy")
@_guard
def review_policy(
    brand: Annotated[str, typer.Argument(help="Brand name.")],
    two_stage: Annotated[bool, typer.Option("--two-stage/--one-stage",
                                            help="Reviewer then approver, or one approval.")] = ...,  # type: ignore[assignment]
    as_user: Annotated[str, typer.Option("--as", help="Who changes it (audit log).")] = "admin (cli)",
) -> None:
    """Set a brand's approval policy: two-stage (a reviewer, then an approver) or one stage."""
    from catalog.db import open_catalog, session_scope
    from wan_tasks.review import set_policy

    with session_scope(open_catalog(_settings().catalog_db_url)) as s:
        set_policy(s, brand, two_stage, as_user)
    console.print(f"brand {brand}: {'two-stage (reviewer, then approver)' if two_stage else 'one-stage'} approval")


@review_app.command("due")
@_guard
def review_due(
    campaign: Annotated[str, typer.Argument(help="Campaign name.")],
    hours: Annotated[Optional[int], typer.Option(help="Review SLA in hours (omit to clear).")] = None,
    as_user: Annotated[str, typer.Option("--as", help="Who changes it (audit log).")] = "admin (cli)",
) -> None:
    """Set a campaign's review SLA: each clip is due this many hours after it enters the queue."""
    from catalog.db import open_catalog, session_scope
    from wan_tasks.review import set_due_hours

    with session_scope(open_catalog(_settings().catalog_db_url)) as s:
        n = set_due_hours(s, campaign, hours, as_user)
    console.print(f"campaign {campaign}: review due {f'{hours} h after queueing' if hours else 'not set'}; "
                  f"{n} open task(s) updated")


def _password(confirm: bool = True) -> str:
    env = os.environ.get("WANFLOW_PASSWORD")
    if env:
        return env
    if not sys.stdin.isatty():
        raise InputError(["password: set WANFLOW_PASSWORD or run in a terminal to be asked"])
    return typer.prompt("password", hide_input=True, confirmation_prompt=confirm)


@users_app.command("add")
@_guard
def users_add(
    name: Annotated[str, typer.Argument(help="Sign-in name (a-z 0-9 . _ -).")],
    role: Annotated[str, typer.Option(help="viewer, reviewer, approver or admin.")] = ...,  # type: ignore[assignment]
    as_user: Annotated[str, typer.Option("--as", help="Who creates it (audit log).")] = "admin (cli)",
) -> None:
    """Create a dashboard account. The password comes from $WANFLOW_PASSWORD or a prompt; it is stored as argon2."""
    from catalog.db import open_catalog, session_scope
    from wan_tasks.accounts import add_user, parse_role

    r = parse_role(role)
    password = _password()
    with session_scope(open_catalog(_settings().catalog_db_url)) as s:
        add_user(s, name, r, password, as_user)
    console.print(f"user {name} added as {r.value}")


@users_app.command("set-role")
@_guard
def users_set_role(
    name: Annotated[str, typer.Argument(help="Sign-in name.")],
    role: Annotated[str, typer.Argument(help="viewer, reviewer, approver or admin.")],
    as_user: Annotated[str, typer.Option("--as", help="Who changes it (audit log).")] = "admin (cli)",
) -> None:
    """Change a user's role (an audit event)."""
    from catalog.db import open_catalog, session_scope
    from wan_tasks.accounts import parse_role, set_role

    r = parse_role(role)
    with session_scope(open_catalog(_settings().catalog_db_url)) as s:
        set_role(s, name, r, as_user)
    console.print(f"user {name} is now {r.value}")


@users_app.command("list")
@_guard
def users_list() -> None:
    """List dashboard accounts and their roles."""
    from sqlalchemy import select

    from catalog.db import open_catalog, session_scope
    from catalog.models import User

    t = Table("name", "role", "active", "created")
    with session_scope(open_catalog(_settings().catalog_db_url)) as s:
        for u in s.scalars(select(User).order_by(User.name)):
            t.add_row(u.name, u.role.value, str(u.active), u.created_at.isoformat(timespec="seconds"))
    console.print(t)


@audit_app.command("verify")
@_guard
def audit_verify() -> None:
    """Recompute the audit chain; exit 1 naming the first broken link if any event was altered or deleted."""
    from catalog.db import open_catalog, session_scope
    from catalog.audit import verify

    with session_scope(open_catalog(_settings().catalog_db_url)) as s:
        v = verify(s)
    if not v.ok:
        _fail(1, [f"audit chain BROKEN at event {v.broken_at}: {v.problem}",
                  f"({v.events} event(s) read; the chain holds up to the event before it)"])
    console.print(f"audit chain intact: {v.events} event(s), head {v.head_hash}")


@revisions_app.command("list")
@_guard
def revisions_list(campaign: Annotated[Optional[str], typer.Option(help="Only this campaign.")] = None) -> None:
    """Revision jobs waiting to be generated."""
    from catalog.db import open_catalog, session_scope
    from catalog.models import GenerationJob
    from wan_tasks.revisions import waiting_revisions

    t = Table("job", "revision of clip", "seed", "status")
    with session_scope(open_catalog(_settings().catalog_db_url)) as s:
        for job_id in waiting_revisions(s, campaign):
            j = s.get(GenerationJob, job_id)
            t.add_row(str(j.id), str(j.revision_of_id), str(j.seed), j.status.value)
    console.print(t)


@revisions_app.command("run")
@_guard
def revisions_run(campaign: Annotated[Optional[str], typer.Option(help="Only this campaign.")] = None) -> None:
    """Generate the clips reviewers asked to change, QC them and queue them for review (runs on the GPU worker)."""
    from flows.revisions import revisions

    summary = revisions(campaign, _settings())
    console.print(f"{summary['jobs']} revision job(s): {len(summary['clips'])} clip(s) made, "
                  f"{summary['queued_for_review']} queued for review, {summary['failed']} failed")
    if summary["failed"]:
        _fail(1, [f"{summary['failed']} revision job(s) failed; run again to retry them."])


def demo_users(engine) -> None:  # noqa: ANN001
    """The demo's dashboard accounts, with generated passwords printed once, when they are created."""
    import secrets

    from sqlalchemy import select

    from catalog.db import session_scope
    from catalog.models import Role, User
    from wan_tasks.accounts import add_user

    console.rule("review dashboard (wanflow review serve → http://127.0.0.1:8000)")
    for name, role in (("demo-reviewer", Role.reviewer), ("demo-approver", Role.approver), ("demo-viewer", Role.viewer)):
        with session_scope(engine) as s:
            if s.scalar(select(User.id).where(User.name == name)) is not None:
                console.print(f"demo user {name:14} ({role.value}): exists; its password was printed when it was made")
                continue
            password = secrets.token_urlsafe(12)
            add_user(s, name, role, password, "wanflow demo")
        console.print(f"demo user {name:14} ({role.value}): password {password}", markup=False, highlight=False)
