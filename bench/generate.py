"""Benchmark the generation engine against plain diffusers on the same inputs.

Runs a variant at a given size/frames/steps through wanflow's engine (batch, memory policy, staged timings)
and, in the same process, through a plain ``WanPipeline``/``WanImageToVideoPipeline`` call with diffusers'
defaults (one clip per call, everything on the device, no offload), with the same weights, prompts and seeds.
Reports s/clip, s/step, peak memory, and on CUDA the achieved TFLOP/s from a FLOP estimate of the
transformer; prints wanflow ÷ diffusers. Writes a JSON row under bench/results/.

    python bench/generate.py --variant wan-tiny --width 64 --height 64 --frames 9 --steps 4
    python bench/generate.py --variant wan2.1-t2v-1.3b@random --no-text-encoder --width 64 --height 64 --frames 5
    python bench/generate.py --variant /models/wan2.1-t2v-1.3b --width 832 --height 480 --frames 81 --steps 50

``…@random`` is random-weights mode: the real architecture, seeded random weights, noise out — for timing
and memory only. ``--no-text-encoder`` leaves out umT5-XXL and feeds seeded random prompt embeddings to both
sides (text encoding is then not timed), so a 1.3B transformer fits a small CPU machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def transformer_flops(cfg, width: int, height: int, frames: int, text_len: int = 512, spatial: int = 16) -> float:
    """FLOPs of one transformer forward for one sample (multiply-add = 2 FLOPs): projections, attention, FFN.
    ``spatial``: pixels per token side (16; 32 with the Wan 2.2 VAE of TI2V-5B). A two-expert model runs one
    expert per step, both of the same architecture, so this holds for every step."""
    d = cfg.num_attention_heads * cfg.attention_head_dim
    tokens = ((frames - 1) // 4 + 1) * (height // spatial) * (width // spatial)
    self_attn = 2 * 4 * tokens * d * d + 2 * 2 * tokens * tokens * d
    cross = 2 * 2 * tokens * d * d + 2 * 2 * text_len * d * d + 2 * 2 * tokens * text_len * d
    ffn = 2 * 2 * tokens * d * cfg.ffn_dim
    return cfg.num_layers * (self_attn + cross + ffn)


def build(variant: str, device: str, text_encoder: bool, seed: int):
    """(pipe, folder or None): a loaded folder / stand-in, or a random-weights pipeline."""
    from adapters import pipelines as m
    from adapters.random_weights import build_random_pipeline, is_random
    from adapters.standins import BUILDERS

    if is_random(variant):
        import torch

        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        return build_random_pipeline(variant, seed=seed, device="cpu", dtype=dtype, text_encoder=text_encoder), None
    if variant in BUILDERS:
        folder = BUILDERS[variant](Path(tempfile.mkdtemp(prefix="wanflow-bench-")) / variant)
    else:
        folder = m.resolve_source(variant)
    return None, folder


def time_steps(run, steps: int):
    """Run ``run(on_step)`` and return (result, wall seconds, mean seconds per denoising step)."""
    marks: list[float] = []
    t0 = time.perf_counter()
    result = run(lambda i, n: marks.append(time.perf_counter()))
    wall = time.perf_counter() - t0
    gaps = [b - a for a, b in zip(marks, marks[1:])]
    return result, wall, (statistics.mean(gaps) if gaps else float("nan"))


def main() -> None:  # noqa: PLR0915 - a linear script
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="wan-tiny", help="wan-tiny, wan-tiny-i2v, <preset>@random, folder or hub id")
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--height", type=int, default=64)
    ap.add_argument("--frames", type=int, default=9)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--batch", type=int, default=2, help="clips per wanflow batch (diffusers runs them one by one)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--policy", default="auto", help="memory policy for wanflow's side (auto: from free memory)")
    ap.add_argument("--no-text-encoder", action="store_true", help="random prompt embeddings; skip umT5-XXL")
    ap.add_argument("--image", action="store_true", help="image to video on a TI2V model (wan2.2-ti2v-5b, wan-tiny-ti2v)")
    args = ap.parse_args()

    import numpy as np
    import torch

    from adapters import engine as e
    from adapters import memory as mm
    from adapters import pipelines as m

    device = m.resolve_device(args.device)
    pipe, folder = build(args.variant, device, not args.no_text_encoder, seed=0)
    i2v = args.image or ("i2v" in args.variant and "ti2v" not in args.variant)
    image = None
    if i2v:
        from PIL import Image

        image = Path(tempfile.mkdtemp()) / "still.png"
        Image.new("RGB", (args.width, args.height), (200, 30, 40)).save(image)
    reqs = [e.GenerationParams(f"bench clip {i}: a red sneaker on a turntable", "blurry", args.width, args.height,
                               args.frames, args.steps, 5.0, seed=100 + i, image=str(image) if image else None)
            for i in range(args.batch)]
    shape = mm.Shape(args.width, args.height, args.frames, args.batch)
    if folder is not None:  # wanflow's loader, with its policy
        fp = mm.footprint_from_folder(folder, device)
        policy = mm.Policy(args.policy) if args.policy != "auto" else mm.choose(
            fp, shape, mm.card_for(device, None).free_bytes(), device, args.batch)[0]
        ours = m.load_pipeline(folder, device, policy)
    else:
        fp = mm.footprint_from_modules(pipe.components, device)
        policy = mm.Policy(args.policy) if args.policy != "auto" else mm.choose(
            fp, shape, mm.card_for(device, None).free_bytes(), device, args.batch)[0]
        mm.apply_policy(pipe, policy, device)
        ours = pipe
    embeds = None
    if args.no_text_encoder:
        g = torch.Generator().manual_seed(0)
        dtype = ours.transformer.dtype
        embeds = tuple(torch.randn(args.batch, 512, 4096, generator=g).mul_(0.1).to(device, dtype) for _ in range(2))

    def run_ours(on_step):
        return e.run_batch(ours, reqs, on_step=on_step, embeds=embeds)

    # Plain diffusers: a fresh pipeline of the same weights, .to(device), default call, one clip per call.
    import diffusers

    if folder is not None:
        base = diffusers.DiffusionPipeline.from_pretrained(folder, dtype=ours.transformer.dtype,
                                                          local_files_only=True).to(device)
    else:
        from adapters.random_weights import build_random_pipeline

        base = build_random_pipeline(args.variant, seed=0, device="cpu", dtype=ours.transformer.dtype,
                                     text_encoder=not args.no_text_encoder).to(device)
    base.set_progress_bar_config(disable=True)
    base = e.for_task(base, image is not None)  # TI2V with an image: its WanImageToVideoPipeline view

    def run_base(on_step):
        out = []
        for i, r in enumerate(reqs):
            kw = {"prompt": r.prompt, "negative_prompt": r.negative_prompt} if embeds is None else {
                "prompt_embeds": embeds[0][i:i + 1], "negative_prompt_embeds": embeds[1][i:i + 1]}
            if image is not None:
                kw["image"] = e.prepare_image(image, r.width, r.height)
            res = base(height=r.height, width=r.width, num_frames=r.num_frames, num_inference_steps=r.steps,
                       guidance_scale=r.guidance, generator=torch.Generator().manual_seed(r.seed), output_type="np",
                       callback_on_step_end=lambda p, s, t, k: (on_step(s + 1, r.steps), k)[1], **kw)
            out.append(np.asarray(res.frames[0]))
        return out

    run_ours(None)  # warm-up (allocator, kernels, first-call caches)
    run_base(lambda i, n: None)
    ours_runs, base_runs = [], []
    for _ in range(args.repeats):  # interleaved, so that a busy neighbour slows both sides alike
        ours_runs.append(time_steps(run_ours, args.steps))
        base_runs.append(time_steps(run_base, args.steps))
    with e.PeakMemory(device) as ours_peak:
        run_ours(None)
    with e.PeakMemory(device) as base_peak:
        base_frames = run_base(lambda i, n: None)

    # best of the repeats: the least disturbed run of each side (medians are in the row too)
    ours_clip = min(w for _, w, _ in ours_runs) / args.batch
    base_clip = min(w for _, w, _ in base_runs) / args.batch
    ours_step = min(s for _, _, s in ours_runs)
    base_step = min(s for _, _, s in base_runs)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(ours_runs[-1][0].video, base_frames))
    flops_step = transformer_flops(ours.transformer.config, args.width, args.height, args.frames,
                                   spatial=ours.vae.config.scale_factor_spatial * 2) * 2  # CFG: 2 passes
    tflops = None
    if device.startswith("cuda"):
        denoise = statistics.median(r.timings["denoise_s"] for r, _, _ in ours_runs)
        tflops = round(flops_step * args.steps * args.batch / denoise / 1e12, 2)
    row = {
        "bench": "generate", "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                   f"{torch.cuda.get_device_name(0) if device.startswith('cuda') else 'no GPU'}",
        "variant": args.variant, "weights": "random (timing only)" if folder is None or "tiny" in args.variant
        else "real", "device": device, "dtype": str(ours.transformer.dtype).removeprefix("torch."),
        "shape": {"width": args.width, "height": args.height, "frames": args.frames, "steps": args.steps,
                  "batch": args.batch}, "text_encoder": not args.no_text_encoder,
        "wanflow": {"memory_policy": policy.value, "s_per_clip": round(ours_clip, 4), "s_per_step": round(ours_step, 4),
                    "peak_memory_bytes": ours_peak.bytes, "peak_memory_kind": ours_peak.kind,
                    "stage_s_per_batch": {k: round(statistics.median(r.timings[k] for r, _, _ in ours_runs), 4)
                                          for k in ("text_encode_s", "denoise_s", "decode_s")},
                    "estimated_peak_note": "device memory model (adapters.memory); RSS also counts Python/torch",
                    "estimated_peak_bytes": mm.estimate_peak(fp, shape, policy, device),
                    "achieved_tflops": tflops},
        "diffusers_default": {"s_per_clip": round(base_clip, 4), "s_per_step": round(base_step, 4),
                              "peak_memory_bytes": base_peak.bytes, "peak_memory_kind": base_peak.kind},
        "ratio_s_per_clip_wanflow_over_diffusers": round(ours_clip / base_clip, 3),
        "median_s_per_clip": {"wanflow": round(statistics.median(w for _, w, _ in ours_runs) / args.batch, 4),
                              "diffusers_default": round(statistics.median(w for _, w, _ in base_runs) / args.batch, 4)},
        "transformer_gflop_per_step": round(flops_step / 1e9, 3),
        "max_abs_frame_diff_vs_diffusers": diff, "repeats": args.repeats,
        "versions": {p: version(p) for p in ("torch", "diffusers", "transformers")},
    }
    name = args.variant.replace("/", "_").replace("@", "-")
    out = ROOT / "bench" / "results" / f"generate-{name}-{device.replace(':', '')}-{args.width}x{args.height}x{args.frames}-b{args.batch}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(row, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(row, indent=2, ensure_ascii=False))
    print(f"\nwanflow {ours_clip:.4f} s/clip vs diffusers default {base_clip:.4f} s/clip "
          f"(ratio {row['ratio_s_per_clip_wanflow_over_diffusers']}); written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
