"""Catalog rows for the fleet tests: a campaign with n pending jobs (no brief file or model needed)."""

from __future__ import annotations

from catalog.db import session_scope
from catalog.models import Brief, Campaign, GenerationJob, ItemStatus, ModelVersion, PromptItem

PARAMS = {"width": 16, "height": 16, "num_frames": 5, "fps": 16, "steps": 1, "guidance": 1.0}


def pending_jobs(engine, n: int, campaign: str = "fleet-test") -> list[int]:
    with session_scope(engine) as s:
        c = Campaign(name=campaign, brand="acme")
        s.add(c)
        s.flush()
        b = Brief(campaign_id=c.id, path="/nowhere/brief.yaml", sha256="0" * 64, model_ref="wan-t2v@champion",
                  content="{}")
        mv = ModelVersion(registry_name="wan-t2v", version=1, variant="wan-tiny", source="/nowhere",
                          weights_sha256="0" * 64, stand_in=True)
        s.add_all([b, mv])
        s.flush()
        ids = []
        for i in range(n):
            item = PromptItem(brief_id=b.id, item_key=f"item-{i}", source_row=i + 1, prompt=f"prompt {i}", params={},
                              status=ItemStatus.accepted)
            s.add(item)
            s.flush()
            job = GenerationJob(idempotency_key=f"{campaign}-{i:06d}", campaign_id=c.id, item_id=item.id,
                                model_version_id=mv.id, variant_index=0, seed=i, params=PARAMS)
            s.add(job)
            s.flush()
            ids.append(job.id)
        return ids
