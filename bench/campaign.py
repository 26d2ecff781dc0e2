"""Push N tiny clips through the real campaign flow and report seconds per clip for each stage, and the
orchestration + catalog overhead per clip (Prefect task runs, catalog writes, MLflow run bookkeeping).

The model is the `wan-tiny` stand-in (random weights): figures are for timing the pipeline, not Wan.

    python bench/campaign.py --clips 20 [--catalog-url postgresql+psycopg://postgres@127.0.0.1:5432/bench]

Writes a JSON row under bench/results/ and prints a summary. Two runs of the same campaign are timed:
the first generates every clip; the second finds every job done and generates nothing, so its wall time
per clip is pure orchestration + catalog overhead.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def write_brief(folder: Path, n: int, width: int, height: int, frames: int, steps: int) -> Path:
    (folder / "brands").mkdir(parents=True, exist_ok=True)
    (folder / "brands" / "acme.yaml").write_text((ROOT / "examples/brands/acme.yaml").read_text("utf-8"), "utf-8")
    items = "\n".join(f'  - id: clip-{i:04d}\n    prompt: "Benchmark shot {i}: a red sneaker on a turntable"'
                      for i in range(n))
    brief = folder / f"bench-{n}.yaml"
    brief.write_text(f"""campaign: bench-{n}
brand: acme
model: wan-t2v@champion
defaults: {{num_frames: {frames}, fps: 16, width: {width}, height: {height}, variants: 1, formats: ["16:9"],
           steps: {steps}, guidance: 5.0, seed: 7}}
items:
{items}
""", "utf-8")
    return brief


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=20)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--height", type=int, default=64)
    ap.add_argument("--frames", type=int, default=9)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--catalog-url", default=None, help="default: SQLite in a temporary home")
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="wanflow-bench-"))
    os.environ["WANFLOW_HOME"] = str(home)
    from sqlalchemy import select

    import flows  # noqa: F401 — sets the quiet defaults and the Prefect home
    from catalog.db import open_catalog, session_scope
    from catalog.models import GenerationJob
    from core.settings import Settings
    from flows.campaign import campaign

    settings = Settings(home=home, catalog_url=args.catalog_url)
    warm = write_brief(home / "warm", 1, args.width, args.height, args.frames, args.steps)
    t = time.perf_counter()
    campaign(str(warm), settings)  # registry bootstrap, model build + load, Prefect API start
    warmup_s = time.perf_counter() - t

    brief = write_brief(home / "briefs", args.clips, args.width, args.height, args.frames, args.steps)
    t = time.perf_counter()
    first = campaign(str(brief), settings)
    first_s = time.perf_counter() - t
    t = time.perf_counter()
    second = campaign(str(brief), settings)
    second_s = time.perf_counter() - t
    assert second["clips_generated"] == 0, "re-run regenerated clips"

    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        timings = [j.timings for j in s.scalars(select(GenerationJob).where(GenerationJob.run_id == first["run_id"]))]
    stage = {k: statistics.mean(t.get(k, 0.0) for t in timings) for k in ("load_s", "generate_s", "encode_s", "qc_s")}
    n = args.clips
    serial_work = sum(t.get("load_s", 0) + t.get("generate_s", 0) + t.get("encode_s", 0) for t in timings)
    row = {
        "bench": "campaign", "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores", "python": platform.python_version(),
        "catalog": "postgresql" if args.catalog_url else "sqlite",
        "model": "wan-tiny stand-in (random weights; timing only)",
        "shape": {"width": args.width, "height": args.height, "frames": args.frames, "steps": args.steps},
        "clips": n, "warmup_s": round(warmup_s, 2), "first_run_s": round(first_s, 2), "rerun_s": round(second_s, 2),
        "per_clip_s": {k: round(v, 4) for k, v in stage.items()},
        "overhead_per_clip_s": round((first_s - serial_work) / n, 4),
        "rerun_per_clip_s": round(second_s / n, 4),
    }
    row |= _versions()
    out = ROOT / "bench" / "results" / f"campaign-{row['catalog']}-{n}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(row, indent=2) + "\n")
    print(json.dumps(row, indent=2))
    print(f"\nwritten to {out.relative_to(ROOT)}")


def _versions() -> dict:
    from importlib.metadata import version

    return {"versions": {p: version(p) for p in ("torch", "diffusers", "prefect", "mlflow", "sqlalchemy")}}


if __name__ == "__main__":
    main()
