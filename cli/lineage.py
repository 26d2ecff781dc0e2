"""`wanflow lineage`: trace a published file back to its brief, or recall everything a model version made
(a top-level command, merged into the root app)."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.tree import Tree

from catalog.db import session_scope
from catalog.lineage import lineage, model_assets
from cli.context import InputError, catalog, console, guard
from governance.model_refs import parse_ref
from governance.qc.registry import judge_line

app = typer.Typer()


@app.command("lineage")
@guard
def lineage_trace(
    ref: Annotated[Optional[str], typer.Argument(help="A published file, or asset:N / publication:N / job:N / N.")] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="Recall: every clip, rendition and publication "
                                                                 "made with a version, e.g. wan-t2v/3.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Trace a published file back to rendition, raw clip, job, model version, prompt, brief, QC and review;
    or, with --model NAME/N, list everything made with that version."""
    if (ref is None) == (model is None):
        raise InputError(["give a file or id to trace, or --model NAME/N to recall a version (not both)"])
    if model is not None:
        return _recall(model, as_json)
    with session_scope(catalog()) as s:
        chain = lineage(s, ref)
    if as_json:
        sys.stdout.write(json.dumps(chain, indent=2, ensure_ascii=False, default=str) + "\n")
    else:
        print_lineage(chain)


def _recall(model: str, as_json: bool) -> None:
    name, alias, version = parse_ref(model)
    if version is None:
        raise InputError([f"--model: {model!r} is an alias; recall needs a fixed version, e.g. {name}/3"])
    with session_scope(catalog()) as s:
        found = model_assets(s, name, version)
    if as_json:
        sys.stdout.write(json.dumps(found, indent=2, ensure_ascii=False, default=str) + "\n")
        return
    mv = found["model_version"]
    console.print(f"[bold]{name}/{version}[/] variant={mv['variant']}{'  (stand-in)' if mv['stand_in'] else ''} "
                  f"weights={mv['weights_sha256'][:16]}…: {len(found['clips'])} clip(s), "
                  f"{len(found['renditions'])} rendition(s)/poster(s)/preview(s), {len(found['publications'])} "
                  "publication(s)")
    print_made_with(found, ("id", "campaign", "job_id", "arm", "status", "uri"))


def print_made_with(found: dict, clip_columns: tuple[str, ...]) -> None:
    """What a model (or a recalled asset) made: its clips, their renditions and their publications, as tables."""
    for title, rows, keys in (("clips", found["clips"], clip_columns),
                              ("renditions", found["renditions"], ("id", "parent_id", "kind", "preset", "uri")),
                              ("publications", found["publications"], ("id", "asset_id", "destination", "status", "uri"))):
        if rows:
            t = Table(*keys, title=title)
            for r in rows:
                t.add_row(*("" if r.get(k) is None else str(r.get(k)) for k in keys))
            console.print(t)


