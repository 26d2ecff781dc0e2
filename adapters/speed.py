"""Applying a speed preset (``governance.speed``) to a loaded Wan pipeline, and reporting what applied.

:func:`prepare` puts the pipeline's transformer(s) into the preset's state — regional compilation of the
repeated blocks (``compile_repeated_blocks``) on or off, the attention backend (diffusers' dispatcher: the
fastest one the device can run, probed), FP8 linear layers (torchao, on a card with FP8 units) — and returns a
:class:`SpeedRun` that lists, feature by feature, what applied and what fell back with the reason. Nothing falls
back silently: the run's record goes onto every job. The state is "ensured", not toggled: a ``plain`` batch
after a ``fast`` one on the same cached pipeline runs uncompiled, on the native backend, unhooked.

:func:`denoising` wraps one denoising call: TF32 (CUDA), a step cache hook (FirstBlockCache or TaylorSeer,
enabled for the call and removed after it, so each batch starts clean and a seed gives the same frames), and
batched classifier-free guidance: diffusers' ``WanPipeline`` calls the transformer twice per step (conditional,
then unconditional, on the same latents); the transformer's ``forward`` is wrapped for the call so that the first
of the two runs both halves in one forward of twice the batch and the second returns the stored half.

:func:`encode_prompts` encodes each distinct (prompt, negative prompt) once, alone (so a cached embedding is
bit-identical to a fresh one), and keeps it on the text encoder for the other jobs of the same prompt.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import shutil
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core import heavy
from governance.speed import DISTILL_FILE, SpeedPreset, distill_settings

PROMPT_CACHE_SIZE = 16  # distinct prompts kept per text encoder (a 512x4096 bf16 embedding is 4 MiB)
CUDA_BACKENDS = ("_flash_3", "flash", "_native_cudnn", "native")  # fastest first; each is probed before use
FP8_CAPABILITY = (8, 9)  # Ada / Hopper and later have FP8 matrix units
COMPILE_KW: dict[str, Any] = {"fullgraph": False, "dynamic": False}  # passed to torch.compile per block


class NeedsReload(RuntimeError):
    """The cached pipeline was changed in a way that cannot be undone (FP8 weights): load it again."""


@dataclass(frozen=True)
class Distill:
    """A step-distillation LoRA from a local folder: its weights file, digest and own sampling settings."""

    folder: str
    file: str
    sha256: str
    steps: int
    guidance: float
    scale: float = 1.0


@dataclass
class SpeedRun:
    preset: SpeedPreset
    device: str
    applied: dict[str, Any] = field(default_factory=dict)
    fallbacks: list[dict[str, str]] = field(default_factory=list)
    distill: Distill | None = None

    def fall_back(self, feature: str, reason: str, used: str = "off") -> None:
        self.fallbacks.append({"feature": feature, "used": used, "reason": reason})

    def record(self) -> dict[str, Any]:
        return {"preset": self.preset.as_dict(), "device": self.device, "applied": dict(self.applied),
                "fallbacks": list(self.fallbacks),
                "distill": None if self.distill is None else self.distill.__dict__.copy()}


def load_distill(folder: str | Path) -> Distill:
    """The LoRA in ``folder`` (``pytorch_lora_weights.safetensors``) and its ``distill.json`` settings."""
    folder = Path(folder).expanduser()
    weights, meta = folder / "pytorch_lora_weights.safetensors", folder / DISTILL_FILE
    if not weights.is_file() or not meta.is_file():
        raise FileNotFoundError(f"speed distill LoRA: {folder} needs pytorch_lora_weights.safetensors and "
                                f"{DISTILL_FILE} ({{\"steps\": 4, \"guidance\": 1.0}})")
    try:
        raw = json.loads(meta.read_text())
    except ValueError as exc:
        raise ValueError(f"{meta}: not JSON ({exc})") from None
    settings = distill_settings(raw if isinstance(raw, dict) else {}, str(meta))
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    return Distill(folder=str(folder), file=str(weights), sha256=digest, **settings)


def transformers_of(pipe: Any) -> list[Any]:
    return [t for t in (pipe.transformer, getattr(pipe, "transformer_2", None)) if t is not None]


# --- prepare: the pipeline's persistent state -----------------------------------------------------------

def prepare(pipe: Any, preset: SpeedPreset, device: str, lora: bool = False) -> SpeedRun:
    """Put ``pipe`` into ``preset``'s state; ``lora``: a LoRA will be loaded for this batch (FP8 then falls back)."""
    run = SpeedRun(preset=preset, device=device)
    if _is_fp8(pipe) and not (preset.fp8 and _fp8_possible(run, lora, quiet=True)):
        raise NeedsReload("the cached pipeline has FP8 linear layers; this batch's speed preset does not use them")
    _compile(pipe, run)
    _attention(pipe, run)
    if preset.fp8 and _fp8_possible(run, lora):
        _fp8(pipe, run)
    if preset.distill_lora:
        run.distill = load_distill(preset.distill_lora)
        run.applied["distill_lora"] = {"sha256": run.distill.sha256, "steps": run.distill.steps,
                                       "guidance": run.distill.guidance}
    for name in ("batched_cfg", "prompt_cache"):
        if getattr(preset, name):
            run.applied[name] = True
    if preset.tf32:
        if device.startswith("cuda"):
            run.applied["tf32"] = "denoising only (float32 matrix products; the bf16 ones are unaffected)"
        else:
            run.fall_back("tf32", f"{device}: TF32 is a CUDA tensor-core mode")
    if preset.step_cache:
        run.applied["step_cache"] = {"kind": preset.step_cache, "threshold": preset.cache_threshold}
    run.applied["vae"] = ("decoded one sample at a time (slicing); tiling only under the vae_tiling memory policy, "
                          "since it changes pixels")
    return run


