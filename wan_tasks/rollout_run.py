"""A rollout evaluation run: the champion and challenger resolved, the MLflow evaluation run and the catalog
run opened, the evaluation recorded with its metrics per arm (and a blind A/B round), then published: gates
recomputed, HTML report and JSON rewritten, both logged to MLflow, the challenger's version tagged.

A LoRA evaluation (``--lora acme-style@challenger [--against acme-style@champion|none]``) compares two arms on the
same base version that differ only by their LoRA: the evaluation is filed under the LoRA's registry model
(``lora-acme-style``), its champion version ``0`` meaning "without a LoRA", so its gates guard the LoRA's ``champion``
alias exactly as they guard a base model's. Brand likeness (each arm's clips against held-out brand images, cosine
similarity of image embeddings) is measured when an image-embedding model (``WANFLOW_CLIP_MODEL``) and the held-out
images are given, else it is "not run" with the reason.

The statistics, gates, promotion and rollback themselves are in :mod:`wan_tasks.rollout`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from adapters import rollout_report, tracking
from adapters.lora_registry import LoraRegistry, ResolvedLora
from adapters.media import read_frame
from adapters.qc_models import HFClip
from adapters.registry import ResolvedModel
from catalog import audit, claims, training
from catalog.db import session_scope
from catalog.models import Asset, AssetKind, GenerationJob, LoraVersion, PromptItem, RolloutEvaluation
from catalog.runs import open_run
from core.files import sha256_file
from core.settings import Settings
from governance.brief_schema import ValidBrief
from governance.model_refs import ModelRefError, parse_ref
from wan_tasks import rollout
from wan_tasks.intake import registry_for


@dataclass(frozen=True)
class EvaluationRun:
    """One rollout evaluation: the golden brief, the pair compared, the policy and the runs it is filed under."""

    golden: ValidBrief
    champion: ResolvedModel
    challenger: ResolvedModel
    policy_file: str | None
    policy: rollout.LoadedPolicy | None
    ab: bool
    run_id: int
    mlflow_run_id: str
    lora: LoraArms | None = None  # a LoRA evaluation: both arms on `champion` (the base), differing by LoRA
    holdout: str | None = None  # held-out brand images for brand likeness


@dataclass(frozen=True)
class LoraArms:
    """A LoRA evaluation's two arms on one base version: the challenger LoRA, and the champion LoRA or none."""

    registry_name: str  # lora-acme-style
    champion: ResolvedLora | None  # None: the base without a LoRA
    challenger: ResolvedLora
    scale: float = 1.0

    @property
    def versions(self) -> dict[str, int]:
        return {"champion": self.champion.version if self.champion else 0, "challenger": self.challenger.version}

    def label(self, arm: str, base: ResolvedModel) -> str:
        lora = self.champion if arm == "champion" else self.challenger
        return f"{base.label} + {lora.ref} (scale {self.scale:g})" if lora else f"{base.label}, without a LoRA"

    def refs(self) -> dict[str, str]:
        return {arm: (lora.ref if lora else "none") for arm, lora in (("champion", self.champion),
                                                                       ("challenger", self.challenger))}

    def job_lora(self, session: Session, arm: str) -> dict | None:
        """The arm's LoRA frozen as a job carries it (file, digest, scale, registry version and catalog row)."""
        lora = self.champion if arm == "champion" else self.challenger
        if lora is None:
            return None
        row = session.scalar(select(LoraVersion).where(LoraVersion.registry_name == lora.registry_name,
                                                       LoraVersion.version == lora.version))
        if row is None:
            raise ModelRefError(f"LoRA {lora.ref} is in the registry but not in this catalog: its training data "
                                "cannot be traced here")
        return {"ref": lora.resolved_from, "scale": self.scale, "path": lora.path, "sha256": lora.sha256,
                "registry": lora.ref, "lora_version_id": row.id}


def policy_for(settings: Settings, policy_path: str | None) -> tuple[str | None, rollout.LoadedPolicy | None]:
    """The policy file named (or WANFLOW_ROLLOUT_POLICY) and its gates; a bad policy fails here, before any work."""
    policy_file = policy_path or (str(settings.rollout_policy) if settings.rollout_policy else None)
    return policy_file, rollout.load_policy(Path(policy_file)) if policy_file else None