def print_lineage(c: dict) -> None:
    """A lineage chain (:func:`catalog.lineage.lineage`) as a tree, from the published file down to the brief."""

    def fmt(d: dict | None, keys: tuple[str, ...]) -> str:
        return "  ".join(f"{k}={d[k]}" for k in keys if d and d.get(k) is not None)

    root = Tree(f"[bold]{c['query']}[/]")
    node = root
    if c["publication"]:
        node = node.add(f"publication  {fmt(c['publication'], ('id', 'destination', 'uri', 'sha256'))}")
    if c["rendition"]:
        node = node.add(f"{c['rendition']['kind']}  {fmt(c['rendition'], ('id', 'preset', 'aspect', 'width', 'height', 'frames', 'fps', 'sha256'))}")
        prov = c["rendition"].get("provenance") or {}
        if prov:
            label = (prov.get("label") or {}).get("text")
            node.add(f"C2PA {prov.get('status')} ({prov.get('binding')}), signer "
                     f"{(prov.get('signer') or {}).get('common_name')}" + (f", label {label!r}" if label else ""))
    node = node.add(f"raw clip  {fmt(c['raw_clip'], ('id', 'width', 'height', 'frames', 'fps', 'status', 'sha256'))}")
    job = node.add(f"job  {fmt(c['job'], ('id', 'seed', 'status', 'attempts', 'device', 'dtype', 'memory_policy'))}"
                   f"  params={c['job']['params']}")
    if c.get("lora"):
        job.add(f"brand LoRA  {c['lora']['path']}  scale={c['lora']['scale']}  sha256={c['lora']['sha256'][:16]}…"
                + (f"  (high noise; low noise: {c['lora']['low_noise_path']}  "
                   f"sha256={c['lora']['low_noise_sha256'][:16]}…)" if c['lora'].get("low_noise_path") else ""))
    if c.get("speed"):
        sp = c["speed"]
        node_s = job.add(f"speed  {sp['preset']}" + (f"  (chosen by {sp.get('chosen_by')}, "
                                                      f"{'lossless' if sp.get('lossless') else 'quality-trading'}, "
                                                      f"{sp.get('steps')} steps, guidance {sp.get('guidance')})"
                                                      if sp.get("recorded") else "  (not recorded: made before presets)"))
        for fb in sp.get("fallbacks") or []:
            node_s.add(f"fell back: {fb['feature']} → {fb['used']} ({fb['reason']})")
        if sp.get("distill_lora"):
            node_s.add(f"distillation LoRA  {sp['distill_lora']['file']}  sha256={sp['distill_lora']['sha256'][:16]}…")
    if c.get("lora_training"):
        lt = c["lora_training"]
        lv, ds = lt["lora_version"], lt["dataset"]
        node_l = job.add(f"LoRA version  {lv['registry_name']}/{lv['version']}  base={lv['base_registry_name']}/"
                         f"{lv['base_version']}  status={lv['status']}  mlflow run={lv['mlflow_run_id']}")
        node_d = node_l.add(f"dataset  {ds['name']}@{ds['version']}  sha256={ds['sha256'][:16]}…  status={ds['status']}")
        for a in lt["assets"]:
            node_d.add(f"{a['kind']}  {a['filename']}  sha256={a['sha256'][:16]}…  owner={a['owner']}  "
                       f"licence={a['licence']}  expires={a['expires']}  status={a['status']}")
    if c.get("conditioning_image"):
        job.add(f"conditioning image  {c['conditioning_image']['path']}  "
                f"sha256={c['conditioning_image']['sha256'][:16]}…")
    mv = c["model_version"]
    model = job.add(f"model  {mv['registry_name']}/{mv['version']}  variant={mv['variant']}"
                    f"{'  (stand-in: random weights)' if mv['stand_in'] else ''}  weights={mv['weights_sha256'][:16]}…")
    if c.get("experts"):
        e = c["experts"]
        steps = e.get("steps") or {}
        model.add(f"experts  boundary_ratio={e['boundary_ratio']}")
        for name, noise, guidance in (("transformer", "high noise", e.get("guidance")),
                                      ("transformer_2", "low noise", e.get("guidance_2"))):
            model.add(f"{name} ({noise})  weights={e['weights_sha256'].get(name, 'not recorded')}  "
                      f"guidance={guidance}  steps={steps.get(name, 'not run yet')}")
    item = job.add(f"prompt item  {c['prompt_item']['item_key']} (row {c['prompt_item']['source_row']}): "
                   f"{c['prompt_item']['prompt']!r}")
    item.add(f"brief  {c['brief']['path']}  sha256={c['brief']['sha256']}  campaign={c['campaign']['name']}")
    qc = node.add("QC")
    for r in c["qc"]:
        status = "not run" if r["passed"] is None else ("pass" if r["passed"] else "FAIL")
        qc.add(f"{r['check']}: {status}  value={r['value']} threshold={r['threshold']}"
               + (f"  → {r['outcome']}" if r.get("outcome") else "") + f"  judge: {judge_line(r.get('judge'))}")
    rv = node.add("review")
    for d in c["review"] or [{"decision": "none yet", "reviewer": "", "reason": "", "created_at": ""}]:
        rv.add(f"{d['decision']}  by {d['reviewer']}  {d['reason']}  {d['created_at']}")
    if c["run"]:
        node.add(f"run  {fmt(c['run'], ('id', 'flow', 'prefect_flow_run_id', 'mlflow_run_id'))}")
    if c.get("edit"):
        _edit_node(node, c["edit"])
    console.print(root)
    if (c.get("edit") or {}).get("source_lineage"):  # the second chain: the clip this one was edited from
        console.print(f"[bold]source of this edit[/] (asset:{c['edit']['source_asset_id']}):")
        print_lineage(c["edit"]["source_lineage"])


def _edit_node(node: Tree, e: dict) -> None:
    src = e.get("source") or {}
    ed = node.add(f"edit  op={e['op']}  params={e['params']}  model={e.get('model_ref')}")
    if src:
        ed.add(f"source  {src.get('ref')}  asset={e.get('source_asset_id')}  {src.get('path')}  "
               f"sha256={src.get('sha256', '')[:16]}…")
    if e.get("mask"):
        ed.add(f"mask  asset={e['mask'].get('asset_id')}  {e['mask']['path']}  sha256={e['mask']['sha256'][:16]}…")
    for r in e.get("references") or []:
        ed.add(f"reference image  {r['path']}  sha256={r['sha256'][:16]}…")
