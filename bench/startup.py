"""Start-up of the `wanflow` command: `wanflow --help` and `wanflow validate examples/brief.yaml`.

Each command runs in a fresh process (as a user runs it), ``--repeats`` times after one warm-up (bytecode
compiled, files in the page cache); wall and CPU seconds (user + system, from the child's rusage) are
reported as medians, with the heavy libraries each command imported. ``validate`` runs twice: on a fresh
home (no model registry yet: MLflow is not needed) and on a home whose registry exists (the brief's model
is then checked in MLflow).

    python bench/startup.py --repeats 5        # → bench/results/startup.json, figures in docs/performance.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "diffusers", "transformers", "mlflow", "prefect", "great_expectations", "pandas", "fastapi")
PROBE = ("import sys, json\nsys.argv = {argv!r}\nfrom cli.main import app\ntry:\n    app()\nexcept SystemExit:\n    pass\n"
         "sys.stderr.write('\\nLOADED ' + json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {heavy!r})))")


def run(argv: list[str], home: Path) -> tuple[float, float, list[str]]:
    env = dict(os.environ, WANFLOW_HOME=str(home))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv, heavy=set(HEAVY))], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    loaded = json.loads(out.stderr.rsplit("LOADED ", 1)[-1]) if "LOADED " in out.stderr else ["?"]
    return wall, cpu, loaded


def measure(name: str, argv: list[str], home: Path, repeats: int) -> dict:
    run(argv, home)  # warm-up
    rows = [run(argv, home) for _ in range(repeats)]
    return {"command": name, "wall_s": round(statistics.median(r[0] for r in rows), 3),
            "cpu_s": round(statistics.median(r[1] for r in rows), 3), "heavy_libraries_loaded": rows[-1][2],
            "runs": [(round(w, 3), round(c, 3)) for w, c, _ in rows]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "startup.json")
    args = ap.parse_args()
    brief = str(ROOT / "examples" / "brief.yaml")
    with tempfile.TemporaryDirectory(prefix="wanflow-bench-startup-") as tmp:
        fresh, used = Path(tmp) / "fresh", Path(tmp) / "used"
        rows = [measure("wanflow --help", ["wanflow", "--help"], fresh, args.repeats),
                measure("wanflow validate (fresh home)", ["wanflow", "validate", brief], fresh, args.repeats)]
        subprocess.run([sys.executable, "-m", "cli.main", "models", "list"], cwd=ROOT, capture_output=True,
                       env=dict(os.environ, WANFLOW_HOME=str(used)), check=True)  # creates the registry store
        rows.append(measure("wanflow validate (registry exists)", ["wanflow", "validate", brief], used, args.repeats))
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}",
              "python": platform.python_version(), "repeats": args.repeats, "rows": rows,
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for r in rows:
        print(f"{r['command']:<40} wall {r['wall_s']:6.2f} s   CPU {r['cpu_s']:6.2f} s   heavy: "
              f"{', '.join(r['heavy_libraries_loaded']) or 'none'}")


if __name__ == "__main__":
    main()
