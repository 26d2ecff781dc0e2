"""`wanflow validate`: a brief checked without writing anything. A module of its own so that it loads only the
intake (no flow, no video library, no catalog writes): content teams run it on every edit of a brief."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.context import console, guard, settings
from wan_tasks.intake import validate

app = typer.Typer()


@app.command("validate")
@guard
def campaign_validate(brief: Annotated[Path, typer.Argument(help="Campaign brief (YAML).")]) -> None:
    """Validate a brief without writing anything; rows rejected by the brand's text policy are listed."""
    b = validate(brief, settings())
    for r in b.rejected:
        console.print(f"{r.item.source_file}:{r.item.row}:{r.field}: rejected by brand policy: {r.reason}",
                      markup=False, highlight=False, soft_wrap=True)
    for w in b.warnings:
        console.print(f"{w}", markup=False, highlight=False, soft_wrap=True)
    variants = sum(i.variants for i in b.items)
    console.print(f"[green]ok[/]: {b.campaign} — {len(b.items)} items ({variants} clips), "
                  f"{len(b.rejected)} rejected by brand policy, model {b.model_ref}")
