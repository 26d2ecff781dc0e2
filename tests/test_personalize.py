"""Personalisation (issue 15): governed training datasets, brand LoRA training on the tiny stand-in (it learns, it
resumes after kill -9 onto the same weights, it runs data-parallel on 2 CPU processes), registration, use in a
brief (frozen, refused on another base, refused once recalled), lineage LoRA → dataset → assets, and revoke.

Training runs are tiny (a few dozen steps on 64x64 images and a 5-frame clip) and use one torch thread: on a
shared 2-core machine, spinning threads of several processes make a tiny step many times slower.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT
from personalize_helpers import image, make_dataset, run_cli
from sqlalchemy import func, select

from catalog.db import open_catalog, session_scope
from core.files import sha256_file
from catalog.models import AuditEvent, Brief, GenerationJob, LoraVersion, TrainingAsset, TrainingDataset

HELPER = Path(__file__).resolve().parent / "personalize_helpers.py"


def test_bad_datasets_exit_2_with_file_row_field_and_write_nothing_then_versions_are_immutable(settings, tmp_path):
    bad = make_dataset(tmp_path / "bad", images=2, clip=True, extra=(
        "missing.png,a caption,Acme Corp,L-1,2099-01-01,training\n"  # 5: unreadable
        "shot-0.png,dup,Acme Corp,L-2,2099-01-01,training\n"  # 6: duplicate content of row 2
        "tiny.png,small,Acme Corp,L-3,2099-01-01,training\n"  # 7: too small
        "short.mp4,short clip,Acme Corp,L-4,2099-01-01,training\n"  # 8: clip too short
        "nocap.png,,,,2001-02-03,marketing\n"  # 9: no caption, owner, licence; expired; not for training
        "late.png,late,Acme Corp,L-5,31/12/2099,training\n"))  # 10: not a date
    image(bad / "tiny.png", 1, side=32)
    image(bad / "nocap.png", 2)
    image(bad / "late.png", 3)
    from adapters.media import write_clip
    import numpy as np

    write_clip(np.zeros((3, 64, 64, 3), np.uint8), 16, bad / "short.mp4")
    r = run_cli(settings, "personalize", "dataset", "add", "acme-style", str(bad))
    assert r.exit_code == 2, r.output
    csv = str(bad / "dataset.csv")
    expected = [(5, "file", "does not exist"), (6, "file", "duplicate: same content"), (7, "file", "too small: 32x32"),
                (8, "file", "clip too short: 3 frames"), (9, "caption", "missing caption"), (9, "owner", "missing owner"),
                (9, "licence", "missing licence or consent"), (9, "expires", "licence expired on 2001-02-03"),
                (9, "allowed_use", "does not include 'training'"), (10, "expires", "not a date")]
    for row, field, text in expected:
        assert any(line.startswith(f"{csv}:{row}:{field}: ") and text in line for line in r.output.splitlines()), \
            (row, field, text, r.output)
    assert "nothing was written" in r.output and f"{csv}:2:" not in r.output  # good rows are not blamed
    engine = open_catalog(settings.catalog_db_url)
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(TrainingAsset)) == 0
        assert s.scalar(select(func.count()).select_from(TrainingDataset)) == 0
    assert not (settings.home_dir / "training-assets").exists()

    good = make_dataset(tmp_path / "good", images=2, clip=True)
    r = run_cli(settings, "personalize", "dataset", "add", "acme-style", str(good), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) | {"sha256": ""} == {"name": "acme-style", "version": 1, "created": True, "assets": 3,
                                                     "new_assets": 3, "sha256": ""}
    again = json.loads(run_cli(settings, "personalize", "dataset", "add", "acme-style", str(good), "--json").output)
    assert (again["version"], again["created"]) == (1, False)
    image(good / "shot-9.png", 3)
    with (good / "dataset.csv").open("a") as f:
        f.write("shot-9.png,acme brand shot 9,Acme Corp,ACME-LIC-9,2099-12-31,training\n")
    v2 = json.loads(run_cli(settings, "personalize", "dataset", "add", "acme-style", str(good), "--json").output)
    assert (v2["version"], v2["created"], v2["assets"], v2["new_assets"]) == (2, True, 4, 1)
    from catalog.training import dataset_version, members

    with session_scope(engine) as s:
        v1 = dataset_version(s, "acme-style", 1)
        assert len(members(s, v1.id)) == 3 and v1.sha256 == again["sha256"]  # version 1 never changed
        stored = [Path(a.uri) for a, _ in members(s, dataset_version(s, "acme-style").id)]
        caps = [c for _, c in members(s, v1.id)]
        assert caps[2] == "the acme yellow pulse"  # the sidecar caption
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "dataset.version_created")) == 2
    assert all(p.is_file() and p.stem == sha256_file(p) for p in stored)


def _cache(tmp_path: Path, base: Path, cfg) -> Path:
    from adapters.training import build_cache

    folder = make_dataset(tmp_path / "ds", images=2, clip=True)
    items = [(folder / "shot-0.png", "acme brand shot 0"), (folder / "shot-1.png", "acme brand shot 1"),
             (folder / "pulse.mp4", "the acme yellow pulse")]
    return build_cache(base, items, tmp_path / "cache.pt", cfg, validation_prompts=["acme brand shot 0"])


def test_lora_training_learns_and_a_kill_9_resume_lands_on_the_same_weights(tmp_path, tiny_model, one_thread):
    import torch

    from adapters.training import TrainConfig, TrainJob, checkpoints, fit_report, lora_transformer, train

    cfg = TrainConfig(rank=4, steps=24, lr=3e-3, checkpoint_every=4, validate_every=12, seed=7)
    cache = _cache(tmp_path, tiny_model, cfg)
    data = torch.load(cache, weights_only=False)
    assert [tuple(x.shape) for x in data["latents"]] == [(1, 16, 1, 8, 8), (1, 16, 1, 8, 8), (1, 16, 2, 8, 8)]

    # uninterrupted
    straight = TrainJob(str(tiny_model), str(cache), str(tmp_path / "straight"), cfg)
    result = train(straight)
    before = fit_report(lora_transformer(tiny_model, cfg), data, shift=cfg.shift)  # B = 0: exactly the base model
    trained = lora_transformer(tiny_model, cfg)
    final = torch.load(checkpoints(tmp_path / "straight")[-1], weights_only=False)
    params = dict(trained.named_parameters())
    for k, v in final["lora"].items():
        params[k].data.copy_(v)
    after = fit_report(trained, data, shift=cfg.shift)
    assert after["loss"] < 0.95 * before["loss"], (before, after)  # training loss measurably lower
    assert after["x0_distance"] < before["x0_distance"], (before, after)  # predictions nearer the training samples
    assert len(result["loss"]) == 24 and (tmp_path / "straight" / "lora" / "pytorch_lora_weights.safetensors").is_file()
    assert sorted(p.name for p in (tmp_path / "straight" / "validation").iterdir()) == ["step-0000012", "step-0000024"]

    # killed with SIGKILL after step 14 (last checkpoint: 12), then resumed in this process
    killed = TrainJob(str(tiny_model), str(cache), str(tmp_path / "killed"), cfg)
    job_file, marker = tmp_path / "killed.json", tmp_path / "reached"
    job_file.write_text(killed.to_json())
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(HELPER), str(job_file), str(marker), "14"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not marker.exists():
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "the training process never reached step 14"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert [p.name for p in checkpoints(tmp_path / "killed")] == ["step-0000008.pt", "step-0000012.pt"]
    resumed = train(killed)
    assert resumed["resumed_from"] == 12
    a = torch.load(checkpoints(tmp_path / "straight")[-1], weights_only=False)
    b = torch.load(checkpoints(tmp_path / "killed")[-1], weights_only=False)
    assert a["step"] == b["step"] == 24 and a["lora"].keys() == b["lora"].keys()
    assert all(torch.allclose(a["lora"][k], b["lora"][k], atol=1e-6) for k in a["lora"])
    assert resumed["loss"][:12] == result["loss"][:12]  # the curve before the kill came back from the checkpoint
    assert all(abs(x - y) < 1e-5 for x, y in zip(resumed["loss"], result["loss"], strict=True))
    assert not any(p.name.startswith(".") for p in (tmp_path / "killed" / "checkpoints").iterdir())  # no torn files


def test_two_process_data_parallel_run_agrees_and_only_rank_0_writes(tmp_path, tiny_model, one_thread):
    from adapters.training import TrainConfig, TrainJob, checkpoints
    from wan_tasks.personalize import launch

    cfg = TrainConfig(rank=4, steps=4, lr=1e-3, checkpoint_every=2)
    job = TrainJob(str(tiny_model), str(_cache(tmp_path, tiny_model, cfg)), str(tmp_path / "ddp"), cfg)
    (tmp_path / "job.json").write_text(job.to_json())
    launch(tmp_path / "job.json", processes=2, cpu=True)
    result = json.loads((tmp_path / "ddp" / "result.json").read_text())
    assert result["world_size"] == 2 and len(result["rank_digests"]) == 2
    assert result["rank_digests"][0] == result["rank_digests"][1]  # both replicas ended on the same LoRA
    assert result["checkpoint_writers"]["1"] == [] and len(result["checkpoint_writers"]["0"]) == 2
    assert [p.name for p in checkpoints(tmp_path / "ddp")] == ["step-0000002.pt", "step-0000004.pt"]


LORA_BRIEF = """campaign: {campaign}
brand: acme
model: wan-t2v@champion
lora: {{ref: acme-style@champion, scale: 0.8}}
defaults: {{num_frames: 5, width: 32, height: 32, variants: 1, formats: ["1:1"], steps: 2, seed: 4}}
items:
  - id: shoe
    prompt: "A red sneaker on a white floor"
