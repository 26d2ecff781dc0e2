"""The offline stand-ins `wan-tiny`, `wan-tiny-large` (T2V) and `wan-tiny-i2v` (I2V): real diffusers Wan pipelines
at tiny size. `wan-tiny-large` is a larger tiny configuration (more layers and heads), used as the challenger of
an offline rollout rehearsal the way 14B would follow 1.3B — it is not 14B.

Shaped like Wan 2.2: `wan-tiny-ti2v` (TI2V-5B's layout: the 48-channel VAE with 2x2-patchified input and 16x
spatial compression, per-token timesteps; one model for text and image to video) and `wan-tiny-moe` /
`wan-tiny-moe-i2v` (the A14B layout: a high-noise ``transformer`` and a low-noise ``transformer_2`` with their
own seeds, switched at ``boundary_ratio`` 0.875 / 0.9 as published; the I2V one has no CLIP image branch).
For editing: `wan-tiny-vace` (a ``WanVACEPipeline``: the T2V transformer with VACE control layers), not VACE.

Both are built with *seeded random weights* from configs (no download), saved with ``save_pretrained``
and loaded back with ``from_pretrained`` — the code path real Wan weights in diffusers format take. Their
output is noise-like: they exist so that every stage runs for real on any machine, and are labelled as
stand-ins everywhere; never a substitute for Wan 1.3B or 14B.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, decoders, models, pre_tokenizers

from core import heavy
from core.files import atomic_path
from governance.variants import PRESETS

TINY_VARIANT = "wan-tiny"
TINY_I2V_VARIANT = "wan-tiny-i2v"
TINY_LARGE_VARIANT = "wan-tiny-large"
TINY_LABEL = "wan-tiny (stand-in: random weights, noise-like output; not Wan 1.3B or 14B)"
TINY_LARGE_LABEL = ("wan-tiny-large (stand-in: larger tiny configuration, random weights, noise-like output; "
                    "not Wan 14B)")
TINY_I2V_LABEL = "wan-tiny-i2v (stand-in: random weights, noise-like output; not Wan I2V-14B)"
TINY_TI2V_VARIANT = "wan-tiny-ti2v"
TINY_MOE_VARIANT = "wan-tiny-moe"
TINY_MOE_I2V_VARIANT = "wan-tiny-moe-i2v"
TINY_TI2V_LABEL = ("wan-tiny-ti2v (stand-in: Wan 2.2 TI2V layout at tiny size, random weights, noise-like output; "
                   "not Wan2.2 TI2V-5B)")
TINY_MOE_LABEL = ("wan-tiny-moe (stand-in: two tiny experts switched at a boundary, random weights, noise-like "
                  "output; not Wan2.2 T2V-A14B)")
TINY_VACE_VARIANT = "wan-tiny-vace"
TINY_VACE_LABEL = ("wan-tiny-vace (stand-in: a tiny WanVACEPipeline, random weights, noise-like output; "
                   "not Wan2.1 VACE-1.3B or -14B)")
TINY_MOE_I2V_LABEL = ("wan-tiny-moe-i2v (stand-in: two tiny experts switched at a boundary, random weights, "
                      "noise-like output; not Wan2.2 I2V-A14B)")
TINY_TRANSFORMER: dict[str, Any] = dict(
    patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
    text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
    qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
)
TINY_LARGE_TRANSFORMER = {**TINY_TRANSFORMER, "num_attention_heads": 4, "ffn_dim": 96, "num_layers": 4}
# I2V: 16 noise + 4 mask + 16 image-latent channels in; the CLIP image embedding goes through image_dim
# and the added key/value projections (as in Wan2.1-I2V-14B, at tiny size).
TINY_I2V_TRANSFORMER = {**TINY_TRANSFORMER, "in_channels": 36, "image_dim": 16, "added_kv_proj_dim": 24}
TINY_TI2V_TRANSFORMER = {**TINY_TRANSFORMER, "in_channels": 48, "out_channels": 48}
TINY_MOE_I2V_TRANSFORMER = {**TINY_TRANSFORMER, "in_channels": 36}  # no image_dim: A14B has no CLIP branch
# VACE: the T2V transformer plus control blocks after layers 0 and 2 (as diffusers' own VACE test); the control
# input is 16 inactive + 16 reactive latent channels + 64 (the 8x8 pixel mask folded into channels) = 96.
TINY_VACE_TRANSFORMER = {**TINY_TRANSFORMER, "num_layers": 3, "vace_layers": [0, 2], "vace_in_channels": 96}
# The 2.2 VAE's layout (governance.variants.VAE_WAN22) at tiny width: z 48, residual blocks, 12 = 3x2x2 input.
TINY_VAE_22: dict[str, Any] = dict(
    base_dim=8, decoder_base_dim=12, z_dim=48, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
    temperal_downsample=[False, True, True], is_residual=True, in_channels=12, out_channels=12, patch_size=2,
    scale_factor_temporal=4, scale_factor_spatial=16, latents_mean=[0.0] * 48, latents_std=[1.0] * 48,
)
TINY_CLIP = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                 image_size=32, patch_size=8, projection_dim=16)


def quiet() -> None:
    """No per-file progress bars from diffusers/transformers: the CLI draws its own progress."""
    heavy.diffusers().utils.logging.disable_progress_bar()
    heavy.transformers().utils.logging.disable_progress_bar()


def byte_level_tokenizer():
    """A byte-level BPE with no merges: every character (Japanese included) maps to byte tokens, never <unk>."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    specials = ["<pad>", "</s>", "<unk>"]
    vocab = {tok: i for i, tok in enumerate(specials + sorted(alphabet))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return heavy.transformers().PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=512
    )