def _compile(pipe: Any, run: SpeedRun) -> None:
    want = run.preset.compile
    if want:
        missing = _compiler_missing(run.device)
        if missing:
            run.fall_back("compile", missing, used="eager")
            want = False
    for tr in transformers_of(pipe):
        blocks = [m for m in tr.modules() if type(m).__name__ in (getattr(tr, "_repeated_blocks", None) or ())]
        if want and not blocks:
            run.fall_back("compile", f"{type(tr).__name__} declares no repeated blocks", used="eager")
            continue
        fresh = want and any(getattr(b, "_wanflow_compiled", None) is None for b in blocks)
        if fresh:
            tr.compile_repeated_blocks(**COMPILE_KW)
            for b in blocks:
                b._wanflow_compiled = b._compiled_call_impl  # noqa: SLF001 - kept to switch back on later
        for b in blocks:  # plain after fast: the same modules run eagerly again
            b._compiled_call_impl = getattr(b, "_wanflow_compiled", None) if want else None  # noqa: SLF001
        if want:
            run.applied["compile"] = {"blocks": len(blocks), "kind": type(blocks[0]).__name__,
                                      "compiled_now": bool(fresh), "mode": "regional (compile_repeated_blocks)"}


def _compiler_missing(device: str) -> str:
    if device.startswith("cuda"):
        return "" if importlib.util.find_spec("triton") else "torch.compile on CUDA needs triton (not installed)"
    if not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        return "torch.compile on CPU needs a C++ compiler (g++/clang++); none on PATH"
    return ""


def _attention(pipe: Any, run: SpeedRun) -> None:
    backend = "native"
    if run.preset.attention:
        backend, skipped = best_attention_backend(run.device)
        for name, why in skipped:
            run.fall_back("attention", f"{name}: {why}", used=backend)
        run.applied["attention"] = backend
    with _quiet_diffusers():
        for tr in transformers_of(pipe):
            if getattr(tr, "_wanflow_attention", "native") != backend:
                tr.set_attention_backend(backend)
                tr._wanflow_attention = backend  # noqa: SLF001
        if backend == "native":  # the dispatcher's active backend is process-wide: put it back for plain
            heavy.diffusers().models.attention_dispatch._AttentionBackendRegistry.set_active_backend(  # noqa: SLF001
                heavy.diffusers().models.attention_dispatch.AttentionBackendName.NATIVE)


_backend_memo: dict[str, tuple[str, list[tuple[str, str]]]] = {}