def resolve_pair(settings: Settings, champion_ref: str, challenger_ref: str) -> tuple[ResolvedModel, ResolvedModel]:
    """Champion and challenger from the registry: two versions of the same model."""
    registry = registry_for(settings)
    registry.ensure_bootstrap(parse_ref(champion_ref)[0])
    champ, chall = registry.resolve(champion_ref), registry.resolve(challenger_ref)
    if champ.registry_name != chall.registry_name:
        raise ModelRefError(f"challenger {challenger_ref!r} is a {chall.registry_name} version; the champion "
                            f"{champion_ref!r} is {champ.registry_name}")
    if champ.version == chall.version:
        raise ModelRefError(f"challenger {challenger_ref!r} is the champion itself ({champ.ref}): nothing to compare")
    return champ, chall


def resolve_base(settings: Settings, ref: str) -> ResolvedModel:
    """The one base version both arms of a LoRA evaluation run on."""
    registry = registry_for(settings)
    registry.ensure_bootstrap(parse_ref(ref)[0])
    return registry.resolve(ref)


def job_lora_arms(engine: Engine, arms: LoraArms) -> dict[str, dict | None]:
    """Each arm's LoRA frozen as its jobs carry it (None: the base alone)."""
    with session_scope(engine) as s:
        return {arm: arms.job_lora(s, arm) for arm in rollout.ARMS}


def resolve_lora_arms(settings: Settings, base: ResolvedModel, lora_ref: str, against: str | None = None,
                      scale: float = 1.0) -> LoraArms:
    """The challenger LoRA and what it is compared with on the same base: ``against`` another version of the same
    LoRA (default its ``champion``) or ``none`` (the base alone). Each must fit the base (by weights digest)."""
    registry = LoraRegistry(settings.mlflow_uri)
    chall = registry.resolve(lora_ref)
    name = chall.registry_name.removeprefix("lora-")
    against = against or f"{name}@champion"
    champ = None if against.strip().lower() == "none" else registry.resolve(against)
    if champ is not None and champ.registry_name != chall.registry_name:
        raise ModelRefError(f"--against {against!r} is a {champ.registry_name} version; --lora {lora_ref!r} is "
                            f"{chall.registry_name}: compare versions of one LoRA, or against none")
    if champ is not None and champ.version == chall.version:
        raise ModelRefError(f"--lora {lora_ref!r} is {against!r} itself ({chall.ref}): nothing to compare "
                            "(evaluate a challenger, or --against none)")
    for lora in (chall, champ):
        if lora is not None:
            lora.check_base(base.registry_name, base.version, base.weights_sha256)
    return LoraArms(chall.registry_name, champ, chall, scale)


def check_holdout(holdout: str | None) -> list[Path]:
    """The held-out brand images (a folder of PNG/JPEG/WebP); an empty or missing folder is refused."""
    if not holdout:
        return []
    folder = Path(holdout)
    images = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp")) \
        if folder.is_dir() else []
    if not images:
        raise ModelRefError(f"{holdout}: --holdout must be a folder of held-out brand images (PNG, JPEG, WebP)")
    return images


def check_holdout_unseen(engine: Engine, arms: LoraArms, images: list[Path]) -> None:
    """Refuse held-out images that either arm's LoRA was trained on (by content): brand likeness measured on its
    own training data would reward memorising it."""
    loras = [(lora.registry_name, lora.version) for lora in (arms.champion, arms.challenger) if lora is not None]
    digests = {sha256_file(p): p for p in images}
    with session_scope(engine) as s:
        seen = training.trained_on(s, loras, list(digests))
    if seen:
        raise ModelRefError("--holdout images must be held out, but these were trained on: " + "; ".join(
            f"{digests[sha].name} by {where}" for sha, where in sorted(seen.items(), key=lambda kv: digests[kv[0]])))


def brand_likeness(engine: Engine, settings: Settings, holdout: str | None,
                   jobs: dict[str, list[int]]) -> dict[str, dict[str, Any]]:
    """Per arm: mean cosine similarity of each raw clip's middle frame to the centroid of the held-out brand images,
    in the configured image-embedding model's space; else ``None`` and "not run" with the reason."""
    why = ("no held-out brand images given (--holdout FOLDER)" if not holdout else
           "no image-embedding model configured (WANFLOW_CLIP_MODEL)" if not settings.clip_model else None)
    if why:
        return {arm: {"brand_likeness": None, "brand_likeness_status": f"{rollout.NOT_RUN}: {why}"} for arm in jobs}
    clip = HFClip(Path(settings.clip_model), getattr(settings, "qc_device", "cpu"))
    images = check_holdout(holdout)
    ref = clip.image_features([np.asarray(Image.open(p).convert("RGB")) for p in images]).mean(axis=0)
    ref = ref / max(float(np.linalg.norm(ref)), 1e-12)
    out = {}
    with session_scope(engine) as s:
        for arm, ids in jobs.items():
            uris = s.scalars(select(Asset.uri).where(Asset.job_id.in_(ids), Asset.kind == AssetKind.raw_clip)).all()
            if not uris:
                out[arm] = {"brand_likeness": None, "brand_likeness_status": f"{rollout.NOT_RUN}: no clip"}
                continue
            f = clip.image_features([np.asarray(read_frame(Path(u)).convert("RGB")) for u in uris])
            out[arm] = {"brand_likeness": round(float((f @ ref).mean()), 4),
                        "brand_likeness_status": f"run: {len(uris)} clips vs {len(images)} images"}
    return out


