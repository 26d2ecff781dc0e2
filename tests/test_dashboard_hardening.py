"""The dashboard against hostile and unlucky requests, on SQLite and PostgreSQL: parallel wrong sign-ins for one
name (a real uvicorn), ids that are not plain 32-bit numbers, a damaged clip file, an unknown expected stage,
a crafted sign-in error, and an unhandled error that must still close the connection cleanly.
"""

from __future__ import annotations

import http.client
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient
from review_helpers import PASSWORD, Served, make_users, seed_campaign, sign_in
from sqlalchemy import func, select

from catalog.db import open_catalog, session_scope
from catalog.models import Asset, AuditEvent, GenerationJob, ReviewDecision, Role

# "²" passes str.isdigit() and fails int(); "１" and "١" are digits int() reads as 1; the rest overflow a 32-bit
# column (PostgreSQL: integer out of range) or a 64-bit one (SQLite: OverflowError).
BAD_IDS = ["%C2%B2", "%EF%BC%91", "%D9%A1", "-1", str(2**31), str(2**63), str(10**30)]


@pytest.fixture
def dash(settings):
    from dashboard import create_app

    ids = seed_campaign(settings, items=("hero",), variants=2)
    make_users(settings, rita=Role.reviewer, ann=Role.approver)
    return create_app(settings), settings, ids


def _count(settings, action: str, actor: str) -> int:
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        return s.scalar(select(func.count()).select_from(AuditEvent)
                        .where(AuditEvent.action == action, AuditEvent.actor == actor))


# 6. the sign-in throttle is atomic per name


def test_parallel_wrong_sign_ins_check_at_most_the_allowed_passwords(settings):
    import httpx

    from dashboard import create_app

    make_users(settings, rita=Role.reviewer)
    limit, tries = settings.sign_in_max_failures, 20
    with Served(create_app(settings)) as srv, httpx.Client(base_url=srv.url) as warm:
        pre = warm.get("/api/session")
        token, cookie = pre.json()["csrf_token"], pre.cookies["wanflow_login_csrf"]
        barrier = threading.Barrier(tries)

        def attempt(_: int) -> int:
            with httpx.Client(base_url=srv.url, cookies={"wanflow_login_csrf": cookie}, timeout=60) as c:
                barrier.wait()
                return c.post("/api/session", json={"name": "rita", "password": "wrong password"},
                              headers={"X-CSRF-Token": token}).status_code

        with ThreadPoolExecutor(tries) as pool:
            codes = list(pool.map(attempt, range(tries)))
    # Every failure recorded is a password that was checked; the rest were refused without checking.
    assert _count(settings, "user.sign_in_failed", "rita") == limit
    assert sorted(codes) == [401] * limit + [429] * (tries - limit)
    assert _count(settings, "user.sign_in_throttled", "rita") == tries - limit


# 7. ids from the URL or a form are ASCII digits within the column's range


def test_every_id_route_answers_404_or_422_to_ids_that_are_not_plain_32_bit_numbers(dash):
    app, settings, _ = dash
    c = TestClient(app, raise_server_exceptions=False)
    token = sign_in(c, "ann")
    head = {"X-CSRF-Token": token}
    for bad in BAD_IDS:
        requests = [
            ("GET", f"/clips/{bad}", {}), ("GET", f"/api/clips/{bad}", {}),
            ("GET", f"/media/{bad}", {}), ("GET", f"/media/{bad}/frames.png", {}),
            ("POST", f"/clips/{bad}/decision", {"data": {"decision": "approve", "csrf_token": token}}),
            ("POST", f"/clips/{bad}/assignee", {"data": {"assignee": "rita", "csrf_token": token}}),
            ("POST", f"/api/clips/{bad}/decision", {"json": {"decision": "approve"}, "headers": head}),
            ("POST", f"/api/clips/{bad}/assignee", {"json": {"assignee": "rita"}, "headers": head}),
            ("GET", f"/ab/{bad}", {}), ("GET", f"/api/ab/{bad}", {}), ("GET", f"/api/ab/{bad}/next", {}),
            ("POST", f"/ab/{bad}/vote", {"data": {"pair_id": "1", "side": "left", "csrf_token": token}}),
            ("POST", "/ab/1/vote", {"data": {"pair_id": bad, "side": "left", "csrf_token": token}}),
            ("POST", f"/api/ab/pairs/{bad}/vote", {"json": {"side": "left"}, "headers": head}),
        ]
        for method, path, kw in requests:
            r = c.request(method, path, follow_redirects=False, **kw)
            assert r.status_code in (404, 422), (method, path, kw.get("data"), r.status_code)
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        assert s.scalar(select(func.count()).select_from(ReviewDecision)) == 0


