"""`wanflow provenance verify|dev-ca`: read and check C2PA content credentials; make a development CA."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from adapters.provenance import dev_trust_anchor, make_dev_ca, verify
from cli.context import InputError, console, guard, settings

app = typer.Typer(help="C2PA content credentials of published files.", no_args_is_help=True)


@app.command("verify")
@guard
def provenance_verify(
    file: Annotated[Path, typer.Argument(help="A published file (MP4, JPEG, WebP, GIF; WebM with its .c2pa sidecar).")],
    trust: Annotated[Optional[Path], typer.Option(help="PEM trust anchors (default: WANFLOW_C2PA_TRUST_ANCHORS).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Read and check a file's C2PA manifest: signature, hash binding, signer trust, AI-generated source type.

    Exit 0 when it verifies and declares trainedAlgorithmicMedia, 1 when it does not (tampered, unsigned)."""
    if not file.is_file():
        raise InputError([f"{file}:0:file: no such file"])
    anchors = trust or settings().c2pa_trust_anchors
    v = verify(file, anchors)
    if as_json:
        sys.stdout.write(json.dumps(asdict(v) | {"ok": v.ok, "ai_generated": v.ai_generated}, indent=2, default=str) + "\n")
    else:
        t = Table(title=f"C2PA: {file}", show_header=False)
        t.add_row("state", v.state + ("" if anchors else " (no trust anchors given: signer trust not checked)"))
        t.add_row("title", v.title or "")
        t.add_row("AI-generated", "yes (trainedAlgorithmicMedia)" if v.ai_generated else "NO")
        t.add_row("generator", f"{(v.generator or {}).get('name')} {(v.generator or {}).get('version')}")
        t.add_row("ingredients", ", ".join(f"{i['title']} ({i['relationship']})" for i in v.ingredients))
        t.add_row("lineage", json.dumps(v.lineage, ensure_ascii=False) if v.lineage else "")
        t.add_row("signer", f"{(v.signer or {}).get('common_name')} — {(v.signer or {}).get('issuer')}")
        if v.sidecar:
            t.add_row("sidecar", str(v.sidecar))
        for f in v.failures:
            t.add_row("[red]failure[/]", f)
        console.print(t)
    if not (v.ok and v.ai_generated):
        raise typer.Exit(1)


@app.command("dev-ca")
@guard
def provenance_dev_ca(folder: Annotated[Path, typer.Argument(help="Where to write the development CA.")]) -> None:
    """Make a DEVELOPMENT CA and signer (for trials and tests only) and print the settings that use it."""
    cfg = make_dev_ca(folder)
    console.print(f"export WANFLOW_C2PA_KEY={cfg.key.resolve()}\nexport WANFLOW_C2PA_CERT_CHAIN={cfg.cert_chain.resolve()}\n"
                  f"export WANFLOW_C2PA_TRUST_ANCHORS={dev_trust_anchor(folder).resolve()}", markup=False)
