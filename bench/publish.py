"""Publish-stage benchmark: CPU-seconds per rendition and wall time for the whole preset set of one
81-frame clip (Wan's native 832×480 at 16 fps), encoded serially (one ffmpeg at a time, x264 using
every core) and in parallel (one ffmpeg per preset, up to the CPU count, one x264 thread each), as
``wan_tasks.render`` does. Plus C2PA signing time per file.

    python bench/publish.py [--fps-method repeat|interpolate] [--presets FILE] [--out bench/results/x.json]

The clip is synthetic (moving texture, no model needed); CPU-seconds are those of the ffmpeg child
processes (``getrusage(RUSAGE_CHILDREN)``), signing is measured in-process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters import encode, media, provenance  # noqa: E402
from governance.delivery import parse_delivery  # noqa: E402
from governance.renditions import load_presets  # noqa: E402

POLICY = parse_delivery({"framing": "fill", "ai_label": {"text": {"en": "AI-generated"}}})


def clip(path: Path, frames: int = 81, w: int = 832, h: int = 480) -> Path:
    x, y = np.meshgrid(np.arange(w), np.arange(h))
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 24, (h, w), dtype=np.int64)
    out = np.empty((frames, h, w, 3), np.uint8)
    for t in range(frames):
        out[t, ..., 0] = (128 + 90 * np.sin((x - 5 * t) / 23.0) + noise) % 256
        out[t, ..., 1] = (128 + 90 * np.cos((y + 3 * t) / 17.0)) % 256
        out[t, ..., 2] = (x + 2 * y + 9 * t) % 256
    media.write_clip(out, 16, path)
    return path


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(src: Path, out: Path, presets, workers: int) -> dict:  # noqa: ANN001
    threads = 0 if workers == 1 else max(1, (os.cpu_count() or 1) // workers)
    per: dict[str, dict] = {}

    def one(p):  # noqa: ANN001, ANN202
        t0 = time.perf_counter()
        encode.render_video(src, out / f"{workers}-{p.name}.{p.extension}", p, POLICY, "en", threads)
        per[p.name] = {"wall_s": round(time.perf_counter() - t0, 3)}

    cpu0, t0 = children_cpu(), time.perf_counter()
    if workers == 1:
        for p in presets:
            c = children_cpu()
            one(p)
            per[p.name]["cpu_s"] = round(children_cpu() - c, 3)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, presets))
    return {"workers": workers, "x264_threads": threads or "auto", "wall_s": round(time.perf_counter() - t0, 3),
            "cpu_s": round(children_cpu() - cpu0, 3), "renditions": per}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fps-method", choices=["repeat", "interpolate"], default=None)
    ap.add_argument("--presets", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    presets = [p for p in load_presets(args.presets).video if p.enabled]
    if args.fps_method:
        presets = [p.model_copy(update={"frame_rate_conversion": args.fps_method}) for p in presets]
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        src = clip(d / "clip.mp4")
        serial = run(src, d, presets, 1)
        parallel = run(src, d, presets, os.cpu_count() or 1)
        cfg = provenance.make_dev_ca(d / "ca")
        claim = provenance.Credentials("bench.mp4", "bench", "bench/0", "bench", "bench")
        sign = {}
        for p in presets:
            f = d / f"1-{p.name}.{p.extension}"
            t0 = time.perf_counter()
            provenance.sign(f, d / f"signed-{f.name}", claim, src, cfg)
            sign[p.name] = round(time.perf_counter() - t0, 3)
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
              "clip": "81 frames, 832x480, 16 fps", "fps_method": args.fps_method or "per preset file",
              "serial": serial, "parallel": parallel, "sign_s": sign,
              "ffmpeg": os.path.basename(__import__("imageio_ffmpeg").get_ffmpeg_exe())}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    print("\n| preset | serial wall s | serial CPU s | sign s |\n|---|---|---|---|")
    for p in presets:
        r = serial["renditions"][p.name]
        print(f"| {p.name} ({p.width}x{p.height}@{p.fps}) | {r['wall_s']} | {r['cpu_s']} | {sign[p.name]} |")
    print(f"\nwhole set: serial {serial['wall_s']} s wall / {serial['cpu_s']} CPU-s; "
          f"parallel ({parallel['workers']} workers) {parallel['wall_s']} s wall / {parallel['cpu_s']} CPU-s")


if __name__ == "__main__":
    main()
