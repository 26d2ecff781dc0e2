"""`wanflow models list|register|alias|presets`: the Wan versions in the MLflow registry, their brand pins and
the variants wanflow knows."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from adapters.pipelines import ModelNotFound
from adapters.standins import BUILDERS
from catalog import audit
from catalog.db import session_scope
from cli.context import InputError, catalog, console, guard, settings
from governance.model_refs import parse_ref
from governance.variants import UnknownVariant, preset_for, variants_table
from wan_tasks import rollout
from wan_tasks.intake import registry_for

app = typer.Typer(help="Wan model versions in the MLflow registry.", no_args_is_help=True)


@app.command("list")
@guard
def models_list(
    name: Annotated[Optional[str], typer.Option(help="Only this model (wan-t2v, wan-i2v).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show registered Wan versions with their aliases and tags (variant, licence, sizes, VRAM, digests)."""
    rows = registry_for(settings()).versions(name)
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
        return
    t = Table("model", "ver", "aliases", "variant", "stand-in", "licence", "sizes", "VRAM GB",
              "sha256", "revision", "last eval", title="Wan versions (MLflow registry); `--json` for every tag")
    for r in rows:
        tg = r["tags"]
        vram = tg.get("vram_gb_estimate", "")
        if tg.get("vram_gb_published") not in (None, "none"):
            vram += f" (published {tg['vram_gb_published']})"
        t.add_row(r["model"], str(r["version"]), ", ".join(r["aliases"]), tg.get("variant", ""),
                  tg.get("stand_in", ""), tg.get("licence", ""), tg.get("sizes", ""), vram,
                  tg.get("weights_sha256", "")[:12], tg.get("revision", ""),
                  f"#{tg['last_evaluation']} {tg.get('last_evaluation_verdict', '')}" if tg.get("last_evaluation") else "")
    console.print(t)


@app.command("register")
@guard
def models_register(
    variant: Annotated[str, typer.Argument(help="Wan variant (see `wanflow models presets`), or a stand-in: "
                                                "wan-tiny, wan-tiny-large, wan-tiny-i2v, wan-tiny-ti2v, wan-tiny-moe, wan-tiny-moe-i2v.")],
    source: Annotated[Optional[str], typer.Option(help="Diffusers folder or hub id in the local HF cache. "
                                                       "Stand-ins: omit to build it under WANFLOW_HOME/models.")] = None,
    revision: Annotated[Optional[str], typer.Option(help="Hub revision (commit, tag or branch) of a hub id.")] = None,
    name: Annotated[Optional[str], typer.Option(help="Registry model: wan-t2v or wan-i2v (default: by variant).")] = None,
    alias: Annotated[Optional[str], typer.Option(help="Also point this alias at it (e.g. challenger).")] = None,
    as_user: Annotated[str, typer.Option("--as", help="Who registers (audit log).")] = "admin (cli)",
) -> None:
    """Register weights as a version: a reference (never a copy) with the sha256 of each weight file, the
    variant's default parameters, VRAM, supported sizes and licence. The same weights twice: the same version."""
    if alias == "champion":
        raise InputError(["--alias: `champion` is not set at registration: evaluate it (`wanflow rollout evaluate`) "
                          "and promote it, or `wanflow models alias NAME@champion N --override --reason TEXT`"])
    cfg = settings()
    try:
        preset = preset_for(variant)
    except UnknownVariant as e:
        raise InputError([f"variant: {e}"]) from None
    name = name or {"t2v": "wan-t2v", "i2v": "wan-i2v", "ti2v": "wan-t2v", "vace": "wan-vace"}[preset.task]  # TI2V: either name
    registry = registry_for(cfg)
    registry.ensure_bootstrap(name)  # a fresh store gets its stand-in champion first
    if source is None:
        if variant not in BUILDERS:
            raise InputError([f"--source: required for {variant} (a diffusers folder, or a hub id such as "
                              f"{preset.repo_id}); only stand-ins are built here"])
        cfg.ensure_dirs()
        source = str(BUILDERS[variant](cfg.models_dir / variant, seed=cfg.wan_tiny_seed))
    elif Path(source).expanduser().exists():
        source = str(Path(source).expanduser().resolve())
    try:
        version, created = registry.register_version(name, source, variant, revision=revision)
    except ModelNotFound as e:
        raise InputError([f"--source: {e}"]) from None
    with session_scope(catalog()) as s:
        if created:
            audit.append(s, as_user, "model.registered", "model_version", version,
                         {"model": name, "version": version, "variant": variant, "source": source,
                          "revision": revision, "weights_sha256": registry.resolve(f"{name}/{version}").weights_sha256})
        if alias:
            rollout.pin(s, registry, name, alias, version, as_user, f"set at registration of {name}/{version}")
    label = registry.resolve(f"{name}/{version}").label
    console.print(f"{'registered' if created else 'already registered (same weights)'}: {name}/{version} — {label}"
                  + (f"; {name}@{alias} → {version}" if alias else ""), markup=False, highlight=False)


@app.command("alias")
@guard
def models_alias(
    ref: Annotated[str, typer.Argument(help="NAME@ALIAS, e.g. wan-t2v@acme-champion or wan-t2v@challenger.")],
    version: Annotated[Optional[int], typer.Argument(help="Version to point it at.")] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias.")] = False,
    override: Annotated[bool, typer.Option("--override", help="Set `champion` directly, without an evaluation "
                                                               "(needs --reason; audited as an override).")] = False,
    reason: Annotated[str, typer.Option(help="Why (audit log).")] = "",
    as_user: Annotated[str, typer.Option("--as", help="Who moves it (audit log).")] = "admin (cli)",
) -> None:
    """Set an alias: a brand pin (`<brand>-champion`, which that brand's `@champion` briefs then get) or the
    challenger. Moving `champion` itself is `wanflow rollout promote` (gated)."""
    model, alias, _ = parse_ref(ref)
    if alias is None:
        raise InputError([f"ref: {ref!r} names a version; give NAME@ALIAS"])
    if alias == "champion" and not (override and reason.strip() and not delete):
        raise InputError(["ref: `champion` moves through `wanflow rollout promote` (gates) and `wanflow rollout "
                          "rollback`; to set it without an evaluation (e.g. the first real weights) add "
                          "--override --reason TEXT (audited)"])
    registry = registry_for(settings())
    with session_scope(catalog()) as s:
        if delete:
            before = registry.delete_alias(model, alias)
            audit.append(s, as_user, "model.alias_deleted", "model", None,
                         {"model": model, "alias": alias, "from_version": before, "reason": reason})
            console.print(f"{model}@{alias} removed (was {before})")
            return
        if version is None:
            raise InputError(["version: give the version to point the alias at (or --delete)"])
        rollout.pin(s, registry, model, alias, version, as_user, reason, action="override" if override else "set")
    console.print(f"{model}@{alias} → {model}/{version}")


@app.command("presets")
def models_presets() -> None:
    """The Wan variants wanflow knows, with their published defaults and supported sizes."""
    rows = variants_table()
    t = Table(*rows[0].keys())
    for r in rows:
        t.add_row(*(str(v) for v in r.values()))
    console.print(t)