def clip_image_processor(side: int):
    """CLIP preprocessing (resize shortest edge, centre crop, CLIP mean/std) for a ``side``-pixel encoder."""
    transformers = heavy.transformers()
    # transformers 5: the PIL backend by name (the default one needs torchvision); transformers 4: the only one
    processor = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    return processor(size={"shortest_edge": side}, crop_size={"height": side, "width": side})


def _components(seed: int, transformer_config: dict[str, Any], vae_config: dict[str, Any] | None = None,
                transformer_2: bool = False, transformer_class: str = "WanTransformer3DModel") -> dict[str, Any]:
    torch, diffusers, transformers = heavy.torch(), heavy.diffusers(), heavy.transformers()
    tokenizer = byte_level_tokenizer()
    torch.manual_seed(seed)
    text_encoder = transformers.UMT5EncoderModel(
        transformers.UMT5Config(
            vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
            relative_attention_num_buckets=8, pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id,
        )
    )
    torch.manual_seed(seed + 1)
    vae = diffusers.AutoencoderKLWan(**(vae_config or dict(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True])))
    torch.manual_seed(seed + 2)
    transformer = getattr(diffusers, transformer_class)(**transformer_config)
    parts = dict(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae,
                 scheduler=diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0), transformer=transformer)
    if transformer_2:
        torch.manual_seed(seed + 4)  # the low-noise expert: same architecture, its own weights
        parts["transformer_2"] = diffusers.WanTransformer3DModel(**transformer_config)
    return parts


def _save(pipe: Any, dest: Path, label: str, seed: int) -> Path:
    with atomic_path(dest) as tmp:
        pipe.save_pretrained(tmp)
        (tmp / "WANFLOW_STANDIN.txt").write_text(label + f"\nweights seed: {seed}\n")
    return dest


def build_tiny_model(dest: Path, seed: int = 0) -> Path:
    """Build `wan-tiny` (WanPipeline) with seeded random weights and save it at ``dest`` (atomically). Offline."""
    if (dest / "model_index.json").exists():
        return dest
    quiet()
    return _save(heavy.diffusers().WanPipeline(**_components(seed, TINY_TRANSFORMER)), dest, TINY_LABEL, seed)


def build_tiny_large_model(dest: Path, seed: int = 0) -> Path:
    """Build `wan-tiny-large` (WanPipeline, a larger tiny transformer) with seeded random weights. Offline."""
    if (dest / "model_index.json").exists():
        return dest
    quiet()
    return _save(heavy.diffusers().WanPipeline(**_components(seed, TINY_LARGE_TRANSFORMER)), dest, TINY_LARGE_LABEL, seed)


def build_tiny_i2v_model(dest: Path, seed: int = 0) -> Path:
    """Build `wan-tiny-i2v` (WanImageToVideoPipeline + a tiny CLIP vision encoder from config). Offline."""
    if (dest / "model_index.json").exists():
        return dest
    quiet()
    parts = _components(seed, TINY_I2V_TRANSFORMER)
    transformers = heavy.transformers()
    heavy.torch().manual_seed(seed + 3)
    image_encoder = transformers.CLIPVisionModel(transformers.CLIPVisionConfig(**TINY_CLIP))
    pipe = heavy.diffusers().WanImageToVideoPipeline(**parts, image_encoder=image_encoder,
                                   image_processor=clip_image_processor(TINY_CLIP["image_size"]))
    return _save(pipe, dest, TINY_I2V_LABEL, seed)