def open_evaluation_run(engine: Engine, settings: Settings, golden: ValidBrief, champ: ResolvedModel,
                        chall: ResolvedModel, policy_file: str | None, policy: rollout.LoadedPolicy | None,
                        ab: bool, flow_run_id: str | None = None, lora: LoraArms | None = None,
                        holdout: str | None = None) -> EvaluationRun:
    """Start the MLflow evaluation run, then the catalog run of the golden campaign."""
    refs = {"champion": champ.ref, "challenger": chall.ref}
    labels = {"champion": champ.label, "challenger": chall.label}
    extra: dict[str, Any] = {}
    if lora is not None:
        refs = {arm: f"{champ.ref} + {r}" for arm, r in lora.refs().items()}
        labels = {arm: lora.label(arm, champ) for arm in refs}
        extra = {"lora": lora.registry_name, "lora_scale": lora.scale}
    mlflow_run_id = tracking.start_run(
        settings.mlflow_uri, settings.mlflow_artifacts_dir, golden.campaign, experiment=tracking.ROLLOUT_EXPERIMENT,
        run_name=f"{refs['challenger']} vs {refs['champion']}",
        params={"champion": refs["champion"], "challenger": refs["challenger"], "champion_variant": champ.variant,
                "challenger_variant": chall.variant, "golden": str(golden.path), "golden_sha256": golden.sha256,
                "policy": policy_file or "none", "gpu_price_per_hour": settings.gpu_price_per_hour, "ab_round": ab,
                "holdout": holdout or "none", **extra},
        tags={"wanflow.kind": "rollout-evaluation", "wanflow.champion_label": labels["champion"],
              "wanflow.challenger_label": labels["challenger"],
              "wanflow.stand_in": str(champ.stand_in or chall.stand_in).lower()})
    with session_scope(engine) as s:
        run_id = open_run(s, golden.campaign, "rollout-evaluate", flow_run_id, mlflow_run_id)
    return EvaluationRun(golden, champ, chall, policy_file, policy, ab, run_id, mlflow_run_id, lora, holdout)


def record_evaluation(engine: Engine, settings: Settings, run: EvaluationRun, jobs: dict[str, list[int]]) -> int:
    """The evaluation row: each arm's metrics over its jobs, the A/B round (if asked) and the gates; audited."""
    champ, chall, golden, policy = run.champion, run.challenger, run.golden, run.policy
    likeness = brand_likeness(engine, settings, run.holdout, jobs)
    registry_name, versions = champ.registry_name, {"champion": champ.version, "challenger": chall.version}
    labels = {"champion": champ.label, "challenger": chall.label}
    if run.lora is not None:
        registry_name, versions = run.lora.registry_name, run.lora.versions
        labels = {arm: run.lora.label(arm, champ) for arm in labels}
    with session_scope(engine) as s:
        metrics = {arm: {**rollout.arm_metrics(s, ids, settings.gpu_price_per_hour), **likeness[arm]}
                   for arm, ids in jobs.items()}
        ev = RolloutEvaluation(
            registry_name=registry_name, champion_version=versions["champion"],
            challenger_version=versions["challenger"],
            campaign_id=claims.campaign_id(s.connection(), golden.campaign), golden_path=str(golden.path.resolve()),
            golden_sha256=golden.sha256,
            policy_path=str(Path(run.policy_file).resolve()) if run.policy_file else None,
            policy_sha256=policy.sha256 if policy else None, mlflow_run_id=run.mlflow_run_id,
            metrics={**metrics, "job_ids": jobs, "labels": labels,
                     **({"base": champ.ref} if run.lora is not None else {})},
            gates=[], passed=None)
        s.add(ev)
        s.flush()
        if run.ab:
            rollout.open_ab_round(s, ev)
        rollout.refresh(s, ev)
        audit.append(s, "rollout", "rollout.evaluated", "rollout_evaluation", ev.id,
                     {"champion": f"{registry_name}/{versions['champion']}",
                      "challenger": f"{registry_name}/{versions['challenger']}", "passed": ev.passed, "gates": ev.gates,
                      "mlflow_run_id": run.mlflow_run_id})
        return ev.id


