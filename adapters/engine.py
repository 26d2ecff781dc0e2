"""Generating a batch of clips with a loaded Wan pipeline, shaped like diffusers' own ``__call__``:

1. check inputs → 2. scheduler shift → 3. encode prompts → 4. denoise (to latents) → 5. decode → 6. frames.

The stages are timed separately (text-encode, denoise, decode) by calling the pipeline's own methods:
``encode_prompt``, then ``pipe(prompt_embeds=…, output_type="latent")``, then the VAE decode exactly as
the pipeline does it. A batch gives every sample its own ``torch.Generator`` seeded with the job's
seed, so a clip is the same whether made alone or in a batch (within float rounding, 1e-5 on CPU).

Wan 2.2: a pipeline with two experts (``transformer_2`` and ``boundary_ratio`` in its config) gets the low-noise
expert's guidance as ``guidance_scale_2``, and the result says which expert ran each step (timestep at or above
``boundary_ratio`` x ``num_train_timesteps``: ``transformer``, the high-noise one). TI2V-5B is published as a
``WanPipeline``; an item with an image runs it as a ``WanImageToVideoPipeline`` over the same components.

Speed presets (``governance.speed``, applied by ``adapters.speed``): ``speed=`` puts the pipeline into the preset's
state before step 3, encodes prompts through the shared per-prompt cache, wraps step 4 (TF32, step cache, batched
CFG), and with a step-distillation LoRA runs its own steps and guidance; ``details["speed"]`` says what applied
and what fell back.
"""

from __future__ import annotations

import contextlib
import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from adapters import speed as speedup
from core import heavy

MAX_SEQUENCE_LENGTH = 512  # what WanPipeline.__call__ uses (encode_prompt's own default is 226)
OnStep = Callable[[int, int], None]


@dataclass(frozen=True)
class GenerationParams:
    prompt: str
    negative_prompt: str
    width: int
    height: int
    num_frames: int
    steps: int
    guidance: float
    seed: int
    image: str | None = None  # I2V: the conditioning image (a file)
    flow_shift: float | None = None  # None: keep the scheduler's
    guidance_2: float | None = None  # Wan 2.2 A14B: the low-noise expert's guidance (None: the same as guidance)
    edit: dict[str, Any] | None = field(default=None, hash=False, compare=False)  # an edit (adapters.vace runs it)


@dataclass(frozen=True)
class Lora:
    """A brand LoRA: a diffusers-format LoRA file (or folder holding pytorch_lora_weights.safetensors)."""

    path: str
    scale: float = 1.0
    sha256: str = ""
    name: str = "brand"
    low_noise_path: str | None = None  # Wan 2.2 A14B: the low-noise expert's file (None: ``path`` on both)
    low_noise_sha256: str | None = None


@dataclass
class BatchResult:
    frames: list[np.ndarray]  # per sample, uint8 (T, H, W, 3)
    timings: dict[str, float]  # text_encode_s, denoise_s, decode_s, generate_s: for the whole batch
    peak_memory_bytes: int = 0
    peak_memory_kind: str = ""
    video: np.ndarray | None = None  # float frames in [0, 1], (B, T, H, W, 3): for exact comparisons
    details: dict[str, Any] = field(default_factory=dict)


SHARED = ("width", "height", "num_frames", "steps", "guidance", "image", "flow_shift", "guidance_2")


def check_batch(params: list[GenerationParams], pipe: Any) -> None:
    """Everything but prompt, negative prompt and seed must be shared by a batch; I2V needs an image."""
    if not params:
        raise ValueError("params: an empty batch")
    for name in SHARED:
        values = {getattr(p, name) for p in params}
        if len(values) > 1:
            raise ValueError(f"{name}: a batch must share it, got {sorted(map(str, values))}")
    i2v = type(pipe).__name__ == "WanImageToVideoPipeline"
    if not i2v and params[0].image and both_tasks(pipe):
        return  # TI2V: run_batch takes the image-to-video view of the same model
    if i2v and not params[0].image:
        raise ValueError("image: an image-to-video pipeline needs a conditioning image")
    if not i2v and params[0].image:
        raise ValueError(f"image: {type(pipe).__name__} is text-to-video; it takes no conditioning image")