def best_attention_backend(device: str) -> tuple[str, list[tuple[str, str]]]:
    """The fastest attention backend that runs on ``device`` (probed once per device), and why faster ones were
    skipped: flash-attn 3, flash-attn 2, cuDNN SDPA, then PyTorch's native SDPA."""
    if not device.startswith("cuda"):
        return "native", [("flash / _native_cudnn", f"{device}: the flash and cuDNN attention kernels are CUDA-only")]
    if device in _backend_memo:
        return _backend_memo[device]
    torch = heavy.torch()
    ad = heavy.diffusers().models.attention_dispatch
    skipped: list[tuple[str, str]] = []
    q = torch.randn(1, 64, 2, 64, device=device, dtype=torch.bfloat16)
    for name in CUDA_BACKENDS:
        try:
            backend = ad.AttentionBackendName(name)
            ad._check_attention_backend_requirements(backend)  # noqa: SLF001 - the dispatcher's own check
            ad.dispatch_attention_fn(q, q, q, backend=backend)
            torch.cuda.synchronize(device)
        except Exception as exc:  # noqa: BLE001 - a missing kernel is a reason to try the next one
            skipped.append((name, f"{type(exc).__name__}: {str(exc)[:160]}"))
            continue
        _backend_memo[device] = (name, skipped)
        return name, skipped
    return "native", skipped


def _is_fp8(pipe: Any) -> bool:
    return any(getattr(t, "_wanflow_fp8", False) for t in transformers_of(pipe))


def _fp8_possible(run: SpeedRun, lora: bool, quiet: bool = False) -> bool:
    torch, reason = heavy.torch(), ""
    if not run.device.startswith("cuda"):
        reason = f"{run.device}: FP8 linear layers need a CUDA card with FP8 units (compute capability ≥ 8.9)"
    elif torch.cuda.get_device_capability(run.device) < FP8_CAPABILITY:
        reason = f"{torch.cuda.get_device_name(run.device)} has no FP8 matrix units (compute capability < 8.9)"
    elif importlib.util.find_spec("torchao") is None:
        reason = "torchao is not installed"
    elif lora:
        reason = "a LoRA is loaded for this batch; LoRA layers over FP8 linears are not supported here"
    if reason and not quiet:
        run.fall_back("fp8", reason, used=str(transformers_of_dtype(run)))
    return not reason


def transformers_of_dtype(run: SpeedRun) -> str:
    return "bfloat16" if run.device.startswith("cuda") else "float32"


def _fp8(pipe: Any, run: SpeedRun) -> None:
    """Dynamic FP8 activations and FP8 weights for the linear layers of the transformer blocks (torchao)."""
    torch = heavy.torch()
    try:
        tq = heavy.torchao_quantization()
        for tr in transformers_of(pipe):
            if not getattr(tr, "_wanflow_fp8", False):
                tq.quantize_(tr, tq.Float8DynamicActivationFloat8WeightConfig(),
                             filter_fn=lambda m, fqn: isinstance(m, torch.nn.Linear) and fqn.startswith("blocks."))
                tr._wanflow_fp8 = True  # noqa: SLF001 - irreversible: other presets reload the pipeline
    except Exception as exc:  # noqa: BLE001 - a torchao/torch mismatch is a fallback, said in the record
        run.fall_back("fp8", f"torchao quantize_ failed: {type(exc).__name__}: {str(exc)[:160]}", used="bfloat16")
        return
    run.applied["fp8"] = "torchao Float8DynamicActivationFloat8WeightConfig on blocks.*.Linear"


@contextlib.contextmanager
def _quiet_diffusers() -> Iterator[None]:
    """set_attention_backend logs an 'experimental feature' warning on every call."""
    log = logging.getLogger("diffusers.models.modeling_utils")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


# --- one denoising call ---------------------------------------------------------------------------------

@contextlib.contextmanager
def denoising(pipe: Any, run: SpeedRun, negative_embeds: Any, cfg: bool) -> Iterator[None]:
    """TF32, the step cache and batched CFG around one ``pipe(...)`` denoising call."""
    torch = heavy.torch()
    with contextlib.ExitStack() as stack:
        if run.preset.tf32 and run.device.startswith("cuda"):
            before = torch.get_float32_matmul_precision()
            torch.set_float32_matmul_precision("high")
            stack.callback(torch.set_float32_matmul_precision, before)
        if run.preset.step_cache:
            for tr in transformers_of(pipe):
                tr.enable_cache(_cache_config(run.preset, tr))
                stack.callback(tr.disable_cache)
        if run.preset.batched_cfg:
            if cfg and negative_embeds is not None:
                for tr in transformers_of(pipe):
                    stack.enter_context(_batched_cfg(tr, negative_embeds))
            elif "batched_cfg" in run.applied:
                run.applied.pop("batched_cfg")
                run.fall_back("batched_cfg", "guidance ≤ 1: no unconditional pass to batch", used="one pass")
        yield


