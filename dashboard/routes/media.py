"""Media: files of the asset store, addressed only by asset id (never by a path from the request).

Served with HTTP range support (Starlette's FileResponse) so the video player can seek. Anything that is
not a number, an unknown asset, or a catalog path that resolves outside the asset store is a 404; the frame
strip of a clip whose file cannot be decoded is a 422 and a log line. The strip shows, as boxes, where QC
located its findings on the picture (on-screen text, nudity), in the colour of what each meant.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse
from sqlalchemy import select

from catalog.db import session_scope
from catalog.models import Asset, QcResult
from core.i18n import N_
from dashboard.deps import Catalog, User
from dashboard.frames import Undecodable, frame_strip
from dashboard.schemas import parse_id

pages = APIRouter(include_in_schema=False)
api = APIRouter(tags=["media"])
REF = re.compile(r"([0-9]{1,10})(/frames\.png)?")  # ASCII digits; the range is parse_id's
TYPES = {".mp4": "video/mp4", ".jpg": "image/jpeg", ".png": "image/png", ".webm": "video/webm"}
NOT_FOUND = N_("not found")
UNDECODABLE = N_("this clip's file cannot be decoded (damaged or truncated): no frame strip")
log = logging.getLogger(__name__)


def asset_file(request: Request, catalog, asset_id: int) -> tuple[Path, str]:
    """The asset's file if it lies inside the asset store; (path, sha256)."""
    with session_scope(catalog) as s:
        asset = s.get(Asset, asset_id)
        uri, sha = (asset.uri, asset.sha256) if asset is not None else (None, None)
    store = request.app.state.settings.assets_dir.resolve()
    path = Path(uri).resolve() if uri else None
    if path is None or not path.is_relative_to(store) or not path.is_file() or path.suffix not in TYPES:
        raise HTTPException(404, NOT_FOUND)
    return path, sha


def located(catalog, asset_id: int) -> list[dict]:
    """The clip's QC findings located on the picture: time, box, label and the outcome of their check."""
    with session_scope(catalog) as s:
        rows = s.scalars(select(QcResult).where(QcResult.asset_id == asset_id, QcResult.passed.is_(False))).all()
        return [{"time": h["time"], "box": h["box"], "label": str(h.get("label", "")), "outcome": r.outcome or ""}
                for r in rows for h in (r.details or {}).get("boxes", [])]


@pages.get("/media/{ref:path}")
def media(ref: str, request: Request, catalog: Catalog, user: User):
    match = REF.fullmatch(ref)
    asset_id = parse_id(match.group(1)) if match else None
    if asset_id is None:
        raise HTTPException(404, NOT_FOUND)
    path, sha = asset_file(request, catalog, asset_id)
    if match.group(2):
        if path.suffix != ".mp4":
            raise HTTPException(404, NOT_FOUND)
        store = request.app.state.settings.assets_dir.resolve()
        boxes = located(catalog, asset_id)
        tag = hashlib.sha256(json.dumps(boxes, sort_keys=True).encode()).hexdigest()[:8] if boxes else "plain"
        try:
            path = frame_strip(path, store / "previews" / f"{asset_id}-{sha[:16]}-{tag}-frames.png", boxes=boxes)
        except Undecodable as exc:
            log.warning("asset %d: no frame strip, its file cannot be decoded: %s", asset_id, exc)
            raise HTTPException(422, UNDECODABLE) from exc
    return FileResponse(path, media_type=TYPES[path.suffix], headers={"Cache-Control": "private, max-age=3600"})
