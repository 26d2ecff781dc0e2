"""Helpers for the dashboard tests: a campaign with real clips in the asset store, QC'd for real, and users.

The clips are real H.264 files (smooth moving gradients, encoded by adapters.media.write_clip) and go
through the real QC stage into the review queue; only the generation step is skipped, because the
dashboard never generates anything (the revisions test uses the real tiny Wan pipeline for that).
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Self

import numpy as np
from conftest import EXAMPLES
from sqlalchemy import select

from adapters import media
from catalog.db import open_catalog, session_scope
from catalog.models import (Asset, AssetKind, Brief, Campaign, ClipStatus, GenerationJob, ItemStatus, JobStatus,
                            ModelVersion, PromptItem, Role)
from wan_tasks import quality
from wan_tasks.accounts import add_user

PASSWORD = "correct horse battery"
PARAMS = {"width": 64, "height": 32, "num_frames": 9, "fps": 16, "steps": 2, "guidance": 5.0}


def frames(seed: int, n: int = 9, w: int = 64, h: int = 32) -> np.ndarray:
    """A moving colour gradient, different per seed: decodable, not black, not frozen."""
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, size=3)
    x = np.linspace(0, 1, w)[None, :, None]
    y = np.linspace(0, 1, h)[:, None, None]
    out = [np.clip(base + 50 * np.sin(6 * x + t * 0.7) + 40 * y, 0, 255).astype(np.uint8) for t in range(n)]
    return np.stack(out)


def seed_campaign(settings, name: str = "dash-test", brand: str = "acme", items: tuple[str, ...] = ("hero", "city"),
                  variants: int = 2, model_source: str = "/models/not-used", prompt: str = "A red sneaker on a pedestal",
                  variant_model: str = "wan-tiny") -> list[int]:
    """Catalog rows + real clips for ``items`` × ``variants``; each clip QC'd into review. Returns asset ids."""
    engine = open_catalog(settings.catalog_db_url)
    folder = settings.home_dir / "briefs" / name
    (folder / "brands").mkdir(parents=True, exist_ok=True)
    (folder / "brands" / "acme.yaml").write_text((EXAMPLES / "brands" / "acme.yaml").read_text("utf-8"), "utf-8")
    brief_path = folder / "brief.yaml"
    brief_path.write_text(f"campaign: {name}\nbrand: {brand}\n", "utf-8")
    jobs: list[tuple[int, Path]] = []
    with session_scope(engine) as s:
        campaign = Campaign(name=name, brand=brand)
        s.add(campaign)
        s.flush()
        brief = Brief(campaign_id=campaign.id, path=str(brief_path), sha256=uuid.uuid4().hex * 2,
                      model_ref="wan-t2v@champion", content=brief_path.read_text())
        s.add(brief)
        model = s.scalar(select(ModelVersion).where(ModelVersion.registry_name == "wan-t2v", ModelVersion.version == 1))
        if model is None:
            model = ModelVersion(registry_name="wan-t2v", version=1, variant=variant_model, source=model_source,
                                 weights_sha256="0" * 64, stand_in=True)
            s.add(model)
        s.flush()
        for row, key in enumerate(items, start=1):
            item = PromptItem(brief_id=brief.id, item_key=key, source_row=row, prompt=f"{prompt} ({key})",
                              negative_prompt="blurry", params=PARAMS | {"variants": variants, "formats": ["1:1"],
                                                                          "seed": 7},
                              status=ItemStatus.accepted)
            s.add(item)
            s.flush()
            for v in range(variants):
                job = GenerationJob(idempotency_key=uuid.uuid4().hex, campaign_id=campaign.id, item_id=item.id,
                                    model_version_id=model.id, variant_index=v, seed=1000 + 10 * row + v,
                                    params=dict(PARAMS), status=JobStatus.done)
                s.add(job)
                s.flush()
                jobs.append((job.id, settings.assets_dir / "clips" / name / f"{key}-v{v}-{job.id}.mp4"))
    asset_ids = []
    for job_id, path in jobs:
        info = media.write_clip(frames(job_id), PARAMS["fps"], path)
        with session_scope(engine) as s:
            asset = Asset(kind=AssetKind.raw_clip, job_id=job_id, uri=str(path), sha256=info.sha256, size=info.size,
                          width=info.width, height=info.height, frames=info.frames, fps=info.fps,
                          status=ClipStatus.generated)
            s.add(asset)
            s.flush()
            asset_ids.append(asset.id)
        assert quality.check_clip(engine, asset_ids[-1]), "a clean clip must pass QC into review"
    return asset_ids


def make_users(settings, **roles: Role) -> None:
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        for name, role in roles.items():
            add_user(s, name, role, PASSWORD, "test-setup")


def sign_in(client, name: str, password: str = PASSWORD) -> str:
    """Sign a TestClient in through the API (with the pre-sign-in CSRF token); returns the session's CSRF token."""
    pre = client.get("/api/session").json()["csrf_token"]
    r = client.post("/api/session", json={"name": name, "password": password}, headers={"X-CSRF-Token": pre})
    assert r.status_code == 200, r.text
    return r.json()["csrf_token"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """An app served by a real uvicorn on a loopback port, in a thread."""

    def __init__(self, app) -> None:
        import uvicorn

        self.port = _free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.server.started, "uvicorn did not start"
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def browser_sign_in(page, base: str, name: str) -> None:  # noqa: ANN001 - a Playwright page
    """Sign in as ``name`` through the dashboard's sign-in page in a real browser; lands on the review queue."""
    page.goto(f"{base}/")
    assert "/login" in page.url  # anonymous → the sign-in page
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("table.queue")
