"""The generation stage through the real campaign flow: I2V with a brand LoRA, batches, per-job records,
the memory-policy fallback recorded on the job, and reproducibility from the catalog (`wanflow regenerate`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT
from sqlalchemy import select

from catalog.db import open_catalog, session_scope
from catalog.lineage import lineage
from catalog.models import Asset, AssetKind, AuditEvent, GenerationJob, QcResult
from governance.qc import QC_CHECKS


def brief_dir(tmp_path: Path, text: str) -> Path:
    (tmp_path / "brands").mkdir(parents=True, exist_ok=True)
    (tmp_path / "brands" / "acme.yaml").write_text((EXAMPLES / "brands" / "acme.yaml").read_text("utf-8"), "utf-8")
    brief = tmp_path / "brief.yaml"
    brief.write_text(text, "utf-8")
    return brief


I2V_BRIEF = """campaign: i2v-launch
brand: acme
model: wan-i2v@champion
lora: {path: loras/acme-style, scale: 0.8}
defaults: {num_frames: 5, width: 64, height: 32, variants: 2, formats: ["16:9"], steps: 2, seed: 3, image: product.png}
items:
  - id: hero
    prompt: "The red ACME sneaker turns slowly on its pedestal"
  - id: sakura
    prompt: "桜の花びらが赤いスニーカーの周りを舞う"
"""


def test_i2v_campaign_with_brand_lora_batches_records_and_regenerates(settings, tmp_path, still_image,
                                                                      tiny_i2v_model):
    from adapters import pipelines as m
    from adapters.standins import build_tiny_lora
    from flows.campaign import campaign
    from wan_tasks.regenerate import regenerate

    m.evict_all()
    folder = tmp_path / "brief"
    build_tiny_lora(tiny_i2v_model, folder / "loras" / "acme-style", seed=5)
    (folder / "product.png").write_bytes(still_image.read_bytes())
    summary = campaign(str(brief_dir(folder, I2V_BRIEF)), settings)
    assert (summary["jobs_planned"], summary["clips_generated"], summary["jobs_failed"]) == (4, 4, 0)
    assert "wan-tiny-i2v" in summary["model_label"] and "stand-in" in summary["model_label"]
    engine = open_catalog(settings.catalog_db_url)
    with session_scope(engine) as s:
        jobs = s.scalars(select(GenerationJob).order_by(GenerationJob.id)).all()
        assert {j.batch["size"] for j in jobs} == {4} and jobs[0].batch["job_ids"] == [j.id for j in jobs]
        job = jobs[1]
        assert (job.memory_policy, job.dtype, job.device) == ("none", "float32", "cpu")
        assert job.batch["policy_attempts"] == [{"policy": "none", "outcome": "ok"}]
        assert set(job.timings) >= {"load_s", "text_encode_s", "denoise_s", "decode_s", "encode_s",
                                    "peak_memory_bytes", "peak_memory_kind", "gpu_s", "batch_size"}
        assert job.timings["gpu_s"] == 0.0 and job.timings["peak_memory_kind"].startswith("rss_peak")
        assert job.params["image"]["sha256"] and job.params["lora"]["scale"] == 0.8
        assert job.params["flow_shift"] == 3.0 and job.params["negative_prompt"].startswith("色调艳丽")
        assert len(s.scalars(select(QcResult)).all()) == 4 * len(QC_CHECKS)  # every check on every clip
        chain = lineage(s, f"job:{job.id}")
    assert chain["lora"]["path"].endswith("pytorch_lora_weights.safetensors") and chain["lora"]["scale"] == 0.8
    assert chain["conditioning_image"]["path"].endswith("product.png")
    assert chain["job"]["memory_policy"] == "none" and chain["job"]["batch"]["size"] == 4

    report = regenerate(engine, jobs[1].id)
    assert report.matches and report.batch_job_ids == [j.id for j in jobs] and all(report.batch_matches.values())
    with session_scope(engine) as s:
        audit = s.scalars(select(AuditEvent).where(AuditEvent.action == "job.regenerated")).one()
        assert audit.entity_id == jobs[1].id and audit.payload["matches"] is True
    assert _progress_reached_100(summary["prefect_flow_run_id"])


def _progress_reached_100(flow_run_id: str) -> bool:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterType

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]), type=ArtifactFilterType(any_=["progress"])))
    return bool(arts) and float(arts[0].data) == 100.0


T2V_BRIEF = """campaign: regen
brand: acme
model: wan-t2v@champion
defaults: {num_frames: 5, width: 32, height: 32, variants: 1, formats: ["1:1"], steps: 2, seed: 9}
items:
  - id: one
    prompt: "A red sneaker on a white floor"
  - id: two
    prompt: "一只红色运动鞋"
    negative_prompt: "blurry"
"""


@pytest.fixture
def sqlite_settings(tmp_path):
    from core.settings import Settings

    return Settings(home=tmp_path / "home", catalog_url=f"sqlite:///{tmp_path / 'home' / 'catalog.db'}")


def wanflow(*args: str, settings) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "WANFLOW_"))}
    env |= {"WANFLOW_HOME": str(settings.home), "WANFLOW_CATALOG_URL": settings.catalog_db_url, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_out_of_memory_fallback_is_recorded_and_the_clip_regenerates(sqlite_settings, tmp_path):
    """An operator forces `none` on a (simulated) card too small for it: the job falls back, records every
    attempt and the policy used; `wanflow regenerate` re-runs it under that policy and the frames match."""
    from adapters import memory as mm
    from adapters import pipelines as m
    from adapters.standins import build_tiny_model
    from flows.campaign import campaign

    m.evict_all()
    fp = mm.footprint_from_folder(build_tiny_model(sqlite_settings.models_dir / "wan-tiny"), "cpu")
    need = mm.estimate_peak(fp, mm.Shape(32, 32, 5, 1), mm.Policy.group_offload_block, "cpu")
    settings = sqlite_settings.model_copy(update={"memory_policy": "none", "memory_budget_gb": (need + 1) / mm.GIB})
    summary = campaign(str(brief_dir(tmp_path / "b", T2V_BRIEF)), settings)
    assert (summary["clips_generated"], summary["jobs_failed"]) == (2, 0)
    engine = open_catalog(settings.catalog_db_url)
    with session_scope(engine) as s:
        jobs = s.scalars(select(GenerationJob).order_by(GenerationJob.id)).all()
        assert [j.memory_policy for j in jobs] == ["group_offload_block"] * 2
        assert [a["policy"] for a in jobs[0].batch["policy_attempts"]] == [
            "none", "vae_tiling", "model_cpu_offload", "group_offload_block"]
        assert jobs[0].batch["size"] == 1 and jobs[0].params["negative_prompt"].startswith("色调艳丽")
        assert jobs[1].params["negative_prompt"] == "blurry"

    r = wanflow("regenerate", f"job:{jobs[0].id}", "--json", settings=settings)
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["matches"] and report["memory_policy"] == "group_offload_block" and report["device"] == "cpu"

    with session_scope(engine) as s:  # the catalog says otherwise: the command must notice
        s.scalar(select(Asset).where(Asset.job_id == jobs[1].id, Asset.kind == AssetKind.raw_clip)).frames_sha256 = "0" * 64
    r = wanflow("regenerate", str(jobs[1].id), settings=settings)
    assert r.returncode == 1 and "frames DIFFER" in r.stdout and "Traceback" not in r.stderr
    r = wanflow("regenerate", "job:999", settings=settings)
    assert r.returncode == 2 and "job 999 not found" in r.stderr
