"""`wanflow review serve --workers 2`, on SQLite and PostgreSQL: two uvicorn processes share the port and
serve one dashboard. Nothing a request needs lives in a process (sessions, queue, decisions and their races
are in the catalog), so any worker answers any request: a reviewer signed in once is recognised on every new
connection, and a decision taken through the server is counted at once on the next queue page.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
from review_helpers import PASSWORD, make_users, seed_campaign
from servers import free_port

from catalog.models import Role

ROOT = Path(__file__).resolve().parent.parent


def _listening(proc: psutil.Process, port: int) -> bool:
    try:
        return any(c.laddr.port == port and c.status == psutil.CONN_LISTEN for c in proc.net_connections())
    except psutil.NoSuchProcess:
        return False


def test_two_worker_processes_serve_one_dashboard(settings):
    assets = seed_campaign(settings)
    make_users(settings, ana=Role.reviewer)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"WANFLOW_HOME": str(settings.home_dir), "WANFLOW_CATALOG_URL": settings.catalog_db_url}
    server = subprocess.Popen([sys.executable, "-m", "cli.main", "review", "serve", "--port", str(port),
                               "--workers", "2"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        workers: list[psutil.Process] = []
        while len(workers) < 2:
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "two workers did not start listening"
            time.sleep(0.2)
            workers = [p for p in psutil.Process(server.pid).children(recursive=True) if _listening(p, port)]
        assert len(workers) == 2 and len({p.pid for p in workers}) == 2

        with httpx.Client(base_url=base, timeout=30) as c:  # one connection: signs in on whichever worker
            pre = c.get("/api/session").json()["csrf_token"]
            r = c.post("/api/session", json={"name": "ana", "password": PASSWORD}, headers={"X-CSRF-Token": pre})
            assert r.status_code == 200, r.text
            cookies, csrf = dict(c.cookies), r.json()["csrf_token"]

        def fresh(method: str, path: str, **kw) -> httpx.Response:  # a new connection each time, any worker
            with httpx.Client(base_url=base, timeout=30, cookies=cookies) as c:
                return c.request(method, path, **kw)

        for _ in range(12):
            r = fresh("GET", "/api/queue")
            assert r.status_code == 200, r.text
            assert r.json()["counts"]["open"] == len(assets)
        page = fresh("GET", "/")
        assert page.status_code == 200 and f'data-asset="{assets[0]}"' in page.text

        r = fresh("POST", f"/api/clips/{assets[0]}/decision", json={"decision": "approve", "expected_stage": "review"},
                  headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200, r.text
        again = fresh("POST", f"/api/clips/{assets[0]}/decision", json={"decision": "approve", "expected_stage": "review"},
                      headers={"X-CSRF-Token": csrf})
        assert again.status_code == 409, again.text
        for _ in range(6):
            counts = fresh("GET", "/api/queue").json()["counts"]
            assert (counts["open"], counts["approved"]) == (len(assets) - 1, 1)
            assert re.search(r'data-status="approved">Approved\s*<span class="count">1</span>', fresh("GET", "/?status=all").text)
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait(10)