def build_tiny_ti2v_model(dest: Path, seed: int = 0) -> Path:
    """Build `wan-tiny-ti2v` (a WanPipeline with the 2.2 VAE layout and ``expand_timesteps``, as TI2V-5B is
    published; it runs image-to-video as a WanImageToVideoPipeline over the same components). Offline."""
    if (dest / "model_index.json").exists():
        return dest
    quiet()
    pipe = heavy.diffusers().WanPipeline(**_components(seed, TINY_TI2V_TRANSFORMER, TINY_VAE_22), expand_timesteps=True)
    return _save(pipe, dest, TINY_TI2V_LABEL, seed)


def build_tiny_moe_model(dest: Path, seed: int = 0) -> Path:
    """Build `wan-tiny-moe` (a WanPipeline with two experts and T2V-A14B's ``boundary_ratio``). Offline."""
    if (dest / "model_index.json").exists():
        return dest
    quiet()
    pipe = heavy.diffusers().WanPipeline(**_components(seed, TINY_TRANSFORMER, transformer_2=True),
                                         boundary_ratio=PRESETS[TINY_MOE_VARIANT].boundary_ratio)
    return _save(pipe, dest, TINY_MOE_LABEL, seed)


def build_tiny_moe_i2v_model(dest: Path, seed: int = 0) -> Path:
    """Build `wan-tiny-moe-i2v` (a WanImageToVideoPipeline with two experts, no image encoder, I2V-A14B's
    ``boundary_ratio``). Offline."""
    if (dest / "model_index.json").exists():
        return dest
    quiet()
    pipe = heavy.diffusers().WanImageToVideoPipeline(**_components(seed, TINY_MOE_I2V_TRANSFORMER, transformer_2=True),
                                                     boundary_ratio=PRESETS[TINY_MOE_I2V_VARIANT].boundary_ratio)
    return _save(pipe, dest, TINY_MOE_I2V_LABEL, seed)


def build_tiny_vace_model(dest: Path, seed: int = 0) -> Path:
    """Build `wan-tiny-vace` (a WanVACEPipeline over a WanVACETransformer3DModel with two control layers) with
    seeded random weights. Offline. The edit operations (reframe, extend, replace, reference) run on it."""
    if (dest / "model_index.json").exists():
        return dest
    quiet()
    parts = _components(seed, TINY_VACE_TRANSFORMER, transformer_class="WanVACETransformer3DModel")
    return _save(heavy.diffusers().WanVACEPipeline(**parts), dest, TINY_VACE_LABEL, seed)


BUILDERS = {TINY_VARIANT: build_tiny_model, TINY_I2V_VARIANT: build_tiny_i2v_model,
            TINY_LARGE_VARIANT: build_tiny_large_model, TINY_TI2V_VARIANT: build_tiny_ti2v_model,
            TINY_MOE_VARIANT: build_tiny_moe_model, TINY_MOE_I2V_VARIANT: build_tiny_moe_i2v_model,
            TINY_VACE_VARIANT: build_tiny_vace_model}
LABELS = {TINY_VARIANT: TINY_LABEL, TINY_I2V_VARIANT: TINY_I2V_LABEL, TINY_LARGE_VARIANT: TINY_LARGE_LABEL,
          TINY_TI2V_VARIANT: TINY_TI2V_LABEL, TINY_MOE_VARIANT: TINY_MOE_LABEL, TINY_MOE_I2V_VARIANT: TINY_MOE_I2V_LABEL,
          TINY_VACE_VARIANT: TINY_VACE_LABEL}


def build_tiny_lora(model_folder: Path, dest: Path, seed: int = 0, rank: int = 4,
                    expert: str = "transformer") -> Path:
    """A LoRA for a tiny stand-in's transformer, made with peft and saved in diffusers' format (tests, demos).

    Its weights are random (``init_lora_weights=False``), so that loading it visibly changes the clips.
    ``expert="transformer_2"``: made on the low-noise expert of a two-expert stand-in (`wan-tiny-moe`).
    """
    diffusers, peft = heavy.diffusers(), heavy.peft()
    if (dest / "pytorch_lora_weights.safetensors").exists():
        return dest
    quiet()
    transformer = diffusers.WanTransformer3DModel.from_pretrained(model_folder, subfolder=expert, local_files_only=True)
    heavy.torch().manual_seed(seed)
    transformer.add_adapter(peft.LoraConfig(r=rank, lora_alpha=rank, init_lora_weights=False,
                                       target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    with atomic_path(dest) as tmp:
        diffusers.loaders.WanLoraLoaderMixin.save_lora_weights(
            tmp, transformer_lora_layers=peft.get_peft_model_state_dict(transformer))
    return dest
