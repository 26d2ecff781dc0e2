"""A brief's registry LoRA (``lora: acme-style@champion``): checked at validation, resolved once and frozen.

At validation the reference must name a LoRA version that is not recalled. At the brief's first plan it is resolved
to a fixed version, written on the brief (``briefs.lora_version_id``) and on its items (file, sha256, version), so
re-runs never ask the registry again; every plan checks that the frozen version is still not recalled and that the
campaign's model is the base it was trained on (by the weights' digest), else it refuses with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.lora_registry import LORA_FILE, LoraRecalled, LoraRegistry, ResolvedLora
from adapters.registry import ResolvedModel
from catalog import audit
from catalog.models import Brief, LoraVersion, PromptItem
from catalog.training import RECALLED
from governance.brief_schema import Problem, ValidBrief
from governance.model_refs import ModelRefError


def check_ref(brief: ValidBrief, registry: LoraRegistry) -> list[Problem]:
    """Problems with the brief's registry LoRA (unknown, recalled); none for a file LoRA or none at all."""
    if brief.lora is None or not brief.lora.ref:
        return []
    try:
        registry.resolve(brief.lora.ref)
    except ModelRefError as exc:
        return [Problem(str(brief.path), None, "lora.ref", str(exc))]
    return []


def freeze_lora(session: Session, brief_id: int, models: list[ResolvedModel],
                resolve: Callable[[str], ResolvedLora]) -> LoraVersion | None:
    """Resolve the brief's registry LoRA once and freeze it on the brief and its items; refuse a recalled LoRA or
    one trained on another base than ``models`` (the campaign's model, and its canary model if any)."""
    brief = session.get(Brief, brief_id)
    items = session.scalars(select(PromptItem).where(PromptItem.brief_id == brief_id)).all()
    refs = sorted({(it.params.get("lora") or {}).get("ref") for it in items} - {None})
    if not refs:
        return None
    if brief.lora_version_id is None:
        found = resolve(refs[0])
        row = session.scalar(select(LoraVersion).where(LoraVersion.registry_name == found.registry_name,
                                                       LoraVersion.version == found.version))
        if row is None:
            raise ModelRefError(f"LoRA {found.ref} is in the registry but not in this catalog (it was trained against "
                                "another catalog): its training data cannot be traced here")
        brief.lora_version_id = row.id
        audit.append(session, "intake", "brief.lora_resolved", "brief", brief_id,
                     {"ref": refs[0], "version": f"{row.registry_name}/{row.version}", "sha256": row.weights_sha256})
    row = session.get(LoraVersion, brief.lora_version_id)
    name = f"{row.registry_name}/{row.version}"
    if row.status == RECALLED:
        raise LoraRecalled(f"LoRA {name} is recalled ({row.recalled_reason}); no new job may use it: name another "
                           "LoRA version in the brief")
    for model in models:
        if model.weights_sha256 != row.base_weights_sha256:
            raise ModelRefError(
                f"LoRA {name} was trained on {row.base_registry_name}/{row.base_version} (weights "
                f"{row.base_weights_sha256[:12]}…), not on {model.ref} (weights {model.weights_sha256[:12]}…): a LoRA "
                "only fits the base it was trained on")
    frozen = {"path": str(Path(row.path) / LORA_FILE), "sha256": row.weights_sha256, "registry": name,
              "lora_version_id": row.id}
    for it in items:
        lora = it.params.get("lora") or {}
        if lora.get("ref") and lora.get("sha256") != row.weights_sha256:
            it.params = {**it.params, "lora": {**lora, **frozen}}
    session.flush()
    return row
