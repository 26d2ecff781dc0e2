"""Intake helpers shared by the CLI and the flows; importing this module starts no Prefect machinery."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from core.settings import Settings
from governance.brief import Brief, load_brief
from governance.fit import check_fit
from adapters.registry import Registry, ResolvedModel


def registry_for(settings: Settings) -> Registry:
    return Registry(settings.mlflow_uri, settings.models_dir, settings.wan_tiny_seed)


def validate(brief_path: Path, settings: Settings) -> Brief:
    """Load and validate a brief, then check it fits its model's Wan variant (sizes; an image per item for I2V).

    Raises governance.brief.BriefInvalid listing every problem. Writes nothing. Sizes a variant only advises
    against come back in ``brief.warnings``.
    """
    registry = registry_for(settings)
    brief = load_brief(Path(brief_path), settings.brands_dir, known_models=registry.known)
    return dataclasses.replace(brief, warnings=tuple(check_fit(brief, registry.variant_of(brief.model_ref))))


def freeze_models(settings: Settings, brief_id: int, brand: str, canary: float = 0.0,
                  canary_ref: str | None = None) -> tuple[ResolvedModel, ResolvedModel | None]:
    """The brief's model (and canary model), resolved once, at its first plan, with the brand's pin honoured;
    every later plan reads the frozen versions back (wan_tasks.plan.freeze_models). Used by every planner."""
    from catalog.db import open_catalog, session_scope
    from adapters.registry import parse_ref
    from wan_tasks import plan

    registry = registry_for(settings)

    def resolve(ref: str) -> ResolvedModel:
        registry.ensure_bootstrap(parse_ref(ref)[0])
        return registry.resolve(ref, brand=brand)

    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        return plan.freeze_models(s, brief_id, resolve, canary, canary_ref)
