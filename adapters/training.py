"""Brand LoRA training on a Wan transformer: peft LoRA, the flow-matching objective, accelerate, checkpoints.

Shaped like diffusers' ``examples/*/train_*_lora.py``, in numbered steps:

1. cache: each dataset version's latents (VAE encode, normalised as WanPipeline decodes them) and prompt
   embeddings (the text encoder, as the pipeline encodes a prompt) are computed once and kept in one file per
   (dataset digest, base weights digest, size) — :func:`build_cache`;
2. model: the base ``WanTransformer3DModel`` frozen, a peft ``LoraConfig`` on the attention projections
   (``to_q``, ``to_k``, ``to_v``, ``to_out.0``) and the feed-forward projections (``ffn.net.0.proj``,
   ``ffn.net.2``); gradient checkpointing and bf16 mixed precision on GPU, through ``accelerate.Accelerator``
   (``no`` mixed precision on CPU); DDP (or FSDP from an accelerate config) when launched on several processes;
3. loop: the objective Wan was trained with — ``x_t = (1-σ)·x0 + σ·noise``, the model predicts the velocity
   ``noise − x0`` at timestep ``1000·σ``, σ drawn uniformly then shifted ``σ' = shift·σ/(1+(shift−1)·σ)``;
   AdamW, constant learning rate after a linear warm-up, gradients clipped;
4. checkpoints every N steps, by rank 0 only, written atomically (temporary name + rename): the LoRA weights,
   optimizer, scheduler, RNG states, the step and the loss curve. Every random draw (which sample, its noise,
   its σ) is keyed on (seed, step, rank), so a run killed at any point (kill -9) and resumed from its last
   checkpoint sees the same data in the same order and ends on the same weights as an uninterrupted run;
5. the final LoRA in diffusers' format (``pytorch_lora_weights.safetensors``, loadable by
   ``pipe.load_lora_weights``), a ``result.json`` with the loss curve, step times, peak memory and each rank's
   digest of its weights (data-parallel ranks must agree), and validation frames at fixed seeds.

Run in-process (:func:`train`), or on several processes: ``accelerate launch [--config_file F] -m
adapters.training JOB.json`` (or ``torchrun``); see docs/deploy.md.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from adapters.engine import MAX_SEQUENCE_LENGTH
from adapters.lora_registry import LORA_FILE
from adapters.standins import quiet
from adapters.training_media import load_frames
from core import heavy
from core.files import atomic_path, write_text_atomic

TARGET_MODULES = ("to_q", "to_k", "to_v", "to_out.0", "ffn.net.0.proj", "ffn.net.2")
KEEP_CHECKPOINTS = 2
OnStep = Callable[[int, int, float], None]  # (step, total, loss)


@dataclass(frozen=True)
class TrainConfig:
    rank: int = 16
    alpha: float | None = None  # default: rank (scale 1)
    steps: int = 100
    lr: float = 1e-4
    warmup_steps: int = 0
    seed: int = 0
    width: int = 64
    height: int = 64
    frames: int = 5
    shift: float = 3.0
    checkpoint_every: int = 50
    validate_every: int = 0  # 0: only at the end
    validation_steps: int = 4  # denoising steps of a validation sample
    max_grad_norm: float = 1.0
    device: str = "auto"
    mixed_precision: str | None = None  # None: bf16 on CUDA, no on CPU
    gradient_checkpointing: bool | None = None  # None: on for CUDA
    target_modules: tuple[str, ...] = TARGET_MODULES


@dataclass(frozen=True)
class TrainJob:
    """Everything a training process needs: written as JSON for ``accelerate launch -m adapters.training``."""

    base: str  # the base model's diffusers folder
    cache: str  # the latent/embedding cache file (build_cache)
    out: str  # the run folder: checkpoints/, lora/, validation/, result.json
    config: TrainConfig = field(default_factory=TrainConfig)

    def to_json(self) -> str:
        return json.dumps({"base": self.base, "cache": self.cache, "out": self.out, "config": asdict(self.config)})

    @classmethod
    def from_json(cls, text: str) -> TrainJob:
        d = json.loads(text)
        cfg = d["config"] | {"target_modules": tuple(d["config"]["target_modules"])}
        return cls(d["base"], d["cache"], d["out"], TrainConfig(**cfg))


def _device(name: str) -> str:
    torch = heavy.torch()
    return ("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name


# 1. cache ------------------------------------------------------------------------------------------------------


def cache_key(dataset_sha256: str, base_sha256: str, cfg: TrainConfig) -> str:
    return hashlib.sha256(f"{dataset_sha256}/{base_sha256}/{cfg.width}x{cfg.height}x{cfg.frames}".encode()).hexdigest()[:24]


def build_cache(base: Path, items: list[tuple[Path, str]], dest: Path, cfg: TrainConfig,
                validation_prompts: list[str] | None = None) -> Path:
    """Encode every (media, caption) once: normalised VAE latents and prompt embeddings, saved atomically at
    ``dest`` (kept: the same dataset version, base and size reuse it)."""
    if Path(dest).exists():
        return Path(dest)
    torch, diffusers = heavy.torch(), heavy.diffusers()
    device = _device(cfg.device)
    quiet()
    pipe = diffusers.WanPipeline.from_pretrained(base, transformer=None, local_files_only=True).to(device)
    vae = pipe.vae
    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1).to(device)
    std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1).to(device)
    latents, embeds = [], []
    with torch.no_grad():
        for media, caption in items:
            frames = load_frames(media, cfg.width, cfg.height, cfg.frames)  # (T, H, W, 3) uint8
            x = torch.from_numpy(np.array(frames)).permute(3, 0, 1, 2)[None].float().div(127.5).sub(1.0).to(device, vae.dtype)
            lat = vae.encode(x).latent_dist.mode()
            latents.append(((lat.float() - mean) / std).cpu())
            embeds.append(pipe.encode_prompt(caption, do_classifier_free_guidance=False, device=device,
                                             max_sequence_length=MAX_SEQUENCE_LENGTH)[0].float().cpu())
        val = [pipe.encode_prompt(p, do_classifier_free_guidance=False, device=device,
                                  max_sequence_length=MAX_SEQUENCE_LENGTH)[0].float().cpu()
               for p in validation_prompts or []]
    with atomic_path(Path(dest)) as tmp:
        torch.save({"latents": latents, "embeds": embeds, "captions": [c for _, c in items],
                    "validation_prompts": list(validation_prompts or []), "validation_embeds": val,
                    "size": [cfg.width, cfg.height, cfg.frames]}, tmp)
    return Path(dest)


# 2. model ------------------------------------------------------------------------------------------------------


def lora_transformer(base: Path, cfg: TrainConfig):  # noqa: ANN201 - a diffusers WanTransformer3DModel with a LoRA
    """The base transformer, frozen, with a fresh LoRA (B = 0: it starts exactly at the base model)."""
    diffusers, peft, torch = heavy.diffusers(), heavy.peft(), heavy.torch()
    transformer = diffusers.WanTransformer3DModel.from_pretrained(base, subfolder="transformer", local_files_only=True)
    transformer.requires_grad_(False)
    torch.manual_seed(cfg.seed)
    transformer.add_adapter(peft.LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha or cfg.rank, init_lora_weights=True,
                                            target_modules=list(cfg.target_modules)))
    for p in transformer.parameters():  # the LoRA trains in float32 (mixed precision casts the compute)
        if p.requires_grad:
            p.data = p.data.float()
    return transformer


def trainable_state(model) -> dict[str, Any]:  # noqa: ANN001
    return {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}


def weights_digest(state: dict[str, Any]) -> str:
    h = hashlib.sha256()
    for name in sorted(state):
        h.update(name.encode())
        h.update(state[name].float().numpy().tobytes())
    return h.hexdigest()


# 3. the objective and the data order ----------------------------------------------------------------------------


def shifted_sigma(u, shift: float):  # noqa: ANN001, ANN201 - tensors
    """σ' = shift·σ / (1 + (shift − 1)·σ): more steps at high noise for larger shifts (as Wan samples)."""
    return shift * u / (1 + (shift - 1) * u)