def both_tasks(pipe: Any) -> bool:
    """A TI2V pipeline (Wan 2.2 TI2V-5B's ``expand_timesteps``): text or image to video with the same weights."""
    return bool(getattr(pipe, "config", {}).get("expand_timesteps", False))


def for_task(pipe: Any, image: bool) -> Any:
    """The pipeline to call: a TI2V ``WanPipeline`` given an image becomes (once, cached on it) the
    ``WanImageToVideoPipeline`` sharing its components (``from_pipe``: no copy of the weights)."""
    if not image or type(pipe).__name__ != "WanPipeline" or not both_tasks(pipe):
        return pipe
    view = getattr(pipe, "_wanflow_i2v", None)
    if view is None:
        view = heavy.diffusers().WanImageToVideoPipeline.from_pipe(pipe)
        view.set_progress_bar_config(disable=True)
        pipe._wanflow_i2v = view  # noqa: SLF001 - one view per loaded pipeline
    return view


def experts(pipe: Any) -> dict[str, Any]:
    """The experts of a Wan 2.2 A14B pipeline and its boundary (empty for a single-transformer pipeline)."""
    ratio = pipe.config.get("boundary_ratio")
    if ratio is None or getattr(pipe, "transformer_2", None) is None:
        return {}
    return {"boundary_ratio": float(ratio),
            "boundary_timestep": float(ratio) * pipe.scheduler.config.num_train_timesteps}


def set_flow_shift(pipe: Any, shift: float | None) -> None:
    """Rebuild the scheduler with another flow shift (``flow_shift`` on UniPC, ``shift`` on FlowMatch Euler)."""
    if shift is None:
        return
    cfg = pipe.scheduler.config
    key = "flow_shift" if "flow_shift" in cfg else "shift"
    if float(cfg.get(key, 0.0)) != float(shift):
        pipe.scheduler = type(pipe.scheduler).from_config(cfg, **{key: float(shift)})


def prepare_image(path: str | Path, width: int, height: int):
    """The conditioning image, upright (EXIF), RGB, centre-cropped to the target aspect and resized to it."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        return ImageOps.fit(im, (width, height), method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))


@contextlib.contextmanager
def lora_applied(pipe: Any, lora: Lora | list[Lora] | None) -> Iterator[None]:
    """Load a LoRA (or several, each under its own adapter name: a brand LoRA and a speed-distillation LoRA) with
    diffusers' loader for the duration of a batch, then unload it (the cached pipe stays clean).

    Two experts (Wan 2.2 A14B): ``path`` onto ``transformer`` (high noise) and ``low_noise_path`` — or ``path``
    again, one file for both — onto ``transformer_2`` (``load_into_transformer_2``), under the same adapter name.
    """
    loras = [x for x in (lora if isinstance(lora, list) else [lora]) if x is not None]
    if not loras:
        yield
        return
    moe = getattr(pipe, "transformer_2", None) is not None
    for lo in loras:
        if lo.low_noise_path and not moe:
            raise ValueError(f"lora: a low-noise LoRA ({lo.low_noise_path}) needs a pipeline with two experts; "
                             f"{type(pipe).__name__} has one transformer")
    try:
        for lo in loras:
            targets = [(lo.path, {})]
            if moe:
                targets.append((lo.low_noise_path or lo.path, {"load_into_transformer_2": True}))
            for file, into in targets:
                path = Path(file)
                where, kw = (path.parent, {"weight_name": path.name}) if path.is_file() else (path, {})
                pipe.load_lora_weights(str(where), adapter_name=lo.name, **kw, **into)
        pipe.set_adapters([lo.name for lo in loras], adapter_weights=[lo.scale for lo in loras])
        yield
    finally:
        pipe.unload_lora_weights()


class PeakMemory:
    """Peak memory of a block: CUDA max allocated, or the process's peak RSS (VmHWM, reset via clear_refs)."""

    def __init__(self, device: str):
        self.device = device
        self.bytes = 0
        self.kind = ""

    def __enter__(self) -> PeakMemory:
        if self.device.startswith("cuda"):
            heavy.torch().cuda.reset_peak_memory_stats(self.device)
        else:
            with contextlib.suppress(OSError):
                Path("/proc/self/clear_refs").write_text("5")  # Linux: reset the peak RSS to the current RSS
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.startswith("cuda"):
            self.bytes, self.kind = int(heavy.torch().cuda.max_memory_allocated(self.device)), "cuda_max_allocated"
            return
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.bytes, self.kind = int(line.split()[1]) * 1024, "rss_peak"
        except OSError:
            self.bytes, self.kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "rss_peak_process"


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        heavy.torch().cuda.synchronize(device)


