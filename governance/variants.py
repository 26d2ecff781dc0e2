"""Wan variant presets: the published defaults of each Wan 2.1 and Wan 2.2 model, the sizes it supports, its repo.

Sources: the Wan 2.1 repository (``wan/configs``: ``SUPPORTED_SIZES``, ``sample_neg_prompt``, 81 frames at
16 fps; ``generate.py``: 50 steps for T2V and 40 for I2V, guidance 5.0, flow shift 3.0 at 480p and 5.0 at
720p) and the diffusers Wan documentation (``flow_shift = 5.0 # 5.0 for 720P, 3.0 for 480P``). The 8.19 GB
is the Wan authors' figure for T2V-1.3B at 480p on one RTX 4090 with offloading.

Wan 2.2 sources (read at Wan-Video/Wan2.2 commit 42bf4cf; the configs date from the 2025-07-28 release):
``wan/configs/__init__.py`` (``SUPPORTED_SIZES``: t2v-A14B and i2v-A14B 1280*720, 720*1280, 832*480, 480*832;
ti2v-5B 1280*704, 704*1280), ``wan/configs/shared_config.py`` (81 frames, 16 fps, the same ``sample_neg_prompt``
as 2.1), ``wan_t2v_A14B.py`` (40 steps, shift 12.0, boundary 0.875, ``sample_guide_scale = (3.0, 4.0)  # low
noise, high noise``), ``wan_i2v_A14B.py`` (40 steps, shift 5.0, boundary 0.900, guide scales (3.5, 3.5)),
``wan_ti2v_5B.py`` (121 frames at 24 fps, 50 steps, guidance 5.0, shift 5.0, Wan2.2 VAE with stride 4x16x16);
``generate.py`` takes the shift from the config at every size (one shift per model, not one per resolution).
The A14B models use the Wan 2.1 VAE (``vae_checkpoint = 'Wan2.1_VAE.pth'``, stride 4x8x8). The diffusers
conversion writes a UniPC scheduler with ``flow_shift`` 3.0 for A14B (5.0 for TI2V-5B); wanflow sets the
Wan configs' ``sample_shift`` on the scheduler for every job, so the A14B T2V runs at 12.0 as its authors do.
The README's "Computational Efficiency" table (``assets/comp_effic.png``, an image) gives peak GPU memory:
TI2V-5B 720P on one RTX 4090 22.9 GB T2V / 22.8 GB I2V (``--offload_model True --convert_model_dtype --t5_cpu``);
T2V-A14B on one H100 41.3 GB at 480P and 59.8 GB at 720P, I2V-A14B 41.0 / 59.7 GB (``--offload_model True
--convert_model_dtype``); and T2V-A14B's time on one H100: 326.9 s at 480P, 1041.5 s at 720P.
diffusers ``scripts/convert_wan_to_diffusers.py`` (huggingface/diffusers 58eb52c): the transformer configs, the
2.2 VAE config (``vae22_diffusers_config``), and the pipelines as published in the ``Wan-AI/Wan2.2-*-Diffusers``
repos: ``boundary_ratio=0.875`` (T2V-A14B), ``0.9`` (I2V-A14B), ``expand_timesteps=True`` and no
``transformer_2`` (TI2V-5B, saved as a ``WanPipeline`` that also runs as ``WanImageToVideoPipeline``);
``transformer`` is the high-noise expert (``guidance_scale``), ``transformer_2`` the low-noise one
(``guidance_scale_2``). Licence: README "License Agreement", Apache 2.0.

The ``wan-tiny`` presets (``wan-tiny``, ``wan-tiny-i2v``, the larger ``wan-tiny-large``, and the Wan 2.2-shaped
``wan-tiny-ti2v``, ``wan-tiny-moe`` and ``wan-tiny-moe-i2v``) describe the offline stand-ins: any size, no
published numbers, never Wan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

DEFAULT_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，"
    "丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，"
    "静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)  # `wan_shared_cfg.sample_neg_prompt` of Wan 2.1 and Wan 2.2 (the same string), verbatim, in Chinese

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
# Wan 2.2: the A14B experts are the 14B architecture (the I2V one takes 16 noise + 4 mask + 16 image-latent
# channels, without a CLIP image branch); TI2V-5B is 3072 wide (24 heads x 128), 30 layers, 48 channels in/out.
TRANSFORMER_A14B = TRANSFORMER_14B
TRANSFORMER_I2V_A14B = {**TRANSFORMER_14B, "in_channels": 36}
TRANSFORMER_TI2V_5B = {**_TRANSFORMER_COMMON, "num_attention_heads": 24, "ffn_dim": 14336, "num_layers": 30,
                       "in_channels": 48, "out_channels": 48}
# The Wan2.2 VAE: 48 latent channels, 4x16x16 compression, input patchified 2x2 (12 = 3 x 2 x 2 channels).
# Its per-channel latents_mean/latents_std are statistics shipped in the weights' vae/config.json, not
# architecture: random-weights mode leaves them at 0/1.
VAE_WAN22: dict[str, Any] = dict(
    base_dim=160, decoder_base_dim=256, z_dim=48, is_residual=True, in_channels=12, out_channels=12, patch_size=2,
    scale_factor_temporal=4, scale_factor_spatial=16, latents_mean=[0.0] * 48, latents_std=[1.0] * 48,
)

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
    task: Literal["t2v", "i2v", "ti2v", "vace"]  # ti2v: one model for both; vace: the edit model (governance.edits)
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
    licence: str = "Apache-2.0"  # the Wan 2.1 and 2.2 repositories' licence; stand-ins are wanflow's own fixtures
    # Wan 2.2 mixture of experts: ``transformer`` (high noise, ``guidance``) runs while the timestep is at or
    # above ``boundary_ratio`` x 1000, ``transformer_2`` (low noise, ``guidance_2``) below it.
    guidance_2: float | None = None
    boundary_ratio: float | None = None
    transformer_2: dict[str, Any] | None = None
    vae: dict[str, Any] = field(default_factory=dict)  # AutoencoderKLWan config ({}: the Wan 2.1 VAE)
    expand_timesteps: bool = False  # TI2V-5B: a timestep per token (the first frame kept clean for I2V)

    @property
    def moe(self) -> bool:
        return self.boundary_ratio is not None

    def takes(self, image: bool) -> bool:
        """Whether an item with (``image``) or without a conditioning image fits this model's task."""
        return self.task == "ti2v" or (self.task == "i2v") == image

    @property
    def default_params(self) -> dict[str, Any]:
        """What a registry version records as its defaults (steps, guidance, frames, fps, flow shifts, experts)."""
        out = {"steps": self.steps, "guidance": self.guidance, "num_frames": self.num_frames, "fps": self.fps,
               "flow_shift_480p": self.flow_shift_480p, "flow_shift_720p": self.flow_shift_720p}
        if self.moe:
            out |= {"guidance_2": self.guidance_2, "boundary_ratio": self.boundary_ratio}
        return out

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
    # Wan 2.2 (sources in the module docstring). One shift per model at every size, as generate.py uses it.
    Preset(name="wan2.2-ti2v-5b", label="Wan2.2 TI2V-5B", task="ti2v", repo_id="Wan-AI/Wan2.2-TI2V-5B-Diffusers",
           sizes=((1280, 704), (704, 1280)), steps=50, guidance=5.0, num_frames=121, fps=24,
           flow_shift_480p=5.0, flow_shift_720p=5.0, transformer=TRANSFORMER_TI2V_5B, vae=VAE_WAN22,
           expand_timesteps=True, published_min_memory_gb=22.9),
    Preset(name="wan2.2-t2v-a14b", label="Wan2.2 T2V-A14B", task="t2v", repo_id="Wan-AI/Wan2.2-T2V-A14B-Diffusers",
           sizes=_720 + _480, steps=40, guidance=4.0, guidance_2=3.0, boundary_ratio=0.875,
           flow_shift_480p=12.0, flow_shift_720p=12.0, transformer=TRANSFORMER_A14B, transformer_2=TRANSFORMER_A14B,
           published_min_memory_gb=41.3),
    Preset(name="wan2.2-i2v-a14b", label="Wan2.2 I2V-A14B", task="i2v", repo_id="Wan-AI/Wan2.2-I2V-A14B-Diffusers",
           sizes=_720 + _480, steps=40, guidance=3.5, guidance_2=3.5, boundary_ratio=0.9,
           flow_shift_480p=5.0, flow_shift_720p=5.0, transformer=TRANSFORMER_I2V_A14B,
           transformer_2=TRANSFORMER_I2V_A14B, published_min_memory_gb=41.0),
    # Wan2.1 VACE (editing: reframe, extend, replace, reference; governance/edits.py). Sources: the Wan2.1 repository,
    # ``wan/configs/__init__.py`` (SUPPORTED_SIZES: vace-1.3B 480*832, 832*480; vace-14B 720*1280, 1280*720,
    # 480*832, 832*480) and ``generate.py`` ``_validate_args`` (50 steps, 81 frames, guidance 5.0 and
    # ``sample_shift = 16`` for every ``vace`` task); the Wan-AI/Wan2.1-VACE-*-diffusers model cards.
    Preset(name="wan2.1-vace-1.3b", label="Wan2.1 VACE-1.3B", task="vace", repo_id="Wan-AI/Wan2.1-VACE-1.3B-diffusers",
           sizes=_480, steps=50, flow_shift_480p=16.0, flow_shift_720p=16.0,
           advised_against={s: _1_3B_AT_720P for s in _720}),
    Preset(name="wan2.1-vace-14b", label="Wan2.1 VACE-14B", task="vace", repo_id="Wan-AI/Wan2.1-VACE-14B-diffusers",
           sizes=_720 + _480, steps=50, flow_shift_480p=16.0, flow_shift_720p=16.0),
    Preset(name="wan-tiny-vace", label="wan-tiny-vace (stand-in, random weights)", task="vace", repo_id=None,
           sizes=None, steps=4, stand_in=True, licence=_STANDIN_LICENCE),
    Preset(name="wan-tiny", label="wan-tiny (stand-in, random weights)", task="t2v", repo_id=None, sizes=None,
           steps=4, stand_in=True, licence=_STANDIN_LICENCE),
    Preset(name="wan-tiny-i2v", label="wan-tiny-i2v (stand-in, random weights)", task="i2v", repo_id=None,
           sizes=None, steps=4, stand_in=True, licence=_STANDIN_LICENCE),
    # The larger tiny configuration: the rollout's "challenger" on a machine without real weights. Not 14B.
    Preset(name="wan-tiny-large", label="wan-tiny-large (stand-in, random weights)", task="t2v", repo_id=None,
           sizes=None, steps=4, stand_in=True, licence=_STANDIN_LICENCE),
    # Wan 2.2-shaped stand-ins (tiny, random weights): the 48-channel patchified VAE with per-token timesteps,
    # and two experts switched at a boundary. Their guidance, boundary and fps are the Wan 2.2 ones, so every
    # path (fps advice, per-expert guidance) runs as it would on Wan; they are not Wan 2.2.
    Preset(name="wan-tiny-ti2v", label="wan-tiny-ti2v (stand-in, random weights)", task="ti2v", repo_id=None,
           sizes=None, steps=4, fps=24, vae=VAE_WAN22, expand_timesteps=True, stand_in=True, licence=_STANDIN_LICENCE),
    Preset(name="wan-tiny-moe", label="wan-tiny-moe (stand-in, random weights)", task="t2v", repo_id=None,
           sizes=None, steps=4, guidance=4.0, guidance_2=3.0, boundary_ratio=0.875, stand_in=True,
           licence=_STANDIN_LICENCE),
    Preset(name="wan-tiny-moe-i2v", label="wan-tiny-moe-i2v (stand-in, random weights)", task="i2v", repo_id=None,
           sizes=None, steps=4, guidance=3.5, guidance_2=3.5, boundary_ratio=0.9, stand_in=True,
           licence=_STANDIN_LICENCE),
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
             "frames": p.num_frames, "fps": p.fps, "steps": p.steps,
             "guidance": f"{p.guidance} (high noise) / {p.guidance_2} (low noise), boundary {p.boundary_ratio}"
             if p.moe else p.guidance,
             "flow shift": f"{p.flow_shift_480p} (480p) / {p.flow_shift_720p} (720p)"
             if p.flow_shift_480p != p.flow_shift_720p else f"{p.flow_shift_480p} (every size)"}
            for p in PRESETS.values() if not p.stand_in]
