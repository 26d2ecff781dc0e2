"""`wanflow qc agreement`: the QC checks against the reviewers, on a seeded history with known answers.

The history is built through the catalog's own API (ORM rows for the clips and their QC results, review tasks
opened by ``open_review``, decisions taken by ``review.decide``, A/B votes cast by ``rollout.record_vote``), on
SQLite and PostgreSQL. Every expected figure below is worked out by hand in the comments.

Campaign ``alpha`` (brand acme, one stage), ten reviewed clips, R = rejected / sent back, A = approved:

    clip  blur (min 40)  flicker (max 6)  QC verdict     decision
    1     10 fail        2 pass           needs_review   R reject quality
    2     20 fail        8 fail           needs_review   R reject quality
    3     30 fail        1 pass           needs_review   A
    4     35 fail        9 fail           needs_review   R reject artifacts
    5     50 pass        7 fail           needs_review   R reject off_brand
    6     60 pass        3 pass           pass           A
    7     70 pass        2 pass           pass           A
    8     80 pass        4 pass           pass           A
    9     90 pass        10 fail          needs_review   R request changes (new seed)
    10    100 pass       not run          pass           A

plus two clips QC blocked (never reviewed) and one still waiting for review. Campaign ``beta`` (brand globex,
two-stage): four clips approved at the review stage, then approved, approved, rejected (legal), approved.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select
from test_cli import wanflow

from catalog.db import open_catalog, session_scope
from catalog.models import (AbPair, Asset, AssetKind, Brief, Campaign, ClipStatus, Decision, GenerationJob,
                            ItemStatus, JobStatus, ModelVersion, PromptItem, QcResult, RolloutEvaluation, utcnow)
from governance.agreement import CheckRecord, Confusion, ReviewedClip, check_agreement, cohen_kappa, suggest_threshold
from wan_tasks.agreement import measure
from wan_tasks.review import decide, open_review, set_policy
from wan_tasks.revisions import Changes
from wan_tasks.rollout import record_vote

PARAMS = {"width": 64, "height": 32, "num_frames": 9, "fps": 16}
ALPHA = [  # blur, flicker (None: not run), verdict, decision, reason code
    (10, 2, "needs_review", Decision.reject, "quality"),
    (20, 8, "needs_review", Decision.reject, "quality"),
    (30, 1, "needs_review", Decision.approve, None),
    (35, 9, "needs_review", Decision.reject, "artifacts"),
    (50, 7, "needs_review", Decision.reject, "off_brand"),
    (60, 3, "pass", Decision.approve, None),
    (70, 2, "pass", Decision.approve, None),
    (80, 4, "pass", Decision.approve, None),
    (90, 10, "needs_review", Decision.request_changes, None),
    (100, None, "pass", Decision.approve, None),
]
BETA = [(50, Decision.approve, None), (60, Decision.approve, None), (70, Decision.reject, "legal"),
        (80, Decision.approve, None)]


def _campaign(s, name: str, brand: str) -> tuple[Campaign, PromptItem, ModelVersion]:
    campaign = Campaign(name=name, brand=brand)
    s.add(campaign)
    s.flush()
    brief = Brief(campaign_id=campaign.id, path=f"/briefs/{name}.yaml", sha256=uuid.uuid4().hex * 2,
                  model_ref="wan-t2v@champion", content="")
    model = s.scalar(select(ModelVersion)) or ModelVersion(registry_name="wan-t2v", version=1, variant="wan-tiny",
                                                           source="/models/unused", weights_sha256="0" * 64)
    s.add_all([brief, model])
    s.flush()
    item = PromptItem(brief_id=brief.id, item_key="shot", source_row=1, prompt="A red sneaker", params=PARAMS,
                      status=ItemStatus.accepted)
    s.add(item)
    s.flush()
    return campaign, item, model


def _clip(s, campaign: Campaign, item: PromptItem, model: ModelVersion, status: ClipStatus,
          results: dict[str, tuple[bool | None, float | None, float]]) -> int:
    job = GenerationJob(idempotency_key=uuid.uuid4().hex, campaign_id=campaign.id, item_id=item.id,
                        model_version_id=model.id, variant_index=0, seed=1, params=PARAMS, status=JobStatus.done)
    s.add(job)
    s.flush()
    asset = Asset(kind=AssetKind.raw_clip, job_id=job.id, uri=f"/assets/{job.id}.mp4", sha256=uuid.uuid4().hex * 2,
                  size=1, width=64, height=32, frames=9, fps=16.0, status=status)
    s.add(asset)
    s.flush()
    for check, (passed, value, threshold) in results.items():
        s.add(QcResult(asset_id=asset.id, check=check, passed=passed, value=value, threshold=threshold))
    return asset.id


@pytest.fixture
def history(catalog_url):
    """The seeded history; returns the engine and the time between alpha's fifth and sixth decision."""
    engine = open_catalog(catalog_url)
    with session_scope(engine) as s:
        alpha, item, model = _campaign(s, "alpha", "acme")
        ids = []
        for blur, flicker, verdict, _, _ in ALPHA:
            results = {"blur": (blur >= 40, blur, 40.0),
                       "flicker": (None, None, None) if flicker is None else (flicker <= 6, flicker, 6.0)}
            ids.append(_clip(s, alpha, item, model, ClipStatus.in_review, results))
            open_review(s, ids[-1], verdict)
        for _ in range(2):  # blocked by QC: never reviewed
            _clip(s, alpha, item, model, ClipStatus.qc_failed, {"blur": (False, 1.0, 40.0)})
        waiting = _clip(s, alpha, item, model, ClipStatus.in_review, {"blur": (False, 5.0, 40.0)})
        open_review(s, waiting, "needs_review")
        beta, bitem, _ = _campaign(s, "beta", "globex")
        set_policy(s, "globex", True, "test")
        beta_ids = []
        for blur, _, _ in BETA:
            beta_ids.append(_clip(s, beta, bitem, model, ClipStatus.in_review, {"blur": (True, blur, 30.0)}))
            open_review(s, beta_ids[-1], "pass")
        evaluation = RolloutEvaluation(registry_name="wan-t2v", champion_version=1, challenger_version=2,
                                       campaign_id=alpha.id, golden_path="/golden.yaml", golden_sha256="0" * 64,
                                       ab_round=True)
        s.add(evaluation)
        s.flush()
        pairs = []
        for i in range(4):
            pairs.append(AbPair(evaluation_id=evaluation.id, item_key=f"g{i}", champion_asset_id=ids[i],
                                challenger_asset_id=ids[i + 4], left_arm="champion", position=i))
        s.add_all(pairs)
        s.flush()
        pair_ids = [p.id for p in pairs]
    with session_scope(engine) as s:
        for (i, (_, _, _, decision, code)) in enumerate(ALPHA[:5]):
            decide(s, ids[i], decision, "" if code is None else "seen", "rev-a", reason_code=code)
    middle = utcnow()
    with session_scope(engine) as s:
        for i, (_, _, _, decision, code) in enumerate(ALPHA[5:], start=5):
            decide(s, ids[i], decision, "", "rev-b", reason_code=code,
                   changes=Changes(seed=99) if decision == Decision.request_changes else None)
        for aid, (_, decision, code) in zip(beta_ids, BETA):
            decide(s, aid, Decision.approve, "", "rev-1")
            decide(s, aid, decision, "seen" if code else "", "approver-1", reason_code=code)
        # left is champion: left → champion, right → challenger, none → tie
        for pair, votes in zip(pair_ids, [{"x": "left", "y": "left"}, {"x": "right", "y": "left", "z": "right"},
                                          {"x": "none", "y": "none"}, {"x": "left"}]):
            for reviewer, side in votes.items():
                record_vote(s, pair, side, reviewer)
    return engine, middle