def run_batch(pipe: Any, params: list[GenerationParams], on_step: OnStep | None = None,
              lora: Lora | None = None, embeds: tuple[Any, Any] | None = None,
              speed: speedup.SpeedPreset | None = None) -> BatchResult:
    """Generate one clip per entry of ``params`` in one batch; returns uint8 frames and stage timings.

    ``embeds`` (prompt, negative prompt embeddings) skips text encoding: benchmarks of a pipeline built
    without its 5.7B-parameter text encoder. ``speed``: a preset (``governance.speed``); None runs as plain.
    """
    torch = heavy.torch()
    # 1. check inputs
    check_batch(params, pipe)
    pipe = for_task(pipe, bool(params[0].image))
    device = str(pipe._execution_device)
    run = speedup.prepare(pipe, speed, device, lora=lora is not None or bool(speed.distill_lora)) if speed else None
    loras: list[Lora] = [lora] if lora is not None else []
    if run is not None and run.distill is not None:  # a step-distilled model samples with its own steps/guidance
        d = run.distill
        params = [replace(p, steps=d.steps, guidance=d.guidance, guidance_2=None if p.guidance_2 is None
                          else d.guidance) for p in params]
        loras.append(Lora(path=d.file, scale=d.scale, sha256=d.sha256, name="speed-distill"))
    p0, n = params[0], len(params)
    moe = experts(pipe)
    steps_of: dict[str, int] = {"transformer": 0, "transformer_2": 0}
    # 2. scheduler: the preset's flow shift for this resolution
    set_flow_shift(pipe, p0.flow_shift)
    generators = [torch.Generator(device="cpu").manual_seed(p.seed) for p in params]
    timings: dict[str, float] = {}

    def _callback(pipeline: Any, step: int, timestep: Any, kwargs: dict) -> dict:
        if moe:  # the same rule the pipeline applies to pick the expert for this step
            steps_of["transformer" if float(timestep) >= moe["boundary_timestep"] else "transformer_2"] += 1
        if on_step is not None:
            on_step(step + 1, p0.steps)
        return kwargs

    cfg = p0.guidance > 1.0
    hits = 0
    with lora_applied(pipe, loras), PeakMemory(device) as peak, torch.no_grad():
        t0 = time.perf_counter()
        # 3. encode prompts (the pipeline's own method, its own cleaning: ftfy + whitespace); fast/turbo: each
        #    distinct prompt once, shared with the other jobs that have it
        if embeds is None and run is not None and run.preset.prompt_cache:
            prompt_embeds, negative_embeds, hits = speedup.encode_prompts(
                pipe, [p.prompt for p in params], [p.negative_prompt for p in params], cfg, MAX_SEQUENCE_LENGTH,
                pipe._execution_device)
        else:
            prompt_embeds, negative_embeds = embeds or pipe.encode_prompt(
                prompt=[p.prompt for p in params], negative_prompt=[p.negative_prompt for p in params],
                do_classifier_free_guidance=cfg, num_videos_per_prompt=1,
                max_sequence_length=MAX_SEQUENCE_LENGTH, device=pipe._execution_device)
        _sync(device)
        t1 = time.perf_counter()
        # 4. denoise to latents (I2V: the image is encoded by CLIP and the VAE inside this call)
        extra = {"image": prepare_image(p0.image, p0.width, p0.height)} if p0.image else {}
        if moe:
            extra["guidance_scale_2"] = p0.guidance if p0.guidance_2 is None else p0.guidance_2
        with speedup.denoising(pipe, run, negative_embeds, cfg) if run else contextlib.nullcontext():
            latents = pipe(prompt_embeds=prompt_embeds, negative_prompt_embeds=negative_embeds, height=p0.height,
                           width=p0.width, num_frames=p0.num_frames, num_inference_steps=p0.steps,
                           guidance_scale=p0.guidance, generator=generators, output_type="latent",
                           callback_on_step_end=_callback, max_sequence_length=MAX_SEQUENCE_LENGTH, **extra).frames
        _sync(device)
        t2 = time.perf_counter()
        # 5. decode as WanPipeline.__call__ does after its loop, one sample at a time: the VAE's convolutions
        #    round differently at another batch size (up to 5e-5), and its activations are the largest
        vae = pipe.vae
        latents = latents.to(heavy.diffusers().utils.torch_utils.get_module_execution_device(vae), dtype=vae.dtype)
        mean = torch.tensor(vae.config.latents_mean).view(1, vae.config.z_dim, 1, 1, 1).to(latents.device, latents.dtype)
        std = 1.0 / torch.tensor(vae.config.latents_std).view(1, vae.config.z_dim, 1, 1, 1).to(
            latents.device, latents.dtype)
        video = np.concatenate([pipe.video_processor.postprocess_video(
            vae.decode(lat / std + mean, return_dict=False)[0], output_type="np") for lat in latents.split(1)])
        pipe.maybe_free_model_hooks()
        _sync(device)
        t3 = time.perf_counter()
    # 6. frames as uint8, one array per sample
    frames = [(np.clip(np.asarray(v), 0.0, 1.0) * 255.0).round().astype(np.uint8) for v in video]
    timings = {"text_encode_s": t1 - t0, "denoise_s": t2 - t1, "decode_s": t3 - t2, "generate_s": t3 - t0}
    details = {"batch_size": n, "device": device, "dtype": str(pipe.transformer.dtype)}
    if moe:
        details["experts"] = {**moe, "guidance": p0.guidance, "guidance_2": extra["guidance_scale_2"],
                              "steps": steps_of}
    if run is not None:
        details["speed"] = run.record() | {"prompt_cache_hits": hits, "steps": p0.steps, "guidance": p0.guidance}
    return BatchResult(frames=frames, timings=timings, peak_memory_bytes=peak.bytes, peak_memory_kind=peak.kind,
                       video=np.asarray(video), details=details)


def reference_call(pipe: Any, p: GenerationParams) -> np.ndarray:
    """Plain ``pipe(...)`` with diffusers' defaults for everything we do not set: the bench's baseline."""
    torch = heavy.torch()
    pipe = for_task(pipe, bool(p.image))
    extra = {"image": prepare_image(p.image, p.width, p.height)} if p.image else {}
    if experts(pipe):
        extra["guidance_scale_2"] = p.guidance if p.guidance_2 is None else p.guidance_2
    out = pipe(prompt=p.prompt, negative_prompt=p.negative_prompt, height=p.height, width=p.width,
               num_frames=p.num_frames, num_inference_steps=p.steps, guidance_scale=p.guidance,
               generator=torch.Generator(device="cpu").manual_seed(p.seed), output_type="np", **extra)
    return np.asarray(out.frames[0])
