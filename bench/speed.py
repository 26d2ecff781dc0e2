"""Speed presets side by side: plain, fast and turbo (governance/speed.py) in one process, same inputs and seed.

For each preset: one warm-up call (it pays torch.compile; ``compile_s`` is that call's extra time over the
steady per-step cost, reported apart), then a timed call. One JSON row per preset under ``--out-dir``
(default bench/results/): device, torch / diffusers / CUDA versions, shapes, steps, text-encode / denoise / decode
seconds, compile seconds, peak memory, analytic transformer FLOPs and achieved TFLOP/s, MFU against a matrix
product measured on the same device now, and max-abs difference and PSNR of the decoded frames against plain.

    # CPU, a stand-in size (the real 1.3B architecture with random weights, random prompt embeddings)
    python bench/speed.py --variant wan2.1-t2v-1.3b@random --no-text-encoder --width 96 --height 96 --frames 5 --steps 6
    # H200 (bench/gpu.sh runs these): 1.3B 832x480x81, 50 steps, guidance 5; the same under an 8.19 GB cap
    python bench/speed.py --variant wan2.1-t2v-1.3b@random --width 832 --height 480 --frames 81 --steps 50 \
        --cap-gb 8.19
    # 14B 1280x720x81: a few steps, per step, extrapolated to 50 (labelled extrapolated)
    python bench/speed.py --variant wan2.1-t2v-14b@random --width 1280 --height 720 --frames 81 --steps 3 \
        --extrapolate-to 50

Random weights produce noise: these rows are for timing and closeness only. The step cache's threshold is
``--cache-threshold`` (the stand-in's random weights need a higher one to skip than real checkpoints do).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.generate import transformer_flops  # noqa: E402 — one FLOP count for both benches


def matmul_ceiling(device: str, dtype, n: int, repeats: int = 5) -> float:
    """Best TFLOP/s of an n x n x n matrix product on ``device`` in ``dtype``: the MFU denominator."""
    import torch

    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(repeats + 1):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        (a @ b).sum().item()
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e12


def psnr(a, b) -> float | None:
    import numpy as np

    mse = float(((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2).mean())
    return None if mse == 0 else round(10 * np.log10(1.0 / mse), 2)


def build(variant: str, device: str, text_encoder: bool, seed: int):
    import torch

    from adapters.random_weights import build_random_pipeline, is_random
    from adapters.standins import BUILDERS

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    if is_random(variant):  # built where it runs: a 14B model is never materialised on the host
        pipe = build_random_pipeline(variant, seed=seed, device=device, dtype=dtype, text_encoder=text_encoder)
        if device.startswith("cuda"):
            pipe.vae.to(device)
        return pipe, "random weights (timing only)"
    from adapters import pipelines as m

    folder = BUILDERS[variant](Path(os.environ.get("TMPDIR", "/tmp")) / f"wanflow-speed-{variant}") \
        if variant in BUILDERS else m.resolve_source(variant)
    pipe = m.load_pipeline(folder, device)
    return pipe, "stand-in (random weights)" if variant in BUILDERS else "real"


def versions(device: str) -> dict:
    import torch

    out = {}
    for p in ("torch", "diffusers", "transformers", "torchao"):
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = None
    out["cuda"] = torch.version.cuda if device.startswith("cuda") else None
    return out


def run_preset(pipe, name: str, reqs, embeds, args, cap_bytes: int | None = None) -> dict:
    """Warm-up (compile) then a timed call of preset ``name``; the row without the comparison to plain."""
    import torch

    from adapters import engine as e
    from governance import speed as gs

    preset = gs.preset(name, compile=not args.no_compile, step_cache=args.step_cache,
                       cache_threshold=args.cache_threshold, fp8=not args.no_fp8)
    device = str(pipe._execution_device)
    warm_steps = min(args.warmup_steps, args.steps)
    warm = [type(r)(**{**r.__dict__, "steps": warm_steps}) for r in reqs]
    t = time.perf_counter()
    e.run_batch(pipe, warm, embeds=embeds, speed=preset)
    warm_s = time.perf_counter() - t
    step_marks: list[float] = []
    result = e.run_batch(pipe, reqs, embeds=embeds, speed=preset, on_step=lambda i, n: step_marks.append(
        time.perf_counter()))
    tm = result.timings
    per_step = tm["denoise_s"] / max(1, result.details["speed"]["steps"])
    compile_s = max(0.0, warm_s - (tm["text_encode_s"] + per_step * warm_steps + tm["decode_s"]))
    cfg_passes = 2 if reqs[0].guidance > 1.0 else 1
    tr = pipe.transformer
    flops = transformer_flops(tr.config, args.width, args.height, args.frames,
                              spatial=pipe.vae.config.scale_factor_spatial * tr.config.patch_size[1]) \
        * cfg_passes * result.details["speed"]["steps"] * len(reqs)
    steps_run = result.details["speed"]["steps"]
    row = {
        "preset": name, "speed": result.details["speed"], "memory_cap_bytes": cap_bytes,
        "seconds": {"text_encode_s": round(tm["text_encode_s"], 4), "denoise_s": round(tm["denoise_s"], 4),
                    "decode_s": round(tm["decode_s"], 4), "clip_s": round(tm["generate_s"] / len(reqs), 4),
                    "per_step_s": round(per_step, 4), "compile_s": round(compile_s, 2),
                    "warmup_call_s": round(warm_s, 2), "warmup_steps": warm_steps},
        "peak_memory_bytes": result.peak_memory_bytes, "peak_memory_kind": result.peak_memory_kind,
        "flops": {"transformer_per_clip": flops / len(reqs),
                  "note": "full-computation equivalent (a step cache skips some of it)"},
        "achieved_tflops": round(flops / tm["denoise_s"] / 1e12, 4),
    }
    if args.extrapolate_to and args.extrapolate_to != steps_run:
        row["extrapolated"] = {
            "to_steps": args.extrapolate_to, "label": "extrapolated from the per-step time of a short run",
            "clip_s": round((tm["text_encode_s"] + per_step * args.extrapolate_to + tm["decode_s"]) / len(reqs), 2)}
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return row, result.video


def main() -> None:  # noqa: PLR0915 - a linear script
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="wan2.1-t2v-1.3b@random")
    ap.add_argument("--width", type=int, default=96)
    ap.add_argument("--height", type=int, default=96)
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--guidance", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--presets", nargs="+", default=["plain", "fast", "turbo"])
    ap.add_argument("--no-text-encoder", action="store_true", help="seeded random prompt embeddings; no umT5-XXL")
    ap.add_argument("--no-compile", action="store_true", help="fast/turbo without torch.compile")
    ap.add_argument("--no-fp8", action="store_true")
    ap.add_argument("--step-cache", default="first_block", choices=["first_block", "taylorseer"])
    ap.add_argument("--cache-threshold", type=float, default=None)
    ap.add_argument("--cap-gb", type=float, default=None, help="also run fast under this memory cap (CUDA)")
    ap.add_argument("--warmup-steps", type=int, default=2)
    ap.add_argument("--extrapolate-to", type=int, default=None, help="report clip time extrapolated to N steps")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--label", default=None, help="file name stem (default from variant and shape)")
    args = ap.parse_args()

    import numpy as np
    import torch

    from adapters import engine as e
    from adapters import memory as mm
    from adapters import pipelines as m

    device = m.resolve_device(args.device)
    t = time.perf_counter()
    pipe, weights = build(args.variant, device, not args.no_text_encoder, seed=0)
    build_s = time.perf_counter() - t
    reqs = [e.GenerationParams("a red sneaker turns on a white pedestal, studio light", "blurry, low quality",
                               args.width, args.height, args.frames, args.steps, args.guidance, seed=args.seed)]
    embeds = None
    if args.no_text_encoder:
        g = torch.Generator().manual_seed(args.seed)
        embeds = tuple(torch.randn(1, 512, 4096, generator=g).mul_(0.1).to(device, pipe.transformer.dtype)
                       for _ in range(2))
    cuda = device.startswith("cuda")
    ceiling = matmul_ceiling(device, torch.bfloat16 if cuda else torch.float32, 8192 if cuda else 2048)
    common = {
        "bench": "speed", "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "device_name": torch.cuda.get_device_name(0) if cuda else "cpu",
                    "load_average": list(os.getloadavg())},
        "versions": versions(device), "variant": args.variant, "weights": weights, "device": device,
        "dtype": str(pipe.transformer.dtype).removeprefix("torch."),
        "shape": {"width": args.width, "height": args.height, "frames": args.frames, "steps": args.steps,
                  "guidance": args.guidance, "batch": 1, "seed": args.seed},
        "text_encoder": not args.no_text_encoder, "build_s": round(build_s, 2),
        "matmul_ceiling_tflops": round(ceiling, 3),
        "command": "python bench/speed.py " + " ".join(sys.argv[1:]),
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = args.label or (f"speed-{args.variant.replace('/', '_').replace('@', '-')}-{device.replace(':', '')}-"
                          f"{args.width}x{args.height}x{args.frames}-s{args.steps}")
    ref: dict = {}

    def write(row: dict, video) -> None:  # each row as soon as it is measured (a time limit keeps what finished)
        ref.setdefault("video", video)
        ref.setdefault("clip_s", row["seconds"]["clip_s"])
        row["vs_plain"] = {"clip_time_ratio": round(row["seconds"]["clip_s"] / ref["clip_s"], 3),
                           "max_abs_diff": float(np.abs(video - ref["video"]).max()),
                           "psnr_db": psnr(video, ref["video"]), "note": "decoded frames in [0, 1]; psnr None: identical"}
        row["mfu"] = round(row["achieved_tflops"] / ceiling, 4) if ceiling else None
        out = {**common, **row}
        dest = args.out_dir / f"{stem}-{row['preset'].replace('@', '-at-')}.json"
        dest.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
        print(json.dumps({k: out[k] for k in ("preset", "seconds", "vs_plain", "achieved_tflops", "mfu",
                                              "peak_memory_bytes")}, ensure_ascii=False), flush=True)

    for name in dict.fromkeys(["plain", *args.presets]):  # plain first: the reference
        write(*run_preset(pipe, name, reqs, embeds, args))
    if args.cap_gb and cuda:  # fast under a memory cap: a fresh pipeline under the policy that fits the cap
        del pipe
        m.free_device_memory()
        pipe, _ = build(args.variant, device, not args.no_text_encoder, seed=0)  # same seed: the same weights
        pipe.to("cpu")  # the memory policies start from a pipeline on the host
        cap = int(args.cap_gb * 1e9)
        fp = mm.footprint_from_modules(pipe.components, device)
        policy, _ = mm.choose(fp, mm.Shape(args.width, args.height, args.frames, 1), cap, device)
        mm.apply_policy(pipe, policy, device)
        torch.cuda.set_per_process_memory_fraction(min(1.0, cap / torch.cuda.get_device_properties(0).total_memory))
        try:
            row, video = run_preset(pipe, "fast", reqs, embeds, args, cap_bytes=cap)
        finally:
            torch.cuda.set_per_process_memory_fraction(1.0)
        row["preset"], row["memory_policy"] = "fast@cap", policy.value
        write(row, video)
    print(f"written: {args.out_dir}/{stem}-*.json")


if __name__ == "__main__":
    main()
