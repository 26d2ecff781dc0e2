"""Wan variant presets: the published defaults of each Wan 2.1 model, the sizes it supports, its repo.

Sources: the Wan 2.1 repository (``wan/configs``: ``SUPPORTED_SIZES``, ``sample_neg_prompt``, 81 frames at
16 fps; ``generate.py``: 50 steps for T2V and 40 for I2V, guidance 5.0, flow shift 3.0 at 480p and 5.0 at
720p) and the diffusers Wan documentation (``flow_shift = 5.0 # 5.0 for 720P, 3.0 for 480P``). The 8.19 GB
is the Wan authors' figure for T2V-1.3B at 480p on one RTX 4090 with offloading.

The ``wan-tiny`` presets (``wan-tiny``, ``wan-tiny-i2v`` and the larger ``wan-tiny-large``) describe the offline stand-ins: any size, no published numbers, never Wan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

DEFAULT_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，"
    "丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，"
    "静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)  # Wan 2.1 `wan_shared_cfg.sample_neg_prompt`, verbatim (Chinese, as the model was trained with it)

# The real architectures (diffusers configs of the Wan-AI/*-Diffusers repos), used by random-weights mode
# and by the memory model before any weights exist.
_TRANSFORMER_COMMON: dict[str, Any] = dict(
    patch_size=(1, 2, 2), attention_head_dim=128, in_channels=16, out_channels=16, text_dim=4096, freq_dim=256,
    cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024,
)
TRANSFORMER_1_3B = {**_TRANSFORMER_COMMON, "num_attention_heads": 12, "ffn_dim": 8960, "num_layers": 30}
TRANSFORMER_14B = {**_TRANSFORMER_COMMON, "num_attention_heads": 40, "ffn_dim": 13824, "num_layers": 40}
TRANSFORMER_I2V_14B = {**TRANSFORMER_14B, "in_channels": 36, "image_dim": 1280, "added_kv_proj_dim": 5120}
TEXT_ENCODER_UMT5_XXL = dict(  # google/umt5-xxl, encoder only
    vocab_size=256384, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
    relative_attention_num_buckets=32, relative_attention_max_distance=128, feed_forward_proj="gated-gelu",
    tie_word_embeddings=False,
)
IMAGE_ENCODER_VIT_H_14 = dict(  # the vision tower of CLIP ViT-H/14 (open-clip xlm-roberta-large-vit-huge-14)
    hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=16, patch_size=14,
    image_size=224, projection_dim=1024, hidden_act="gelu",
)
VAE_WAN21: dict[str, Any] = {}  # AutoencoderKLWan() defaults are the Wan 2.1 VAE (base_dim 96, z 16, stride 4x8x8)

Size = tuple[int, int]  # (width, height)


class UnknownVariant(LookupError):
    """A registry version names a variant that has no preset."""


@dataclass(frozen=True)
class SizeCheck:
    """Whether a variant takes a size: refused (``error``), accepted with advice (``warning``), or fine."""

    error: str | None = None
    warning: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Preset:
    name: str
    label: str
    task: Literal["t2v", "i2v"]
    repo_id: str | None
    sizes: tuple[Size, ...] | None  # None: any multiple of 16 (stand-ins)
    steps: int
    guidance: float = 5.0
    num_frames: int = 81
    fps: int = 16
    flow_shift_480p: float = 3.0
    flow_shift_720p: float = 5.0
    advised_against: dict[Size, str] = field(default_factory=dict)
    transformer: dict[str, Any] | None = None
    image_encoder: dict[str, Any] | None = None
    published_min_memory_gb: float | None = None
    stand_in: bool = False
    licence: str = "Apache-2.0"  # the Wan 2.1 repositories' licence; stand-ins are wanflow's own test fixtures

    @property
    def default_params(self) -> dict[str, Any]:
        """What a registry version records as its defaults (steps, guidance, frames, fps, flow shifts)."""
        return {"steps": self.steps, "guidance": self.guidance, "num_frames": self.num_frames, "fps": self.fps,
                "flow_shift_480p": self.flow_shift_480p, "flow_shift_720p": self.flow_shift_720p}

    @property
    def sizes_text(self) -> str:
        return ", ".join(f"{w}x{h}" for w, h in self.sizes) if self.sizes else "any multiple of 16"

    def flow_shift(self, width: int, height: int) -> float:
        """3.0 at 480p, 5.0 at 720p (by pixel count: 720p and above use the 720p shift)."""
        return self.flow_shift_720p if width * height >= 1280 * 720 else self.flow_shift_480p

    def check_size(self, width: int, height: int) -> SizeCheck:
        if self.sizes is None or (width, height) in self.sizes:
            return SizeCheck()
        if (width, height) in self.advised_against:
            return SizeCheck(warning=f"{width}x{height} on {self.name}: {self.advised_against[(width, height)]}")
        listed = ", ".join(f"{w}x{h}" for w, h in self.sizes)
        extra = "".join(f"; {w}x{h} is possible but advised against" for w, h in self.advised_against)
        return SizeCheck(error=f"{width}x{height} is not a size {self.name} supports (supported: {listed}{extra})")

    @property
    def download_command(self) -> str:
        return f"huggingface-cli download {self.repo_id} --local-dir <folder>" if self.repo_id else ""


_STANDIN_LICENCE = "n/a (stand-in)"  # seeded random weights made here: no third-party weights, no licence
_720 = ((1280, 720), (720, 1280))
_480 = ((832, 480), (480, 832))
_1_3B_AT_720P = ("the 1.3B model can render 720p, but its training at that resolution was limited and results "
                 "are less stable than at 480p (Wan authors' advice)")

PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset(name="wan2.1-t2v-1.3b", label="Wan2.1 T2V-1.3B", task="t2v", repo_id="Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
           sizes=_480, steps=50, advised_against={s: _1_3B_AT_720P for s in _720}, transformer=TRANSFORMER_1_3B,
           published_min_memory_gb=8.19),
    Preset(name="wan2.1-t2v-14b", label="Wan2.1 T2V-14B", task="t2v", repo_id="Wan-AI/Wan2.1-T2V-14B-Diffusers",
           sizes=_720 + _480, steps=50, transformer=TRANSFORMER_14B),
    Preset(name="wan2.1-i2v-14b-480p", label="Wan2.1 I2V-14B 480P", task="i2v",
           repo_id="Wan-AI/Wan2.1-I2V-14B-480P-Diffusers", sizes=_480, steps=40,
           advised_against={s: "the 480P checkpoint was trained for 480p; use wan2.1-i2v-14b-720p" for s in _720},
           transformer=TRANSFORMER_I2V_14B, image_encoder=IMAGE_ENCODER_VIT_H_14),
    Preset(name="wan2.1-i2v-14b-720p", label="Wan2.1 I2V-14B 720P", task="i2v",
           repo_id="Wan-AI/Wan2.1-I2V-14B-720P-Diffusers", sizes=_720, steps=40,
           advised_against={s: "the 720P checkpoint was trained for 720p; use wan2.1-i2v-14b-480p" for s in _480},
           transformer=TRANSFORMER_I2V_14B, image_encoder=IMAGE_ENCODER_VIT_H_14),
    Preset(name="wan-tiny", label="wan-tiny (stand-in, random weights)", task="t2v", repo_id=None, sizes=None,
           steps=4, stand_in=True, licence=_STANDIN_LICENCE),
    Preset(name="wan-tiny-i2v", label="wan-tiny-i2v (stand-in, random weights)", task="i2v", repo_id=None,
           sizes=None, steps=4, stand_in=True, licence=_STANDIN_LICENCE),
    # The larger tiny configuration: the rollout's "challenger" on a machine without real weights. Not 14B.
    Preset(name="wan-tiny-large", label="wan-tiny-large (stand-in, random weights)", task="t2v", repo_id=None,
           sizes=None, steps=4, stand_in=True, licence=_STANDIN_LICENCE),
)}
REAL_VARIANTS = tuple(n for n, p in PRESETS.items() if not p.stand_in)


def preset_for(variant: str) -> Preset:
    """The preset of a variant name (``wan2.1-t2v-1.3b`` …); ``…@random`` names random-weights mode."""
    base = variant.removesuffix("@random")
    if base not in PRESETS:
        raise UnknownVariant(f"unknown Wan variant {variant!r} (known: {', '.join(PRESETS)})")
    return PRESETS[base]


def variants_table() -> list[dict[str, Any]]:
    """One row per real variant, for the README and `wanflow models presets`."""
    return [{"variant": p.name, "task": p.task.upper(), "repo": p.repo_id,
             "sizes": ", ".join(f"{w}x{h}" for w, h in p.sizes or ()),
             "advised against": ", ".join(f"{w}x{h}" for w, h in p.advised_against),
             "frames": p.num_frames, "fps": p.fps, "steps": p.steps, "guidance": p.guidance,
             "flow shift": f"{p.flow_shift_480p} (480p) / {p.flow_shift_720p} (720p)"}
            for p in PRESETS.values() if not p.stand_in]