def by_check(result: dict) -> dict[str, dict]:
    return {c["check"]: c for c in result["checks"]}


def test_alpha_against_hand_computed_figures(history) -> None:
    engine, _ = history
    with session_scope(engine) as s:
        r = measure(s, "alpha")
    assert (r["clips_reviewed"], r["approved"], r["rejected"], r["blocked_unreviewed"]) == (10, 5, 5, 2)
    assert r["decisions"] == {"reject": 4, "approve": 5, "request_changes": 1}
    assert r["reasons"] == {"quality": 2, "artifacts": 1, "off_brand": 1, "changes_requested": 1}
    c = by_check(r)
    assert list(c) == ["qc_verdict", "flicker", "blur"]  # the verdict, then the registry's order
    # blur flags 1-4; rejected 1,2,4,5,9 → TP 3 (1,2,4), FP 1 (3), FN 2 (5,9), TN 4 (6,7,8,10)
    # p_o = 7/10, p_e = .4*.5 + .6*.5 = .5 → kappa = .2/.5 = .4
    blur = c["blur"]
    assert (blur["tp"], blur["fp"], blur["fn"], blur["tn"], blur["not_run"]) == (3, 1, 2, 4, 0)
    assert (blur["precision"], blur["recall"], blur["specificity"], blur["kappa"]) == (0.75, 0.6, 0.8, 0.4)
    assert blur["reasons_caught"] == {"quality": 2, "artifacts": 1}
    assert blur["reasons_missed"] == {"off_brand": 1, "changes_requested": 1}
    # flicker ran on 1-9 and flags 2,4,5,9 → TP 4, FP 0, FN 1 (1), TN 4 (3,6,7,8)
    # p_o = 8/9, p_e = (4/9)(5/9) + (5/9)(4/9) = 40/81 → kappa = (72-40)/(81-40) = 32/41
    fl = c["flicker"]
    assert (fl["tp"], fl["fp"], fl["fn"], fl["tn"], fl["not_run"], fl["n"]) == (4, 0, 1, 4, 1, 9)
    assert (fl["precision"], fl["recall"], fl["specificity"]) == (1.0, 0.8, 1.0)
    assert fl["kappa"] == round(32 / 41, 4)
    # the verdict flags 1,2,3,4,5,9 → TP 5, FP 1, FN 0, TN 4; p_o = .9, p_e = .6*.5 + .4*.5 = .5 → kappa .8
    v = c["qc_verdict"]
    assert (v["tp"], v["fp"], v["fn"], v["tn"], v["precision"], v["recall"], v["kappa"]) == (5, 1, 0, 4, 0.8333,
                                                                                             1.0, 0.8)


