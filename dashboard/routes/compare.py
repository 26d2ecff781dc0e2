"""An edit beside its source: both clips playing in step, the region the edit kept outlined on the edit
(toggled), and the edit's operation and checks. The decision is made on the clip's own page, like any other."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from sqlalchemy import select

from catalog.db import session_scope
from catalog.models import Asset, GenerationJob, QcResult
from dashboard.deps import Catalog, User
from dashboard.routes.clips import asset_id_of

pages = APIRouter(include_in_schema=False)
api = APIRouter(tags=["edits"])
NOT_AN_EDIT = "this clip is not an edit of a catalog clip"


def outline(edit: dict) -> dict | None:
    """The kept region to draw on the edit, in its pixels (a rectangle), or None when it is not one."""
    geo, op = edit.get("geometry") or {}, edit["op"]
    src = edit.get("source") or {}
    if op == "reframe":
        return {"x": geo["x"], "y": geo["y"], "w": src["width"], "h": src["height"], "label": "source (kept)"}
    if op in ("replace", "remove") and edit.get("box"):
        x0, y0, x1, y1 = edit["box"]
        return {"x": x0, "y": y0, "w": x1 - x0, "h": y1 - y0, "label": "regenerated", "frames": edit.get("range")}
    return None


def compare_view(catalog, asset_id: int) -> dict:
    with session_scope(catalog) as s:
        clip = s.get(Asset, asset_id)
        job = s.get(GenerationJob, clip.job_id) if clip is not None and clip.job_id else None
        edit = (job.params.get("edit") if job else None) or {}
        if not edit or job.edit_of_id is None:
            raise HTTPException(404, NOT_AN_EDIT)
        source = s.get(Asset, job.edit_of_id)
        checks = [{"check": r.check, "passed": r.passed, "value": r.value, "threshold": r.threshold,
                   "frames": (r.details or {}).get("frames_violating", [])}
                  for r in s.scalars(select(QcResult).where(QcResult.asset_id == asset_id,
                                                            QcResult.check.startswith("edit_")))]
        geo = edit.get("geometry") or {}
        fps = clip.fps or 16.0
        offset = (geo.get("num_frames", 0) - geo.get("frames_used", 0)) / fps \
            if edit["op"] == "extend" and edit.get("direction") == "backward" else 0.0
        return {"asset_id": asset_id, "source_id": source.id, "op": edit["op"],
                "params": {k: v for k, v in edit.items() if k not in ("source", "mask", "references", "geometry", "model")},
                "edit": {"width": clip.width, "height": clip.height, "frames": clip.frames, "status": clip.status.value},
                "source": {"width": source.width, "height": source.height, "frames": source.frames,
                           "status": source.status.value},
                "outline": outline(edit), "source_offset_s": offset, "fps": fps, "checks": checks}


@pages.get("/clips/{ref}/compare")
def compare_page(ref: str, request: Request, catalog: Catalog, user: User):
    view = compare_view(catalog, asset_id_of(ref))
    return request.app.state.templates.TemplateResponse(request, "compare.html", {"user": user, "v": view})


@api.get("/clips/{ref}/compare")
def compare_json(ref: str, catalog: Catalog, user: User) -> dict:
    return compare_view(catalog, asset_id_of(ref))
