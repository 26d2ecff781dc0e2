"""The blind A/B round in the review dashboard (SQLite and PostgreSQL): pairs shown left/right without saying
which model is which, votes by form and by API (one per reviewer and pair), the result only for approvers."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from review_helpers import make_users, seed_campaign, sign_in
from sqlalchemy import select

from catalog.db import open_catalog, session_scope
from catalog.models import AbPair, AbVote, AuditEvent, Campaign, Role, RolloutEvaluation
from wan_tasks import rollout


@pytest.fixture
def round_(settings):
    """An evaluation whose champion/challenger clips are real files in the asset store, with its A/B round."""
    from dashboard import create_app

    ids = seed_campaign(settings, name="golden-ab", items=("a", "b", "c"), variants=2)
    make_users(settings, rita=Role.reviewer, alex=Role.approver, vic=Role.viewer)
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        camp = s.scalar(select(Campaign).where(Campaign.name == "golden-ab"))
        ev = RolloutEvaluation(registry_name="wan-t2v", champion_version=1, challenger_version=2, campaign_id=camp.id,
                               golden_path="g.yaml", golden_sha256="0" * 64, metrics={}, gates=[], ab_round=True)
        s.add(ev)
        s.flush()
        for pos, (champ, chall) in enumerate(zip(ids[0::2], ids[1::2])):
            s.add(AbPair(evaluation_id=ev.id, item_key=f"i{pos}", champion_asset_id=champ, challenger_asset_id=chall,
                         left_arm="challenger" if pos % 2 == 0 else "champion", position=pos))
        ev_id = ev.id
    return create_app(settings), settings, ev_id


def test_blind_pairs_votes_and_result_for_approvers_only(round_):
    app, settings, ev_id = round_
    c = TestClient(app)
    assert c.get("/api/ab/1/next").status_code == 401
    token = sign_in(c, "rita")
    page = c.get(f"/ab/{ev_id}")
    assert page.status_code == 200 and "0 of 3 pairs voted" in page.text
    assert "champion" not in page.text.lower() and "challenger" not in page.text.lower()  # blind
    left, right = map(int, re.findall(r'src="/media/(\d+)"', page.text))
    assert c.get(f"/media/{left}").status_code == 200
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        pair = s.scalar(select(AbPair).where(AbPair.position == 0))
        assert (pair.challenger_asset_id, pair.champion_asset_id) == (left, right)  # position 0: challenger left
        pair_id = pair.id
    # a vote through the page's form (CSRF token in the form) — "left" is the challenger here
    r = c.post(f"/ab/{ev_id}/vote", data={"pair_id": pair_id, "side": "left", "csrf_token": token},
               follow_redirects=False)
    assert r.status_code == 303
    assert c.post(f"/ab/{ev_id}/vote", data={"pair_id": pair_id, "side": "left"}).status_code == 403  # no CSRF
    r = c.post(f"/api/ab/pairs/{pair_id}/vote", json={"side": "right"}, headers={"X-CSRF-Token": token})
    assert r.status_code == 409  # one vote per reviewer and pair
    nxt = c.get(f"/api/ab/{ev_id}/next").json()
    assert nxt["voted"] == 1 and nxt["pair"]["pair_id"] != pair_id
    r = c.post(f"/api/ab/pairs/{nxt['pair']['pair_id']}/vote", json={"side": "none"}, headers={"X-CSRF-Token": token})
    assert r.status_code == 200
    assert "preference" not in c.get(f"/api/ab/{ev_id}").json()  # reviewers stay blind to the result
    viewer = TestClient(app)
    vtoken = sign_in(viewer, "vic")
    assert viewer.post(f"/api/ab/pairs/{pair_id}/vote", json={"side": "left"},
                       headers={"X-CSRF-Token": vtoken}).status_code == 403
    approver = TestClient(app)
    sign_in(approver, "alex")
    pref = approver.get(f"/api/ab/{ev_id}").json()["preference"]
    assert (pref["wins"], pref["losses"], pref["ties"], pref["win_rate"]) == (1, 0, 1, 1.0)
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        votes = {v.choice for v in s.scalars(select(AbVote))}
        assert votes == {"challenger", "tie"}
        assert len(s.scalars(select(AuditEvent).where(AuditEvent.action == "rollout.ab_vote")).all()) == 2
        ev = s.get(RolloutEvaluation, ev_id)
        assert rollout.preference(s, ev)["status"] == "run"
