"""The QC stage on a real catalog (SQLite and PostgreSQL): clips with known defects are routed by the brand's
rules — blocked with readable reasons, or queued for review with their findings — idempotently; the campaign's
QC results table is validated against the brand's expectation suite; the HTML report stands on its own."""

from __future__ import annotations

import shutil
from html.parser import HTMLParser
from importlib.metadata import version
from pathlib import Path

import pytest
from conftest import EXAMPLES
from qc_clips import make_clips
from sqlalchemy import func, inspect, select

from adapters import qc_report
from adapters.qc_models import Models
from adapters.registry import ResolvedModel
from catalog.db import open_catalog, session_scope, upgrade
from catalog.lineage import lineage
from catalog.models import (Asset, AssetKind, AuditEvent, ClipStatus, GenerationJob, PromptItem, QcResult, QcValidation,
                            ReviewTask)
from core.files import sha256_file
from governance.brand import load_brand
from governance.brief import load_brief
from governance.qc import QC_CHECKS
from governance.qc.registry import judge_line
from wan_tasks import plan, quality
from wan_tasks.quality import qc_table, validate_campaign

STUDIO = """name: studio
display_name: Studio (test brand)
blocked_terms: ["nike"]
sensitive_topics: {politics: ["election"]}
checks:
  unsafe_content: {on_not_run: pass}
  forbidden_elements: {on_not_run: pass}
  text_video_alignment: {on_not_run: pass}
  aesthetic_score: {on_not_run: pass}
  subject_consistency: {on_not_run: pass}
campaign: {max_block_rate: 0.2}
"""
# item -> calibration clip it is given in place of a generated one (a model cannot be asked for defects)
ITEMS = {"clean": "clean_motion", "vote": "clean_testsrc", "dark": "all_black", "soft": "heavy_blur",
         "broken": "zero_byte"}
PROMPTS = {"vote": "A runner on election day"}


@pytest.fixture(scope="module")
def calibration(tmp_path_factory) -> dict[str, Path]:
    return make_clips(tmp_path_factory.mktemp("stage-clips"))


@pytest.fixture
def campaign(tmp_path, catalog_url, calibration):
    """A recorded brief with one job per item, each job holding its calibration clip as if just generated."""
    (tmp_path / "brands").mkdir()
    (tmp_path / "brands" / "studio.yaml").write_text(STUDIO, "utf-8")
    items = "\n".join(f'  - {{id: {k}, prompt: "{PROMPTS.get(k, "A red disc over a checkerboard")}"}}' for k in ITEMS)
    (tmp_path / "brief.yaml").write_text(f"""campaign: qc-stage
brand: studio
model: wan-t2v@champion
defaults: {{num_frames: 33, fps: 16, width: 160, height: 96, variants: 1, formats: ["1:1"], steps: 2, seed: 3}}
items:
{items}
""", "utf-8")
    brief = load_brief(tmp_path / "brief.yaml", known_models=lambda ref: True)
    engine = open_catalog(catalog_url)
    model = ResolvedModel("wan-t2v", 1, "wan-tiny", str(tmp_path), "0" * 64, True)
    with session_scope(engine) as s:
        brief_id = plan.record_brief(s, brief)
        for job_id in plan.plan_jobs(s, brief_id, model):
            job = s.get(GenerationJob, job_id)
            key = s.get(PromptItem, job.item_id).item_key
            dest = tmp_path / "clips" / f"{key}.mp4"
            dest.parent.mkdir(exist_ok=True)
            shutil.copy(calibration[ITEMS[key]], dest)
            s.add(Asset(kind=AssetKind.raw_clip, job_id=job_id, uri=str(dest), sha256=sha256_file(dest),
                        size=dest.stat().st_size, width=160, height=96, frames=33, fps=16.0))
    with session_scope(engine) as s:
        assets = {s.get(PromptItem, j.item_id).item_key: a.id for a, j in s.execute(
            select(Asset, GenerationJob).join(GenerationJob, GenerationJob.id == Asset.job_id))}
    return engine, brief.brand, assets


