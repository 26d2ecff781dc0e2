"""`wanflow stack up|status|down`: a production-like stack on loopback from installed packages (adapters/stack.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from adapters.stack import StackConfig, down, free_port, status, up
from cli.context import console, guard

app = typer.Typer(help="A production-like stack on 127.0.0.1: Prefect, MLflow on PostgreSQL, workers, dashboard.",
                  no_args_is_help=True)
DEFAULT_DIR = Path(".wanflow/stack")


def _show(rows: list[dict], as_json: bool, keys: tuple[str, ...]) -> None:
    if as_json:
        print(json.dumps(rows))
        return
    t = Table(*keys)
    for r in rows:
        t.add_row(*(str(r.get(k, "")) for k in keys))
    console.print(t)


@app.command("up")
@guard
def stack_up(
    folder: Annotated[Path, typer.Option("--dir", help="Stack folder: pid file, logs, Prefect home.")] = DEFAULT_DIR,
    pg: Annotated[str, typer.Option(help="PostgreSQL server (no database name).")] = "postgresql://postgres@127.0.0.1:5432",
    db_prefix: Annotated[str, typer.Option(help="Databases PREFIX_catalog, PREFIX_mlflow, PREFIX_prefect.")] = "wanflow",
    prefect_port: Annotated[int, typer.Option(help="0: any free port.")] = 4200,
    mlflow_port: Annotated[int, typer.Option(help="0: any free port.")] = 5000,
    dashboard_port: Annotated[int, typer.Option(help="0: any free port.")] = 8000,
    gpu_workers: Annotated[int, typer.Option(min=0, help="Prefect workers on the gpu pool (one per card).")] = 1,
    cpu_workers: Annotated[int, typer.Option(min=0, help="Prefect workers on the cpu pool.")] = 1,
    artifacts: Annotated[Optional[str], typer.Option(help="MLflow artifact root (folder or s3://…).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for health.")] = 180.0,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Start the stack and wait until every service answers; `source DIR/env.sh` to use it."""
    cfg = StackConfig(folder=folder.resolve(), pg=pg, db_prefix=db_prefix,
                      prefect_port=prefect_port or free_port(), mlflow_port=mlflow_port or free_port(),
                      dashboard_port=dashboard_port or free_port(), gpu_workers=gpu_workers,
                      cpu_workers=cpu_workers, artifacts=artifacts)
    _show(up(cfg, timeout), as_json, ("name", "pid", "running", "healthy", "url"))
    if not as_json:
        console.print(f"use it: source {cfg.folder / 'env.sh'}   stop it: wanflow stack down --dir {folder}")


@app.command("status")
@guard
def stack_status(
    folder: Annotated[Path, typer.Option("--dir", help="Stack folder.")] = DEFAULT_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Each service's process and health; exit 1 if one is down or unhealthy (or none was started)."""
    rows = status(folder.resolve())
    _show(rows, as_json, ("name", "pid", "running", "healthy", "url"))
    if not rows or not all(r["healthy"] for r in rows):
        raise typer.Exit(1)


@app.command("down")
@guard
def stack_down(
    folder: Annotated[Path, typer.Option("--dir", help="Stack folder.")] = DEFAULT_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Stop exactly the processes `stack up` started (by the pids it recorded). Databases are kept."""
    _show(down(folder.resolve()), as_json, ("name", "pid", "stopped"))
