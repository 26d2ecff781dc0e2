"""Time a rollout evaluation end to end with the two stand-ins: `wan-tiny` (champion) vs `wan-tiny-large`
(challenger) on examples/golden.yaml (4 prompts × 2 variants per arm), then the same evaluation again
(every clip reused: the orchestration + catalog + MLflow + report cost alone).

The models are stand-ins with random weights: the figures time the *rollout machinery* and say nothing about
Wan 1.3B or 14B.

    python bench/rollout.py [--catalog-url postgresql+psycopg://postgres@127.0.0.1:5432/bench]

Writes a JSON row under bench/results/ and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catalog-url", default=None, help="default: SQLite in a temporary home")
    ap.add_argument("--golden", default=str(ROOT / "examples/golden.yaml"))
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="wanflow-bench-rollout-"))
    os.environ["WANFLOW_HOME"] = str(home)
    if args.catalog_url:
        os.environ["WANFLOW_CATALOG_URL"] = args.catalog_url
    from prefect.testing.utilities import prefect_test_harness

    import flows  # noqa: F401 — sets the quiet defaults and the Prefect home
    from adapters.standins import build_tiny_large_model
    from core.settings import Settings
    from flows.rollout import rollout_evaluate
    from wan_tasks.intake import registry_for

    settings = Settings()
    settings.ensure_dirs()
    t0 = time.perf_counter()
    reg = registry_for(settings)
    reg.ensure_bootstrap("wan-t2v")
    v2 = reg.register("wan-t2v", build_tiny_large_model(settings.models_dir / "wan-tiny-large"), "wan-tiny-large")
    setup_s = time.perf_counter() - t0
    policy = str(ROOT / "examples/rollout-policy.yaml")
    with prefect_test_harness(server_startup_timeout=120):
        t = time.perf_counter()
        first = rollout_evaluate(f"wan-t2v/{v2}", args.golden, policy, ab=True, settings=settings)
        first_s = time.perf_counter() - t
        t = time.perf_counter()
        rollout_evaluate(f"wan-t2v/{v2}", args.golden, policy, settings=settings)
        again_s = time.perf_counter() - t
    m = first["metrics"]
    keys = ("clips", "qc_pass_rate", "seconds_per_clip", "device_seconds_per_clip", "gpu_seconds_per_clip",
            "cost_per_approved_clip", "cost_basis")
    row = {
        "bench": "rollout", "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "catalog": "postgresql" if args.catalog_url else "sqlite",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "versions": {p: version(p) for p in ("torch", "diffusers", "prefect", "mlflow", "sqlalchemy")},
        "golden": str(Path(args.golden).resolve().relative_to(ROOT)) if Path(args.golden).resolve().is_relative_to(ROOT) else args.golden, "gpu_price_per_hour": settings.gpu_price_per_hour,
        "setup_s (bootstrap + build wan-tiny-large + register)": round(setup_s, 2),
        "evaluate_first_s": round(first_s, 2), "evaluate_again_s (nothing generated)": round(again_s, 2),
        "arms": {arm: {k: m[arm][k] for k in keys} for arm in ("champion", "challenger")},
        "labels": first["labels"],
    }
    out = ROOT / "bench" / "results" / f"rollout-{row['catalog']}.json"
    out.write_text(json.dumps(row, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(row, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
