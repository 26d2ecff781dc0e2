"""The whole path through the real Prefect flows, on SQLite and PostgreSQL:
brief → catalog → generate (wan-tiny) → QC → review → publish → lineage; re-runs duplicate nothing.
"""

from __future__ import annotations

import json
from datetime import timezone
from pathlib import Path

from conftest import EXAMPLES
from sqlalchemy import func, select

from adapters.media import probe
from catalog.db import open_catalog, session_scope
from catalog.lineage import lineage
from catalog.models import (Asset, AssetKind, ClipStatus, Decision, GenerationJob, ItemStatus, PromptItem, Publication,
                            QcResult, QcValidation, ReviewTask)
from governance.qc import QC_CHECKS
from governance.renditions import load_presets
from wan_tasks.review import decide, pending

BRIEF = EXAMPLES / "brief.yaml"


def _count(s, model) -> int:
    return s.scalar(select(func.count()).select_from(model))


def test_campaign_end_to_end_and_idempotent(settings):
    from flows.campaign import campaign
    from flows.publish import publish

    first = campaign(str(BRIEF), settings)
    assert first["model"] == "wan-t2v/1" and "stand-in" in first["model_label"]
    # 3 accepted items × 2 variants; the item naming a competitor is rejected with its reason, not dropped.
    assert (first["jobs_planned"], first["clips_generated"], first["items_rejected_by_policy"]) == (6, 6, 1)
    engine = open_catalog(settings.catalog_db_url)
    with session_scope(engine) as s:
        rejected = s.scalars(select(PromptItem).where(PromptItem.status == ItemStatus.rejected)).one()
        assert rejected.item_key == "versus-shot" and "nike" in rejected.rejection_reason
        jobs = s.scalars(select(GenerationJob).order_by(GenerationJob.id)).all()
        assert len({j.seed for j in jobs}) == 6 and all(j.attempts == 1 for j in jobs)
        # city-run asks only for 9:16: generated portrait (64x128), not cut from the brief's 128x64 landscape
        sizes = {(s.get(PromptItem, j.item_id).item_key, j.params["width"], j.params["height"]) for j in jobs}
        assert sizes == {("hero-shot", 128, 64), ("city-run", 64, 128), ("sakura-walk", 128, 64)}
        assert _count(s, QcResult) == 6 * len(QC_CHECKS)
        # The stand-in's noise-like clips flicker and are unstable, and no semantic model is configured: the
        # acme profile sends all of that to review (never a block), so each clip gets a task with its findings.
        tasks = s.scalars(select(ReviewTask)).all()
        assert len(tasks) == 6 and {t.qc_outcome for t in tasks} == {"needs_review"}
        for t in tasks:
            flagged = {f["check"] for f in t.findings if f["outcome"] == "needs_review"}
            assert {"flicker", "temporal_instability", "text_video_alignment"} <= flagged
        assert check_overlapped_generation(s)
        validation = s.scalars(select(QcValidation)).one()
        assert validation.success and validation.brand == "acme" and validation.evaluated > 20
        before = {a.id: a.sha256 for a in s.scalars(select(Asset))}
    assert first["qc_outcomes"] == {"pass": 0, "needs_review": 6, "block": 0}
    report = Path(first["qc_report"]).read_text("utf-8")
    assert report.startswith("<!doctype html>") and report.count("data:image/jpeg;base64,") == 6
    assert "data:image/png;base64," in report and "src=\"http" not in report and "hero-shot" in report
    assert_report_attached(settings, first)

    second = campaign(str(BRIEF), settings)
    assert (second["clips_generated"], second["clips_reused"]) == (0, 6)
    with session_scope(engine) as s:
        assert _count(s, GenerationJob) == 6 and _count(s, QcResult) == 6 * len(QC_CHECKS)
        assert _count(s, ReviewTask) == 6 and _count(s, QcValidation) == 2
        assert {a.id: a.sha256 for a in s.scalars(select(Asset))} == before
        assert all(j.attempts == 1 for j in s.scalars(select(GenerationJob)))

        todo = pending(s, "spring-launch")
        for p in todo[:4]:
            decide(s, p.asset_id, Decision.approve, "", "test-approver")
        for p in todo[4:]:
            decide(s, p.asset_id, Decision.reject, "off-brand colours", "test-approver")
        approved = [p.asset_id for p in todo[:4]]

    published = publish("spring-launch", settings)
    manifest = json.loads(Path(published["manifest"]).read_text())
    with session_scope(engine) as s:
        expected = 0
        for clip_id in approved:
            job = s.get(GenerationJob, s.get(Asset, clip_id).job_id)
            # one rendition per preset of each requested format (16:9 has two: 1080p and 720p) + poster + preview
            expected += len(load_presets().for_formats(s.get(PromptItem, job.item_id).params["formats"])) + 2
        assert published["publications"] == expected == len(manifest["files"])
        rejected_clips = {p.asset_id for p in todo[4:]}
        assert not any(f["raw_clip_asset_id"] in rejected_clips for f in manifest["files"])

    videos = [f for f in manifest["files"] if f["uri"].endswith(".mp4")]
    for f in videos:
        info = probe(Path(f["uri"]))
        # 9 frames at 16 fps → the preset's 24 or 30 fps, same duration (within half an output frame)
        assert (info.codec, info.pix_fmt, info.faststart) == ("h264", "yuv420p", True)
        assert info.frames == {24: 14, 30: 17}[round(info.fps)] and f["c2pa"]["status"] == "signed"
        assert info.sha256 == f["sha256"]

    chain = lineage_of(engine, videos[0]["uri"])
    assert chain["publication"]["uri"] == videos[0]["uri"]
    assert chain["rendition"]["aspect"] == videos[0]["aspect"]
    assert chain["raw_clip"]["id"] == videos[0]["raw_clip_asset_id"]
    assert chain["job"]["seed"] == videos[0]["seed"]
    assert chain["model_version"]["registry_name"] == "wan-t2v" and chain["model_version"]["stand_in"] is True
    assert chain["brief"]["sha256"] and Path(chain["brief"]["path"]).samefile(BRIEF)
    assert chain["prompt_item"]["item_key"] == videos[0]["item"]
    qc = {r["check"]: r for r in chain["qc"]}
    assert set(qc) == set(QC_CHECKS) and qc["decodable"]["passed"] and qc["size"]["passed"]
    assert {c for c, r in qc.items() if r["passed"] is None} == {  # no model configured: recorded, not passed
        "forbidden_elements", "text_video_alignment", "aesthetic_score", "subject_consistency"}
    assert qc["unsafe_content"]["judge"]["detector"] == "nudenet"  # shipped with the install: it ran
    assert qc["blur"]["judge"]["detector"] == "wanflow rules"
    assert [(d["decision"], d["reviewer"]) for d in chain["review"]] == [("approve", "test-approver")]

    again = publish("spring-launch", settings)
    with session_scope(engine) as s:
        assert again["publications"] == expected == _count(s, Publication)
        assert _count(s, Asset) == 6 + expected  # renditions and posters were not made twice
        assert all(a.status == ClipStatus.delivered for a in s.scalars(
            select(Asset).where(Asset.kind != AssetKind.raw_clip)))


