"""`wanflow personalize dataset add|train|revoke`: a brand's training set as a governed dataset, a brand LoRA trained
on it (a Prefect flow), and the recall of everything a withdrawn asset touched."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import select

from adapters.training import TrainConfig
from adapters.training_media import write_demo_dataset
from catalog.db import session_scope
from catalog.lineage import lineage
from catalog.models import Campaign, GenerationJob
from cli.campaign import print_summary, run_campaign
from cli.context import catalog, console, guard, prefect_flows, settings
from cli.lineage import print_lineage, print_made_with
from governance.datasets import Rules
from wan_tasks import personalize

DEMO_BRIEF = Path("examples/lora-brief.yaml")
app = typer.Typer(help="Brand LoRAs: governed training datasets, training, recall.", no_args_is_help=True)
dataset_app = typer.Typer(help="Training datasets (immutable versions, with the rights of every asset).",
                          no_args_is_help=True)
app.add_typer(dataset_app, name="dataset")


def _out(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


@dataset_app.command("add")
@guard
def dataset_add(
    name: Annotated[str, typer.Argument(help="Dataset (brand) name, e.g. acme-style.")],
    source: Annotated[Path, typer.Argument(help="A folder holding dataset.csv, or the CSV itself (columns: file, "
                                                "caption, owner, licence, expires, allowed_use).")],
    min_side: Annotated[int, typer.Option(help="Smallest short side accepted, in pixels.")] = Rules.min_side,
    min_frames: Annotated[int, typer.Option(help="Fewest frames a clip may have (what training needs).")] = Rules.min_frames,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Validate a training set (exit 2 with file:row:field for every problem, nothing written) and record it as a new
    immutable dataset version; the same content again gives back its version."""
    added = personalize.add_dataset(settings(), name, source, Rules(min_side=min_side, min_frames=min_frames,
                                                                    today=dt.date.today()))
    if as_json:
        return _out(asdict(added))
    what = "new version" if added.created else "unchanged: already"
    console.print(f"dataset [bold]{added.name}@{added.version}[/] ({what}): {added.assets} asset(s), "
                  f"{added.new_assets} new, sha256 {added.sha256[:16]}…")


