"""Intake shared by the CLI and the flows: a brief validated against its model's variant, the brief's models
resolved once (and frozen on it), and the brand profile a job's campaign is checked against."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from sqlalchemy.orm import Session

from adapters.lora_registry import LoraRegistry
from adapters.registry import Registry, ResolvedModel
from governance.model_refs import parse_ref
from catalog.db import open_catalog, session_scope
from catalog.models import Asset, Campaign, GenerationJob, PromptItem
from catalog.models import Brief as BriefRow
from core.settings import Settings
from governance.brand import BrandProfile, load_brand
from governance.brief import ValidBrief, load_brief
from governance.brief_schema import BriefInvalid
from governance.fit import check_fit
from wan_tasks import brand_lora, edit, plan


def registry_for(settings: Settings) -> Registry:
    return Registry(settings.mlflow_uri, settings.models_dir, settings.wan_tiny_seed)


def validate(brief_path: Path, settings: Settings) -> ValidBrief:
    """Load and validate a brief, then check it fits its model's Wan variant (sizes; an image per item for I2V).

    Raises governance.brief.BriefInvalid listing every problem. Writes nothing. Sizes a variant only advises
    against come back in ``brief.warnings``.
    """
    registry = registry_for(settings)
    brief = load_brief(Path(brief_path), settings.brands_dir, known_models=registry.known)
    if problems := brand_lora.check_ref(brief, LoraRegistry(settings.mlflow_uri)):
        raise BriefInvalid(problems)
    brief = edit.resolve_edits(brief, settings.catalog_db_url, registry.variant_of)  # sources, masks, references
    made = dataclasses.replace(brief, items=[i for i in brief.items if not i.edit])  # an edit's size is its source's
    return dataclasses.replace(brief, warnings=tuple(check_fit(made, registry.variant_of(brief.model_ref))))


def resolve_models(settings: Settings, brief_id: int, brand: str, canary: float = 0.0,
                   canary_ref: str | None = None) -> tuple[ResolvedModel, ResolvedModel | None]:
    """The brief's model (and canary model), resolved through the registry once, at its first plan, with the
    brand's pin honoured; every later plan reads the versions frozen on the brief back
    (wan_tasks.plan.freeze_models). Used by every planner."""
    registry = registry_for(settings)

    def resolve(ref: str) -> ResolvedModel:
        registry.ensure_bootstrap(parse_ref(ref)[0])
        return registry.resolve(ref, brand=brand)

    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        main, challenger = plan.freeze_models(s, brief_id, resolve, canary, canary_ref)
        edit.freeze_edit_model(s, brief_id, resolve, plan.record_model_version)  # the VACE model of its edits
        brand_lora.freeze_lora(s, brief_id, [m for m in (main, challenger) if m is not None],
                               LoraRegistry(settings.mlflow_uri).resolve)
        return main, challenger


def brand_of_job(session: Session, job_id: int, brands_dir: Path | None) -> BrandProfile:
    """The brand profile of a job's campaign, from ``brands_dir`` or else the brands folder beside its brief."""
    job = session.get(GenerationJob, job_id)
    brief = session.get(BriefRow, session.get(PromptItem, job.item_id).brief_id)
    brand = session.get(Campaign, job.campaign_id).brand
    return load_brand(brand, brands_dir or Path(brief.path).parent / "brands")


def brands_of_clips(session: Session, asset_ids: list[int], brands_dir: Path | None) -> dict[int, BrandProfile]:
    """The brand profile of each raw clip's campaign (each job's profile loaded once)."""
    jobs = {asset_id: session.get(Asset, asset_id).job_id for asset_id in asset_ids}
    brands = {job_id: brand_of_job(session, job_id, brands_dir) for job_id in set(jobs.values())}
    return {asset_id: brands[job_id] for asset_id, job_id in jobs.items()}
