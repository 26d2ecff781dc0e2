"""Evaluation and rollout of a brand LoRA (issue 15) through `rollout evaluate`: two arms on the same base that differ
only by their LoRA (old vs new version, or with vs without), QC / brand safety / palette match per arm, brand
likeness measured with an image-embedding model or "not run" with the reason, and promotion of the LoRA's
`champion` only through the gates. SQLite and PostgreSQL (the `catalog` fixture); tiny LoRAs (a few steps on the
stand-in) made on the spot with tests/personalize_helpers.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import EXAMPLES
from personalize_helpers import image, make_dataset, run_cli
from sqlalchemy import select

from catalog.db import open_catalog, session_scope
from catalog.models import AliasMove, AuditEvent, GenerationJob, RolloutEvaluation

GOLDEN = """campaign: {name}
brand: acme
model: wan-t2v@champion
defaults: {{num_frames: 5, width: 32, height: 32, variants: 1, formats: ["1:1"], steps: 2, seed: 4}}
items:
  - id: shoe
    prompt: "A red sneaker on a white floor"
"""
POLICY = """name: lora-rollout
gates:
  - {metric: qc_pass_rate, op: ">=", than: champion, margin: -1}
  - {metric: brand_safety_pass_rate, op: ">=", value: 0}
"""


def test_lora_versions_are_evaluated_on_one_base_and_promoted_only_through_the_gates(settings, tmp_path, one_thread):
    from adapters.lora_registry import LoraRegistry
    from adapters.training import TrainConfig
    from flows.rollout import rollout_evaluate
    from governance.model_refs import ModelRefError
    from qc_models import tiny_clip
    from wan_tasks import personalize
    from wan_tasks.rollout import RolloutError, promote
    from wan_tasks.rollout_run import (brand_likeness, check_holdout, check_holdout_unseen, resolve_base,
                                       resolve_lora_arms)

    settings = settings.model_copy(update={"brands_dir": EXAMPLES / "brands"})
    settings.ensure_dirs()
    personalize.add_dataset(settings, "acme-style", make_dataset(tmp_path / "ds", images=2, clip=False))
    v1 = personalize.train_lora(settings, "acme-style", "acme-style@1", "wan-t2v@champion",
                                TrainConfig(rank=4, steps=2, lr=1e-3, checkpoint_every=2))
    v2 = personalize.train_lora(settings, "acme-style", "acme-style@1", "wan-t2v@champion",
                                TrainConfig(rank=4, steps=3, lr=3e-3, checkpoint_every=3, seed=1))
    assert (v1["alias"], v2["alias"]) == ("champion", "challenger")  # a later version waits for the gates
    golden, policy = tmp_path / "golden.yaml", tmp_path / "policy.yaml"
    golden.write_text(GOLDEN.format(name="golden-lora"), "utf-8")
    policy.write_text(POLICY, "utf-8")

    # bad input: both or neither of --challenger and --lora; a LoRA against itself; an empty holdout folder
    r = run_cli(settings, "rollout", "evaluate", "--challenger", "wan-t2v/1", "--lora", "acme-style@challenger",
             "--golden", str(golden))
    assert r.exit_code == 2 and "exactly one" in r.output, r.output
    base = resolve_base(settings, "wan-t2v@champion")
    with pytest.raises(ModelRefError, match="nothing to compare"):
        resolve_lora_arms(settings, base, "acme-style@champion")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelRefError, match="held-out brand images"):
        check_holdout(str(tmp_path / "empty"))

    # new LoRA vs old LoRA, same base, same prompts and seeds
    ev = rollout_evaluate(None, str(golden), str(policy), settings=settings, lora="acme-style@challenger")
    assert (ev["model"], ev["champion_version"], ev["challenger_version"], ev["base"]) == (
        "lora-acme-style", 1, 2, "wan-t2v/1")
    assert ev["passed"] is True and "lora-acme-style/2" in ev["labels"]["challenger"]
    m = ev["metrics"]
    for arm in ("champion", "challenger"):
        assert m[arm]["clips_checked"] == 1 and 0 <= m[arm]["qc_pass_rate"] <= 1
        assert 0 <= m[arm]["palette_match"] <= 1  # the acme palette, measured per arm
        assert m[arm]["brand_likeness"] is None
        assert m[arm]["brand_likeness_status"] == "not run: no held-out brand images given (--holdout FOLDER)"
    engine = open_catalog(settings.catalog_db_url)
    with session_scope(engine) as s:
        jobs = {j.arm: j for j in s.scalars(select(GenerationJob))}
        assert set(jobs) == {"champion", "challenger"}
        assert jobs["champion"].model_version_id == jobs["challenger"].model_version_id  # one base
        assert jobs["champion"].seed == jobs["challenger"].seed
        assert (jobs["champion"].params["lora"]["registry"], jobs["challenger"].params["lora"]["registry"]) == (
            "lora-acme-style/1", "lora-acme-style/2")
        assert jobs["champion"].params["lora"]["sha256"] != jobs["challenger"].params["lora"]["sha256"]
        assert jobs["challenger"].params["lora"]["lora_version_id"] is not None  # lineage LoRA -> dataset -> assets
        job_ids = {arm: [j.id] for arm, j in jobs.items()}

    # brand likeness, when an image-embedding model and held-out images are given: a number per arm
    holdout = tmp_path / "holdout"
    holdout.mkdir()
    for i in range(2):
        image(holdout / f"held-{i}.png", i + 2)
    arms = resolve_lora_arms(settings, base, "acme-style@challenger")
    assert check_holdout_unseen(engine, arms, check_holdout(str(holdout))) is None  # not in the training set
    image(holdout / "held-9.png", 1)  # the same picture as the training set's shot-1.png: not held out
    with pytest.raises(ModelRefError, match=r"trained on: held-9.png by lora-acme-style/\d \(dataset acme-style@1\)"):
        check_holdout_unseen(engine, arms, check_holdout(str(holdout)))
    (holdout / "held-9.png").unlink()
    clip_settings = settings.model_copy(update={"clip_model": tiny_clip(tmp_path / "clip")})
    likeness = brand_likeness(engine, clip_settings, str(holdout), job_ids)
    for arm in ("champion", "challenger"):
        assert -1 <= likeness[arm]["brand_likeness"] <= 1
        assert likeness[arm]["brand_likeness_status"] == "run: 1 clips vs 2 images"
    assert brand_likeness(engine, settings, str(holdout), job_ids)["challenger"]["brand_likeness_status"] == (
        "not run: no image-embedding model configured (WANFLOW_CLIP_MODEL)")

    # promotion of the LoRA through the gates (CLI), audited; then a roll back
    r = run_cli(settings, "rollout", "promote", "--model", "lora-acme-style")
    assert r.exit_code == 0, r.output
    lreg = LoraRegistry(settings.mlflow_uri)
    assert lreg.aliases("lora-acme-style")["champion"] == 2
    with session_scope(engine) as s:
        move = s.scalars(select(AliasMove).where(AliasMove.registry_name == "lora-acme-style")).one()
        assert (move.action, move.from_version, move.to_version, move.evaluation_id) == ("promote", 1, 2, ev["id"])
        assert s.scalars(select(AuditEvent).where(AuditEvent.action == "model.alias_promote")).one()

    # with vs without: version 0 is the base alone; such an evaluation never promotes over a LoRA champion
    bare = rollout_evaluate(None, str(golden), str(policy), settings=settings, lora="acme-style@champion",
                            against="none")
    assert (bare["champion_version"], bare["challenger_version"]) == (0, 2)
    assert "without a LoRA" in bare["labels"]["champion"]
    with session_scope(engine) as s:
        arms = {arm: s.get(GenerationJob, i[0]).params.get("lora") for arm, i in
                s.get(RolloutEvaluation, bare["id"]).metrics["job_ids"].items()}
        assert arms["champion"] is None and arms["challenger"]["registry"] == "lora-acme-style/2"
        with pytest.raises(RolloutError):
            promote(s, lreg, "lora-acme-style", "tester")
    r = run_cli(settings, "rollout", "status", "--model", "lora-acme-style", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["id"] == bare["id"], r.output
    r = run_cli(settings, "rollout", "rollback", "--model", "lora-acme-style", "--reason", "test")
    assert r.exit_code == 0 and lreg.aliases("lora-acme-style")["champion"] == 1, r.output
    assert Path(ev["report"]).is_file()
