"""Model governance and the rollout: registration (no duplicate, per-file digests), alias resolution frozen at
plan time, canary routing, gates on constructed results, promotion refused/overridden (audited), rollback,
recall of a version's assets, and the evaluation flow end to end with the two tiny stand-ins.

Catalog tests run on SQLite and PostgreSQL; the registry is the real MLflow store (SQLite) in each test's home;
the models are the real diffusers stand-ins (wan-tiny, wan-tiny-large)."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import pytest
from conftest import EXAMPLES
from sqlalchemy import func, select

from catalog import audit
from catalog.db import open_catalog, session_scope
from catalog.models import (AbPair, AliasMove, Asset, AssetKind, AuditEvent, Brief, Campaign, ClipStatus, GenerationJob,
                            ModelVersion, PromptItem, Publication, RolloutEvaluation)
from wan_tasks import rollout
from wan_tasks.rollout import RolloutError, evaluate_gates, load_policy, wilson_interval

POLICY = EXAMPLES / "rollout-policy.yaml"


@pytest.fixture(scope="session")
def tiny_large_model(tmp_path_factory) -> Path:
    from adapters.standins import build_tiny_large_model

    return build_tiny_large_model(tmp_path_factory.mktemp("models") / "wan-tiny-large")


@pytest.fixture
def rsettings(settings, tiny_model, tiny_large_model):
    """Settings whose model cache already holds both stand-ins (built once per session, never downloaded)."""
    settings = settings.model_copy(update={"brands_dir": EXAMPLES / "brands"})
    settings.ensure_dirs()
    for src, name in ((tiny_model, "wan-tiny"), (tiny_large_model, "wan-tiny-large")):
        if not (settings.models_dir / name).exists():
            shutil.copytree(src, settings.models_dir / name)
    return settings


def _registry(settings):
    from wan_tasks.intake import registry_for

    reg = registry_for(settings)
    reg.ensure_bootstrap("wan-t2v")  # wan-t2v/1 = wan-tiny, @champion
    v2 = reg.register("wan-t2v", settings.models_dir / "wan-tiny-large", "wan-tiny-large")
    return reg, v2


def _brief(tmp_path: Path, name: str, items: int, variants: int = 1, extra: str = "", model: str = "wan-t2v@champion",
           prompt: str = "A red sneaker on a white pedestal") -> Path:
    rows = "\n".join(f'  - {{id: item-{i}, prompt: "{prompt} {i}"}}' for i in range(items))
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"""campaign: {name}
brand: acme
model: {model}
{extra}
defaults: {{num_frames: 5, fps: 8, width: 64, height: 32, variants: {variants}, formats: ["16:9"], steps: 2, seed: 7}}
items:
{rows}
""", "utf-8")
    return path


# --- registration (MLflow registry) -----------------------------------------------------------------------

def test_register_same_weights_twice_is_one_version_with_file_digests(rsettings):
    from wan_tasks.intake import registry_for

    reg = registry_for(rsettings)
    folder = rsettings.models_dir / "wan-tiny-large"
    v, created = reg.register_version("wan-t2v", folder, "wan-tiny-large")
    again, created_again = reg.register_version("wan-t2v", str(folder), "wan-tiny-large")
    assert created and not created_again and again == v
    assert len(reg.versions("wan-t2v")) == 1
    # a reference, not a copy: the source is the folder; each weight file's sha256 is the file's
    row = reg.versions("wan-t2v")[0]
    assert row["source"] == str(folder)
    digests = reg.file_digests("wan-t2v", v)
    weights = folder / "transformer" / "diffusion_pytorch_model.safetensors"
    assert digests["transformer/diffusion_pytorch_model.safetensors"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert len(digests) == int(row["tags"]["weight_files"]) >= 5
    tags = row["tags"]
    assert tags["variant"] == "wan-tiny-large" and tags["stand_in"] == "true" and "not Wan 14B" in tags["label"]
    assert json.loads(tags["default_params"])["steps"] == 4 and tags["licence"].startswith("n/a")
    assert float(tags["vram_gb_estimate"]) > 0
    # the same weights under another variant name are refused, not registered again
    with pytest.raises(Exception, match="already wan-t2v/1"):
        reg.register_version("wan-t2v", folder, "wan-tiny")
    # different weights are a new version
    assert reg.register_version("wan-t2v", rsettings.models_dir / "wan-tiny", "wan-tiny") == (2, True)


def test_register_refuses_a_t2v_variant_under_i2v_and_records_revision_of_a_hub_id(rsettings, tmp_path, monkeypatch):
    from governance.model_refs import ModelRefError
    from wan_tasks.intake import registry_for

    reg = registry_for(rsettings)
    with pytest.raises(ModelRefError, match="register it under wan-t2v"):
        reg.register_version("wan-i2v", rsettings.models_dir / "wan-tiny", "wan-tiny")
    # A hub id at a revision, from a local Hugging Face cache (no network: HF_HUB_OFFLINE is set by flows)
    cache = tmp_path / "hf"
    snap = cache / "models--acme--wan-tiny" / "snapshots" / ("a" * 40)
    shutil.copytree(rsettings.models_dir / "wan-tiny", snap)
    (cache / "models--acme--wan-tiny" / "refs").mkdir()
    (cache / "models--acme--wan-tiny" / "refs" / "v1").write_text("a" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(cache))
    v, created = reg.register_version("wan-t2v", "acme/wan-tiny", "wan-tiny", revision="v1")
    row = reg.versions("wan-t2v")[0]
    assert created and row["source"] == "acme/wan-tiny@v1" and row["tags"]["revision"] == "v1"
    assert reg.resolve(f"wan-t2v/{v}").source == "acme/wan-tiny@v1"


# --- statistics and gates on constructed results ----------------------------------------------------------

def test_wilson_interval_matches_the_formula():
    lo, hi = wilson_interval(8, 10)
    assert (round(lo, 3), round(hi, 3)) == (0.49, 0.943)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(50, 100)
    assert lo < 0.5 < hi and math.isclose(lo + hi, 1.0)


def _metrics(champ_qc=0.8, chall_qc=0.9, cost=0.10):
    arm = {"qc_pass_rate": None, "brand_safety_pass_rate": 1.0, "cost_per_approved_clip": None}
    return {"champion": arm | {"qc_pass_rate": champ_qc, "cost_per_approved_clip": 0.05},
            "challenger": arm | {"qc_pass_rate": chall_qc, "cost_per_approved_clip": cost}}


def _pref(wins, losses):
    if wins + losses == 0:
        return {"win_rate": None, "ci_low": None, "reason": "no blind A/B round was opened"}
    lo, hi = wilson_interval(wins, wins + losses)
    return {"win_rate": wins / (wins + losses), "ci_low": lo, "ci_high": hi, "reason": ""}


def test_gates_pass_and_fail_on_constructed_results():
    policy = load_policy(POLICY).policy
    gates, passed = evaluate_gates(policy, _metrics(), _pref(70, 30))
    assert passed and [g["status"] for g in gates] == ["pass"] * 5
    # QC worse than the champion's: that gate fails, the others still pass
    gates, passed = evaluate_gates(policy, _metrics(chall_qc=0.7), _pref(70, 30))
    assert not passed and [g["status"] for g in gates] == ["fail", "pass", "pass", "pass", "pass"]
    # 60 % win rate but the interval's lower bound is under 50 % (few votes): the significance gate fails
    gates, passed = evaluate_gates(policy, _metrics(), _pref(6, 4))
    assert not passed and gates[2]["status"] == "pass" and gates[3]["status"] == "fail"
    # over budget
    gates, passed = evaluate_gates(policy, _metrics(cost=0.30), _pref(70, 30))
    assert not passed and gates[4]["status"] == "fail"
    # no A/B round: preference gates are "not evaluated", never passed
    gates, passed = evaluate_gates(policy, _metrics(), _pref(0, 0))
    assert not passed and gates[2]["status"] == gates[3]["status"] == "not evaluated"
    assert "not run" in gates[2]["reason"]
    # a metric that was not measured (no approved clip → no cost per approved clip)
    gates, passed = evaluate_gates(policy, _metrics(cost=None), _pref(70, 30))
    assert not passed and gates[4]["status"] == "not evaluated"


def test_policy_errors_name_the_file_and_field(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("gates:\n  - metric: qc_pass_rate\n    op: '=>'\n    value: 1\n")
    with pytest.raises(RolloutError, match=r"p.yaml:gates.0.op"):
        load_policy(bad)
    bad.write_text("gates:\n  - metric: qc_pass_rate\n    op: '>='\n")
    with pytest.raises(RolloutError, match=r"gates.0: give exactly one of `value` and `than: champion`"):
        load_policy(bad)
    with pytest.raises(RolloutError, match="unknown metric 'qc_pass'"):
        bad.write_text("gates:\n  - {metric: qc_pass, op: '>=', value: 1}\n")
        evaluate_gates(load_policy(bad).policy, _metrics(), _pref(1, 1))


# --- canary routing ---------------------------------------------------------------------------------------

def test_canary_fraction_is_honoured_within_binomial_bounds_and_deterministic():
    from wan_tasks.plan import in_canary, variant_seed

    n, fraction = 4000, 0.1
    routed = [in_canary("spring", f"item-{i // 4}", i % 4, variant_seed(7, "spring", f"item-{i // 4}", i % 4), fraction)
              for i in range(n)]
    sd = math.sqrt(fraction * (1 - fraction) / n)
    assert abs(sum(routed) / n - fraction) < 4 * sd  # ±1.9 points at n=4000
    again = [in_canary("spring", f"item-{i // 4}", i % 4, variant_seed(7, "spring", f"item-{i // 4}", i % 4), fraction)
             for i in range(n)]
    assert routed == again
    assert not any(in_canary("spring", "x", v, v, 0.0) for v in range(100))


def test_canary_jobs_use_the_challenger_and_never_share_a_batch(rsettings, tmp_path):
    from wan_tasks import plan
    from wan_tasks.generate import plan_batches
    from wan_tasks.intake import validate

    reg, v2 = _registry(rsettings)
    reg.set_alias("wan-t2v", "challenger", v2)
    brief = validate(_brief(tmp_path, "canary-plan", items=50, variants=4, extra="canary: 0.1"), rsettings)
    assert brief.canary == 0.1 and brief.canary_model == "wan-t2v@challenger"
    engine = open_catalog(rsettings.catalog_db_url)
    with session_scope(engine) as s:
        brief_id = plan.record_brief(s, brief)
        main, canary = plan.freeze_models(s, brief_id, lambda r: reg.resolve(r, brand="acme"), brief.canary,
                                          brief.canary_model)
        job_ids = plan.plan_jobs(s, brief_id, main, None, canary, brief.canary)
        jobs = s.scalars(select(GenerationJob).where(GenerationJob.id.in_(job_ids))).all()
        versions = {j.arm: {s.get(ModelVersion, j.model_version_id).version for j in jobs if j.arm == j.arm}
                    for j in jobs}
    assert (main.version, canary.version) == (1, v2)
    canary_jobs = [j for j in jobs if j.arm == "canary"]
    assert 200 * 0.1 - 4 * math.sqrt(200 * 0.09) < len(canary_jobs) < 200 * 0.1 + 4 * math.sqrt(200 * 0.09)
    with session_scope(engine) as s:
        by_arm = {j.arm: set() for j in jobs}
        for j in jobs:
            by_arm[j.arm].add(s.get(ModelVersion, j.model_version_id).version)
    assert by_arm == {"main": {1}, "canary": {v2}}, versions
    from core.settings import EngineOptions

    batches, _ = plan_batches(engine, job_ids, EngineOptions(device="cpu", max_batch=8))
    model_of = {j.id: j.model_version_id for j in jobs}
    assert all(len({model_of[i] for i in b}) == 1 for b in batches)  # a batch never mixes models
    assert sorted(i for b in batches for i in b) == sorted(job_ids)


def test_a_canary_without_a_challenger_alias_is_refused_at_intake(rsettings, tmp_path):
    from governance.brief import BriefInvalid
    from wan_tasks.intake import validate

    _registry(rsettings)  # no challenger alias set
    with pytest.raises(BriefInvalid) as e:
        validate(_brief(tmp_path, "canary-none", items=1, extra="canary: 0.2"), rsettings)
    assert any(p.field == "canary_model" and "wan-t2v@challenger" in p.message for p in e.value.problems)
    with pytest.raises(BriefInvalid) as e:
        validate(_brief(tmp_path, "canary-bad", items=1, extra="canary: 1.5"), rsettings)
    assert any(p.field == "canary" for p in e.value.problems)


# --- resolution frozen at plan time -----------------------------------------------------------------------

def test_moving_the_alias_mid_campaign_changes_nothing(rsettings, tmp_path):
    """Plan a campaign, move `champion`, then run it (and re-run it): every job and clip stays on the version
    resolved at plan time. A new brief version resolves the alias afresh."""
    from flows.campaign import campaign
    from wan_tasks import plan
    from wan_tasks.intake import resolve_models, validate

    reg, v2 = _registry(rsettings)
    path = _brief(tmp_path, "frozen", items=2)
    engine = open_catalog(rsettings.catalog_db_url)
    brief = validate(path, rsettings)
    with session_scope(engine) as s:
        brief_id = plan.record_brief(s, brief)
    model, _ = resolve_models(rsettings, brief_id, "acme")  # planned: resolved once
    assert model.version == 1
    reg.set_alias("wan-t2v", "champion", v2)  # someone moves the alias mid-campaign
    first = campaign(str(path), rsettings)
    second = campaign(str(path), rsettings)
    assert first["model"] == second["model"] == "wan-t2v/1"
    with session_scope(engine) as s:
        jobs = s.scalars(select(GenerationJob).join(Campaign).where(Campaign.name == "frozen")).all()
        assert len(jobs) == 2 and {s.get(ModelVersion, j.model_version_id).version for j in jobs} == {1}
        assert all(j.status.value == "done" for j in jobs)
        assert s.get(Brief, brief_id).model_version_id == jobs[0].model_version_id
        resolved = s.scalars(select(AuditEvent).where(AuditEvent.action == "brief.model_resolved")).all()
        assert len(resolved) == 1  # asked the registry once, not at each run
    assert second["clips_generated"] == 0  # the re-run reused every clip
    # an edited brief is a new plan: it gets the alias as it is now
    edited = _brief(tmp_path, "frozen", items=3)
    third = campaign(str(edited), rsettings)
    assert third["model"] == f"wan-t2v/{v2}"


def test_a_brand_pin_wins_over_champion_for_that_brand_only(rsettings):
    reg, v2 = _registry(rsettings)
    reg.set_alias("wan-t2v", "acme-champion", v2)
    assert reg.resolve("wan-t2v@champion", brand="acme").version == v2
    assert reg.resolve("wan-t2v@champion", brand="acme").resolved_from == "wan-t2v@acme-champion"
    assert reg.resolve("wan-t2v@champion", brand="other").version == 1
    assert reg.resolve("wan-t2v@champion").version == 1


# --- promotion, override, rollback ------------------------------------------------------------------------

def _evaluation(s, champion=1, challenger=2, chall_qc=0.9, ab=True, policy=POLICY) -> RolloutEvaluation:
    camp = s.scalar(select(Campaign).where(Campaign.name == "golden")) or Campaign(name="golden", brand="acme")
    s.add(camp)
    s.flush()
    loaded = load_policy(policy)
    ev = RolloutEvaluation(registry_name="wan-t2v", champion_version=champion, challenger_version=challenger,
                           campaign_id=camp.id, golden_path="golden.yaml", golden_sha256="0" * 64,
                           policy_path=str(policy), policy_sha256=loaded.sha256, ab_round=False,
                           metrics=_metrics(chall_qc=chall_qc) | {"job_ids": {"champion": [], "challenger": []}},
                           gates=[], passed=None)
    s.add(ev)
    s.flush()
    if ab:  # constructed votes: a round of pairs, each with a vote (pairs need assets)
        ev.ab_round = True
        for i in range(40):
            a = [Asset(kind=AssetKind.raw_clip, uri=f"/c{ev.id}-{i}-{k}.mp4", sha256=f"{i:064d}", size=1, width=8,
                       height=8) for k in range(2)]
            s.add_all(a)
            s.flush()
            pair = AbPair(evaluation_id=ev.id, item_key=f"i{i}", champion_asset_id=a[0].id,
                          challenger_asset_id=a[1].id, left_arm="champion" if i % 2 else "challenger", position=i)
            s.add(pair)
            s.flush()
            prefer_challenger = i < 30  # 75 %
            side = ("left" if pair.left_arm == "challenger" else "right") if prefer_challenger else \
                ("left" if pair.left_arm == "champion" else "right")
            rollout.record_vote(s, pair.id, side, "rev")
    return ev


def test_promote_is_refused_unless_the_last_evaluation_passed_and_override_is_audited(rsettings):
    reg, v2 = _registry(rsettings)
    engine = open_catalog(rsettings.catalog_db_url)
    with session_scope(engine) as s:
        _evaluation(s, challenger=v2, chall_qc=0.5)  # QC worse than the champion's
    with pytest.raises(RolloutError, match="refused") as e, session_scope(engine) as s:
        rollout.promote(s, reg, "wan-t2v", "maria")
    assert "QC pass rate at least the champion's: fail" in str(e.value)
    assert reg.aliases("wan-t2v")["champion"] == 1
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(AliasMove)) == 0
        with pytest.raises(RolloutError, match="--override needs --reason"):
            rollout.promote(s, reg, "wan-t2v", "maria", override=True, reason=" ")
    with session_scope(engine) as s:
        move = rollout.promote(s, reg, "wan-t2v", "maria", override=True, reason="launch date; QC reviewed by hand")
        assert (move.action, move.from_version, move.to_version) == ("override", 1, v2)
    assert reg.aliases("wan-t2v")["champion"] == v2
    with session_scope(engine) as s:
        ev = s.scalar(select(AuditEvent).where(AuditEvent.action == "model.alias_override"))
        assert ev.actor == "maria" and ev.payload["reason"] == "launch date; QC reviewed by hand"
        assert any("QC pass rate" in p for p in ev.payload["overridden"])
        assert audit.verify_chain(s).ok
    # rollback: one step back, audited
    with session_scope(engine) as s:
        back = rollout.rollback(s, reg, "wan-t2v", "maria", "regression in the field")
        assert (back.from_version, back.to_version, back.action) == (v2, 1, "rollback")
    assert reg.aliases("wan-t2v")["champion"] == 1
    with pytest.raises(RolloutError, match="nothing to roll back"), session_scope(engine) as s:
        rollout.rollback(s, reg, "wan-t2v", "maria")


def test_promote_after_a_passing_evaluation_and_not_on_a_stale_one(rsettings):
    reg, v2 = _registry(rsettings)
    engine = open_catalog(rsettings.catalog_db_url)
    with session_scope(engine) as s:
        _evaluation(s, challenger=v2, ab=False)  # no A/B round: preference gates not evaluated → refused
    with pytest.raises(RolloutError, match="not evaluated"), session_scope(engine) as s:
        rollout.promote(s, reg, "wan-t2v", "maria")
    with session_scope(engine) as s:
        ev = _evaluation(s, challenger=v2)  # 30 of 40 prefer the challenger: 75 %, interval above 50 %
        rollout.refresh(s, ev)
        assert ev.passed and ev.metrics["preference"]["win_rate"] == 0.75
    other = rsettings.models_dir / "wan-tiny-copy"  # a third version (other bytes: its label file differs)
    shutil.copytree(rsettings.models_dir / "wan-tiny", other)
    (other / "WANFLOW_STANDIN.txt").write_text("another copy\n")
    v3 = reg.register("wan-t2v", other, "wan-tiny")
    reg.set_alias("wan-t2v", "champion", v3)  # the champion moved since: the evaluation is stale
    with pytest.raises(RolloutError, match="evaluate again"), session_scope(engine) as s:
        rollout.promote(s, reg, "wan-t2v", "maria")
    reg.set_alias("wan-t2v", "champion", 1)
    with session_scope(engine) as s:
        move = rollout.promote(s, reg, "wan-t2v", "maria")
        assert (move.action, move.to_version) == ("promote", v2)
        assert s.scalar(select(AuditEvent).where(AuditEvent.action == "model.alias_promote")).payload["passed"]
    assert reg.aliases("wan-t2v")["champion"] == v2


def test_a_vote_is_blind_and_one_per_reviewer(rsettings):
    engine = open_catalog(rsettings.catalog_db_url)
    with session_scope(engine) as s:
        ev = _evaluation(s, ab=False)
        a = [Asset(kind=AssetKind.raw_clip, uri=f"/v{k}.mp4", sha256="1" * 64, size=1, width=8, height=8)
             for k in range(2)]
        s.add_all(a)
        s.flush()
        pair = AbPair(evaluation_id=ev.id, item_key="x", champion_asset_id=a[0].id, challenger_asset_id=a[1].id,
                      left_arm="challenger", position=0)
        s.add(pair)
        s.flush()
        assert rollout.record_vote(s, pair.id, "left", "ann").choice == "challenger"
        assert rollout.record_vote(s, pair.id, "none", "bob").choice == "tie"
        with pytest.raises(RolloutError, match="already voted"):
            rollout.record_vote(s, pair.id, "right", "ann")
        ev.ab_round = True
        p = rollout.preference(s, ev)
        assert (p["wins"], p["losses"], p["ties"], p["win_rate"]) == (1, 0, 1, 1.0)
        assert rollout.next_pair(s, ev.id, "ann") is None and rollout.next_pair(s, ev.id, "cy").id == pair.id


# --- recall -----------------------------------------------------------------------------------------------

def test_recall_finds_exactly_the_assets_of_a_version(catalog_url):
    from catalog.lineage import LineageNotFound, model_assets

    engine = open_catalog(catalog_url)
    with session_scope(engine) as s:
        camp = Campaign(name="recall", brand="acme")
        s.add(camp)
        s.flush()
        brief = Brief(campaign_id=camp.id, path="b.yaml", sha256="b" * 64, model_ref="wan-t2v@champion", content="")
        s.add(brief)
        s.flush()
        item = PromptItem(brief_id=brief.id, item_key="i", source_row=1, prompt="p", params={}, status="accepted")
        s.add(item)
        mvs = [ModelVersion(registry_name="wan-t2v", version=v, variant="wan-tiny", source=f"/m{v}",
                            weights_sha256=f"{v}" * 64) for v in (1, 2)]
        s.add_all(mvs)
        s.flush()
        made: dict[int, dict[str, set]] = {1: {"clips": set(), "renditions": set(), "publications": set()},
                                           2: {"clips": set(), "renditions": set(), "publications": set()}}
        for n in range(6):
            mv = mvs[n % 2]
            job = GenerationJob(idempotency_key=f"k{n}", campaign_id=camp.id, item_id=item.id,
                                model_version_id=mv.id, variant_index=n, seed=n, params={})
            s.add(job)
            s.flush()
            clip = Asset(kind=AssetKind.raw_clip, job_id=job.id, uri=f"/c{n}.mp4", sha256=f"{n}" * 64, size=1,
                         width=8, height=8, status=ClipStatus.delivered)
            s.add(clip)
            s.flush()
            made[mv.version]["clips"].add(clip.id)
            if n < 4:  # the first clips were approved and published as two renditions each
                for preset in ("web-16x9", "poster"):
                    r = Asset(kind=AssetKind.rendition if preset != "poster" else AssetKind.poster, parent_id=clip.id,
                              preset=preset, uri=f"/r{n}{preset}", sha256="r" * 64, size=1, width=8, height=8)
                    s.add(r)
                    s.flush()
                    made[mv.version]["renditions"].add(r.id)
                    pub = Publication(asset_id=r.id, destination="local", uri=f"/out/{n}{preset}", sha256="r" * 64)
                    s.add(pub)
                    s.flush()
                    made[mv.version]["publications"].add(pub.id)
    with session_scope(engine) as s:
        for v in (1, 2):
            found = model_assets(s, "wan-t2v", v)
            assert {c["id"] for c in found["clips"]} == made[v]["clips"]
            assert {r["id"] for r in found["renditions"]} == made[v]["renditions"]
            assert {p["id"] for p in found["publications"]} == made[v]["publications"]
        with pytest.raises(LineageNotFound, match="wan-t2v/9"):
            model_assets(s, "wan-t2v", 9)


# --- the evaluation flow end to end (two real tiny stand-ins) ---------------------------------------------

def test_evaluate_flow_end_to_end_with_the_two_stand_ins(rsettings, tmp_path):
    from mlflow import MlflowClient

    from flows.rollout import rollout_evaluate
    from wan_tasks.rollout_run import publish_evaluation

    reg, v2 = _registry(rsettings)
    golden = _brief(tmp_path, "golden-test", items=2, variants=2)
    ev = rollout_evaluate(f"wan-t2v/{v2}", str(golden), str(POLICY), ab=True, settings=rsettings)
    m = ev["metrics"]
    assert (ev["champion_version"], ev["challenger_version"]) == (1, v2)
    for arm in ("champion", "challenger"):
        assert m[arm]["clips"] == m[arm]["clips_checked"] == 4
        assert 0 <= m[arm]["qc_pass_rate"] <= 1 and m[arm]["seconds_per_clip"] > 0
        assert m[arm]["text_video_alignment"] is None and m[arm]["text_video_alignment_status"].startswith("not run")
        assert m[arm]["cost_basis"].startswith("device-seconds")  # this machine has no GPU, and says so
    assert "not Wan 14B" in ev["labels"]["challenger"] and "not Wan 1.3B" in ev["labels"]["champion"]
    # no vote yet: preference "not run", its gates not evaluated, the evaluation does not pass
    assert m["preference"]["status"] == "not run" and ev["passed"] is False
    assert {g["status"] for g in ev["gates"][2:4]} == {"not evaluated"}
    engine = open_catalog(rsettings.catalog_db_url)
    with session_scope(engine) as s:
        jobs = s.scalars(select(GenerationJob).where(GenerationJob.arm.in_(["champion", "challenger"]))).all()
        assert len(jobs) == 8
        seeds = {arm: sorted(j.seed for j in jobs if j.arm == arm) for arm in ("champion", "challenger")}
        assert seeds["champion"] == seeds["challenger"]  # same prompts, same seeds
        batches = {tuple(j.batch["job_ids"]) for j in jobs}
        model_of = {j.id: j.model_version_id for j in jobs}
        assert all(len({model_of[i] for i in b}) == 1 for b in batches)
        pairs = s.scalars(select(AbPair).order_by(AbPair.position)).all()
        assert len(pairs) == 4
        for i, p in enumerate(pairs):  # the reviewer prefers whatever is on the left
            rollout.record_vote(s, p.id, "left", "ann")
            rollout.record_vote(s, p.id, "left" if i else "right", "bob")
    updated = publish_evaluation(open_catalog(rsettings.catalog_db_url), rsettings, ev["id"])
    pref = updated["metrics"]["preference"]
    assert pref["votes"] == 8 and pref["win_rate"] is not None and pref["ci_low"] < pref["win_rate"] < pref["ci_high"]
    report = Path(updated["report"]).read_text()
    assert "Rollout evaluation" in report and "data:image/png;base64" in report and "not run" in report
    client = MlflowClient(tracking_uri=rsettings.mlflow_uri)
    run = client.get_run(ev["mlflow_run_id"])
    assert run.data.params["challenger"] == f"wan-t2v/{v2}" and "challenger_qc_pass_rate" in run.data.metrics
    assert "preference_win_rate" in run.data.metrics
    arts = {a.path for a in client.list_artifacts(ev["mlflow_run_id"], "evaluation")}
    assert f"evaluation/evaluation-{ev['id']}.html" in arts
    assert client.get_model_version("wan-t2v", str(v2)).tags["last_evaluation"] == str(ev["id"])
    # re-running the evaluation regenerates nothing (idempotency keys include the version)
    again = rollout_evaluate(f"wan-t2v/{v2}", str(golden), str(POLICY), settings=rsettings)
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(GenerationJob)) == 8
    assert again["id"] != ev["id"] and again["metrics"]["preference"]["status"] == "not run"
    # the next round: yesterday's challenger is today's champion, its clips reused on the champion's side
    reg.set_alias("wan-t2v", "champion", v2)
    other = rsettings.models_dir / "wan-tiny-copy"
    shutil.copytree(rsettings.models_dir / "wan-tiny", other)
    (other / "WANFLOW_STANDIN.txt").write_text("another copy\n")
    v3 = reg.register("wan-t2v", other, "wan-tiny")
    third = rollout_evaluate(f"wan-t2v/{v3}", str(golden), str(POLICY), ab=True, settings=rsettings)
    assert third["metrics"]["champion"]["clips"] == 4
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(GenerationJob)) == 12  # only v3's 4 clips are new
        version_of = {a.id: s.get(ModelVersion, s.get(GenerationJob, a.job_id).model_version_id).version
                      for a in s.scalars(select(Asset).where(Asset.kind == AssetKind.raw_clip))}
        pairs = s.scalars(select(AbPair).where(AbPair.evaluation_id == third["id"])).all()
        assert len(pairs) == 4
        assert {(version_of[p.champion_asset_id], version_of[p.challenger_asset_id]) for p in pairs} == {(v2, v3)}


def test_campaign_with_a_canary_reports_each_arm_in_its_mlflow_run(rsettings, tmp_path):
    from mlflow import MlflowClient

    from flows.campaign import campaign

    reg, v2 = _registry(rsettings)
    reg.set_alias("wan-t2v", "challenger", v2)
    summary = campaign(str(_brief(tmp_path, "canary-run", items=3, variants=2, extra="canary: 0.5")), rsettings)
    arms = summary["arms"]
    assert set(arms) <= {"main", "canary"} and sum(a["jobs_planned"] for a in arms.values()) == 6
    assert summary["canary"]["model"] == f"wan-t2v/{v2}"
    run = MlflowClient(tracking_uri=rsettings.mlflow_uri).get_run(summary["mlflow_run_id"])
    assert run.data.params["canary_model_version"] == f"wan-t2v/{v2}" and run.data.params["canary_fraction"] == "0.5"
    for arm, a in arms.items():
        assert run.data.metrics[f"{arm}_jobs_planned"] == a["jobs_planned"]
    with session_scope(open_catalog(rsettings.catalog_db_url)) as s:
        for j in s.scalars(select(GenerationJob)):
            assert s.get(ModelVersion, j.model_version_id).version == (v2 if j.arm == "canary" else 1)


# --- the CLI as a user runs it ----------------------------------------------------------------------------

def test_cli_register_list_alias_promote_and_recall_messages(tmp_path):
    from test_cli import wanflow

    home = tmp_path / "home"
    first = wanflow("models", "register", "wan-tiny-large", "--alias", "challenger", home=home)
    assert first.returncode == 0, first.stderr
    assert "registered: wan-t2v/2" in first.stdout and "not Wan 14B" in first.stdout
    again = wanflow("models", "register", "wan-tiny-large", home=home)
    assert again.returncode == 0 and "already registered (same weights): wan-t2v/2" in again.stdout
    rows = json.loads(wanflow("models", "list", "--json", home=home).stdout)
    assert [(r["version"], r["aliases"], r["tags"]["variant"]) for r in rows] == [
        (1, ["champion"], "wan-tiny"), (2, ["challenger"], "wan-tiny-large")]
    r = wanflow("models", "register", "wan2.1-t2v-14b", home=home)
    assert r.returncode == 2 and "--source: required for wan2.1-t2v-14b" in r.stderr
    r = wanflow("models", "register", "wan2.1-t2v-1.3b", "--source", str(tmp_path / "nowhere"), home=home)
    assert r.returncode == 2 and "model_index.json missing" in r.stderr and "Traceback" not in r.stderr
    r = wanflow("models", "alias", "wan-t2v@champion", "2", home=home)
    assert r.returncode == 2 and "rollout promote" in r.stderr
    r = wanflow("models", "alias", "wan-t2v@acme-champion", "2", "--reason", "acme trial", home=home)
    assert r.returncode == 0 and "wan-t2v@acme-champion → wan-t2v/2" in r.stdout
    r = wanflow("rollout", "promote", home=home)
    assert r.returncode == 1 and "no rollout evaluation of wan-t2v yet" in r.stderr
    r = wanflow("rollout", "rollback", home=home)
    assert r.returncode == 1 and "nothing to roll back" in r.stderr
    r = wanflow("lineage", "--model", "wan-t2v@champion", home=home)
    assert r.returncode == 2 and "recall needs a fixed version" in r.stderr
    r = wanflow("lineage", "--model", "wan-t2v/2", home=home)
    assert r.returncode == 2 and "no job in this catalog was planned with it" in r.stderr
    r = wanflow("rollout", "evaluate", "--challenger", "wan-t2v/2", "--policy", str(tmp_path / "none.yaml"), home=home)
    assert r.returncode == 1 and "none.yaml: no such policy file" in r.stderr