def assert_report_attached(settings, summary: dict) -> None:
    """The QC report is an artifact of the MLflow run, and a link artifact of the Prefect flow run."""
    from mlflow import MlflowClient
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    names = [a.path for a in MlflowClient(settings.mlflow_uri).list_artifacts(summary["mlflow_run_id"])]
    assert Path(summary["qc_report"]).name in names
    with get_client(sync_client=True) as client:
        links = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["qc-report-spring-launch"])))
    assert any(str(a.flow_run_id) == summary["prefect_flow_run_id"] and Path(summary["qc_report"]).as_uri() in a.data
               for a in links)


def check_overlapped_generation(s) -> bool:
    """QC did not serialize behind generation: some clip was being checked while a later batch generated."""
    def unix(dt) -> float:
        return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()

    jobs = s.scalars(select(GenerationJob)).all()
    return any(a.timings["qc_started_unix"] < unix(b.finished_at)
               and a.timings["qc_started_unix"] + a.timings["qc_s"] > unix(b.started_at)
               for a in jobs for b in jobs if unix(b.started_at) >= unix(a.finished_at))


def lineage_of(engine, path: str) -> dict:
    with session_scope(engine) as s:
        return lineage(s, path)


def test_failed_job_is_recorded_retried_and_completed_by_a_rerun(settings, tmp_path):
    """An I/O failure is retried, then recorded as failed with its reason; a re-run finishes the job."""
    from flows.campaign import campaign

    brands = tmp_path / "brief" / "brands"
    brands.mkdir(parents=True)
    (brands / "acme.yaml").write_text((EXAMPLES / "brands" / "acme.yaml").read_text("utf-8"), "utf-8")
    brief = tmp_path / "brief" / "one.yaml"
    brief.write_text("""campaign: one-clip
brand: acme
model: wan-t2v@champion
defaults: {num_frames: 5, width: 32, height: 32, variants: 1, formats: ["1:1"], steps: 2, seed: 5}
items:
  - id: solo
    prompt: "A red sneaker on a white floor"
""", "utf-8")
    blocker = settings.assets_dir / "clips" / "one-clip"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the campaign's clip folder should be")  # every write now fails

    first = campaign(str(brief), settings)
    assert (first["jobs_planned"], first["jobs_failed"], first["clips_generated"]) == (1, 1, 0)
    engine = open_catalog(settings.catalog_db_url)
    with session_scope(engine) as s:
        job = s.scalars(select(GenerationJob)).one()
        assert job.status.value == "failed" and job.attempts == 3  # 1 try + 2 retries for an OSError
        assert "one-clip" in job.error
        assert _count(s, Asset) == 0

    blocker.unlink()
    second = campaign(str(brief), settings)
    assert (second["jobs_failed"], second["clips_generated"]) == (0, 1)
    with session_scope(engine) as s:
        job = s.scalars(select(GenerationJob)).one()
        assert job.status.value == "done" and job.attempts == 4 and job.error is None
