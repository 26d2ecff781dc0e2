"""Full-size "random weights" mode: the real Wan 2.1 and 2.2 architectures with seeded random weights, no download.

For benchmarks and load tests only (``bench/generate.py``): such a pipeline has the exact shapes, FLOPs and
memory of Wan 1.3B, 14B, TI2V-5B (with the 48-channel 2.2 VAE) or A14B (two 14B experts and the published
boundary) and produces noise. It is never selectable for a campaign: the registry refuses
to register or resolve it, and the generation stage refuses to load it. Build on the ``meta`` device to
inspect configs and sizes without allocating anything (a 14B transformer needs 57 GB in float32).
"""

from __future__ import annotations

from typing import Any

from adapters.standins import byte_level_tokenizer, clip_image_processor
from core import heavy
from governance.variants import IMAGE_ENCODER_VIT_H_14, TEXT_ENCODER_UMT5_XXL, Preset, UnknownVariant, preset_for

RANDOM_SOURCE = "random-weights:"  # a registry source or variant marked so is refused for campaigns
REFUSAL = ("{what} is random-weights mode (real {variant} architecture, random weights): for benchmarks and "
           "load tests only, never for a campaign")


class RandomWeightsRefused(ValueError):
    """Someone tried to use random-weights mode where real weights are required."""


def is_random(source_or_variant: str | None) -> bool:
    s = str(source_or_variant or "")
    return s.startswith(RANDOM_SOURCE) or s.endswith("@random")


def refuse(what: str, variant: str) -> RandomWeightsRefused:
    return RandomWeightsRefused(REFUSAL.format(what=what, variant=variant.removesuffix("@random")))


def _real_preset(variant: str) -> Preset:
    preset = preset_for(variant.removeprefix(RANDOM_SOURCE))
    if preset.transformer is None:
        raise UnknownVariant(f"{variant!r} has no published architecture (stand-ins are built by adapters.standins)")
    return preset


def random_components(variant: str, seed: int = 0, device: str = "meta",
                      text_encoder: bool = True) -> dict[str, Any]:
    """The pipeline's components with the real configs. ``meta``: shapes only, nothing allocated.

    ``text_encoder=False`` leaves out umT5-XXL (5.7B parameters): callers then pass prompt embeddings.
    """
    torch, diffusers, transformers = heavy.torch(), heavy.diffusers(), heavy.transformers()
    preset = _real_preset(variant)
    parts: dict[str, Any] = {}
    with torch.device(device):
        torch.manual_seed(seed)
        parts["transformer"] = diffusers.WanTransformer3DModel(**preset.transformer)
        if preset.transformer_2 is not None:
            torch.manual_seed(seed + 4)
            parts["transformer_2"] = diffusers.WanTransformer3DModel(**preset.transformer_2)
        torch.manual_seed(seed + 1)
        parts["vae"] = diffusers.AutoencoderKLWan(**preset.vae)
        torch.manual_seed(seed + 2)
        parts["text_encoder"] = transformers.UMT5EncoderModel(transformers.UMT5Config(**TEXT_ENCODER_UMT5_XXL)) if text_encoder else None
        if preset.image_encoder is not None:
            torch.manual_seed(seed + 3)
            parts["image_encoder"] = transformers.CLIPVisionModel(transformers.CLIPVisionConfig(**IMAGE_ENCODER_VIT_H_14))
    # The real tokenizer (google/umt5-xxl) is a download; byte-level ids (< 259) are valid umT5 ids.
    parts["tokenizer"] = byte_level_tokenizer() if text_encoder else None
    parts["scheduler"] = diffusers.UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                                 num_train_timesteps=1000, flow_shift=preset.flow_shift_480p)
    if preset.image_encoder is not None:
        parts["image_processor"] = clip_image_processor(IMAGE_ENCODER_VIT_H_14["image_size"])
    return parts


def build_random_pipeline(variant: str, seed: int = 0, device: str = "cpu", dtype: Any = None,
                          text_encoder: bool = True) -> Any:
    """A WanPipeline / WanImageToVideoPipeline with the real architecture and seeded random weights."""
    diffusers = heavy.diffusers()
    preset = _real_preset(variant)
    parts = random_components(variant, seed, device, text_encoder)
    if dtype is not None and device != "meta":
        for name in ("transformer", "transformer_2", "text_encoder"):
            if parts.get(name) is not None:
                _cast(parts[name], dtype)
    cls = diffusers.WanImageToVideoPipeline if preset.task == "i2v" else diffusers.WanPipeline  # TI2V: as published
    extra = {"boundary_ratio": preset.boundary_ratio} if preset.moe else {}
    pipe = cls(**parts, **extra, expand_timesteps=preset.expand_timesteps)
    pipe.set_progress_bar_config(disable=True)
    pipe._wanflow_random_weights = f"{RANDOM_SOURCE}{preset.name}?seed={seed}"  # noqa: SLF001 - a label for reports
    return pipe


def _cast(module: Any, dtype: Any) -> None:
    """Cast to ``dtype`` but keep the modules the model class wants in float32 (as from_pretrained does)."""
    torch = heavy.torch()
    if dtype == torch.float32:
        return
    keep = set(getattr(module, "_keep_in_fp32_modules", None) or [])
    for name, param in module.named_parameters():
        target = torch.float32 if keep & set(name.split(".")) else dtype
        param.data = param.data.to(target)
