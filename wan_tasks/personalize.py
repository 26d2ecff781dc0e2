"""Personalisation stages: a brand's training set added as a governed dataset version, a LoRA trained on it,
tracked and registered, and the recall of everything a withdrawn asset touched.

``add_dataset`` reads the manifest (governance.datasets), measures each file (adapters.training_media), runs the
suite; any problem → :class:`governance.datasets.DatasetInvalid` and nothing is written. Accepted files are stored
by sha256 under ``<home>/training-assets/`` and a new immutable dataset version recorded (the previous version's
members plus the new ones); the same content again gives back the version that holds it.

``train_lora`` caches latents and prompt embeddings once per (dataset version, base weights, size), runs the
trainer in-process or on N processes through ``accelerate launch``, logs the run to MLflow (loss curve, learning
rate, step time, the validation contact sheet, the dataset version and every asset hash, the base model version)
and registers the LoRA as a version of ``lora-<name>`` tagged with its base and dataset; the run folder is keyed
on everything that determines the weights, so the same command after a kill resumes from the last checkpoint.

``revoke`` marks an asset recalled with every dataset and LoRA version it reached (catalog.training), tags those
LoRA versions recalled in the registry, and lists every clip, rendition and publication made with them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from adapters import training, training_media
from adapters.lora_registry import LORA_FILE, LoraRegistry
from adapters.registry import ResolvedModel
from adapters.tracking import _experiment_id, mlflow_client
from catalog import audit
from catalog.db import open_catalog, session_scope
from catalog.models import LoraVersion, TrainingAsset, TrainingDataset, TrainingDatasetAsset
from catalog.training import RECALLED, dataset_version, members, next_version, recall_asset
from core import heavy
from core.files import atomic_path, sha256_file
from core.settings import Settings
from governance.brief_schema import Problem
from governance.datasets import (NAME_RE, DatasetInvalid, Rules, dataset_digest, manifest_path, parse_dataset_ref,
                                 read_manifest, table, validate_table)
from governance.model_refs import ModelRefError, parse_ref
from wan_tasks.intake import registry_for

EXPERIMENT = "wanflow-personalize"
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class DatasetAdded:
    name: str
    version: int
    created: bool
    assets: int
    new_assets: int
    sha256: str


def _store(settings: Settings, src: Path, sha: str) -> Path:
    dest = settings.home_dir / "training-assets" / sha[:2] / f"{sha}{src.suffix.lower()}"
    if not dest.exists():
        with atomic_path(dest) as tmp:
            shutil.copyfile(src, tmp)
    return dest


def add_dataset(settings: Settings, name: str, source: Path, rules: Rules = Rules(), actor: str = "cli") -> DatasetAdded:
    """Validate the manifest at ``source`` and record a new dataset version of ``name`` (nothing on any problem)."""
    mpath = str(manifest_path(source))
    if not NAME_RE.match(name or ""):
        raise DatasetInvalid([Problem(mpath, None, "name", f"dataset name {name!r}: lower-case letters, digits and "
                                                           "'-', 2 to 63 characters (e.g. acme-style)")])
    rows, problems = read_manifest(source)
    if problems:
        raise DatasetInvalid(problems)
    facts = [training_media.probe(r.media) for r in rows]
    problems = validate_table(table(rows, facts, rules), mpath, rules)
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        shas = [f["sha256"] for f in facts if f.get("readable")]
        recalled = {a.sha256: a for a in s.scalars(select(TrainingAsset).where(TrainingAsset.sha256.in_(shas),
                                                                                TrainingAsset.status == RECALLED))}
        problems += [Problem(mpath, r.row, "file", f"this content was recalled ({recalled[f['sha256']].recalled_reason}); "
                                                   "it may not be trained on again")
                     for r, f in zip(rows, facts, strict=True) if f.get("sha256") in recalled]
        if problems:
            raise DatasetInvalid(sorted(set(problems), key=lambda p: (p.row or 0, p.field)))
        try:
            previous = dataset_version(s, name)
            kept = [(a, c) for a, c in members(s, previous.id)]
        except LookupError:
            previous, kept = None, []
        have = {a.sha256 for a, _ in kept}
        new = [(r, f) for r, f in zip(rows, facts, strict=True) if f["sha256"] not in have]
        digest = dataset_digest([(a.sha256, c) for a, c in kept] + [(f["sha256"], r.caption) for r, f in new])
        if previous is not None and (not new or previous.sha256 == digest):
            return DatasetAdded(name, previous.version, False, len(kept), 0, previous.sha256)
        assets = [a for a, _ in kept]
        for r, f in new:
            row = s.scalar(select(TrainingAsset).where(TrainingAsset.sha256 == f["sha256"]))
            if row is None:
                row = TrainingAsset(sha256=f["sha256"], kind=f["kind"], filename=r.file,
                                    uri=str(_store(settings, r.media, f["sha256"])), width=f["width"],
                                    height=f["height"], frames=f["frames"], owner=r.owner, licence=r.licence,
                                    expires=r.expires, allowed_use=r.allowed_use)
                s.add(row)
                s.flush()
            assets.append(row)
        captions = [c for _, c in kept] + [r.caption for r, _ in new]
        ds = TrainingDataset(name=name, version=next_version(s, name), sha256=digest, manifest=mpath)
        s.add(ds)
        s.flush()
        for i, (a, c) in enumerate(zip(assets, captions, strict=True)):
            s.add(TrainingDatasetAsset(dataset_id=ds.id, asset_id=a.id, caption=c, position=i))
        audit.append(s, actor, "dataset.version_created", "training_dataset", ds.id,
                     {"name": name, "version": ds.version, "sha256": digest, "assets": [a.sha256 for a in assets],
                      "manifest": mpath})
        return DatasetAdded(name, ds.version, True, len(assets), len(new), digest)


# --- training ---------------------------------------------------------------------------------------------------


def _run_key(dataset_sha: str, base_sha: str, cfg: training.TrainConfig) -> str:
    blob = json.dumps({"dataset": dataset_sha, "base": base_sha, "config": asdict(cfg)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def launch(job_file: Path, processes: int, accelerate_config: Path | None = None, cpu: bool | None = None) -> None:
    """Run the trainer on ``processes`` processes, each ``python -m adapters.training JOB.json``: on GPUs through
    ``accelerate launch`` (DDP; FSDP or DeepSpeed from an accelerate config file), on CPU through ``torchrun``
    (accelerate's own launcher runs one CPU process unless MPI is installed; its Accelerator then joins the
    ``torchrun`` processes with the gloo backend). Raises on a failed launch."""
    cpu = (not heavy.torch().cuda.is_available()) if cpu is None else cpu
    port = str(29500 + os.getpid() % 1000)
    if cpu and not accelerate_config:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes), "--nnodes", "1",
               "--master_addr", "127.0.0.1", "--master_port", port]
    else:
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(processes),
               "--num_machines", "1", "--main_process_port", port]
        if accelerate_config:
            cmd += ["--config_file", str(accelerate_config)]
        else:
            cmd += ["--mixed_precision", "bf16", "--dynamo_backend", "no"] + (["--multi_gpu"] if processes > 1 else [])
    cmd += ["-m", "adapters.training", str(job_file)]
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
                        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    done = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"training launch failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-4000:]}")


def train_lora(settings: Settings, name: str, dataset_ref: str, base_ref: str = "wan-t2v@champion",
               cfg: training.TrainConfig = training.TrainConfig(), processes: int = 1,
               accelerate_config: Path | None = None, alias: str | None = None, on_step: training.OnStep | None = None,
               actor: str = "cli") -> dict[str, Any]:
    """Train the LoRA ``name`` on ``dataset_ref`` over ``base_ref``; track it in MLflow and register it as
    ``lora-<name>`` (alias ``champion`` for the first version, else ``challenger``, or ``alias``)."""
    if not NAME_RE.match(name or ""):
        raise ModelRefError(f"LoRA name {name!r}: lower-case letters, digits and '-' (e.g. acme-style)")
    ds_name, ds_version = parse_dataset_ref(dataset_ref)
    engine = open_catalog(settings.catalog_db_url)
    with session_scope(engine) as s:
        ds = dataset_version(s, ds_name, ds_version)
        if ds.status == RECALLED:
            raise ModelRefError(f"dataset {ds.name}@{ds.version} is recalled ({ds.recalled_reason}): it may not be "
                                "trained on")
        items = [(Path(a.uri), c, a.sha256) for a, c in members(s, ds.id)]
        ds_info = {"name": ds.name, "version": ds.version, "sha256": ds.sha256, "id": ds.id}
    registry = registry_for(settings)
    registry.ensure_bootstrap(parse_ref(base_ref)[0])
    base: ResolvedModel = registry.resolve(base_ref)
    root = settings.home_dir / "training"
    cache = training.build_cache(Path(base.source), [(p, c) for p, c, _ in items],
                                 root / "cache" / f"{training.cache_key(ds_info['sha256'], base.weights_sha256, cfg)}.pt",
                                 cfg, validation_prompts=[c for _, c, _ in items[:2]])
    out = root / "runs" / f"{name}-{_run_key(ds_info['sha256'], base.weights_sha256, cfg)}"
    out.mkdir(parents=True, exist_ok=True)
    job = training.TrainJob(base=str(base.source), cache=str(cache), out=str(out), config=cfg)
    if processes > 1 or accelerate_config:
        job_file = out / "job.json"
        job_file.write_text(job.to_json())
        launch(job_file, processes, accelerate_config)
        result = json.loads((out / "result.json").read_text())
    else:
        result = training.train(job, on_step=on_step)
    sheet = training.validation_sheet(out, out / "validation-contact-sheet.png")
    run_id = _log_run(settings, name, ds_info, items, base, cfg, result, [p for p in (sheet, out / "result.json") if p])
    stand_in = base.stand_in
    tags = {"base_model": base.ref, "base_weights_sha256": base.weights_sha256, "base_variant": base.variant,
            "dataset": f"{ds_info['name']}@{ds_info['version']}", "dataset_sha256": ds_info["sha256"],
            "mlflow_run_id": run_id, "stand_in": str(stand_in).lower(), "rank": str(cfg.rank), "steps": str(cfg.steps)}
    lreg = LoraRegistry(settings.mlflow_uri)
    version, created = lreg.register(name, out / "lora", tags, description=(
        f"brand LoRA {name} on {base.ref}" + (" (stand-in base: random weights, not a real Wan model)" if stand_in else "")))
    registry_name = f"lora-{name}"
    if alias or created:
        alias = alias or ("challenger" if "champion" in lreg.aliases(registry_name) else "champion")
        lreg.set_alias(registry_name, alias, version)
    else:  # the same weights again (a re-run of a finished training): report the alias they already have
        alias = next((a for a, v in sorted(lreg.aliases(registry_name).items()) if v == version), None)
    with session_scope(engine) as s:
        row = s.scalar(select(LoraVersion).where(LoraVersion.registry_name == registry_name,
                                                 LoraVersion.version == version))
        if row is None:
            row = LoraVersion(registry_name=registry_name, version=version, dataset_id=ds_info["id"],
                              base_registry_name=base.registry_name, base_version=base.version,
                              base_weights_sha256=base.weights_sha256, path=str(out / "lora"),
                              weights_sha256=sha256_file(out / "lora" / LORA_FILE),
                              params=asdict(cfg) | {"final_loss": result["loss"][-1], "processes": result["world_size"]},
                              mlflow_run_id=run_id, stand_in=stand_in)
            s.add(row)
            s.flush()
            audit.append(s, actor, "lora.registered", "lora_version", row.id,
                         {"version": f"{registry_name}/{version}", "dataset": tags["dataset"], "base": base.ref,
                          "weights_sha256": row.weights_sha256, "mlflow_run_id": run_id})
    return {"lora": f"{registry_name}/{version}", "alias": alias, "created": created, "run_dir": str(out),
            "mlflow_run_id": run_id, "dataset": tags["dataset"], "base": base.ref, "stand_in": stand_in,
            "loss_first": result["loss"][0], "loss_last": result["loss"][-1], "resumed_from": result["resumed_from"],
            "step_time_s_median": result["step_time_s_median"], "contact_sheet": str(sheet) if sheet else None}


def _log_run(settings: Settings, name: str, ds: dict[str, Any], items: list[tuple[Path, str, str]],
             base: ResolvedModel, cfg: training.TrainConfig, result: dict[str, Any], artifacts: list[Path]) -> str:
    """One MLflow run per training: params, the loss/lr/step-time curves, the dataset's asset hashes, artifacts."""
    client = mlflow_client(settings.mlflow_uri)
    Metric = heavy.mlflow().entities.Metric
    run = client.create_run(_experiment_id(client, settings.mlflow_artifacts_dir, EXPERIMENT), run_name=f"lora-{name}",
                            tags={"wanflow.lora": name, "wanflow.dataset": f"{ds['name']}@{ds['version']}",
                                  "wanflow.dataset_sha256": ds["sha256"], "wanflow.base_model": base.ref,
                                  "wanflow.base_weights_sha256": base.weights_sha256,
                                  "wanflow.stand_in": str(base.stand_in).lower()})
    rid = run.info.run_id
    for k, v in asdict(cfg).items():
        client.log_param(rid, k, v if not isinstance(v, tuple) else ",".join(v))
    client.log_param(rid, "processes", result["world_size"])
    metrics = [Metric(k, float(v), 0, step) for k in ("loss", "lr", "step_time_s")
               for step, v in enumerate(result[k], 1)]
    for i in range(0, len(metrics), 900):
        client.log_batch(rid, metrics=metrics[i:i + 900])
    client.log_dict(rid, {"dataset": f"{ds['name']}@{ds['version']}", "sha256": ds["sha256"],
                          "assets": [{"sha256": sha, "caption": c} for _, c, sha in items]}, "dataset.json")
    for path in artifacts:
        client.log_artifact(rid, str(path))
    client.set_terminated(rid)
    return rid


# --- recall -------------------------------------------------------------------------------------------------------


def revoke(settings: Settings, asset_ref: str, reason: str, actor: str = "cli") -> dict[str, Any]:
    """Recall a training asset: catalog marks and listing (audited), then the registry tags of its LoRA versions."""
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        found = recall_asset(s, asset_ref, reason, actor)
    if found["loras"]:
        lreg = LoraRegistry(settings.mlflow_uri)
        for ref in found["loras"]:
            registry_name, version = ref.rsplit("/", 1)
            lreg.recall(registry_name, int(version), f"asset {found['asset']['sha256'][:12]}… withdrawn: {reason}")
    return found
