"""LoRA training step time and peak memory: the real training step (peft LoRA on the Wan transformer, the
flow-matching loss, AdamW, accelerate) on latents and prompt embeddings of the right shapes.

    python bench/personalize.py --model tiny --width 64 --height 64 --frames 5 --rank 4 --steps 30   # CPU
    python bench/personalize.py --model 1.3b --width 832 --height 480 --frames 33 --rank 32 --steps 20 --device cuda

``tiny`` is the `wan-tiny` stand-in's transformer; ``1.3b`` / ``14b`` are Wan2.1's transformer configurations with
*random weights* (no download: timing and memory only, never a LoRA to use). Latents are cached ones' shapes
(16 channels, frames (F-1)/4+1, H/8, W/8) and the text embeddings umT5's (512 x text_dim), as the trainer reads them
from its cache, so VAE and text encoder time (once per dataset version) is not in the step. GPU: bf16 mixed
precision and gradient checkpointing, as `wanflow personalize train` uses there. Writes a JSON row under
bench/results/ and prints it.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=["tiny", "1.3b", "14b"], default="tiny")
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--height", type=int, default=64)
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = ap.parse_args()

    import accelerate
    import diffusers
    import torch

    from adapters.standins import TINY_TRANSFORMER
    from adapters.training import TARGET_MODULES, draw, flow_matching_loss
    from governance.variants import TRANSFORMER_1_3B, TRANSFORMER_14B

    if args.threads:
        torch.set_num_threads(args.threads)
    config = {"tiny": TINY_TRANSFORMER, "1.3b": TRANSFORMER_1_3B, "14b": TRANSFORMER_14B}[args.model]
    cuda = args.device.startswith("cuda")
    acc = accelerate.Accelerator(mixed_precision="bf16" if cuda else "no", cpu=not cuda)
    torch.manual_seed(0)
    with torch.device(acc.device):
        model = diffusers.WanTransformer3DModel(**config)
    model.requires_grad_(False)
    if cuda:
        model.to(torch.bfloat16)
        model.enable_gradient_checkpointing()
    from peft import LoraConfig

    model.add_adapter(LoraConfig(r=args.rank, lora_alpha=args.rank, target_modules=list(TARGET_MODULES)))
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.data = p.data.float()
    opt = torch.optim.AdamW(params, lr=1e-4)
    model, opt = acc.prepare(model, opt)
    lat = (1, 16, (args.frames - 1) // 4 + 1, args.height // 8, args.width // 8)
    x0 = torch.randn(lat, generator=torch.Generator().manual_seed(1)).to(acc.device)
    emb = torch.randn((1, 512, config["text_dim"]), generator=torch.Generator().manual_seed(2)).to(acc.device)
    times = []
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    for step in range(args.steps):
        t0 = time.perf_counter()
        noise, sigma = draw(0, step, 0, lat, 3.0)
        with acc.autocast():
            loss = flow_matching_loss(model, x0, emb, noise.to(acc.device), sigma.to(acc.device))
        acc.backward(loss)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    warm = times[2:] or times
    row = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "model": args.model,
           "random_weights": args.model != "tiny", "stand_in": args.model == "tiny",
           "size": f"{args.width}x{args.height}x{args.frames}", "rank": args.rank, "steps": args.steps,
           "trainable_params": sum(p.numel() for p in params), "device": str(acc.device),
           "mixed_precision": acc.mixed_precision, "threads": torch.get_num_threads(),
           "step_s_median": round(statistics.median(warm), 4), "step_s_p90": round(sorted(warm)[int(0.9 * (len(warm) - 1))], 4),
           "peak_gpu_bytes": torch.cuda.max_memory_allocated() if cuda else None,
           "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
           "machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "python": platform.python_version(),
           "torch": torch.__version__, "diffusers": diffusers.__version__, "accelerate": accelerate.__version__,
           "final_loss": float(loss.detach())}
    out = ROOT / "bench" / "results" / f"personalize-{args.model}-{row['at'].replace(':', '')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(row, indent=1) + "\n")
    print(json.dumps(row, indent=1))


if __name__ == "__main__":
    main()