def evaluation_dict(ev: RolloutEvaluation) -> dict[str, Any]:
    """The evaluation as `wanflow rollout status --json` prints it."""
    return {"id": ev.id, "model": ev.registry_name, "champion_version": ev.champion_version,
            "challenger_version": ev.challenger_version, "golden_path": ev.golden_path,
            "golden_sha256": ev.golden_sha256, "policy_path": ev.policy_path, "passed": ev.passed,
            "gates": ev.gates, "ab_round": ev.ab_round, "mlflow_run_id": ev.mlflow_run_id,
            "report": ev.report_uri, "labels": ev.metrics.get("labels", {}),
            "metrics": {k: v for k, v in ev.metrics.items() if k not in ("job_ids", "labels", "base")},
            "base": ev.metrics.get("base"),
            "created_at": ev.created_at.isoformat()}


def clip_strips(session: Session, ev: RolloutEvaluation) -> list[tuple[str, str, str]]:
    """(golden item, arm, raw clip path) of each clip of the evaluation, each item's champion first."""
    strips = []
    for arm in rollout.ARMS:
        ids = ev.metrics["job_ids"][arm]
        for key, uri in session.execute(
                select(PromptItem.item_key, Asset.uri)
                .join(GenerationJob, GenerationJob.item_id == PromptItem.id)
                .join(Asset, (Asset.job_id == GenerationJob.id) & (Asset.kind == AssetKind.raw_clip))
                .where(GenerationJob.id.in_(ids)).order_by(PromptItem.source_row, GenerationJob.variant_index)):
            strips.append((key, arm, uri))
    return sorted(strips, key=lambda t: (t[0], t[1] != "champion"))


def mlflow_figures(ev: dict[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    """The evaluation's MLflow metrics (each arm's numbers, preference, challenger − champion deltas, gates)
    and tags (preference status, verdict)."""
    m = ev["metrics"]
    metrics: dict[str, float] = {}
    for arm in rollout.ARMS:
        for k, v in m.get(arm, {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                metrics[f"{arm}_{k}"] = float(v)
    for k in ("win_rate", "ci_low", "ci_high", "votes", "wins", "losses", "ties"):
        if m.get("preference", {}).get(k) is not None:
            metrics[f"preference_{k}"] = float(m["preference"][k])
    for k in ("qc_pass_rate", "seconds_per_clip", "cost_per_approved_clip"):
        a, b = m.get("champion", {}).get(k), m.get("challenger", {}).get(k)
        if a is not None and b is not None:
            metrics[f"delta_{k}"] = float(b - a)
    if ev["passed"] is not None:
        metrics["gates_passed"] = float(ev["passed"])
        metrics["gates_failed_or_not_evaluated"] = float(sum(g["status"] != "pass" for g in ev["gates"]))
    tags = {"wanflow.preference": m.get("preference", {}).get("status", rollout.NOT_RUN),
            "wanflow.verdict": "no policy" if ev["passed"] is None else "passed" if ev["passed"] else "not passed"}
    return metrics, tags


def publish_evaluation(engine: Engine, settings: Settings, evaluation_id: int, final: bool = False) -> dict[str, Any]:
    """Recompute preference and gates (votes may have come in), rewrite the report, log both to the MLflow
    evaluation run and tag the challenger's registry version with the verdict."""
    with session_scope(engine) as s:
        ev = rollout.refresh(s, s.get(RolloutEvaluation, evaluation_id))
        strips = clip_strips(s, ev)
        data = evaluation_dict(ev)
        dest = settings.home_dir / "reports" / "rollout" / f"evaluation-{ev.id}.html"
        report, images = rollout_report.write_report(dest, data, strips, settings.locale)
        ev.report_uri = str(report)
        data["report"] = str(report)
    saved = rollout_report.write_data(report.parent / f"evaluation-{data['id']}.json", data)
    metrics, tags = mlflow_figures(data)
    tracking.log_evaluation(settings.mlflow_uri, data["mlflow_run_id"], metrics, tags,
                            [report, saved, *images.values()], final)
    tracking.tag_model_version(  # the challenger's registry version carries its last verdict
        settings.mlflow_uri, data["model"], data["challenger_version"],
        {"last_evaluation": str(data["id"]), "last_evaluation_run": data["mlflow_run_id"],
         "last_evaluation_verdict": "no policy" if data["passed"] is None else str(data["passed"]).lower()})
    return data