def test_clips_are_routed_by_the_brand_rules(campaign) -> None:
    engine, brand, assets = campaign
    outcomes = {k: quality.check_clip(engine, a, brand, Models()) for k, a in assets.items()}
    assert outcomes == {"clean": "pass", "vote": "needs_review", "dark": "block", "soft": "needs_review",
                        "broken": "block"}
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(QcResult)) == len(assets) * len(QC_CHECKS)
        status = {k: s.get(Asset, a).status for k, a in assets.items()}
        assert status["dark"] == status["broken"] == ClipStatus.qc_failed
        assert status["clean"] == status["vote"] == status["soft"] == ClipStatus.in_review
        tasks = {k: s.scalar(select(ReviewTask).where(ReviewTask.asset_id == a)) for k, a in assets.items()}
        assert tasks["dark"] is None and tasks["broken"] is None
        assert tasks["clean"].qc_outcome == "pass"
        assert {f["check"] for f in tasks["clean"].findings} == {  # notes: what could not run, passed by policy
            "text_video_alignment", "aesthetic_score", "subject_consistency"}
        soft = [f for f in tasks["soft"].findings if f["outcome"] == "needs_review"]
        assert [f["check"] for f in soft] == ["blur"] and "allowed: at least 40" in soft[0]["message"]
        vote = [f for f in tasks["vote"].findings if f["outcome"] == "needs_review"]
        assert vote == [{"check": "sensitive_topics", "outcome": "needs_review",
                         "message": 'prompt: sensitive topic "politics": "election"'}]
        rejected = s.scalar(select(AuditEvent).where(AuditEvent.entity_id == assets["dark"],
                                                     AuditEvent.action == "clip.auto_rejected"))
        assert rejected.payload["brand"] == "studio" and rejected.payload["profile_sha256"] == brand.sha256
        assert "black_frames: 33 of 33 frames black (100%) (allowed: at most 0.5 share)" in rejected.payload["reasons"]
        broken = s.scalar(select(AuditEvent).where(AuditEvent.entity_id == assets["broken"]))
        assert broken.payload["reasons"][0].startswith("decodable: clip not decodable")
        per_check = {r.check: r.outcome for r in s.scalars(select(QcResult).where(QcResult.asset_id == assets["soft"]))}
        assert per_check["blur"] == "needs_review" and per_check["text_video_alignment"] == "pass"
        judges = {r.check: r.judge for r in s.scalars(select(QcResult).where(QcResult.asset_id == assets["clean"]))}
        assert judges["unsafe_content"]["detector"] == "nudenet" and set(judges["unsafe_content"]["weights"]) == {
            "320n.onnx"} and len(judges["unsafe_content"]["weights"]["320n.onnx"]) == 64
        assert judges["watermark"]["detector"] == "rapidocr-onnxruntime"
        assert judges["blur"]["detector"] == "wanflow rules" and judges["text_video_alignment"] is None  # not run
        shown = [judge_line(r["judge"]) for r in lineage(s, f"asset:{assets['clean']}")["qc"]]
        assert f"nudenet {version('nudenet')} (320n.onnx sha256 {judges['unsafe_content']['weights']['320n.onnx'][:12]}…)" \
            in shown and "not recorded" in shown
    # idempotent: a second pass changes nothing
    assert {k: quality.check_clip(engine, a, brand, Models()) for k, a in assets.items()} == outcomes
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(QcResult)) == len(assets) * len(QC_CHECKS)
        assert s.scalar(select(func.count()).select_from(ReviewTask)) == 3


