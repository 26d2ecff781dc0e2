"""Intake into the catalog, and planning: brief items × variants → generation jobs.

Both are idempotent: recording the same brief twice changes nothing, and a job is identified by
an idempotency key over everything that determines its clip, so re-planning finds the same jobs.

A job's params carry what its Wan variant's preset adds: the negative prompt Wan recommends when the
item gives none, the flow shift for the resolution, and any size warning; an I2V job carries its
conditioning image and a campaign's brand LoRA its path, scale and sha256 (lineage shows both). A Wan 2.2
A14B job carries the low-noise expert's guidance (``guidance_2``, the preset's: the item's ``guidance`` is the
high-noise expert's), the boundary, and each expert's weight digest as the registry recorded it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.registry import ResolvedModel
from governance.model_refs import ModelRefError
from catalog import audit
from catalog.models import Brief, Campaign, GenerationJob, ItemStatus, JobStatus, ModelVersion, PromptItem
from governance.fit import preset_or_none
from governance.edits import VACE_OPS
from governance.variants import DEFAULT_NEGATIVE_PROMPT
from wan_tasks.edit import record_edit_inputs

if TYPE_CHECKING:
    from governance.brief_schema import ItemSpec, LoraSpec, ValidBrief

GEN_PARAMS = ("width", "height", "num_frames", "fps", "steps", "guidance")


def variant_seed(base_seed: int, campaign: str, item_key: str, variant: int) -> int:
    """Deterministic per campaign/item/variant: the same brief always asks for the same seeds."""
    digest = hashlib.sha256(f"{campaign}/{item_key}/{variant}".encode()).digest()
    return (base_seed + int.from_bytes(digest[:4], "big")) % 2**31


def _item_params(spec: ItemSpec, lora: LoraSpec | None = None, speed: str | None = None) -> dict:
    d = asdict(spec)
    out = {k: d[k] for k in (*GEN_PARAMS, "variants", "formats", "seed")} | {"formats": list(spec.formats)}
    if speed:  # the brief's speed preset (governance/speed.py)
        out["speed"] = speed
    if spec.image:
        out["image"] = {"path": spec.image, "sha256": spec.image_sha256}
    if spec.edit:  # resolved at intake (wan_tasks/edit.py): source, mask, references with their sha256
        out["edit"] = spec.edit
        lora = None  # brand LoRAs are not applied to edits yet
    if lora and lora.ref:  # a registry LoRA: its version, file and digest are frozen at the first plan
        out["lora"] = {"ref": lora.ref, "scale": lora.scale}
    elif lora:
        out["lora"] = {"path": lora.path, "scale": lora.scale, "sha256": lora.sha256}
        if lora.low_noise_path:  # Wan 2.2 A14B: the low-noise expert's own file
            out["lora"] |= {"low_noise_path": lora.low_noise_path, "low_noise_sha256": lora.low_noise_sha256}
    return out


def record_brief(session: Session, brief: ValidBrief) -> int:
    """Upsert campaign, brief version and its items (accepted and rejected, with reasons). Returns brief id."""
    campaign = session.scalar(select(Campaign).where(Campaign.name == brief.campaign))
    if campaign is None:
        campaign = Campaign(name=brief.campaign, brand=brief.brand.name)
        session.add(campaign)
        session.flush()
    row = session.scalar(select(Brief).where(Brief.campaign_id == campaign.id, Brief.sha256 == brief.sha256))
    if row is not None:
        return row.id
    row = Brief(campaign_id=campaign.id, path=str(Path(brief.path).resolve()), sha256=brief.sha256, model_ref=brief.model_ref,
                content=brief.path.read_text(encoding="utf-8"))
    session.add(row)
    session.flush()
    for spec in brief.items:
        session.add(_item_row(row.id, spec, ItemStatus.accepted, None, brief.lora, brief.speed))
    for rej in brief.rejected:
        session.add(_item_row(row.id, rej.item, ItemStatus.rejected, f"{rej.field}: {rej.reason}", brief.lora,
                              brief.speed))
    audit.append(session, "intake", "brief.recorded", "brief", row.id,
                 {"campaign": brief.campaign, "sha256": brief.sha256,
                  "accepted": len(brief.items), "rejected": len(brief.rejected)})
    session.flush()
    return row.id


def _item_row(brief_id: int, spec: ItemSpec, status: ItemStatus, reason: str | None,
              lora: LoraSpec | None = None, speed: str | None = None) -> PromptItem:
    return PromptItem(brief_id=brief_id, item_key=spec.key, source_row=spec.row, prompt=spec.prompt,
                      negative_prompt=spec.negative_prompt, locale=spec.locale, params=_item_params(spec, lora, speed),
                      status=status, rejection_reason=reason)


def model_from_row(mv: ModelVersion, resolved_from: str = "") -> ResolvedModel:
    return ResolvedModel(registry_name=mv.registry_name, version=mv.version, variant=mv.variant, source=mv.source,
                         weights_sha256=mv.weights_sha256, stand_in=mv.stand_in, resolved_from=resolved_from)


def freeze_models(session: Session, brief_id: int, resolve: Callable[[str], ResolvedModel],
                  canary: float = 0.0, canary_ref: str | None = None) -> tuple[ResolvedModel, ResolvedModel | None]:
    """The brief's model (and canary model), resolved once — at its first plan — and written on the brief row.

    Every later plan of the same brief (a re-run, a retry) reads the frozen versions back from the catalog and
    never asks the registry again, so moving an alias never changes a campaign already planned.
    """
    brief = session.get(Brief, brief_id)
    if brief.model_version_id is not None:
        main = model_from_row(session.get(ModelVersion, brief.model_version_id), f"frozen:{brief.model_ref}")
        cmv = session.get(ModelVersion, brief.canary_version_id) if brief.canary_version_id else None
        return main, model_from_row(cmv, "frozen:canary") if cmv else None
    main = resolve(brief.model_ref)
    challenger = resolve(canary_ref) if canary and canary_ref else None
    if challenger is not None and challenger.ref == main.ref:
        raise ModelRefError(f"canary model {canary_ref!r} resolves to {main.ref}, the campaign's own model: "
                            "point the challenger alias at another version, or remove `canary`")
    brief.model_version_id = record_model_version(session, main)
    if challenger is not None:
        brief.canary_version_id, brief.canary_fraction = record_model_version(session, challenger), canary
    audit.append(session, "intake", "brief.model_resolved", "brief", brief_id,
                 {"model_ref": brief.model_ref, "resolved_from": main.resolved_from, "version": main.ref,
                  "weights_sha256": main.weights_sha256,
                  "canary": {"fraction": canary, "ref": canary_ref, "version": challenger.ref} if challenger else None})
    session.flush()
    return main, challenger


def in_canary(campaign: str, item_key: str, variant: int, seed: int, fraction: float) -> bool:
    """Deterministic routing: a job is in the canary when a hash of its identity and seed falls below ``fraction``."""
    if fraction <= 0:
        return False
    digest = hashlib.sha256(f"canary/{campaign}/{item_key}/{variant}/{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def record_model_version(session: Session, model: ResolvedModel) -> int:
    row = session.scalar(select(ModelVersion).where(ModelVersion.registry_name == model.registry_name,
                                                    ModelVersion.version == model.version))
    if row is None:
        row = ModelVersion(registry_name=model.registry_name, version=model.version, variant=model.variant,
                           source=model.source, weights_sha256=model.weights_sha256, stand_in=model.stand_in)
        session.add(row)
        session.flush()
    return row.id


ASPECTS = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1), "4:5": (4, 5)}


def _kept(width: int, height: int, aspect: str) -> float:
    """Fraction of a width×height picture that a centred crop to ``aspect`` keeps."""
    a, b = ASPECTS[aspect]
    return (height * a / b) / width if width * b > height * a else (width * b / a) / height


def generation_size(width: int, height: int, formats: list[str]) -> tuple[int, int]:
    """Generate landscape or portrait (e.g. Wan's 832×480 or 480×832), whichever keeps more of the picture
    summed over the requested formats; on a tie, as the brief says. So a 9:16-only item is generated
    portrait rather than cut from a landscape clip."""
    if width == height or not formats:
        return width, height
    as_is = sum(_kept(width, height, f) for f in formats)
    turned = sum(_kept(height, width, f) for f in formats)
    return (height, width) if turned > as_is + 1e-9 else (width, height)


def _gen_params(item: PromptItem) -> dict:
    """The item's generation parameters, in the orientation that suits its formats."""
    params = {k: item.params[k] for k in GEN_PARAMS}
    if item.params.get("edit"):
        return params  # an edit's size is its geometry's: never turned
    params["width"], params["height"] = generation_size(params["width"], params["height"], item.params["formats"])
    return params


ITEM_LORA = "item"  # plan with the item's own LoRA (else a LoRA evaluation's per-arm LoRA, or None: without)


def _extras(item: PromptItem, lora: dict | None | str = ITEM_LORA) -> dict:
    """The item's image and LoRA as the engine gets them; ``lora`` replaces the item's LoRA (a rollout arm's)."""
    out = {k: item.params[k] for k in ("image", "lora") if item.params.get(k)}
    if lora != ITEM_LORA:
        out.pop("lora", None)
        if lora:
            out["lora"] = dict(lora)
    return out


def idempotency_key(campaign: str, item: PromptItem, variant: int, seed: int, model: ResolvedModel,
                    lora: dict | None | str = ITEM_LORA) -> str:
    extras = _extras(item, lora)
    payload = {
        "campaign": campaign, "item": item.item_key, "variant": variant, "seed": seed,
        "prompt": item.prompt, "negative_prompt": item.negative_prompt,
        "params": _gen_params(item),
        "model": f"{model.registry_name}/{model.version}", "weights": model.weights_sha256,
    }
    # What the engine adds to the clip beyond the item, only where present (older jobs keep their keys)
    for extra, ref in extras.items():
        payload[extra] = ref["sha256"] + (f"@{ref['scale']}" if extra == "lora" else "")
    if item.params.get("edit"):  # every input's sha256, the operation and its parameters
        payload["edit"] = hashlib.sha256(json.dumps(item.params["edit"], sort_keys=True).encode()).hexdigest()
    if (extras.get("lora") or {}).get("low_noise_sha256"):
        payload["lora_low_noise"] = extras["lora"]["low_noise_sha256"]
    if item.params.get("speed") not in (None, "plain"):  # a brief's fast/turbo makes other frames than plain
        payload["speed"] = item.params["speed"]
    effective = _negative_prompt(item, model)
    if effective != item.negative_prompt:
        payload["negative_prompt_effective"] = effective
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def plan_jobs(session: Session, brief_id: int, model: ResolvedModel, run_id: int | None = None,
              canary: ResolvedModel | None = None, canary_fraction: float = 0.0, arm: str | None = None,
              lora: dict | None | str = ITEM_LORA) -> list[int]:
    """One job per accepted item × variant; existing jobs (same key) are reused, never duplicated.

    With a canary model, the jobs whose seed routes them there (:func:`in_canary`) use it instead (arm
    ``canary``; the others ``main``). ``arm`` labels every job (a rollout evaluation's champion/challenger).
    ``lora`` replaces the items' LoRA for every job (a LoRA evaluation's arm: a frozen registry LoRA, or None:
    without); it is part of the job's key, so two arms on the same base never share a job.
    """
    brief = session.get(Brief, brief_id)
    campaign = session.get(Campaign, brief.campaign_id)
    model_version_id = record_model_version(session, model)
    canary_version_id = record_model_version(session, canary) if canary is not None else None
    items = session.scalars(select(PromptItem).where(PromptItem.brief_id == brief_id,
                                                     PromptItem.status == ItemStatus.accepted)
                            .order_by(PromptItem.source_row)).all()
    job_ids = []
    edit_model = model_from_row(session.get(ModelVersion, brief.edit_version_id), "frozen:edit") \
        if brief.edit_version_id else None
    for item in items:
        for variant in range(item.params["variants"]):
            seed = variant_seed(item.params["seed"], campaign.name, item.item_key, variant)
            routed = canary is not None and in_canary(campaign.name, item.item_key, variant, seed, canary_fraction)
            use, mv_id = (canary, canary_version_id) if routed else (model, model_version_id)
            if item.params.get("edit") and item.params["edit"]["op"] in VACE_OPS:  # the brief's frozen VACE model
                if edit_model is None:
                    raise ModelRefError(f"item {item.item_key!r}: an edit, but no edit model is frozen on the brief")
                use, mv_id, routed = edit_model, brief.edit_version_id, False
            key = idempotency_key(campaign.name, item, variant, seed, use, lora)
            job = session.scalar(select(GenerationJob).where(GenerationJob.idempotency_key == key))
            if job is None:
                job = GenerationJob(
                    idempotency_key=key, campaign_id=campaign.id, item_id=item.id,
                    model_version_id=mv_id, run_id=run_id, variant_index=variant, seed=seed,
                    params=job_params(item, use, lora), arm=arm or ("canary" if routed else "main" if canary else None),
                )
                session.add(job)
                record_edit_inputs(session, job)
                session.flush()
            elif job.status != JobStatus.done and run_id is not None:
                job.run_id = run_id  # an unfinished job belongs to the run that tries it again
            job_ids.append(job.id)
    return job_ids


def _negative_prompt(item: PromptItem, model: ResolvedModel) -> str:
    """The item's negative prompt, or the one Wan recommends when it gives none."""
    return item.negative_prompt or (DEFAULT_NEGATIVE_PROMPT if preset_or_none(model.variant) else "")


def job_params(item: PromptItem, model: ResolvedModel, lora: dict | None | str = ITEM_LORA) -> dict:
    """Everything the engine needs beyond the prompt: sizes, steps, the preset's shift and negative prompt."""
    params = _gen_params(item)
    params["negative_prompt"] = _negative_prompt(item, model)
    preset = preset_or_none(model.variant)
    if preset is not None:
        params["flow_shift"] = preset.flow_shift(params["width"], params["height"])
        size = preset.check_size(params["width"], params["height"])
        if size.error:  # intake refuses these; a job must never be planned with one
            raise ModelRefError(f"item {item.item_key!r}: {size.error}")
        if size.warning:
            params["warnings"] = [size.warning]
        if preset.moe:
            params["guidance_2"] = preset.guidance_2
            params["boundary_ratio"] = (model.experts or {}).get("boundary_ratio", preset.boundary_ratio)
    if model.experts:
        params["experts"] = {k: model.experts[k] for k in ("transformer", "transformer_2")}
    params.update({k: dict(v) for k, v in _extras(item, lora).items()})
    if item.params.get("edit"):
        params["edit"] = dict(item.params["edit"])
    if item.params.get("speed"):
        params["speed"] = item.params["speed"]
    return params
