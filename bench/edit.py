"""The edit stage's cost per clip on the stand-ins: each operation (reframe, extend, replace, remove, restyle,
reference) run by the engine step (adapters/vace.py: load the inputs, condition, denoise, paste back), then the
clip written (H.264) and the edit's QC check (decode, compare the untouched region). Random weights: the
figures are for timing only, never for quality.

    python -m bench.edit [--size 64x32] [--frames 17] [--steps 4] [--repeat 2]

Prints one JSON object (machine, versions, per op: seconds per stage, median of the repeats).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    from PIL import Image, ImageDraw

    from adapters import media
    from adapters import pipelines as models
    from adapters.engine import GenerationParams
    from adapters.standins import build_tiny_model, build_tiny_vace_model
    from adapters.vace import run_edit
    from core.files import sha256_file
    from governance import edits
    from wan_tasks.edit import edit_checks

    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="64x32")
    ap.add_argument("--frames", type=int, default=17)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="wanflow-bench-edit-"))
    t = time.perf_counter()
    vace, t2v = build_tiny_vace_model(tmp / "wan-tiny-vace"), build_tiny_model(tmp / "wan-tiny")
    build_s = time.perf_counter() - t
    y, x = np.mgrid[0:h, 0:w]
    frames = np.stack([np.stack([x * 3 + 4 * i, y * 5, np.full_like(x, 90)], -1).astype(np.uint8)
                       for i in range(args.frames)])
    src = tmp / "source.mp4"
    media.write_clip(frames, 16, src)
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).rectangle((w // 2, 0, w - 1, h - 1), fill=255)
    mask.save(tmp / "mask.png")
    Image.new("RGB", (64, 64), (20, 180, 40)).save(tmp / "ref.png")
    ref = lambda p: {"path": str(p), "sha256": sha256_file(p)}  # noqa: E731
    blocks = {
        "reframe": {"op": "reframe", "to": "9:16", "feather": 0},
        "extend": {"op": "extend", "frames": 8, "direction": "forward", "context_frames": 9},
        "replace": {"op": "replace", "box": [w // 4, 0, 3 * w // 4, h], "range": None, "feather": 0},
        "remove": {"op": "remove", "mask": ref(tmp / "mask.png"), "feather": 0},
        "restyle": {"op": "restyle", "strength": 0.6},
        "reference": {"op": "reference", "references": [ref(tmp / "ref.png")]},
    }
    source = {"ref": str(src), "asset_id": None, **ref(src), "width": w, "height": h, "frames": args.frames, "fps": 16.0}
    rows = {}
    for name, block in blocks.items():
        edit = {**block, "source": None if name == "reference" else source}
        geo = (edits.geometry(edit, w, h, args.frames) if edit["source"]
               else edits.Geometry(w, h, args.frames, 0))
        edit["geometry"] = geo.as_dict()
        pipe = models.load_pipeline(t2v if name == "restyle" else vace, "cpu")
        p = GenerationParams(prompt="a red sneaker", negative_prompt="", width=geo.width, height=geo.height,
                             num_frames=geo.num_frames, steps=args.steps, guidance=5.0, seed=1, edit=edit)
        runs = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            result = run_edit(pipe, [p])
            t1 = time.perf_counter()
            media.write_clip(result.frames[0], 16, tmp / f"{name}.mp4")
            t2 = time.perf_counter()
            checks = edit_checks(edit, tmp / f"{name}.mp4")
            t3 = time.perf_counter()
            runs.append({"engine_s": t1 - t0, "denoise_s": result.timings["denoise_s"],
                         "prepare_s": result.timings["prepare_s"], "composite_s": result.timings["composite_s"],
                         "encode_s": t2 - t1, "edit_qc_s": t3 - t2, "total_s": t3 - t0})
        rows[name] = {"output": f"{geo.width}x{geo.height}x{geo.num_frames}",
                      **{k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]},
                      "checks": {c["check"]: c["passed"] for c in checks}}
    print(json.dumps({"machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version(),
                                  "torch": version("torch"), "diffusers": version("diffusers")},
                      "source": f"{w}x{h}x{args.frames}", "steps": args.steps, "repeat": args.repeat,
                      "build_standins_s": round(build_s, 2), "ops": rows}, indent=2))


if __name__ == "__main__":
    main()
