"""`wanflow audit verify`: recompute the hash-chained audit trail."""

from __future__ import annotations

import typer

from catalog.audit import verify_chain
from catalog.db import session_scope
from cli.context import catalog, console, fail, guard

app = typer.Typer(help="The hash-chained audit trail.", no_args_is_help=True)


@app.command("verify")
@guard
def audit_verify() -> None:
    """Recompute the audit chain; exit 1 naming the first broken link if any event was altered or deleted."""
    with session_scope(catalog()) as s:
        v = verify_chain(s)
    if not v.ok:
        fail(1, [f"audit chain BROKEN at event {v.broken_at}: {v.problem}",
                 f"({v.events} event(s) read; the chain holds up to the event before it)"])
    console.print(f"audit chain intact: {v.events} event(s), head {v.head_hash}")