def sample_index(seed: int, step: int, rank: int, world: int, n: int) -> int:
    """Which sample (rank, step) trains on: a fresh seeded permutation per epoch, walked by global position."""
    torch = heavy.torch()
    k = step * world + rank
    epoch, pos = divmod(k, n)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    return int(perm[pos])


def draw(seed: int, step: int, rank: int, shape: tuple[int, ...], shift: float):  # noqa: ANN201
    """(noise, σ) for one sample: keyed on (seed, step, rank), never on a global RNG's history."""
    torch = heavy.torch()
    g = torch.Generator().manual_seed((seed * 1_000_003 + step) * 131 + rank)
    noise = torch.randn(shape, generator=g)
    sigma = shifted_sigma(torch.rand((), generator=g), shift)
    return noise, sigma


def flow_matching_loss(model, x0, embeds, noise, sigma):  # noqa: ANN001, ANN201
    """MSE between the model's velocity and ``noise − x0`` at ``x_t = (1−σ)x0 + σ·noise``, timestep 1000σ."""
    torch = heavy.torch()
    x_t = (1 - sigma) * x0 + sigma * noise
    t = (sigma * 1000).reshape(1).expand(x0.shape[0])
    pred = model(hidden_states=x_t, timestep=t, encoder_hidden_states=embeds, return_dict=False)[0]
    return torch.nn.functional.mse_loss(pred.float(), (noise - x0).float())


