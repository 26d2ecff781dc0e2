"""Helpers of tests/test_personalize.py: a small brand training set made on the spot, and the training process the
kill test runs (``python tests/personalize_helpers.py JOB.json MARKER STOP_AT``: it trains, and after step
STOP_AT writes MARKER and waits to be killed with SIGKILL)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

HEADER = "file,caption,owner,licence,expires,allowed_use"
COLOURS = [(200, 30, 30), (30, 30, 200), (30, 160, 30), (160, 30, 160)]


def run_cli(settings, *args: str):  # noqa: ANN001, ANN201 - Settings in, Click's Result out
    """`wanflow ARGS` in this process (Typer's runner) against the test's home and catalog."""
    from typer.testing import CliRunner

    from cli.main import app

    env = {"WANFLOW_HOME": str(settings.home), "WANFLOW_CATALOG_URL": settings.catalog_db_url, "COLUMNS": "200"}
    return CliRunner().invoke(app, list(args), env=env)


def image(path: Path, i: int, side: int = 64) -> Path:
    """A flat colour with an inverted centre square: distinct per ``i``, easy for a tiny LoRA to learn."""
    c = np.array(COLOURS[i % len(COLOURS)], np.uint8)
    a = np.zeros((side, side, 3), np.uint8)
    a[:] = c
    a[side // 4:3 * side // 4, side // 4:3 * side // 4] = 255 - c
    Image.fromarray(a).save(path)
    return path


def make_dataset(folder: Path, images: int = 2, clip: bool = True, extra: str = "") -> Path:
    """``images`` PNGs with captions in the CSV, and a 5-frame clip captioned by a sidecar .txt; rights valid."""
    from adapters.media import write_clip

    folder.mkdir(parents=True, exist_ok=True)
    rows = [HEADER]
    for i in range(images):
        image(folder / f"shot-{i}.png", i)
        rows.append(f"shot-{i}.png,acme brand shot {i},Acme Corp,ACME-LIC-{i},2099-12-31,training;marketing")
    if clip:
        t = np.linspace(0.5, 1.0, 5)[:, None, None, None]
        write_clip((np.ones((5, 64, 64, 3)) * np.array([220, 200, 40]) * t).astype(np.uint8), 16, folder / "pulse.mp4")
        (folder / "pulse.txt").write_text("the acme yellow pulse", encoding="utf-8")
        rows.append("pulse.mp4,,Jane Doe,CONSENT-2026-077,2099-01-01,training")
    (folder / "dataset.csv").write_text("\n".join(rows) + "\n" + extra, encoding="utf-8")
    return folder


def _killed_run(job_file: str, marker: str, stop_at: str) -> None:
    from adapters.training import TrainJob, train

    def on_step(step: int, total: int, loss: float) -> None:
        if step == int(stop_at):
            Path(marker).write_text(str(step))
            time.sleep(600)  # the test kills this process here (SIGKILL), between two checkpoints

    train(TrainJob.from_json(Path(job_file).read_text()), on_step=on_step)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    _killed_run(*sys.argv[1:4])
