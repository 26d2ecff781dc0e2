"""Speed presets for generation: ``plain`` (diffusers as it comes, the reference), ``fast`` (lossless) and
``turbo`` (quality-trading, off by default); which features each turns on, and how one is chosen.

Rules only, no I/O: ``adapters.speed`` applies a preset to a loaded pipeline and reports, feature by feature,
what applied and what fell back (and why) on the device at hand; the generation stage records that report on
every job, and ``wanflow regenerate`` rebuilds the preset from it.

Choice: the ``--speed`` option of ``wanflow run`` wins, then the brief's top-level ``speed:``, then the
deployment setting ``WANFLOW_SPEED`` (default ``plain``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

SPEEDS = ("plain", "fast", "turbo")
# diffusers' step caches (hooks) that need no per-checkpoint calibration; MagCache needs `mag_ratios` measured
# per model and scheduler, so it is not offered until such ratios exist for Wan.
STEP_CACHES = ("first_block", "taylorseer")
DEFAULT_STEP_CACHE = "first_block"  # chosen by measurement on the stand-in (docs/performance.md, speed presets)
DEFAULT_CACHE_THRESHOLD = 0.1  # FirstBlockCache: relative change of the first block's residual below which the rest
DEFAULT_TAYLORSEER_INTERVAL = 3  # TaylorSeer: full computation every this many steps
DISTILL_FILE = "distill.json"  # beside pytorch_lora_weights.safetensors: {"steps": 4, "guidance": 1.0, "scale": 1.0}


class UnknownSpeed(ValueError):
    """A speed preset name that does not exist."""


@dataclass(frozen=True)
class SpeedPreset:
    """What a preset turns on. ``fast`` features are lossless (same frames within float rounding); ``turbo``
    adds the quality-trading ones."""

    name: str
    compile: bool = False  # regional compilation of the repeated transformer blocks (torch.compile)
    attention: bool = False  # the fastest attention backend the device has (flash / cuDNN SDPA / native)
    batched_cfg: bool = False  # conditional and unconditional passes in one forward
    tf32: bool = False  # TF32 for the float32 matrix products of the denoiser (CUDA; lossless next to bf16)
    prompt_cache: bool = False  # one prompt encoding shared by every job with the same prompt
    step_cache: str | None = None  # a diffusers cache hook: first_block | taylorseer
    cache_threshold: float | None = None  # first_block: the threshold; taylorseer: the refresh interval
    fp8: bool = False  # FP8 linear layers (torchao) on a card that has FP8 matrix units
    distill_lora: str | None = None  # a step-distillation LoRA folder (its own steps and guidance)

    @property
    def lossless(self) -> bool:
        return self.step_cache is None and not self.fp8 and self.distill_lora is None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"lossless": self.lossless}


def check_speed(name: str | None, where: str = "speed") -> str:
    """A preset name, or UnknownSpeed naming ``where`` and the allowed values."""
    if name not in SPEEDS:
        raise UnknownSpeed(f"{where}: {name!r} is not a speed preset (one of {', '.join(SPEEDS)})")
    return name


def choose(cli: str | None, brief: str | None, deployment: str = "plain") -> tuple[str, str]:
    """(preset, who chose it): the CLI option, else the brief, else the deployment setting."""
    for value, who in ((cli, "cli"), (brief, "brief"), (deployment or "plain", "deployment")):
        if value:
            return check_speed(value, f"speed ({who})"), who
    return "plain", "deployment"  # unreachable: the deployment default is never empty


def preset(name: str, compile: bool = True, step_cache: str = DEFAULT_STEP_CACHE,
           cache_threshold: float | None = None, fp8: bool = True, distill_lora: str | None = None) -> SpeedPreset:
    """The preset ``name`` with the deployment's knobs (compile on/off, the step cache and its threshold, FP8,
    an optional distillation LoRA folder for turbo)."""
    check_speed(name)
    if name == "plain":
        return SpeedPreset("plain")
    fast = SpeedPreset("fast", compile=compile, attention=True, batched_cfg=True, tf32=True, prompt_cache=True)
    if name == "fast":
        return fast
    if step_cache not in STEP_CACHES:
        raise UnknownSpeed(f"speed step cache: {step_cache!r} is not one of {', '.join(STEP_CACHES)}")
    if cache_threshold is None:
        cache_threshold = DEFAULT_CACHE_THRESHOLD if step_cache == "first_block" else DEFAULT_TAYLORSEER_INTERVAL
    if cache_threshold <= 0:
        raise UnknownSpeed(f"speed cache threshold: {cache_threshold} must be > 0")
    return replace(fast, name="turbo", step_cache=step_cache, cache_threshold=float(cache_threshold), fp8=fp8,
                   distill_lora=distill_lora)


def from_record(record: dict[str, Any]) -> SpeedPreset:
    """The preset a job ran with, from its record (``job.batch['speed']['preset']``), for regeneration."""
    fields = {k: record[k] for k in SpeedPreset.__dataclass_fields__ if k in record}
    check_speed(fields.get("name"), "recorded speed preset")
    return SpeedPreset(**fields)


def distill_settings(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """A distillation LoRA's own sampling settings (``distill.json``): steps ≥ 1, guidance ≥ 1, scale > 0."""
    steps, guidance, scale = raw.get("steps"), raw.get("guidance", 1.0), raw.get("scale", 1.0)
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"{where}: steps: {steps!r} must be an integer ≥ 1")
    if not isinstance(guidance, (int, float)) or guidance < 1.0:
        raise ValueError(f"{where}: guidance: {guidance!r} must be a number ≥ 1.0 (1.0: no CFG)")
    if not isinstance(scale, (int, float)) or scale <= 0:
        raise ValueError(f"{where}: scale: {scale!r} must be a number > 0")
    return {"steps": steps, "guidance": float(guidance), "scale": float(scale)}