def _cache_config(preset: SpeedPreset, tr: Any) -> Any:
    hooks = heavy.diffusers().hooks
    if preset.step_cache == "first_block":
        return hooks.FirstBlockCacheConfig(threshold=float(preset.cache_threshold))
    return hooks.TaylorSeerCacheConfig(cache_interval=int(preset.cache_threshold), disable_cache_before_step=2,
                                       taylor_factors_dtype=tr.dtype)


@contextlib.contextmanager
def _batched_cfg(tr: Any, negative_embeds: Any) -> Iterator[None]:
    """WanPipeline's loop calls the transformer with the prompt, then with the negative prompt, on the same
    ``latent_model_input`` object: the first call runs both in one forward (batch 2B), the second returns the
    stored unconditional half."""
    torch = heavy.torch()
    own = "forward" in tr.__dict__  # a hook (accelerate, diffusers) already replaced forward on the instance
    inner = tr.forward
    stash: dict[str, Any] = {}

    def forward(hidden_states: Any, timestep: Any, encoder_hidden_states: Any, encoder_hidden_states_image: Any = None,
                return_dict: bool = True, attention_kwargs: Any = None) -> Any:
        if stash.get("x") is hidden_states:  # the unconditional call of this step
            out = stash.pop("out")
            stash.clear()
            return _wrap(out, return_dict)
        neg = negative_embeds.to(encoder_hidden_states.device, encoder_hidden_states.dtype)
        if neg.shape != encoder_hidden_states.shape:  # not the pair this wrapper was made for: run as is
            return inner(hidden_states=hidden_states, timestep=timestep, encoder_hidden_states=encoder_hidden_states,
                         encoder_hidden_states_image=encoder_hidden_states_image, return_dict=return_dict,
                         attention_kwargs=attention_kwargs)
        n = hidden_states.shape[0]
        image = None if encoder_hidden_states_image is None else torch.cat([encoder_hidden_states_image] * 2)
        both = inner(hidden_states=torch.cat([hidden_states, hidden_states]), timestep=torch.cat([timestep, timestep]),
                     encoder_hidden_states=torch.cat([encoder_hidden_states, neg]),
                     encoder_hidden_states_image=image, return_dict=False, attention_kwargs=attention_kwargs)[0]
        stash["x"], stash["out"] = hidden_states, both[n:]
        return _wrap(both[:n], return_dict)

    tr.forward = forward
    try:
        yield
    finally:
        if own:
            tr.forward = inner
        else:
            del tr.forward


def _wrap(sample: Any, return_dict: bool) -> Any:
    if not return_dict:
        return (sample,)
    return heavy.diffusers().models.modeling_outputs.Transformer2DModelOutput(sample=sample)


# --- prompt embeddings ----------------------------------------------------------------------------------

def encode_prompts(pipe: Any, prompts: list[str], negatives: list[str], cfg: bool, max_sequence_length: int,
                   device: Any) -> tuple[Any, Any, int]:
    """(prompt embeddings, negative embeddings or None, cache hits) for a batch: each distinct pair encoded once,
    alone, and kept on the text encoder (LRU) for the next batch that has it (variants and formats of an item)."""
    torch = heavy.torch()
    encoder = pipe.text_encoder
    cache: OrderedDict = encoder.__dict__.setdefault("_wanflow_prompt_cache", OrderedDict())
    hits, pos, neg = 0, [], []
    for p, n in zip(prompts, negatives):
        key = (p, n if cfg else None, max_sequence_length, str(device))
        if key in cache:
            hits += 1
            cache.move_to_end(key)
        else:
            cache[key] = pipe.encode_prompt(prompt=[p], negative_prompt=[n], do_classifier_free_guidance=cfg,
                                            num_videos_per_prompt=1, max_sequence_length=max_sequence_length,
                                            device=device)
            while len(cache) > PROMPT_CACHE_SIZE:
                cache.popitem(last=False)
        pe, ne = cache[key]
        pos.append(pe)
        neg.append(ne)
    return torch.cat(pos), (torch.cat(neg) if cfg else None), hits
