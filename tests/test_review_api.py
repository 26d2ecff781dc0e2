"""The dashboard's HTTP surface on SQLite and PostgreSQL: sign-in, CSRF, roles, two-stage approval, the 409
conflict (also with two real concurrent requests), media by asset id only (ranges; paths → 404), queue filters.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from review_helpers import PASSWORD, make_users, seed_campaign, sign_in
from sqlalchemy import func, select, update

from catalog.db import open_catalog, session_scope
from catalog.models import (Asset, AssetKind, AuditEvent, Campaign, ClipStatus, ReviewDecision, ReviewTask, Role,
                            WebSession, utcnow)
from wan_tasks.review import publishable_campaign, set_due_hours, set_policy


@pytest.fixture
def dash(settings):
    from dashboard import create_app

    ids = seed_campaign(settings)
    make_users(settings, rita=Role.reviewer, rob=Role.reviewer, alex=Role.approver, ann=Role.approver,
               vic=Role.viewer, ada=Role.admin)
    return create_app(settings), settings, ids


def _decide(client, token, asset_id, **body):
    return client.post(f"/api/clips/{asset_id}/decision", json=body, headers={"X-CSRF-Token": token})


def _events(settings, action: str) -> list[AuditEvent]:
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def test_anonymous_is_sent_to_sign_in(dash):
    app, _, ids = dash
    c = TestClient(app)
    for path in ("/", f"/clips/{ids[0]}", f"/media/{ids[0]}"):
        r = c.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path
    for path in ("/api/queue", f"/api/clips/{ids[0]}"):
        r = c.get(path)
        assert (r.status_code, r.json()) == (401, {"detail": "sign-in required"})
    r = c.post(f"/api/clips/{ids[0]}/decision", json={"decision": "approve"})
    assert r.status_code == 401
    assert c.get("/api/openapi.json").json()["paths"]["/api/clips/{ref}/decision"]["post"]


def test_sign_in_cookie_csrf_and_sign_out(dash):
    app, settings, ids = dash
    c = TestClient(app)
    pre = c.get("/api/session").json()["csrf_token"]
    creds = {"name": "rita", "password": PASSWORD}
    assert c.post("/api/session", json=creds).status_code == 403  # no CSRF token
    assert c.post("/api/session", json=creds, headers={"X-CSRF-Token": "forged"}).status_code == 403
    r = c.post("/api/session", json=creds | {"password": "wrong password"}, headers={"X-CSRF-Token": pre})
    assert (r.status_code, r.json()["detail"]) == (401, "wrong name or password")
    r = c.post("/api/session", json=creds, headers={"X-CSRF-Token": pre})
    assert r.status_code == 200 and r.json()["role"] == "reviewer"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("wanflow_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    token = r.json()["csrf_token"]
    # Every state-changing request needs the session's CSRF token: header (API) or form field (pages).
    for bad in ({}, {"X-CSRF-Token": "forged"}, {"X-CSRF-Token": pre}):
        r = c.post(f"/api/clips/{ids[0]}/decision", json={"decision": "approve"}, headers=bad)
        assert (r.status_code, r.json()["detail"]) == (403, "missing or invalid CSRF token")
    r = c.post(f"/clips/{ids[0]}/decision", data={"decision": "approve"}, follow_redirects=False)
    assert r.status_code == 403
    assert c.delete("/api/session").status_code == 403
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        assert s.get(Asset, ids[0]).status == ClipStatus.in_review
    assert [e.actor for e in _events(settings, "user.sign_in_failed")] == ["rita"]
    assert [e.actor for e in _events(settings, "user.signed_in")] == ["rita"]
    # Sign-out deletes the session on the server: the old cookie no longer works.
    old = c.cookies.get("wanflow_session")
    assert c.delete("/api/session", headers={"X-CSRF-Token": token}).status_code == 204
    replay = TestClient(app, cookies={"wanflow_session": old})
    assert replay.get("/api/queue").status_code == 401
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        assert s.scalar(select(func.count()).select_from(WebSession)) == 0


def test_repeated_failed_sign_ins_pause_that_name_only(dash):
    _, settings, _ = dash
    from dashboard import create_app

    window_s = 2.0
    app = create_app(settings.model_copy(update={"sign_in_max_failures": 3, "sign_in_window_minutes": window_s / 60}))
    c = TestClient(app)
    pre = c.get("/api/session").json()["csrf_token"]
    head = {"X-CSRF-Token": pre}
    for _ in range(3):
        r = c.post("/api/session", json={"name": "rita", "password": "wrong password"}, headers=head)
        assert r.status_code == 401
    # Now even the right password is refused, without being checked, until the window has passed.
    r = c.post("/api/session", json={"name": "rita", "password": PASSWORD}, headers=head)
    assert r.status_code == 429 and "too many failed sign-ins" in r.json()["detail"]
    assert 1 <= int(r.headers["Retry-After"]) <= window_s
    assert "wanflow_session" not in c.cookies
    page = c.get("/login").text
    form_token = page.split('name="csrf_token" value="')[1].split('"')[0]
    r = c.post("/login", data={"name": "rita", "password": PASSWORD, "csrf_token": form_token}, follow_redirects=False)
    assert r.status_code == 429 and "try again in 1 minute" in r.text
    throttled = _events(settings, "user.sign_in_throttled")
    assert [e.actor for e in throttled] == ["rita", "rita"] and throttled[0].payload["failures"] == 3
    # Another name is not affected.
    other = TestClient(app)
    other_pre = other.get("/api/session").json()["csrf_token"]
    r = other.post("/api/session", json={"name": "rob", "password": PASSWORD}, headers={"X-CSRF-Token": other_pre})
    assert r.status_code == 200
    time.sleep(window_s + 0.2)
    head = {"X-CSRF-Token": c.get("/api/session").json()["csrf_token"]}  # the form page set a new one
    r = c.post("/api/session", json={"name": "rita", "password": PASSWORD}, headers=head)
    assert r.status_code == 200 and r.json()["user"] == "rita"


def test_login_form_needs_its_csrf_token(dash):
    app, _, _ = dash
    c = TestClient(app)
    r = c.post("/login", data={"name": "rita", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 403
    page = c.get("/login").text
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    r = c.post("/login", data={"name": "rita", "password": PASSWORD, "csrf_token": token, "next": "//evil.example"},
               follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"  # no open redirect
    assert c.get("/").status_code == 200


def test_viewer_cannot_decide_and_reviewer_cannot_give_final_approval(dash):
    app, settings, ids = dash
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        set_policy(s, "acme", True, "test-setup")
    viewer, reviewer, reviewer2, approver = TestClient(app), TestClient(app), TestClient(app), TestClient(app)
    tv, tr, tr2, ta = sign_in(viewer, "vic"), sign_in(reviewer, "rita"), sign_in(reviewer2, "rob"), sign_in(approver, "ann")
    r = _decide(viewer, tv, ids[0], decision="approve")
    assert (r.status_code, r.json()["detail"]) == (403, "your role does not allow this")
    assert viewer.post(f"/clips/{ids[0]}/decision", data={"decision": "approve", "csrf_token": tv}).status_code == 403

    r = _decide(reviewer, tr, ids[0], decision="approve", expected_stage="review")
    assert r.status_code == 200 and r.json()["state"]["stage"] == "approval" and r.json()["state"]["status"] == "pending"
    r = _decide(reviewer2, tr2, ids[0], decision="approve", expected_stage="approval")
    assert r.status_code == 403 and "needs an approver" in r.json()["detail"]
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        assert s.get(Asset, ids[0]).status == ClipStatus.in_review
        assert publishable_campaign(s, ids[0]) is None  # half-approved: no publish event yet

    # Four eyes: an approver who approved at the review stage cannot also give the final approval.
    assert _decide(approver, ta, ids[1], decision="approve", expected_stage="review").status_code == 200
    r = _decide(approver, ta, ids[1], decision="approve", expected_stage="approval")
    assert r.status_code == 403 and "needs someone else" in r.json()["detail"]

    alex = TestClient(app)
    r = _decide(alex, sign_in(alex, "alex"), ids[0], decision="approve", expected_stage="approval")
    assert r.status_code == 200 and r.json()["state"]["clip_status"] == "approved"
    assert [d["reviewer"] for d in r.json()["state"]["decisions"]] == ["rita", "alex"]
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        campaign = s.scalar(select(Campaign.name))
        assert publishable_campaign(s, ids[0]) == campaign  # what the dashboard announces to Prefect


def test_reject_needs_a_reason_and_records_it(dash):
    app, settings, ids = dash
    c = TestClient(app)
    t = sign_in(c, "rita")
    assert _decide(c, t, ids[0], decision="reject").status_code == 422
    assert _decide(c, t, ids[0], decision="reject", reason_code="other").status_code == 422
    assert _decide(c, t, ids[0], decision="reject", reason_code="nonsense", reason="x").status_code == 422
    r = _decide(c, t, ids[0], decision="reject", reason_code="off_brand", reason="logo is green")
    assert r.status_code == 200
    assert r.json()["state"]["decisions"][0]["reason"] == "Off-brand (colours, logo, tone): logo is green"
    assert [e.payload["reason_code"] for e in _events(settings, "review.reject")] == ["off_brand"]


def test_two_deciders_at_once_record_exactly_one_decision(dash):
    app, settings, ids = dash
    a, b = TestClient(app), TestClient(app)
    ta, tb = sign_in(a, "rita"), sign_in(b, "alex")
    barrier, results = threading.Barrier(2), {}

    def go(name, client, token, decision, reason):
        barrier.wait()
        results[name] = _decide(client, token, ids[0], decision=decision, reason=reason, expected_stage="review")

    threads = [threading.Thread(target=go, args=("a", a, ta, "approve", "")),
               threading.Thread(target=go, args=("b", b, tb, "reject", "wrong colour"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    codes = sorted(r.status_code for r in results.values())
    assert codes == [200, 409], {k: (v.status_code, v.text) for k, v in results.items()}
    loser = next(r for r in results.values() if r.status_code == 409).json()
    assert loser["detail"] == f"asset {ids[0]} was already decided"
    assert loser["state"]["status"] == "decided" and len(loser["state"]["decisions"]) == 1
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        assert s.scalar(select(func.count()).select_from(ReviewDecision)) == 1
    # The page answers a late decision with 409 and the fresh state.
    r = b.post(f"/clips/{ids[0]}/decision", data={"decision": "approve", "csrf_token": tb, "expected_stage": "review"})
    assert r.status_code == 409 and "Someone else decided first" in r.text


BAD_REFS = ["..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "1%2F..%2F..%2Fcatalog.db", "-1", "1.0",
            "%2e%2e%2fcatalog.db", "99999"]
RAW_PATHS = ["/media/../../etc/passwd", "/media/1/../../catalog.db", "/media//etc/passwd", "/api/clips/../1",
             "/clips/..", "/media/1/frames.png/../../x"]  # as `curl --path-as-is` sends them


def _raw_get(app, path: str, cookie: str) -> int:
    """GET with the path exactly as given (HTTP clients normalise `..` away before sending)."""
    import asyncio

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"testserver"), (b"cookie", f"wanflow_session={cookie}".encode())],
             "client": ("127.0.0.1", 1), "server": ("testserver", 80)}
    status: list[int] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            status.append(message["status"])

    asyncio.run(app(scope, receive, send))
    return status[0]


def test_media_only_by_asset_id_from_the_asset_store_with_ranges(dash, tmp_path):
    app, settings, ids = dash
    c = TestClient(app)
    sign_in(c, "vic")
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        path = s.get(Asset, ids[0]).uri
        outside = tmp_path / "secret.mp4"
        outside.write_bytes(b"not for the dashboard")
        stray = Asset(kind=AssetKind.raw_clip, uri=str(outside), sha256="1" * 64, size=1, width=1, height=1)
        sneaky = Asset(kind=AssetKind.raw_clip, uri=str(settings.assets_dir / ".." / ".." / "secret.mp4"),
                       sha256="2" * 64, size=1, width=1, height=1)
        s.add_all([stray, sneaky])
        s.flush()
        stray_ids = [stray.id, sneaky.id]
    data = open(path, "rb").read()
    r = c.get(f"/media/{ids[0]}")
    assert r.status_code == 200 and r.content == data and r.headers["content-type"] == "video/mp4"
    r = c.get(f"/media/{ids[0]}", headers={"Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == data[100:200]
    assert r.headers["content-range"] == f"bytes 100-199/{len(data)}"
    assert c.get(f"/media/{ids[0]}/frames.png").headers["content-type"] == "image/png"
    assert c.get(f"/media/{ids[0]}?path=/etc/passwd").content == data  # a path parameter is never read
    for ref in BAD_REFS + [str(i) for i in stray_ids]:
        for prefix in ("/media/", "/clips/", "/api/clips/"):
            r = c.get(prefix + ref)
            assert r.status_code == 404, (prefix + ref, r.status_code)
    for path in RAW_PATHS:
        assert _raw_get(app, path, c.cookies.get("wanflow_session")) == 404, path
    assert c.get("/static/../catalog/db.py").status_code == 404


def test_queue_filters_due_dates_pages_and_counts(dash):
    app, settings, ids = dash
    other = seed_campaign(settings, name="other-camp", brand="globex", items=("solo",), variants=1)
    engine = open_catalog(settings.catalog_db_url)
    with session_scope(engine) as s:
        assert set_due_hours(s, "dash-test", 24, "test") == 4
        s.execute(update(ReviewTask).where(ReviewTask.asset_id == ids[3])
                  .values(created_at=utcnow() - timedelta(days=3)))
        set_due_hours(s, "dash-test", 24, "test")  # recomputed: ids[3] is now overdue
        # The tiny clips' real QC verdicts vary (flicker, instability): pin them to test the filter itself.
        s.execute(update(ReviewTask).values(qc_outcome="pass"))
        s.execute(update(ReviewTask).where(ReviewTask.asset_id == ids[1]).values(qc_outcome="needs_review"))
    c = TestClient(app)
    t = sign_in(c, "rita")
    assert c.post(f"/api/clips/{ids[2]}/assignee", json={"assignee": "rita"}, headers={"X-CSRF-Token": t}).status_code == 200
    _decide(c, t, ids[0], decision="approve")
    q = c.get("/api/queue").json()
    assert q["counts"] == {"to_review": 4, "to_approve": 0, "approved": 1, "rejected": 0, "changes_requested": 0,
                           "open": 4}
    assert [i["asset_id"] for i in q["items"]] == [ids[3], ids[1], ids[2], other[0]]  # due first, no due date last
    assert [i["overdue"] for i in q["items"]] == [True, False, False, False]
    assert [i["asset_id"] for i in c.get("/api/queue?brand=globex").json()["items"]] == other
    assert [i["asset_id"] for i in c.get("/api/queue?campaign=dash-test&qc=needs_review").json()["items"]] == [ids[1]]
    assert [i["asset_id"] for i in c.get("/api/queue?assignee=rita").json()["items"]] == [ids[2]]
    assert len(c.get("/api/queue?assignee=unassigned").json()["items"]) == 3
    assert [i["asset_id"] for i in c.get("/api/queue?status=approved").json()["items"]] == [ids[0]]
    p2 = c.get("/api/queue?per_page=3&page=2").json()
    assert (p2["total"], p2["pages"], [i["asset_id"] for i in p2["items"]]) == (4, 2, [other[0]])
    assert c.get("/api/queue?status=bogus").status_code == 422
    page = c.get("/?campaign=dash-test").text
    assert "overdue" in page and 'data-asset="%d"' % ids[3] in page and "other-camp</td>" not in page
