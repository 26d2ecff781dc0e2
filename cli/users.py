"""`wanflow users add|set-role|set-locale|list`: the review dashboard's accounts and roles; the demo's accounts."""

from __future__ import annotations

import os
import secrets
import sys
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import Engine, select

from catalog.db import session_scope
from catalog.models import Role, User
from cli.context import InputError, catalog, console, guard
from wan_tasks.accounts import add_user, parse_role, set_locale, set_role

app = typer.Typer(help="Review dashboard accounts and roles.", no_args_is_help=True)


def _password(confirm: bool = True) -> str:
    env = os.environ.get("WANFLOW_PASSWORD")
    if env:
        return env
    if not sys.stdin.isatty():
        raise InputError(["password: set WANFLOW_PASSWORD or run in a terminal to be asked"])
    return typer.prompt("password", hide_input=True, confirmation_prompt=confirm)


@app.command("add")
@guard
def users_add(
    name: Annotated[str, typer.Argument(help="Sign-in name (a-z 0-9 . _ -).")],
    role: Annotated[str, typer.Option(help="viewer, reviewer, approver or admin.")] = ...,  # type: ignore[assignment]
    as_user: Annotated[str, typer.Option("--as", help="Who creates it (audit log).")] = "admin (cli)",
) -> None:
    """Create a dashboard account. The password comes from $WANFLOW_PASSWORD or a prompt; it is stored as argon2."""
    r = parse_role(role)
    password = _password()
    with session_scope(catalog()) as s:
        add_user(s, name, r, password, as_user)
    console.print(f"user {name} added as {r.value}")


@app.command("set-role")
@guard
def users_set_role(
    name: Annotated[str, typer.Argument(help="Sign-in name.")],
    role: Annotated[str, typer.Argument(help="viewer, reviewer, approver or admin.")],
    as_user: Annotated[str, typer.Option("--as", help="Who changes it (audit log).")] = "admin (cli)",
) -> None:
    """Change a user's role (an audit event)."""
    r = parse_role(role)
    with session_scope(catalog()) as s:
        set_role(s, name, r, as_user)
    console.print(f"user {name} is now {r.value}")


@app.command("set-locale")
@guard
def users_set_locale(
    name: Annotated[str, typer.Argument(help="Sign-in name.")],
    locale: Annotated[str, typer.Argument(help="en or ja; `default` to follow the browser, then WANFLOW_LOCALE.")],
    as_user: Annotated[str, typer.Option("--as", help="Who changes it (audit log).")] = "admin (cli)",
) -> None:
    """Set the language of a user's dashboard (an audit event)."""
    with session_scope(catalog()) as s:
        row = set_locale(s, name, locale, as_user)
        shown = row.locale or "the browser's (else WANFLOW_LOCALE)"
    console.print(f"user {name}: dashboard language {shown}")


@app.command("list")
@guard
def users_list() -> None:
    """List dashboard accounts and their roles."""
    t = Table("name", "role", "locale", "active", "created")
    with session_scope(catalog()) as s:
        for u in s.scalars(select(User).order_by(User.name)):
            t.add_row(u.name, u.role.value, u.locale or "—", str(u.active), u.created_at.isoformat(timespec="seconds"))
    console.print(t)


def demo_users(engine: Engine) -> None:
    """The demo's dashboard accounts, with generated passwords printed once, when they are created."""
    console.rule("review dashboard (wanflow review serve → http://127.0.0.1:8000)")
    for name, role in (("demo-reviewer", Role.reviewer), ("demo-approver", Role.approver), ("demo-viewer", Role.viewer)):
        with session_scope(engine) as s:
            if s.scalar(select(User.id).where(User.name == name)) is not None:
                console.print(f"demo user {name:14} ({role.value}): exists; its password was printed when it was made")
                continue
            password = secrets.token_urlsafe(12)
            add_user(s, name, role, password, "wanflow demo")
        console.print(f"demo user {name:14} ({role.value}): password {password}", markup=False, highlight=False)
