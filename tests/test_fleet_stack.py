"""`wanflow stack up|status|down` on loopback: a Prefect server, MLflow on PostgreSQL, a GPU-pool and a CPU-pool
worker and the dashboard come up healthy, with the work pools and GPU slot on the Prefect server; `down`
stops exactly the processes it started."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import psutil
from conftest import PG_ADMIN, ROOT


def _cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", "stack", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_stack_up_status_down(tmp_path):
    from adapters.stack import StackConfig, drop_databases

    server = PG_ADMIN.rsplit("/", 1)[0]
    prefix = f"wanflow_stack_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "stack"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "WANFLOW_"))}
    env["PYTHONPATH"] = str(ROOT)
    common = ["--dir", str(folder)]
    try:
        up = _cli("up", *common, "--pg", server, "--db-prefix", prefix, "--prefect-port", "0", "--mlflow-port", "0",
                  "--dashboard-port", "0", "--json", env=env)
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
        rows = {r["name"]: r for r in json.loads(up.stdout.strip().splitlines()[-1])}
        assert set(rows) == {"prefect-server", "mlflow-server", "dashboard", "gpu-worker-0", "cpu-worker-0"}
        assert all(r["healthy"] for r in rows.values())
        status = _cli("status", *common, "--json", env=env)
        assert status.returncode == 0 and all(r["healthy"] for r in json.loads(status.stdout))
        state = json.loads((folder / "stack.json").read_text())["services"]
        pids = [s["pid"] for s in state]
        stack_env = dict(line.removeprefix("export ").split("=", 1) for line in
                         (folder / "env.sh").read_text().splitlines())
        assert stack_env["WANFLOW_CATALOG_URL"].endswith(f"/{prefix}_catalog")
        probe = subprocess.run(  # the pools and the GPU slot exist on the stack's own Prefect server
            [sys.executable, "-c", "from prefect.client.orchestration import get_client\n"
             "with get_client(sync_client=True) as c:\n"
             " print(sorted(p.name for p in c.read_work_pools()), c.read_global_concurrency_limit_by_name("
             "'wanflow-gpu-0').limit)"],
            env={**env, "PREFECT_API_URL": stack_env["PREFECT_API_URL"], "PREFECT_HOME": str(folder / "prefect")},
            capture_output=True, text=True, timeout=60)
        assert "['cpu', 'gpu'] 1" in probe.stdout, probe.stderr[-2000:]
    finally:
        down = _cli("down", *common, "--json", env=env)
        drop_databases(StackConfig(folder=folder, pg=server, db_prefix=prefix))
    assert down.returncode == 0, down.stderr[-2000:]
    assert all(r["stopped"] for r in json.loads(down.stdout))
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert _cli("status", *common, env=env).returncode == 1  # nothing running any more
