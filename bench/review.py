"""Review dashboard latency with a big queue: queue page and decision p50/p95 over HTTP on loopback.

    python bench/review.py --tasks 10000 [--catalog-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_review]
    python bench/review.py --tasks 10000 --clients 1,10,40 --duration 15 [--workers 2] [--catalog-url ...]

Seeds N pending review tasks (bulk inserts; every clip row points at one real H.264 file in the asset
store), starts `wanflow review serve` as a separate process, signs in, then times with httpx:
the queue page (HTML, first page), the queue filtered (campaign + QC outcome), a deep page, the JSON
queue, a clip page, and decisions (approve/reject through the API, each a real transaction with its
audit event). Writes bench/results/review-<backend>-<N>.json and prints a Markdown table row set.
A PostgreSQL database named in --catalog-url is dropped and created afresh.

With --clients, concurrent reviewers instead: for each client count C, C reviewers (each its own account
and session cookie, one httpx async client each) loop for --duration seconds: open the queue page, pick
one of the first five open clips on it (so reviewers collide on purpose), open its clip page, think
(--think seconds, uniform between 0 and twice that; 0 = back to back; with think time each reviewer also
starts after one such pause), decide it (approve / reject with a
reason, expected_stage=review), think again. Reports p50/p95 of the queue page, clip page and decision per
C, errors (anything but 200 and the expected 409 of a lost race), and checks in the catalog that every
clip decided in the run has exactly one decision and exactly one reviewer got a 200 for it. Writes
bench/results/review-concurrent-<backend>-<workers>w-think<think>s.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "bench password 123"


def fresh_database(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    import psycopg

    base, name = url.replace("+psycopg", "").rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def seed(url: str, assets_dir: Path, n: int, campaigns: int = 10, variants: int = 4) -> None:
    """N clips in review across `campaigns` campaigns (bulk Core inserts), plus a reviewer account."""
    import numpy as np
    from sqlalchemy import insert

    from adapters.media import write_clip
    from catalog.db import open_catalog, session_scope
    from catalog.models import Asset, Brief, Campaign, GenerationJob, ModelVersion, PromptItem, ReviewTask, Role
    from wan_tasks.accounts import add_user

    clip = assets_dir / "clips" / "bench" / "shared.mp4"
    t = np.arange(9)[:, None, None, None]
    info = write_clip(np.broadcast_to((t * 20 + np.arange(64)[None, None, :, None]) % 255, (9, 32, 64, 3))
                      .astype(np.uint8), 16, clip)
    engine = open_catalog(url)
    now = datetime.now(timezone.utc)
    params = {"width": 64, "height": 32, "num_frames": 9, "fps": 16, "steps": 2, "guidance": 5.0}
    with session_scope(engine) as s:
        s.execute(insert(ModelVersion), [{"id": 1, "registry_name": "wan-t2v", "version": 1, "variant": "wan-tiny",
                                          "source": "/bench", "weights_sha256": "0" * 64, "stand_in": True,
                                          "created_at": now}])
        s.execute(insert(Campaign), [{"id": c + 1, "name": f"bench-{c}", "brand": f"brand-{c % 3}", "created_at": now}
                                     for c in range(campaigns)])
        s.execute(insert(Brief), [{"id": c + 1, "campaign_id": c + 1, "path": "/bench/brief.yaml", "sha256": f"{c:064d}",
                                   "model_ref": "wan-t2v@champion", "content": "", "created_at": now}
                                  for c in range(campaigns)])
        items = n // variants
        s.execute(insert(PromptItem), [{"id": i + 1, "brief_id": i % campaigns + 1, "item_key": f"item-{i}",
                                        "source_row": i + 1, "prompt": f"Benchmark shot {i}: a red sneaker on a turntable",
                                        "negative_prompt": "blurry", "locale": "en", "params": params,
                                        "status": "accepted", "created_at": now} for i in range(items)])
        s.execute(insert(GenerationJob), [{"id": j + 1, "idempotency_key": uuid.uuid4().hex,
                                           "campaign_id": (j // variants) % campaigns + 1, "item_id": j // variants + 1,
                                           "model_version_id": 1, "variant_index": j % variants, "seed": j,
                                           "params": params, "status": "done", "attempts": 1, "timings": {},
                                           "created_at": now} for j in range(n)])
        s.execute(insert(Asset), [{"id": j + 1, "kind": "raw_clip", "job_id": j + 1, "uri": str(clip),
                                   "sha256": info.sha256, "size": info.size, "width": 64, "height": 32, "frames": 9,
                                   "fps": 16.0, "status": "in_review", "created_at": now} for j in range(n)])
        s.execute(insert(ReviewTask), [{"id": j + 1, "asset_id": j + 1, "status": "pending", "stage": "review",
                                        "qc_outcome": "findings" if j % 7 == 0 else "passed",
                                        "due_at": now + timedelta(hours=j % 97) if j % 2 else None,
                                        "created_at": now} for j in range(n)])
        add_user(s, "bench-reviewer", Role.reviewer, PASSWORD, "bench")
    if url.startswith("postgresql"):
        with engine.begin() as conn:
            for table in ("model_versions", "campaigns", "briefs", "prompt_items", "generation_jobs", "assets",
                          "review_tasks"):
                conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            conn.exec_driver_sql("ANALYZE")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(xs: list[float]) -> dict[str, float]:
    q = statistics.quantiles(xs, n=100)
    return {"p50_ms": round(statistics.median(xs) * 1000, 1), "p95_ms": round(q[94] * 1000, 1),
            "max_ms": round(max(xs) * 1000, 1), "n": len(xs)}


def measure(base: str, n: int, repeats: int, decisions: int) -> dict[str, dict[str, float]]:
    import httpx

    c = httpx.Client(base_url=base, timeout=30)
    pre = c.get("/api/session").json()["csrf_token"]
    token = c.post("/api/session", json={"name": "bench-reviewer", "password": PASSWORD},
                   headers={"X-CSRF-Token": pre}).json()["csrf_token"]

    def timed(path: str) -> list[float]:
        c.get(path).raise_for_status()  # warm
        out = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            r = c.get(path)
            out.append(time.perf_counter() - t0)
            r.raise_for_status()
        return out

    res = {
        "queue page (HTML, page 1)": _pct(timed("/")),
        "queue page, campaign + QC filter": _pct(timed("/?campaign=bench-3&qc=findings")),
        "queue page, page 100": _pct(timed("/?page=100")),
        "queue JSON (API, page 1)": _pct(timed("/api/queue")),
        "clip page": _pct(timed(f"/clips/{n // 2}")),
    }
    lat = []
    for i in range(decisions):
        asset = n - i
        body = {"decision": "approve"} if i % 2 else {"decision": "reject", "reason_code": "off_brand", "reason": "bench"}
        t0 = time.perf_counter()
        r = c.post(f"/api/clips/{asset}/decision", json=body | {"expected_stage": "review"},
                   headers={"X-CSRF-Token": token})
        lat.append(time.perf_counter() - t0)
        assert r.status_code == 200, r.text
    res["decision (API, with audit event)"] = _pct(lat)
    return res


def add_reviewers(url: str, n: int) -> list[str]:
    from catalog.db import open_catalog, session_scope
    from catalog.models import Role
    from wan_tasks.accounts import add_user

    names = [f"reviewer-{i:02d}" for i in range(n)]
    with session_scope(open_catalog(url)) as s:
        for name in names:
            add_user(s, name, Role.reviewer, PASSWORD, "bench")
    return names


async def _sign_in(base: str, name: str):
    import httpx

    c = httpx.AsyncClient(base_url=base, timeout=30, limits=httpx.Limits(max_connections=1))
    pre = (await c.get("/api/session")).json()["csrf_token"]
    r = await c.post("/api/session", json={"name": name, "password": PASSWORD}, headers={"X-CSRF-Token": pre})
    r.raise_for_status()
    return c, r.json()["csrf_token"]


OPEN_ROW = re.compile(r'<tr data-asset="(\d+)" data-stage="review"\s+data-open="1"')


async def _reviewer(c, token: str, stop: float, think: float, rng: random.Random, out: dict) -> None:
    """One reviewer until ``stop``: queue page → clip page → (think) → decision → (think)."""
    async def timed(kind: str, method: str, path: str, **kw):
        t0 = time.perf_counter()
        try:
            r = await c.request(method, path, **kw)
        except Exception as e:  # noqa: BLE001 - a transport error is an error of the run, not of the bench
            out["errors"].append(f"{kind}: {type(e).__name__}: {e}")
            return None
        out[kind].append(time.perf_counter() - t0)
        if r.status_code != 200 and not (kind == "decision" and r.status_code == 409):
            out["errors"].append(f"{kind}: {r.status_code} {r.text[:200]}")
        return r

    if think:  # reviewers arrive over the first think period, not all in the same millisecond
        await asyncio.sleep(rng.uniform(0, 2 * think))
    while time.perf_counter() < stop:
        r = await timed("queue", "GET", "/")
        open_ids = OPEN_ROW.findall(r.text) if r is not None and r.status_code == 200 else []
        if not open_ids:
            await asyncio.sleep(0.05)
            continue
        asset = int(rng.choice(open_ids[:5]))
        await timed("clip", "GET", f"/clips/{asset}")
        if think:
            await asyncio.sleep(rng.uniform(0, 2 * think))
        body = ({"decision": "approve"} if rng.random() < 0.5 else
                {"decision": "reject", "reason_code": "off_brand", "reason": "bench"})
        r = await timed("decision", "POST", f"/api/clips/{asset}/decision",
                        json=body | {"expected_stage": "review"}, headers={"X-CSRF-Token": token})
        if r is not None and r.status_code in (200, 409):
            out["won" if r.status_code == 200 else "lost"].append(asset)
        if think:
            await asyncio.sleep(rng.uniform(0, 2 * think))


async def _load(base: str, names: list[str], duration: float, think: float, seed: int, on_start) -> dict:
    signed = [await _sign_in(base, name) for name in names]  # one at a time: sign-in is not what is measured
    out: dict[str, list] = {k: [] for k in ("queue", "clip", "decision", "errors", "won", "lost")}
    on_start()
    cpu0, stop = time.process_time(), time.perf_counter() + duration
    try:
        await asyncio.gather(*(_reviewer(c, token, stop, think, random.Random(seed + i), out)
                               for i, (c, token) in enumerate(signed)))
    finally:
        out["client_cpu_share"] = round((time.process_time() - cpu0) / duration, 2)
        for c, _ in signed:
            await c.aclose()
    return out


def check_races(url: str, won: list[int], lost: list[int]) -> dict[str, int]:
    """Every clip a reviewer tried to decide has exactly one decision, and exactly one 200 was answered for it."""
    from sqlalchemy import func, select

    from catalog.db import open_catalog, session_scope
    from catalog.models import ReviewDecision, ReviewTask

    tried = set(won) | set(lost)
    with session_scope(open_catalog(url)) as s:
        decisions = dict(s.execute(select(ReviewTask.asset_id, func.count(ReviewDecision.id))
                                   .join(ReviewDecision, ReviewDecision.task_id == ReviewTask.id)
                                   .where(ReviewTask.asset_id.in_(tried)).group_by(ReviewTask.asset_id)).all())
    wins = {a: won.count(a) for a in tried}
    bad = [a for a in tried if decisions.get(a, 0) != 1 or wins[a] != 1]
    return {"clips_decided": len(tried), "races_lost": len(lost), "contested_clips": len(set(lost)),
            "races_without_exactly_one_winner": len(bad)}


def _cpu_s(pid: int) -> float:
    """CPU seconds used so far by the server process and its children (the uvicorn workers)."""
    import psutil

    procs = [psutil.Process(pid)]
    procs += procs[0].children(recursive=True)
    return sum(t.user + t.system for t in (p.cpu_times() for p in procs))


def concurrent(url: str, base: str, server_pid: int, names: list[str], clients: list[int], duration: float,
               think: float) -> list[dict]:
    rows = []
    for n in clients:
        start = {}
        out = asyncio.run(_load(base, names[:n], duration, think, n,
                                lambda: start.update(load=os.getloadavg()[0], cpu=_cpu_s(server_pid))))
        cpu, load0 = _cpu_s(server_pid) - start["cpu"], start["load"]
        races = check_races(url, out["won"], out["lost"])
        row = {"clients": n, "duration_s": duration, "think_s": think, "load_avg_1m": [round(load0, 2),
                                                                                          round(os.getloadavg()[0], 2)],
               "queue page": _pct(out["queue"]), "clip page": _pct(out["clip"]),
               "decision": _pct(out["decision"]) if len(out["decision"]) > 1 else None,
               "errors": len(out["errors"]), "error_samples": out["errors"][:5], **races,
               "client_cpu_share": out["client_cpu_share"],
               "server_cpu_ms_per_request": round(cpu * 1000 / max(1, len(out["queue"]) + len(out["clip"])
                                                                     + len(out["decision"])), 1)}
        print(f"{n:3d} clients: queue p50 {row['queue page']['p50_ms']} p95 {row['queue page']['p95_ms']} ms "
              f"(n={row['queue page']['n']}), clip p95 {row['clip page']['p95_ms']}, errors {row['errors']}, "
              f"races {races}, server CPU/request {row['server_cpu_ms_per_request']} ms, "
              f"client CPU {out['client_cpu_share']} core, load {row['load_avg_1m']}",
              flush=True)
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--decisions", type=int, default=200)
    ap.add_argument("--catalog-url", default=None)
    ap.add_argument("--clients", default=None, help="Concurrent reviewers, e.g. 1,10,40 (concurrent mode).")
    ap.add_argument("--duration", type=float, default=15.0, help="Seconds per client count (concurrent mode).")
    ap.add_argument("--think", type=float, default=0.0, help="Mean think time of a reviewer, s (concurrent mode).")
    ap.add_argument("--workers", type=int, default=1, help="Dashboard worker processes (`review serve --workers`).")
    args = ap.parse_args()
    clients = [int(x) for x in args.clients.split(",")] if args.clients else []
    home = Path(tempfile.mkdtemp(prefix="wanflow-bench-review-"))
    url = args.catalog_url or f"sqlite:///{home / 'catalog.db'}"
    os.environ["WANFLOW_HOME"] = str(home)
    fresh_database(url)
    from core.settings import Settings

    t0 = time.perf_counter()
    seed(url, Settings(home=home).assets_dir, args.tasks)
    names = add_reviewers(url, max(clients)) if clients else []
    seed_s = time.perf_counter() - t0
    port = _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"WANFLOW_HOME": str(home), "WANFLOW_CATALOG_URL": url}
    server = subprocess.Popen([sys.executable, "-m", "cli.main", "review", "serve", "--port", str(port),
                               *(["--workers", str(args.workers)] if args.workers != 1 else [])], cwd=ROOT,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        import httpx

        for _ in range(200):
            try:
                httpx.get(f"http://127.0.0.1:{port}/login", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        base = f"http://127.0.0.1:{port}"
        if clients:
            results = concurrent(url, base, server.pid, names, clients, args.duration, args.think)
        else:
            results = measure(base, args.tasks, args.repeats, args.decisions)
    finally:
        server.terminate()
        server.wait(10)
    backend = "postgresql" if url.startswith("postgresql") else "sqlite"
    import fastapi
    import sqlalchemy

    row = {"backend": backend, "tasks": args.tasks, "seed_s": round(seed_s, 1), "workers": args.workers,
           "results": results,
           "python": platform.python_version(), "fastapi": fastapi.__version__, "sqlalchemy": sqlalchemy.__version__,
           "machine": f"{platform.machine()}, {os.cpu_count()} cores", "at": datetime.now(timezone.utc).isoformat()}
    name = (f"review-concurrent-{backend}-{args.workers}w-think{args.think:g}s" if clients
            else f"review-{backend}-{args.tasks}")
    out = ROOT / "bench" / "results" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(row, indent=2) + "\n")
    if clients:
        for r in results:
            q = r["queue page"]
            print(f"| {backend} | {args.workers} | {r['clients']} | {q['p50_ms']} | {q['p95_ms']} | {q['n']} | "
                  f"{r['errors']} | {r['clips_decided']} / {r['races_lost']} | {r['load_avg_1m'][1]} |")
        return
    print(f"{backend}, {args.tasks} pending tasks (seeded in {seed_s:.1f} s):")
    for name, r in results.items():
        print(f"| {backend} | {name} | {r['p50_ms']} | {r['p95_ms']} | {r['max_ms']} | {r['n']} |")


if __name__ == "__main__":
    main()
