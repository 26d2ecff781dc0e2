"""Sweeping what killed writers left behind: the temporary files (named by :func:`core.files.temp_path_for`) in
the asset store, the model cache, the reports and the local delivery folder.

A kill -9 skips every ``finally``, so a half-written clip, an unsigned rendition or a label image can stay beside
its destination. ``wanflow run`` and ``wanflow publish`` sweep when they start, ``wanflow db upgrade`` after it
migrates, and ``wanflow db sweep`` on demand. Only recognised temporary files are removed, only once nothing has
written them for ``temp_grace_s`` (a writer on another worker is never hurt), and never one staged under a claim
that is still live.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from adapters.destinations import LocalFolder, destination_for
from catalog import claims
from catalog.db import session_scope
from core.files import Sweep, sweep_temps
from core.settings import Settings


def temp_roots(settings: Settings) -> list[Path]:
    """The folders the product writes files into: asset store, model cache, reports, local delivery folder."""
    home = settings.home_dir
    roots = [settings.assets_dir, settings.models_dir, home / "reports"]
    dest = destination_for(settings.publish_to, settings.delivery_dir, settings.s3_endpoint_url)
    if isinstance(dest, LocalFolder):
        roots.append(Path(dest.root))
    roots = sorted({r.expanduser().resolve() for r in roots}, key=lambda r: len(r.parts))
    return [r for i, r in enumerate(roots) if not any(r.is_relative_to(o) for o in roots[:i])]  # none twice


def sweep(settings: Settings, engine: Engine) -> Sweep:
    """Remove the temporary files under :func:`temp_roots` older than ``settings.temp_grace_s`` and of no live
    claim; what was removed and kept."""
    with session_scope(engine) as s:
        live = claims.live_tokens(s)
    return sweep_temps(temp_roots(settings), settings.temp_grace_s, live.__contains__)