@pytest.mark.parametrize("seed", ["²", "１", "١", "-1", str(2**31), str(2**63), str(10**30), " 7", "7_0", "7.0"])
def test_the_seed_form_field_takes_only_ascii_digits_in_range(dash, seed):
    app, settings, ids = dash
    c = TestClient(app, raise_server_exceptions=False)
    token = sign_in(c, "rita")
    r = c.post(f"/clips/{ids[0]}/decision", follow_redirects=False,
               data={"decision": "request_changes", "seed": seed, "csrf_token": token})
    assert r.status_code == 422 and "seed" in r.text, (seed, r.status_code)
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        assert s.scalar(select(func.count()).select_from(GenerationJob)) == 2  # no revision job was made


def test_an_unhandled_error_closes_the_connection_with_connection_close(dash):
    app, _, _ = dash

    @app.get("/api/broken")
    def broken() -> dict:
        raise RuntimeError("a bug")

    with Served(app) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        conn.request("GET", "/api/broken")
        r = conn.getresponse()
        body = r.read()
        assert r.status == 500 and r.getheader("connection") == "close", (r.status, r.getheaders(), body)
        conn.close()


# 8. a damaged clip file


def _audio_only(path: Path) -> None:
    """A valid MP4 with one AAC stream and no video (PyAV: `container.streams.video[0]` is an IndexError)."""
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "audio only"])
def test_a_damaged_clip_gives_a_clear_4xx_frame_strip_and_a_log_line(dash, damage, caplog):
    app, settings, ids = dash
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        path = s.get(Asset, ids[0]).uri
    data = Path(path).read_bytes()
    if damage == "audio only":
        _audio_only(Path(path))
    else:
        Path(path).write_bytes({"garbage": b"this is not a video\n" * 50, "truncated": data[:600],
                                "empty": b""}[damage])
    c = TestClient(app, raise_server_exceptions=False)
    sign_in(c, "rita")
    with caplog.at_level(logging.WARNING):
        r = c.get(f"/media/{ids[0]}/frames.png")
    assert r.status_code == 422 and "cannot be decoded" in r.text, (r.status_code, r.text[:200])
    assert any(f"asset {ids[0]}" in rec.getMessage() and "frame strip" in rec.getMessage() for rec in caplog.records)
    assert c.get(f"/media/{ids[1]}/frames.png").headers["content-type"] == "image/png"  # the others still work


# 9. smaller


def test_an_unknown_expected_stage_is_422_and_the_task_stays_pending(dash):
    app, _, ids = dash
    c = TestClient(app)
    token = sign_in(c, "rita")
    r = c.post(f"/api/clips/{ids[0]}/decision", json={"decision": "approve", "expected_stage": "bogus"},
               headers={"X-CSRF-Token": token})
    assert r.status_code == 422 and "expected_stage" in r.json()["detail"]
    r = c.post(f"/clips/{ids[0]}/decision", data={"decision": "approve", "expected_stage": "bogus",
                                                  "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 422 and "expected_stage" in r.text
    r = c.post(f"/api/clips/{ids[0]}/decision", json={"decision": "approve", "expected_stage": "review"},
               headers={"X-CSRF-Token": token})
    assert r.status_code == 200


def test_the_sign_in_page_shows_only_known_error_codes(dash):
    app, _, _ = dash
    c = TestClient(app)
    r = c.get("/login", params={"error": "Your account is locked: call +1 555 0100 now"})
    assert r.status_code == 200 and "555 0100" not in r.text and 'role="alert"' not in r.text
    r = c.get("/login", params={"error": "wrong"})
    assert r.status_code == 401 and "Wrong name or password" in r.text
    page = c.get("/login").text
    form_token = page.split('name="csrf_token" value="')[1].split('"')[0]
    r = c.post("/login", data={"name": "rita", "password": "wrong password", "csrf_token": form_token})
    assert r.status_code == 401 and "Wrong name or password" in r.text
    form_token = r.text.split('name="csrf_token" value="')[1].split('"')[0]
    assert c.post("/login", data={"name": "rita", "password": PASSWORD, "csrf_token": form_token},
                  follow_redirects=False).status_code == 303