"""


def _brief(folder: Path, campaign: str) -> Path:
    (folder / "brands").mkdir(parents=True, exist_ok=True)
    (folder / "brands" / "acme.yaml").write_text((EXAMPLES / "brands" / "acme.yaml").read_text("utf-8"), "utf-8")
    path = folder / f"{campaign}.yaml"
    path.write_text(LORA_BRIEF.format(campaign=campaign), "utf-8")
    return path


def test_registered_lora_is_used_frozen_traced_refused_off_base_and_recalled(settings, tmp_path, one_thread):
    from adapters.lora_registry import LoraRegistry
    from adapters.registry import ResolvedModel
    from adapters.training import TrainConfig
    from catalog.lineage import lineage
    from flows.campaign import campaign
    from governance.brief_schema import BriefInvalid
    from governance.model_refs import ModelRefError
    from wan_tasks import brand_lora, personalize
    from wan_tasks.intake import resolve_models, validate

    settings.ensure_dirs()
    personalize.add_dataset(settings, "acme-style", make_dataset(tmp_path / "ds", images=2, clip=True))
    out = personalize.train_lora(settings, "acme-style", "acme-style@1", "wan-t2v@champion",
                                 TrainConfig(rank=4, steps=4, lr=1e-3, checkpoint_every=2))
    assert (out["lora"], out["alias"], out["dataset"], out["base"], out["stand_in"]) == (
        "lora-acme-style/1", "champion", "acme-style@1", "wan-t2v/1", True)
    lora = LoraRegistry(settings.mlflow_uri).resolve("acme-style@champion")
    assert lora.base_model == "wan-t2v/1" and lora.dataset == "acme-style@1" and Path(lora.path).is_file()
    from adapters.tracking import mlflow_client

    run = mlflow_client(settings.mlflow_uri).get_run(out["mlflow_run_id"])
    assert run.data.tags["wanflow.dataset"] == "acme-style@1" and run.data.tags["wanflow.base_model"] == "wan-t2v/1"
    assert len(mlflow_client(settings.mlflow_uri).get_metric_history(out["mlflow_run_id"], "loss")) == 4
    assert Path(out["contact_sheet"]).is_file()

    brief = validate(_brief(tmp_path, "lora-launch"), settings)
    assert brief.lora.ref == "acme-style@champion" and brief.lora.scale == 0.8
    summary = campaign(str(brief.path), settings)
    assert (summary["clips_generated"], summary["jobs_failed"]) == (1, 0)
    engine = open_catalog(settings.catalog_db_url)
    with session_scope(engine) as s:
        job = s.scalars(select(GenerationJob)).one()
        assert job.params["lora"] | {"path": ""} == {"ref": "acme-style@champion", "scale": 0.8, "path": "",
                                                      "sha256": lora.sha256, "registry": "lora-acme-style/1",
                                                      "lora_version_id": 1}
        brief_row = s.scalars(select(Brief)).one()
        assert brief_row.lora_version_id == s.scalars(select(LoraVersion)).one().id
        chain = lineage(s, f"job:{job.id}")
        # a LoRA on a base it was not trained for is refused, with the reason
        other = ResolvedModel("wan-t2v", 2, "wan-tiny-large", "/x", "f" * 64, True)
        with pytest.raises(ModelRefError, match="trained on wan-t2v/1"):
            brand_lora.freeze_lora(s, brief_row.id, [other], LoraRegistry(settings.mlflow_uri).resolve)
    lt = chain["lora_training"]
    assert lt["lora_version"]["registry_name"] == "lora-acme-style" and lt["dataset"]["name"] == "acme-style"
    assert sorted(a["filename"] for a in lt["assets"]) == ["pulse.mp4", "shot-0.png", "shot-1.png"]
    assert all(len(a["sha256"]) == 64 and a["owner"] and a["licence"] for a in lt["assets"])

    # revoke: asset, dataset version and LoRA version recalled; what was made with the LoRA listed; audited
    sha = lt["assets"][0]["sha256"]
    r = run_cli(settings, "personalize", "revoke", sha[:12], "--reason", "licence ACME-LIC-0 ended", "--json")
    assert r.exit_code == 0, r.output
    found = json.loads(r.output)
    assert (found["datasets"], found["loras"]) == (["acme-style@1"], ["lora-acme-style/1"])
    assert [c["job_id"] for c in found["clips"]] == [job.id]
    with session_scope(engine) as s:
        assert s.scalars(select(LoraVersion)).one().status == "recalled"
        assert s.scalars(select(TrainingDataset)).one().status == "recalled"
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "training_asset.recalled")).one()
        assert event.payload["loras"] == ["lora-acme-style/1"] and event.payload["clips"] == 1
    # a recalled LoRA: refused by validation (registry), by every plan (catalog), and for training again
    with pytest.raises(BriefInvalid, match="recalled"):
        validate(_brief(tmp_path, "lora-again"), settings)
    with pytest.raises(ModelRefError, match="recalled"):
        resolve_models(settings, brief_row.id, "acme")
    with pytest.raises(ModelRefError, match="recalled"):
        personalize.train_lora(settings, "acme-style", "acme-style@1", "wan-t2v@champion",
                               dataclasses.replace(TrainConfig(), steps=2))
    r = run_cli(settings, "personalize", "dataset", "add", "acme-style", str(tmp_path / "ds"))
    assert r.exit_code == 2 and "was recalled" in r.output
