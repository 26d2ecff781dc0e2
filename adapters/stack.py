"""A production-like stack on loopback, from installed packages (no Docker): `wanflow stack up|status|down`.

It starts, each as its own process group, with its log under the stack folder:

- a Prefect server (its database on PostgreSQL when asyncpg is installed, else SQLite in the stack folder);
- an MLflow tracking server whose backend store is PostgreSQL and whose artifacts it serves from an artifact
  root (a folder, or ``s3://…`` on an S3-compatible store with ``MLFLOW_S3_ENDPOINT_URL``);
- Prefect process workers: one per GPU on the ``gpu`` pool (``WANFLOW_GPU_SLOT`` = its card's slot) and
  CPU workers on the ``cpu`` pool;
- the review dashboard.

The catalog is a PostgreSQL database brought to head with the Alembic migrations; the ``gpu``/``cpu`` work
pools and one strict GPU slot (global concurrency limit 1) per GPU worker are created on the Prefect server.
``stack.json`` in the folder records every process (pid, start time, command, URL, log); ``down`` stops exactly
those processes — by process group, checking each pid's start time so that a recycled pid is never signalled —
and ``status`` checks each one's process and health URL. ``env.sh`` holds the variables to use the stack.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import Connection, create_engine, text

from catalog.db import upgrade
from core.files import write_text_atomic
from core.processes import process_alive

STATE = "stack.json"


@dataclass
class Service:
    name: str
    cmd: list[str]
    url: str | None = None  # health check (HTTP 200)
    pid: int | None = None
    started: float | None = None  # process create_time, to recognise our process later
    log: str | None = None
    env: dict[str, str] = field(default_factory=dict)  # what differs from the stack's common environment


@dataclass
class StackConfig:
    folder: Path
    pg: str = "postgresql://postgres@127.0.0.1:5432"  # server (no database): psycopg conninfo URL
    db_prefix: str = "wanflow"
    host: str = "127.0.0.1"
    prefect_port: int = 4200
    mlflow_port: int = 5000
    dashboard_port: int = 8000
    gpu_workers: int = 1
    cpu_workers: int = 1
    artifacts: str | None = None  # MLflow artifact root; default <folder>/mlartifacts
    project_dir: Path = field(default_factory=Path.cwd)

    def db_url(self, name: str, driver: str = "psycopg") -> str:
        return f"postgresql+{driver}://{self.pg.split('://', 1)[1].rstrip('/')}/{self.db_prefix}_{name}"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _server(cfg: StackConfig) -> Iterator[Connection]:
    """An autocommit connection to the server's `postgres` database (CREATE/DROP DATABASE run outside a transaction)."""
    engine = create_engine(f"postgresql+psycopg://{cfg.pg.split('://', 1)[1].rstrip('/')}/postgres",
                           isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def _create_database(cfg: StackConfig, name: str) -> None:
    with _server(cfg) as conn:
        if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": f"{cfg.db_prefix}_{name}"}).first() is None:
            conn.execute(text(f'CREATE DATABASE "{cfg.db_prefix}_{name}"'))


def drop_databases(cfg: StackConfig) -> None:
    with _server(cfg) as conn:
        for name in ("catalog", "mlflow", "prefect"):
            conn.execute(text(f'DROP DATABASE IF EXISTS "{cfg.db_prefix}_{name}" WITH (FORCE)'))


def _prefect_db(cfg: StackConfig) -> str:
    if importlib.util.find_spec("asyncpg") is None:
        return f"sqlite+aiosqlite:///{cfg.folder / 'prefect' / 'prefect.db'}"
    _create_database(cfg, "prefect")
    return cfg.db_url("prefect", "asyncpg")


def environment(cfg: StackConfig) -> dict[str, str]:
    """What a shell (or a process of the stack) sets to use it."""
    return {
        "PREFECT_API_URL": f"http://{cfg.host}:{cfg.prefect_port}/api",
        "WANFLOW_CATALOG_URL": cfg.db_url("catalog"),
        "WANFLOW_MLFLOW_TRACKING_URI": f"http://{cfg.host}:{cfg.mlflow_port}",
        "WANFLOW_HOME": str(cfg.folder / "home"),
        "WANFLOW_PROJECT_DIR": str(cfg.project_dir),
    }


def services(cfg: StackConfig, prefect_db: str) -> list[Service]:
    py = sys.executable
    artifacts = cfg.artifacts or str(cfg.folder / "mlartifacts")
    out = [
        Service("prefect-server", [py, "-m", "prefect", "server", "start", "--host", cfg.host, "--port",
                                   str(cfg.prefect_port)],
                url=f"http://{cfg.host}:{cfg.prefect_port}/api/health",
                env={"PREFECT_API_DATABASE_CONNECTION_URL": prefect_db, "PREFECT_API_URL": ""}),
        Service("mlflow-server", [py, "-m", "mlflow", "server", "--backend-store-uri", cfg.db_url("mlflow"),
                                  "--artifacts-destination", artifacts, "--serve-artifacts", "--host", cfg.host,
                                  "--port", str(cfg.mlflow_port), "--workers", "1"],
                url=f"http://{cfg.host}:{cfg.mlflow_port}/health"),
        Service("dashboard", [py, "-m", "cli.main", "review", "serve", "--host", cfg.host, "--port",
                              str(cfg.dashboard_port)], url=f"http://{cfg.host}:{cfg.dashboard_port}/api/session"),
    ]
    for i in range(cfg.gpu_workers):
        out.append(Service(f"gpu-worker-{i}", [py, "-m", "prefect", "worker", "start", "--pool", "gpu", "--type",
                                               "process", "--name", f"{cfg.db_prefix}-gpu-worker-{i}"],
                           env={"WANFLOW_GPU_SLOT": f"wanflow-gpu-{i}", "CUDA_VISIBLE_DEVICES": str(i)}))
    for i in range(cfg.cpu_workers):
        out.append(Service(f"cpu-worker-{i}", [py, "-m", "prefect", "worker", "start", "--pool", "cpu", "--type",
                                               "process", "--name", f"{cfg.db_prefix}-cpu-worker-{i}"]))
    return out


def _alive(svc: Service) -> bool:
    return process_alive(svc.pid, svc.started)


def _healthy(url: str | None, timeout: float = 2.0) -> bool:
    if url is None:
        return True
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def _start(svc: Service, cfg: StackConfig, env: dict[str, str]) -> None:
    log = cfg.folder / "logs" / f"{svc.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    full = {**env, **svc.env}
    full = {k: v for k, v in full.items() if v != ""}
    with open(log, "ab") as f:
        proc = subprocess.Popen(svc.cmd, cwd=cfg.project_dir, env=full, stdout=f, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)  # its own process group
    svc.pid, svc.log = proc.pid, str(log)
    svc.started = psutil.Process(proc.pid).create_time()


def _save(cfg: StackConfig, svcs: list[Service]) -> None:
    write_text_atomic(cfg.folder / STATE, json.dumps({"config": {k: str(v) for k, v in asdict(cfg).items()},
                                                     "services": [asdict(s) for s in svcs]}, indent=2))


def load(folder: Path) -> list[Service]:
    path = folder / STATE
    if not path.exists():
        return []
    return [Service(**s) for s in json.loads(path.read_text())["services"]]


def _wait(svcs: list[Service], timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    waiting = {s.name: s for s in svcs}
    while waiting and time.monotonic() < deadline:
        for name, s in list(waiting.items()):
            if not _alive(s):
                return [f"{name} exited; see {s.log}"]
            if _healthy(s.url):
                waiting.pop(name)
        time.sleep(0.5)
    return [f"{n} not healthy after {timeout:.0f} s; see {s.log}" for n, s in waiting.items()]


def up(cfg: StackConfig, timeout: float = 180.0) -> list[dict[str, Any]]:
    """Start the stack (refused if one recorded in the folder is still running). Returns its status."""
    if any(_alive(s) for s in load(cfg.folder)):
        raise RuntimeError(f"a stack is already running from {cfg.folder / STATE}: `wanflow stack down` first")
    cfg.folder.mkdir(parents=True, exist_ok=True)
    (cfg.folder / "prefect").mkdir(exist_ok=True)
    for name in ("catalog", "mlflow"):
        _create_database(cfg, name)
    upgrade(cfg.db_url("catalog"))  # the catalog schema (Alembic), before anything uses it
    env = {**os.environ, **environment(cfg), "PREFECT_HOME": str(cfg.folder / "prefect"),
           "PYTHONPATH": str(cfg.project_dir), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
           "PREFECT_LOGGING_LEVEL": "WARNING"}
    svcs = services(cfg, _prefect_db(cfg))
    started: list[Service] = []
    try:
        for s in svcs[:3]:  # servers and dashboard first; workers need the Prefect API and the pools
            _start(s, cfg, env)
            started.append(s)
            _save(cfg, started)
        problems = _wait(started, timeout)
        if problems:
            raise RuntimeError("; ".join(problems))
        _pools_and_slots(cfg)
        for s in svcs[3:]:
            _start(s, cfg, env)
            started.append(s)
            _save(cfg, started)
        problems = _wait(svcs[3:], 30)
        if problems:
            raise RuntimeError("; ".join(problems))
    except BaseException:
        down(cfg.folder)
        raise
    (cfg.folder / "env.sh").write_text("".join(f"export {k}={v}\n" for k, v in environment(cfg).items()))
    return status(cfg.folder)


def _pools_and_slots(cfg: StackConfig) -> None:
    """Work pools and GPU slots on the stack's Prefect server (a child process: this one may have its own API)."""
    code = ("from flows.shard import ensure_pools, ensure_slots, slot_names;"
            f"ensure_pools(); ensure_slots(slot_names({cfg.gpu_workers}))")
    env = {**os.environ, **environment(cfg), "PREFECT_HOME": str(cfg.folder / "prefect"),
           "PYTHONPATH": str(cfg.project_dir)}
    subprocess.run([sys.executable, "-c", code], cwd=cfg.project_dir, env=env, check=True, capture_output=True,
                   timeout=120)


def status(folder: Path) -> list[dict[str, Any]]:
    return [{"name": s.name, "pid": s.pid, "running": _alive(s), "healthy": _alive(s) and _healthy(s.url),
             "url": s.url, "log": s.log} for s in load(folder)]


def _wait_gone(svcs: list[Service], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(s) for s in svcs):
        time.sleep(0.1)


def down(folder: Path, grace: float = 8.0) -> list[dict[str, Any]]:
    """Stop every process the stack started (SIGTERM to its group, SIGKILL after ``grace``), by recorded pid."""
    svcs = load(folder)
    mine = [s for s in svcs if _alive(s)]
    for s in reversed(mine):  # workers first, servers last
        try:
            os.killpg(s.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    _wait_gone(mine, grace)
    for s in mine:
        if _alive(s):
            try:
                os.killpg(s.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    _wait_gone(mine, 5.0)  # a killed process is gone only once the kernel has torn it down
    out = [{"name": s.name, "pid": s.pid, "stopped": not _alive(s)} for s in svcs]
    if (folder / STATE).exists():
        (folder / STATE).rename(folder / "stack.stopped.json")
    return out