def fit_report(model, cache: dict[str, Any], seed: int = 12345, shift: float = 3.0, draws: int = 4) -> dict[str, float]:  # noqa: ANN001
    """How well the model fits the training samples, on fixed draws: the mean flow-matching loss, and the mean
    distance between the one-step prediction of x0 (``x_t − σ·v``) and the sample (lower: output nearer the data)."""
    torch = heavy.torch()
    losses, dists = [], []
    param = next(model.parameters())
    with torch.no_grad():
        for i, (x0, emb) in enumerate(zip(cache["latents"], cache["embeds"], strict=True)):
            for d in range(draws):
                noise, sigma = draw(seed, d, i, tuple(x0.shape), shift)
                x0d, embd, noise = x0.to(param.device), emb.to(param.device), noise.to(param.device)
                x_t = (1 - sigma) * x0d + sigma * noise
                pred = model(hidden_states=x_t, timestep=(sigma * 1000).reshape(1), encoder_hidden_states=embd,
                             return_dict=False)[0].float()
                losses.append(float(torch.nn.functional.mse_loss(pred, noise - x0d)))
                dists.append(float((x_t - sigma * pred - x0d).pow(2).mean().sqrt()))
    return {"loss": float(np.mean(losses)), "x0_distance": float(np.mean(dists))}


# 4. checkpoints --------------------------------------------------------------------------------------------------


def checkpoints(out: Path) -> list[Path]:
    return sorted((Path(out) / "checkpoints").glob("step-*.pt"))


def _rng_states() -> dict[str, Any]:
    torch = heavy.torch()
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def _set_rng_states(s: dict[str, Any]) -> None:
    torch = heavy.torch()
    torch.set_rng_state(s["torch"])
    np.random.set_state(s["numpy"])
    random.setstate(s["python"])


def save_checkpoint(out: Path, step: int, model, optimizer, scheduler, history: dict[str, list]) -> Path:  # noqa: ANN001
    """Rank 0: everything needed to go on from ``step``, written under a temporary name and renamed into place."""
    torch = heavy.torch()
    dest = Path(out) / "checkpoints" / f"step-{step:07d}.pt"
    with atomic_path(dest) as tmp:
        torch.save({"step": step, "lora": trainable_state(model), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "rng": _rng_states(), "history": history}, tmp)
    for old in checkpoints(out)[:-KEEP_CHECKPOINTS]:
        old.unlink(missing_ok=True)
    return dest