def test_results_table_is_validated_against_the_brand_suite(campaign, tmp_path) -> None:
    engine, brand, assets = campaign
    for a in assets.values():
        quality.check_clip(engine, a, brand, Models())
    with session_scope(engine) as s:
        v = validate_campaign(s, "qc-stage", brand, None)
        unmet = [r["description"] for r in v.results if not r["success"]]
        # 2 of 5 clips blocked: the brand allows 20 % — the only expectation not met
        assert unmet == ["at most 20% of the campaign's clips blocked"] and not v.success
        assert v.evaluated > 20 and not any(r["error"] for r in v.results)
    with session_scope(engine) as s:  # a clip in review that fails a blocking check: the suite catches it
        row = s.scalar(select(QcResult).where(QcResult.asset_id == assets["clean"], QcResult.check == "black_frames"))
        row.passed, row.value = False, 0.9
    with session_scope(engine) as s:
        v = validate_campaign(s, "qc-stage", brand, None)
        bad = {r["description"]: r for r in v.results if not r["success"]}
        assert set(bad) == {"at most 20% of the campaign's clips blocked",
                            "no clip in review fails black_frames or skipped it",
                            "no clip in review has black_frames above 0.5"}
        assert bad["no clip in review fails black_frames or skipped it"]["examples"] == [
            {"asset_id": assets["clean"], "check": "black_frames"}]
        assert s.scalar(select(func.count()).select_from(QcValidation)) == 2
        assert len(qc_table(s, "qc-stage")) == len(assets) * len(QC_CHECKS)

    class Images(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.src: list[str] = []

        def handle_starttag(self, tag, attrs) -> None:
            self.src += [v for k, v in attrs if k in ("src", "href")]

    with session_scope(engine) as s:
        dest = qc_report.write_report(s, "qc-stage", tmp_path / "r" / "qc.html", brand.name, None, v)
    text = dest.read_text("utf-8")
    parser = Images()
    parser.feed(text)
    assert parser.src and all(src.startswith("data:image/") for src in parser.src)  # self-contained
    assert sum(src.startswith("data:image/jpeg") for src in parser.src) == len(assets)  # a contact strip per clip
    assert sum(src.startswith("data:image/png") for src in parser.src) >= 10  # metric distributions
    with session_scope(engine) as s:  # the soft clip's own finding, as the check worded it (its value moves with codecs)
        soft = s.scalar(select(QcResult).where(QcResult.asset_id == assets["soft"], QcResult.check == "blur"))
        sharpness = soft.details["message"].split(" (")[0]
    assert not soft.passed and soft.value < 40 and sharpness.startswith("sharpness ")
    for needle in ("blocked</span> 2", "needs review</span> 2", "no clip in review fails black_frames",
                   sharpness, 'sensitive topic &quot;politics&quot;', "not decodable"):
        assert needle in text, needle
    assert [p.name for p in dest.parent.iterdir()] == ["qc.html"]


def test_migration_0004_up_and_down(catalog_url) -> None:
    from alembic import command

    from catalog.db import alembic_config

    engine = open_catalog(catalog_url)
    cols = {c["name"] for c in inspect(engine).get_columns("review_tasks")}
    assert {"qc_outcome", "findings"} <= cols and "qc_validations" in inspect(engine).get_table_names()
    command.downgrade(alembic_config(catalog_url), "0001")
    engine.dispose()
    assert "qc_validations" not in inspect(engine).get_table_names()
    assert "outcome" not in {c["name"] for c in inspect(engine).get_columns("qc_results")}
    upgrade(catalog_url)
    engine.dispose()
    assert "outcome" in {c["name"] for c in inspect(engine).get_columns("qc_results")}


def test_suite_follows_the_profile() -> None:
    import dataclasses

    import pandas as pd

    from governance.qc_suite import COLUMNS, qc_suite, run_suite

    base = load_brand("acme", EXAMPLES / "brands")
    strict = dataclasses.replace(base, checks=base.checks | {"blur": {"on_fail": "block", "on_not_run": "block"}},
                                 campaign={"min_pass_rate": 0.9})

    def described(brand) -> set[str]:
        return {e.meta["description"] for e in qc_suite(brand, 3).expectations}

    added = described(strict) - described(base)
    assert added == {"no clip in review fails blur or skipped it", "no clip in review has blur below 40",
                     "at least 90% of the campaign's clips pass QC outright"}
    assert "at most 50% of the campaign's clips blocked" in described(base) - described(strict)
    empty = run_suite(pd.DataFrame([], columns=list(COLUMNS)), base)  # a campaign whose every job failed
    assert empty["success"] and not any(r["error"] for r in empty["results"])
