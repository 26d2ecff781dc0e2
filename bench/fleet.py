"""The fleet's own cost, with generation simulated (no GPU here):

1. Orchestration + catalog overhead per clip at N = 100 and N = 1000 jobs: a GPU worker (wan_tasks/worker.py)
   claims shards with a lease, holds a real strict Prefect global concurrency limit per shard (a throwaway
   Prefect server), renews its lease, records each job under its claim token and writes its metrics — with a
   generation that takes no time. Everything measured is overhead. Target ≤ 50 ms/clip, growing linearly.
2. GPU busy fraction over a 20-clip campaign: generation simulated as a fixed sleep per clip inside the slot
   (the card is busy, the CPU free); each clip is then encoded with real ffmpeg, hashed and recorded under the
   claim on the worker's recording thread, outside the slot (as ``generate.record_jobs`` is); QC (every technical
   check) and a transcode to the 1280×720 H.264 rendition run in QC processes of their own at a lower priority
   (``--qc-nice``), overlapping the next generation. GPU busy fraction = simulated generation time / the GPU
   worker's span (first claim to last clip recorded). Target ≥ 95 %. Also reported: the same over the wall time
   until the last QC and transcode finished (the CPU's tail, which is a matter of CPU capacity: the cores
   needed per GPU to keep pace = QC + transcode seconds per clip / generation seconds per clip).

    python bench/fleet.py [--catalog-url postgresql+psycopg://postgres@127.0.0.1:5432/bench] [--gen-s 2.0] [--qc-nice 10]

Writes bench/results/fleet-<dialect>.json and prints the figures.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("WANFLOW_HOME", tempfile.mkdtemp(prefix="wanflow-bench-fleet-"))
import flows  # noqa: E402, F401 — sets the quiet defaults and the Prefect home


def seed_jobs(engine, n: int, campaign: str, width: int = 128, height: int = 64, frames: int = 9) -> list[int]:
    """n pending jobs of one campaign, written directly (no brief, no model needed)."""
    from catalog.db import session_scope
    from catalog.models import Brief, Campaign, GenerationJob, ItemStatus, ModelVersion, PromptItem

    params = {"width": width, "height": height, "num_frames": frames, "fps": 16, "steps": 4, "guidance": 5.0}
    with session_scope(engine) as s:
        c = Campaign(name=campaign, brand="acme")
        s.add(c)
        s.flush()
        b = Brief(campaign_id=c.id, path=str(ROOT / "examples/brief.yaml"), sha256="0" * 64, model_ref="bench",
                  content="{}")
        mv = ModelVersion(registry_name=f"bench-{campaign}", version=1, variant="wan-tiny", source="/nowhere",
                          weights_sha256="0" * 64, stand_in=True)
        s.add_all([b, mv])
        s.flush()
        items = [PromptItem(brief_id=b.id, item_key=f"i{i}", source_row=i + 1, prompt=f"shot {i}", params=params,
                            status=ItemStatus.accepted) for i in range(n)]
        s.add_all(items)
        s.flush()
        jobs = [GenerationJob(idempotency_key=f"{campaign}-{i}", campaign_id=c.id, item_id=it.id,
                              model_version_id=mv.id, variant_index=0, seed=i, params=params)
                for i, it in enumerate(items)]
        s.add_all(jobs)
        s.flush()
        return [j.id for j in jobs]


def simulated(gen_s: float, write: bool):
    """Stand-ins for (generate.start_jobs, generate.record_jobs): `gen_s` of "GPU" per clip making frames in
    memory, then each clip encoded, hashed and recorded under the claim (on the worker's recording thread)."""
    import hashlib

    import numpy as np

    from adapters import media
    from catalog import claims
    from catalog.db import session_scope
    from catalog.models import Asset, AssetKind, GenerationJob

    def start_jobs(engine, job_ids, assets_dir, opts, on_step=None, claim=None):  # noqa: ANN001
        made = []
        for job_id in job_ids:
            if gen_s:
                time.sleep(gen_s)
            frames = np.random.default_rng(job_id).integers(0, 255, (9, 64, 128, 3), dtype=np.uint8) if write else None
            made.append((job_id, frames, assets_dir / "bench" / f"job-{job_id}.mp4"))
        return {"claim": claim, "made": made}

    def record_jobs(engine, g):  # noqa: ANN001
        out = []
        for job_id, frames, dest in g["made"]:
            if write:
                info = media.write_clip(frames, 16, dest)
                sha, size = info.sha256, info.size
            else:
                sha, size = hashlib.sha256(str(job_id).encode()).hexdigest(), 0
            with session_scope(engine) as s:
                claims.finish(s, job_id, g["claim"])
                asset = Asset(kind=AssetKind.raw_clip, job_id=job_id, uri=str(dest), sha256=sha, size=size,
                              width=128, height=64, frames=9, fps=16.0)
                s.add(asset)
                s.get(GenerationJob, job_id).device = "simulated"
                s.flush()
                out.append(asset.id)
        return out

    return start_jobs, record_jobs


def worker(engine, settings, campaign: str, slot: str, stages, on_clips=None):  # noqa: ANN001
    from flows.shard import gpu_slot
    from wan_tasks.worker import WorkerConfig, run_worker

    cfg = WorkerConfig(worker=f"bench-{campaign}", slot=slot, shard_size=settings.shard_size, lease_s=60,
                       campaign=campaign, poll_s=0.1)
    return run_worker(engine, settings.assets_dir, settings.engine_options, cfg, gpu_slot(slot, settings),
                      on_clips=on_clips, stages=stages)


def overhead(engine, settings, n: int, slot: str) -> dict:
    campaign = f"overhead-{n}-{int(time.time() * 1000)}"
    seed_jobs(engine, n, campaign)
    t = time.perf_counter()
    report = worker(engine, settings, campaign, slot, simulated(0.0, write=False))
    wall = time.perf_counter() - t
    assert report.clips == n, report.as_dict()
    return {"n": n, "shards": report.shards, "wall_s": round(wall, 3), "ms_per_clip": round(1000 * wall / n, 2)}


def _qc_and_transcode(path: str, preset_name: str) -> float:
    """One clip's CPU stages, in a QC process: every technical check, then the 1280×720 rendition."""
    from adapters.encode import render_video
    from governance.delivery import DeliveryPolicy
    from governance.renditions import load_presets
    from wan_tasks.quality import evaluate

    t = time.perf_counter()
    results, _ = evaluate(Path(path))
    assert results
    preset = next(p for p in load_presets().video if p.name == preset_name)
    render_video(Path(path), Path(path).with_name(Path(path).stem + "-720p.mp4"), preset, DeliveryPolicy())
    return time.perf_counter() - t


def _qc_process(niceness: int) -> None:
    os.nice(niceness)  # the GPU host's CPU stages yield to its GPU worker (docs/performance.md)


def busy_fraction(engine, settings, clips: int, gen_s: float, slot: str, qc_nice: int = 10) -> dict:
    """The GPU worker makes ``clips`` clips of ``gen_s`` each; every recorded clip goes to QC + transcode at once,
    in QC processes of their own (as a CPU work pool's are) at ``qc_nice`` below the worker."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from catalog.db import session_scope
    from catalog.models import Asset
    from governance.renditions import load_presets

    preset = next(p for p in load_presets().video if p.width == 1280)
    campaign = f"busy-{clips}-{int(time.time() * 1000)}"
    seed_jobs(engine, clips, campaign)
    cores = os.cpu_count() or 2
    pool = ProcessPoolExecutor(max_workers=cores, mp_context=get_context("spawn"), initializer=_qc_process,
                               initargs=(qc_nice,))
    for f in [pool.submit(os.getpid) for _ in range(cores)]:  # every QC process started before the clock
        f.result()
    futures = []

    def on_clips(asset_ids: list[int]) -> None:
        with session_scope(engine) as s:
            paths = [s.get(Asset, a).uri for a in asset_ids]
        futures.extend(pool.submit(_qc_and_transcode, p, preset.name) for p in paths)

    t = time.perf_counter()
    report = worker(engine, settings, campaign, slot, simulated(gen_s, write=True), on_clips)
    cpu_s = [f.result() for f in futures]
    wall = time.perf_counter() - t
    pool.shutdown()
    qc_s = sum(cpu_s) / len(cpu_s)
    return {"clips": clips, "gen_s_per_clip": gen_s, "qc_nice": qc_nice, "wall_s": round(wall, 3),
            "worker_span_s": round(report.elapsed_s, 3),
            "gpu_busy_fraction": round(clips * gen_s / report.elapsed_s, 4),
            "gpu_busy_fraction_until_last_qc": round(clips * gen_s / wall, 4),
            "slot_held_fraction_worker": round(report.gpu_busy_fraction, 4),
            "qc_transcode_s_per_clip": round(qc_s, 3),
            "cpu_cores_to_keep_pace": round(qc_s / gen_s, 2),
            "tail_after_worker_s": round(wall - report.elapsed_s, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catalog-url", default=None)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--clips", type=int, default=20)
    ap.add_argument("--gen-s", type=float, default=2.0)
    ap.add_argument("--skip-busy", action="store_true")
    ap.add_argument("--qc-nice", type=int, default=10, help="niceness of the QC processes (0: as the worker)")
    args = ap.parse_args()

    from importlib.metadata import version

    from prefect.testing.utilities import prefect_test_harness

    from catalog.db import open_catalog
    from core.settings import Settings
    from flows.shard import ensure_slots

    settings = Settings(catalog_url=args.catalog_url)
    settings.ensure_dirs()
    engine = open_catalog(settings.catalog_db_url)
    slot = "bench-gpu-0"
    with prefect_test_harness(server_startup_timeout=600):
        ensure_slots([slot])
        seed_jobs(engine, 4, "warm-up")  # imports, first connections, first slot lease
        worker(engine, settings, "warm-up", slot, simulated(0.0, False))
        rows = [overhead(engine, settings, n, slot) for n in args.sizes]
        busy = None if args.skip_busy else busy_fraction(engine, settings, args.clips, args.gen_s, slot, args.qc_nice)
    growth = rows[-1]["ms_per_clip"] / rows[0]["ms_per_clip"] if len(rows) > 1 else None
    out = {"bench": "fleet", "dialect": engine.dialect.name, "shard_size": settings.shard_size,
           "overhead": rows, "per_clip_growth_last_vs_first": round(growth, 3) if growth else None,
           "busy": busy, "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                     "python": platform.python_version()},
           "versions": {p: version(p) for p in ("prefect", "sqlalchemy", "psycopg")},
           "command": "python bench/fleet.py " + " ".join(sys.argv[1:]),
           "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    suffix = "" if args.gen_s == 2.0 else f"-gen{args.gen_s:g}s"
    dest = ROOT / "bench" / "results" / f"fleet-{engine.dialect.name}{suffix}.json"
    dest.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
