"""Prefect events that wanflow emits, so that deployments can react to what people decide.

``wanflow.clip.approved`` (resource ``wanflow.campaign.<name>``): a clip became publishable. The `publish`
deployment in prefect.yaml has a trigger on it that runs the campaign's publish flow on the `cpu` pool, so
approved clips go out without waiting for the schedule and without holding a GPU. Events are sent only when a
Prefect API server is configured (``PREFECT_API_URL``); on a laptop with no server nothing is sent and the
publish schedule or ``wanflow publish CAMPAIGN`` picks the clips up. Publishing is idempotent, so an event per
approval never publishes a file twice.
"""

from __future__ import annotations

from prefect.events import emit_event
from prefect.settings import PREFECT_API_URL

CLIP_APPROVED = "wanflow.clip.approved"


def campaign_resource(campaign: str) -> dict[str, str]:
    return {"prefect.resource.id": f"wanflow.campaign.{campaign}", "prefect.resource.name": campaign}


def clip_approved(campaign: str, asset_id: int, approver: str) -> bool:
    """Emit ``wanflow.clip.approved`` for ``campaign``; False (nothing sent) without a Prefect API server."""
    if not PREFECT_API_URL.value():
        return False
    return emit_event(event=CLIP_APPROVED, resource=campaign_resource(campaign),
                      payload={"asset_id": asset_id, "approver": approver}) is not None