def test_threshold_suggestions(history) -> None:
    """blur (fails below min_sharpness): at 40 it flags 10-35 (kappa .4); at 60 it would flag 10-50: TP 4
    (10,20,35,50), FP 1 (30), FN 1 (90), TN 4 → p_o .8, p_e .5, kappa .6, the best of every observed value.
    flicker (fails above max_deviation): 6 flags 7-10, kappa 32/41; 4 flags the same clips: a tie, so the
    current 6 stays. Suggestions only: the recorded thresholds are unchanged."""
    engine, _ = history
    with session_scope(engine) as s:
        c = by_check(measure(s, "alpha"))
    [blur] = c["blur"]["suggestions"]
    assert (blur["brand"], blur["parameter"], blur["current"], blur["suggested"]) == ("acme", "min_sharpness", 40, 60)
    assert (blur["kappa_current"], blur["kappa_suggested"]) == (0.4, 0.6)
    assert (blur["at_suggested"]["tp"], blur["at_suggested"]["fp"], blur["at_suggested"]["fn"]) == (4, 1, 1)
    [fl] = c["flicker"]["suggestions"]
    assert (fl["suggested"], fl["kappa_suggested"], fl["kappa_current"]) == (6, round(32 / 41, 4), round(32 / 41, 4))
    assert c["qc_verdict"]["suggestions"] == []
    with session_scope(engine) as s:
        assert {r.threshold for r in s.scalars(select(QcResult).where(QcResult.check == "blur"))} == {40.0, 30.0}


def test_whole_history_two_stages_and_ab_votes(history) -> None:
    """Every campaign: beta's four blur results all passed and the approver rejected the third (70) → blur gains
    FN 1, TN 3. globex's suggestion (min 30 flags none, kappa 0): 80 flags 50,60,70 → TP 1, FP 2, TN 1, p_o .5,
    p_e .375, kappa .2, the best. Two stages: 3 of 4 approvals confirmed; kappa does not apply.
    A/B (pair 4 has one vote, left out): x·y on pairs 1-3 chose (champ, chall, tie) vs (champ, champ, tie):
    p_o 2/3, p_e (1·2 + 1·0 + 1·1)/9 = 1/3 → kappa .5; x·z agree on pair 2 alone (p_e 1: no kappa); y·z disagree
    on it (kappa 0). Voter pairs agreeing: 1 + 1 (of 3) + 1 = 3 of 5."""
    engine, _ = history
    with session_scope(engine) as s:
        r = measure(s)
    assert (r["clips_reviewed"], r["approved"], r["rejected"]) == (14, 8, 6)
    blur = by_check(r)["blur"]
    assert (blur["tp"], blur["fp"], blur["fn"], blur["tn"]) == (3, 1, 3, 7)
    globex = next(x for x in blur["suggestions"] if x["brand"] == "globex")
    assert (globex["current"], globex["suggested"], globex["kappa_current"], globex["kappa_suggested"]) == (
        30, 80, 0.0, 0.2)
    st = r["stages"]
    assert (st["clips"], st["agreed"], st["agreement"], st["kappa"]) == (4, 3, 0.75, None)
    assert st["second_stage"] == {"approve": 3, "reject": 1} and "kappa does not apply" in st["kappa_note"]
    ab = r["ab_votes"]
    assert (ab["pairs_with_two_votes"], ab["votes"], ab["agreement"], ab["reviewers"]) == (3, 7, 0.6, ["x", "y", "z"])
    got = {tuple(p["reviewers"]): (p["pairs"], p["agreed"], p["kappa"]) for p in ab["by_reviewers"]}
    assert got == {("x", "y"): (3, 2, 0.5), ("x", "z"): (1, 1, None), ("y", "z"): (1, 0, 0.0)}