def load_checkpoint(path: Path, model, optimizer, scheduler) -> tuple[int, dict[str, list]]:  # noqa: ANN001
    torch = heavy.torch()
    state = torch.load(path, map_location="cpu", weights_only=False)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state["lora"].items():
            params[name].copy_(value)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    _set_rng_states(state["rng"])
    return int(state["step"]), state["history"]


# 5. the loop -----------------------------------------------------------------------------------------------------


def _accelerator(cfg: TrainConfig):  # noqa: ANN202
    accelerate = heavy.accelerate()
    device = _device(cfg.device)
    mp = cfg.mixed_precision or ("bf16" if device.startswith("cuda") else "no")
    return accelerate.Accelerator(mixed_precision=mp, cpu=not device.startswith("cuda"))


def train(job: TrainJob, on_step: OnStep | None = None) -> dict[str, Any]:
    """Train (or resume) the LoRA of ``job``; returns the result (also written, by rank 0, as result.json)."""
    torch, peft, diffusers = heavy.torch(), heavy.peft(), heavy.diffusers()
    cfg, out = job.config, Path(job.out)
    accelerator = _accelerator(cfg)
    rank, world, main = accelerator.process_index, accelerator.num_processes, accelerator.is_main_process
    cache = torch.load(job.cache, map_location="cpu", weights_only=False)
    n = len(cache["latents"])
    model = lora_transformer(Path(job.base), cfg)
    if cfg.gradient_checkpointing or (cfg.gradient_checkpointing is None and accelerator.device.type == "cuda"):
        model.enable_gradient_checkpointing()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    warm = max(1, cfg.warmup_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warm))
    start, history = 0, {"loss": [], "lr": [], "step_time_s": []}
    found = checkpoints(out)
    if found:  # every rank reads rank 0's last checkpoint
        start, history = load_checkpoint(found[-1], model, optimizer, scheduler)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    written: list[str] = []
    peak = 0
    model.train()
    for step in range(start, cfg.steps):
        t0 = time.perf_counter()
        idx = sample_index(cfg.seed, step, rank, world, n)
        x0 = cache["latents"][idx].to(accelerator.device)
        emb = cache["embeds"][idx].to(accelerator.device)
        noise, sigma = draw(cfg.seed, step, rank, tuple(x0.shape), cfg.shift)
        with accelerator.autocast():
            loss = flow_matching_loss(model, x0, emb, noise.to(accelerator.device), sigma.to(accelerator.device))
        accelerator.backward(loss)
        if cfg.max_grad_norm:
            accelerator.clip_grad_norm_(params, cfg.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        mean_loss = float(accelerator.reduce(loss.detach(), reduction="mean"))
        history["loss"].append(mean_loss)
        history["lr"].append(float(scheduler.get_last_lr()[0]))
        history["step_time_s"].append(time.perf_counter() - t0)
        if accelerator.device.type == "cuda":
            peak = max(peak, torch.cuda.max_memory_allocated())
        done = step + 1
        if on_step is not None and main:
            on_step(done, cfg.steps, mean_loss)
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            accelerator.wait_for_everyone()
            if main:
                written.append(str(save_checkpoint(out, done, accelerator.unwrap_model(model), optimizer, scheduler,
                                                   history)))
            accelerator.wait_for_everyone()
        if main and cfg.validate_every and done % cfg.validate_every == 0 and done != cfg.steps:
            validate(Path(job.base), accelerator.unwrap_model(model), cache, cfg, out / "validation" / f"step-{done:07d}")
    model.eval()
    unwrapped = accelerator.unwrap_model(model)
    state = trainable_state(unwrapped)
    digests = accelerate_gather([weights_digest(state)], accelerator)
    writers = accelerate_gather([(rank, written)], accelerator)
    result: dict[str, Any] = {}
    if main:
        lora_dir = out / "lora"
        if not (lora_dir / LORA_FILE).exists():  # else a finished run of this same key wrote these very weights
            with atomic_path(lora_dir) as tmp:
                diffusers.loaders.WanLoraLoaderMixin.save_lora_weights(
                    tmp, transformer_lora_layers=peft.get_peft_model_state_dict(unwrapped))
        validate(Path(job.base), unwrapped, cache, cfg, out / "validation" / f"step-{cfg.steps:07d}")
        times = history["step_time_s"][1:] or history["step_time_s"]
        result = {"steps": cfg.steps, "resumed_from": start, "world_size": world, "loss": history["loss"],
                  "lr": history["lr"], "step_time_s": history["step_time_s"],
                  "step_time_s_median": float(np.median(times)) if times else None,
                  "peak_memory_bytes": peak or None, "device": accelerator.device.type,
                  "mixed_precision": accelerator.mixed_precision, "rank_digests": digests,
                  "checkpoint_writers": {str(r): w for r, w in writers}, "lora": str(lora_dir / LORA_FILE),
                  "weights_digest": digests[0], "config": asdict(cfg)}
        write_text_atomic(out / "result.json", json.dumps(result, indent=1))
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return result


def accelerate_gather(values: list[Any], accelerator) -> list[Any]:  # noqa: ANN001
    """Every rank's ``values`` on every rank, in rank order (one list)."""
    if accelerator.num_processes == 1:
        return list(values)
    return heavy.accelerate().utils.gather_object(values)


def validate(base: Path, model, cache: dict[str, Any], cfg: TrainConfig, dest: Path) -> list[Path]:  # noqa: ANN001
    """Rank 0: one sample per validation prompt at a fixed seed (the same each time), its middle frame as a PNG."""
    torch, diffusers = heavy.torch(), heavy.diffusers()
    if not cache.get("validation_embeds"):
        return []
    quiet()
    pipe = diffusers.WanPipeline.from_pretrained(base, transformer=model, text_encoder=None, tokenizer=None,
                                                 local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    dest.mkdir(parents=True, exist_ok=True)
    paths = []
    was_training = model.training
    model.eval()
    param = next(model.parameters())
    for i, emb in enumerate(cache["validation_embeds"]):
        with torch.no_grad():
            frames = pipe(prompt_embeds=emb.to(param.device, param.dtype), guidance_scale=1.0,
                          height=cfg.height, width=cfg.width, num_frames=cfg.frames,
                          num_inference_steps=cfg.validation_steps, output_type="np",
                          generator=torch.Generator().manual_seed(1000 + i)).frames[0]
        path = dest / f"prompt-{i}.png"
        with atomic_path(path) as tmp:
            Image.fromarray((np.clip(frames[len(frames) // 2], 0, 1) * 255).astype(np.uint8)).save(tmp, format="PNG")
        paths.append(path)
    model.train(was_training)
    return paths


def validation_sheet(out: Path, dest: Path, cell: int = 96) -> Path | None:
    """The validation samples as one PNG: a row per validation step (labelled), a column per prompt."""
    steps = sorted(p for p in (Path(out) / "validation").glob("step-*") if p.is_dir())
    rows = [(s.name, sorted(s.glob("prompt-*.png"))) for s in steps]
    rows = [(name, files) for name, files in rows if files]
    if not rows:
        return None
    cols = max(len(files) for _, files in rows)
    label_w = 90
    sheet = Image.new("RGB", (label_w + cols * cell, len(rows) * cell), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for r, (name, files) in enumerate(rows):
        draw.text((4, r * cell + cell // 2 - 6), name, fill=(235, 235, 235), font=ImageFont.load_default())
        for c, f in enumerate(files):
            with Image.open(f) as im:
                sheet.paste(im.convert("RGB").resize((cell, cell), Image.Resampling.NEAREST), (label_w + c * cell, r * cell))
    with atomic_path(Path(dest)) as tmp:
        sheet.save(tmp, format="PNG")
    return Path(dest)


def main(argv: list[str] | None = None) -> int:
    """``python -m adapters.training JOB.json``: what ``accelerate launch`` (or ``torchrun``) runs on each process."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m adapters.training JOB.json", file=sys.stderr)
        return 2
    train(TrainJob.from_json(Path(args[0]).read_text()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
