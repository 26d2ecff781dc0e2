"""`wanflow provenance verify|detect|dev-ca`: read and check C2PA content credentials; find the lineage of any
copy of a published video (credentials → invisible watermark → fingerprint); make a development CA."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from adapters.provenance import dev_trust_anchor, make_dev_ca, verify
from cli.context import InputError, catalog, console, guard, settings
from wan_tasks.detect import detect

DETECT_EXIT = {"credentials": 0, "watermark": 3, "fingerprint": 4, None: 5}

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


@app.command("detect")
@guard
def provenance_detect(
    file: Annotated[Path, typer.Argument(help="Any video file: a published rendition, or a copy found elsewhere.")],
    trust: Annotated[Optional[Path], typer.Option(help="PEM trust anchors (default: WANFLOW_C2PA_TRUST_ANCHORS).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Find where a video came from: its C2PA credentials; else its invisible watermark; else its fingerprint
    against the catalog (similarity and best candidates). Prints the lineage of the match: campaign, prompt,
    model version, approver, publication.

    Exit 0 found by credentials, 3 found by watermark, 4 found by fingerprint, 5 not found,
    2 not a readable video file."""
    if not file.is_file():
        raise InputError([f"{file}:0:file: no such file"])
    cfg = settings()
    try:
        d = detect(catalog(), file, trust or cfg.c2pa_trust_anchors, cfg.watermark_method)
    except ValueError as exc:
        raise InputError([f"{file}:0:file: {exc}"]) from None
    if as_json:
        sys.stdout.write(json.dumps(d.as_dict() | {"exit_code": DETECT_EXIT[d.found_by]}, indent=2,
                                    ensure_ascii=False, default=str) + "\n")
    else:
        console.print(f"[bold]{file}[/]: " + (f"[green]found by {d.found_by}[/]" if d.found_by
                                               else "[yellow]not found[/]: nothing in this catalog matched"))
        for step in d.steps:
            console.print(f"  · {step}", markup=False)
        if d.fingerprint and d.fingerprint["candidates"] and d.found_by != "credentials":
            console.print("  fingerprint candidates: " + ", ".join(
                f"asset {c['rendition_asset_id']} ({c['similarity']})" for c in d.fingerprint["candidates"]),
                markup=False)
        if d.lineage:
            lin = d.lineage
            t = Table(title="Lineage", show_header=False)
            t.add_row("campaign", f"{lin['campaign']} (brand {lin['brand']})")
            t.add_row("item", f"{lin['item']} [{lin['locale']}]")
            t.add_row("prompt", lin["prompt"])
            t.add_row("model version", f"{lin['model_version']} ({lin['model_variant']}"
                                       f"{', stand-in' if lin['stand_in'] else ''}), seed {lin['seed']}, job {lin['job_id']}")
            t.add_row("approver", f"{lin['approver']} at {lin['approved_at']}" if lin["approver"] else "not approved")
            t.add_row("rendition", f"asset {lin['rendition']['asset_id']} {lin['rendition']['preset']}")
            for p in lin["publications"]:
                t.add_row("publication", f"{p['id']} {p['status']} → {p['uri']}")
            t.add_row("watermark payload", lin["watermark_payload"] or "none")
            console.print(t)
    raise typer.Exit(DETECT_EXIT[d.found_by])


@app.command("dev-ca")
@guard
def provenance_dev_ca(folder: Annotated[Path, typer.Argument(help="Where to write the development CA.")]) -> None:
    """Make a DEVELOPMENT CA and signer (for trials and tests only) and print the settings that use it."""
    cfg = make_dev_ca(folder)
    console.print(f"export WANFLOW_C2PA_KEY={cfg.key.resolve()}\nexport WANFLOW_C2PA_CERT_CHAIN={cfg.cert_chain.resolve()}\n"
                  f"export WANFLOW_C2PA_TRUST_ANCHORS={dev_trust_anchor(folder).resolve()}", markup=False)