@app.command("train")
@guard
def train(
    name: Annotated[str, typer.Argument(help="The LoRA's (brand's) name: registered as lora-<name>.")],
    dataset: Annotated[str, typer.Option(help="Dataset version, e.g. acme-style@3 (or @latest).")],
    base: Annotated[str, typer.Option(help="Base model version or alias.")] = "wan-t2v@champion",
    rank: Annotated[int, typer.Option(help="LoRA rank.")] = TrainConfig.rank,
    steps: Annotated[int, typer.Option(help="Optimizer steps.")] = TrainConfig.steps,
    lr: Annotated[float, typer.Option(help="Learning rate (AdamW).")] = TrainConfig.lr,
    seed: Annotated[int, typer.Option(help="Seed of the data order, noise and timesteps.")] = TrainConfig.seed,
    width: Annotated[int, typer.Option(help="Training width (pixels).")] = TrainConfig.width,
    height: Annotated[int, typer.Option(help="Training height (pixels).")] = TrainConfig.height,
    frames: Annotated[int, typer.Option(help="Frames per clip (4k+1); images train as one frame.")] = TrainConfig.frames,
    shift: Annotated[float, typer.Option(help="Timestep shift of the sampled noise levels.")] = TrainConfig.shift,
    checkpoint_every: Annotated[int, typer.Option(help="Checkpoint every N steps.")] = TrainConfig.checkpoint_every,
    validate_every: Annotated[int, typer.Option(help="Validation samples every M steps (0: at the end).")] = 0,
    processes: Annotated[int, typer.Option(help="Processes (GPUs) through accelerate launch.")] = 1,
    accelerate_config: Annotated[Optional[Path], typer.Option(help="accelerate config file (DDP, FSDP).")] = None,
    alias: Annotated[Optional[str], typer.Option(help="Alias for the new version (default: champion for the "
                                                      "first, else challenger).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Train a brand LoRA on a dataset version (the `personalize-train` flow), track it in MLflow and register it.
    The same command after a crash or kill resumes from the last checkpoint."""
    cfg = TrainConfig(rank=rank, steps=steps, lr=lr, seed=seed, width=width, height=height, frames=frames, shift=shift,
                      checkpoint_every=checkpoint_every, validate_every=validate_every, device=device)
    flows = prefect_flows()
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total} steps"),
                  TimeElapsedColumn(), console=console, transient=as_json) as bar:
        flows.progress.install(bar)
        try:
            result = flows.personalize.personalize_train(name, dataset, base, asdict(cfg), processes,
                                                         str(accelerate_config) if accelerate_config else None,
                                                         alias, settings())
        finally:
            flows.progress.install(None)
    if as_json:
        return _out(result)
    t = Table(title=f"{result['lora']}" + ("  (stand-in base: random weights)" if result["stand_in"] else ""),
              show_header=False)
    for k in ("alias", "dataset", "base", "loss_first", "loss_last", "resumed_from", "step_time_s_median",
              "mlflow_run_id", "run_dir", "contact_sheet"):
        t.add_row(k, str(result[k]))
    console.print(t)


@app.command("revoke")
@guard
def revoke(
    asset: Annotated[str, typer.Argument(help="The withdrawn asset: its sha256 (or 8+ hex prefix), training-asset:N "
                                              "or file name.")],
    reason: Annotated[str, typer.Option(help="Why (a licence ended, consent withdrawn); recorded and audited.")],
    actor: Annotated[str, typer.Option(help="Who recalls it (audit trail).")] = "cli",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Recall an asset: it, every dataset version holding it and every LoRA version trained on them are marked
    recalled (no new job may use those LoRAs); lists every clip, rendition and publication made with them."""
    found = personalize.revoke(settings(), asset, reason, actor)
    if as_json:
        return _out(found)
    a = found["asset"]
    console.print(f"[bold]recalled[/] asset {a['sha256'][:16]}… ({a['filename']}, owner {a['owner']}): {reason}")
    console.print(f"dataset versions: {', '.join(found['datasets']) or 'none'}")
    console.print(f"LoRA versions: {', '.join(found['loras']) or 'none'}")
    console.print(f"made with them: {len(found['clips'])} clip(s), {len(found['renditions'])} rendition(s)/poster(s)/"
                  f"preview(s), {len(found['publications'])} publication(s)")
    print_made_with(found, ("id", "campaign", "job_id", "status", "uri"))


@app.command("demo")
@guard
def demo(
    steps: Annotated[int, typer.Option(help="Training steps.")] = 40,
    brief: Annotated[Path, typer.Option(help="The brief that uses the LoRA.")] = DEMO_BRIEF,
) -> None:
    """On the stand-in: add a tiny demo brand set, train a LoRA on it (about a minute on a CPU), register it as
    lora-acme-demo, then run one item with `lora: acme-demo@champion` and show its lineage. A stand-in result."""
    cfg = settings()
    cfg.ensure_dirs()
    added = personalize.add_dataset(cfg, "acme-demo", write_demo_dataset(cfg.home_dir / "demo-dataset"))
    console.print(f"[bold]stand-in demo[/]: dataset acme-demo@{added.version} ({added.assets} swatches made here, "
                  "not real brand footage); base wan-t2v@champion is the random-weights stand-in")
    flows = prefect_flows()
    start = time.monotonic()
    train_cfg = TrainConfig(rank=8, steps=steps, lr=2e-3, checkpoint_every=max(1, steps // 2), validate_every=0)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total} steps"),
                  TimeElapsedColumn(), console=console) as bar:
        flows.progress.install(bar)
        try:
            result = flows.personalize.personalize_train("acme-demo", f"acme-demo@{added.version}", "wan-t2v@champion",
                                                         asdict(train_cfg), settings=cfg)
        finally:
            flows.progress.install(None)
    console.print(f"trained {result['lora']} (alias {result['alias']}) in {time.monotonic() - start:.0f} s: loss "
                  f"{result['loss_first']:.3f} → {result['loss_last']:.3f}  [stand-in result: random-weights base]")
    summary = run_campaign(brief, cfg)
    print_summary(summary)
    with session_scope(catalog()) as s:
        job = s.scalar(select(GenerationJob).join(Campaign, Campaign.id == GenerationJob.campaign_id)
                       .where(Campaign.name == summary["campaign"]).order_by(GenerationJob.id))
        chain = lineage(s, f"job:{job.id}")
    print_lineage(chain)