def test_since_and_campaign_scope(history) -> None:
    """Since the middle: alpha's clips 6-10 only (1 rejected: 9); the two-stage and A/B figures all came after."""
    engine, middle = history
    with session_scope(engine) as s:
        r = measure(s, "alpha", middle)
        assert (r["clips_reviewed"], r["rejected"]) == (5, 1)
        assert by_check(r)["blur"]["tp"] == 0 and by_check(r)["blur"]["fn"] == 1
        assert measure(s, "beta")["ab_votes"] is None and measure(s, "alpha")["stages"] is None
        assert measure(s, "alpha", datetime.now(timezone.utc) + timedelta(days=1))["clips_reviewed"] == 0
        with pytest.raises(LookupError, match="unknown campaign 'gamma'"):
            measure(s, "gamma")


def test_statistics_agree_with_scikit_learn() -> None:
    """The hand-written kappa against scikit-learn's, where it is installed (it is not a dependency)."""
    metrics = pytest.importorskip("sklearn.metrics")
    a = ["x", "y", "x", "z", "x", "y", "y", "z", "z", "x"]
    b = ["x", "y", "y", "z", "x", "x", "y", "z", "x", "x"]
    assert cohen_kappa(a, b) == round(metrics.cohen_kappa_score(a, b), 4)
    flags, rejects = [True, True, False, False, True, False], [True, False, False, True, True, False]
    assert Confusion.of(flags, rejects).kappa == round(metrics.cohen_kappa_score(flags, rejects), 4)
    assert cohen_kappa([1, 1], [1, 1]) is None and cohen_kappa([], []) is None
    assert suggest_threshold([1.0, 2.0], [False, False], "max", 1.5) is None  # no rejection: nothing to match


def test_suggestions_use_only_results_the_threshold_decided() -> None:
    """dynamic_degree passes a still clip whose prompt asks for no motion: that value says nothing about its
    threshold, so clip 1 (0.0, passed) is left out. Clips 2-4 (0.1 rejected, 0.5 and 0.9 approved; fails below
    the threshold): 0.25 and 0.5 both flag exactly the rejected clip (kappa 1), and the tie keeps the current
    0.25. Counted, clip 1 would have made 0.25 flag an approved clip: p_o 3/4, p_e 1/2, kappa 0.5."""
    def clip(i: int, value: float, passed: bool, rejected: bool) -> ReviewedClip:
        return ReviewedClip(i, "c", "acme", rejected, "reject" if rejected else "approve", None, utcnow(), "pass",
                            {"dynamic_degree": CheckRecord(passed, value, 0.25)})

    clips = [clip(1, 0.0, True, False), clip(2, 0.1, False, True), clip(3, 0.5, True, False), clip(4, 0.9, True, False)]
    [s] = check_agreement("dynamic_degree", clips)["suggestions"]
    assert (s["n"], s["suggested"], s["kappa_suggested"], s["kappa_current"]) == (3, 0.25, 1.0, 1.0)


def test_cli_report_and_mlflow(history, catalog_url, tmp_path) -> None:
    """The command as a user runs it: JSON figures, the HTML report with its plots, the MLflow run."""
    home = tmp_path / "home"
    r = wanflow("qc", "agreement", "--campaign", "alpha", "--since", "2000-01-01", "--json", home=home,
                WANFLOW_CATALOG_URL=catalog_url)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert by_check(out)["blur"]["kappa"] == 0.4 and out["since"].startswith("2000-01-01")
    page = Path(out["report"]).read_text("utf-8")
    assert page.count("data:image/png;base64,") == 3  # the overview and blur's and flicker's thresholds
    assert "min_sharpness 40.00 → <b>60</b>" in page and "suggestions only" in page
    from adapters.tracking import mlflow_client
    client = mlflow_client(f"sqlite:///{home / 'mlflow.db'}")
    run = client.get_run(out["mlflow_run_id"])
    assert run.data.metrics["blur.kappa"] == 0.4 and run.data.tags["wanflow.kind"] == "qc-agreement"
    assert [a.path for a in client.list_artifacts(out["mlflow_run_id"])] == [out["report"].rsplit("/", 1)[1]]
    table = wanflow("qc", "agreement", home=home, WANFLOW_CATALOG_URL=catalog_url)
    assert table.returncode == 0 and "the approver confirmed 3 of 4 approvals" in table.stdout, table.stderr
    assert "suggestions only" in table.stdout
    bad = wanflow("qc", "agreement", "--campaign", "gamma", home=home, WANFLOW_CATALOG_URL=catalog_url)
    assert bad.returncode == 2 and "unknown campaign 'gamma'" in bad.stderr and "Traceback" not in bad.stderr
    date = wanflow("qc", "agreement", "--since", "yesterday", home=home, WANFLOW_CATALOG_URL=catalog_url)
    assert date.returncode == 2 and "--since" in date.stderr and "Traceback" not in date.stderr
