"""The offline stand-ins `wan-tiny`, `wan-tiny-large` (T2V) and `wan-tiny-i2v` (I2V): real diffusers Wan pipelines
at tiny size. `wan-tiny-large` is a larger tiny configuration (more layers and heads), used as the challenger of
an offline rollout rehearsal the way 14B would follow 1.3B — it is not 14B.

Both are built with *seeded random weights* from configs (no download), saved with ``save_pretrained``
and loaded back with ``from_pretrained`` — the code path real Wan weights in diffusers format take. Their
output is noise-like: they exist so that every stage runs for real on any machine, and are labelled as
stand-ins everywhere; never a substitute for Wan 1.3B or 14B.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any

TINY_VARIANT = "wan-tiny"
TINY_I2V_VARIANT = "wan-tiny-i2v"
TINY_LARGE_VARIANT = "wan-tiny-large"
TINY_LABEL = "wan-tiny (stand-in: random weights, noise-like output; not Wan 1.3B or 14B)"
TINY_LARGE_LABEL = ("wan-tiny-large (stand-in: larger tiny configuration, random weights, noise-like output; "
                    "not Wan 14B)")
TINY_I2V_LABEL = "wan-tiny-i2v (stand-in: random weights, noise-like output; not Wan I2V-14B)"
TINY_TRANSFORMER: dict[str, Any] = dict(
    patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
    text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
    qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
)
TINY_LARGE_TRANSFORMER = {**TINY_TRANSFORMER, "num_attention_heads": 4, "ffn_dim": 96, "num_layers": 4}
# I2V: 16 noise + 4 mask + 16 image-latent channels in; the CLIP image embedding goes through image_dim
# and the added key/value projections (as in Wan2.1-I2V-14B, at tiny size).
TINY_I2V_TRANSFORMER = {**TINY_TRANSFORMER, "in_channels": 36, "image_dim": 16, "added_kv_proj_dim": 24}
TINY_CLIP = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                 image_size=32, patch_size=8, projection_dim=16)


def quiet() -> None:
    """No per-file progress bars from diffusers/transformers: the CLI draws its own progress."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


def byte_level_tokenizer():
    """A byte-level BPE with no merges: every character (Japanese included) maps to byte tokens, never <unk>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    specials = ["<pad>", "</s>", "<unk>"]
    vocab = {tok: i for i, tok in enumerate(specials + sorted(alphabet))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=512
    )


def clip_image_processor(side: int):
    """CLIP preprocessing (resize shortest edge, centre crop, CLIP mean/std) for a ``side``-pixel encoder."""
    try:  # transformers 5: the PIL backend by name (the default one needs torchvision)
        from transformers import CLIPImageProcessorPil as CLIPImageProcessor
    except ImportError:  # pragma: no cover - transformers 4
        from transformers import CLIPImageProcessor

    return CLIPImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side})


def _components(seed: int, transformer_config: dict[str, Any]) -> dict[str, Any]:
    import torch
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    tokenizer = byte_level_tokenizer()
    torch.manual_seed(seed)
    text_encoder = UMT5EncoderModel(
        UMT5Config(
            vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
            relative_attention_num_buckets=8, pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id,
        )
    )
    torch.manual_seed(seed + 1)
    vae = AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    torch.manual_seed(seed + 2)
    transformer = WanTransformer3DModel(**transformer_config)
    return dict(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae,
                scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), transformer=transformer)


def _save(pipe: Any, dest: Path, label: str, seed: int) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
    try:
        pipe.save_pretrained(tmp)
        (tmp / "WANFLOW_STANDIN.txt").write_text(label + f"\nweights seed: {seed}\n")
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def build_tiny_model(dest: Path, seed: int = 0) -> Path:
    """Build `wan-tiny` (WanPipeline) with seeded random weights and save it at ``dest`` (atomically). Offline."""
    from diffusers import WanPipeline

    if (dest / "model_index.json").exists():
        return dest
    quiet()
    return _save(WanPipeline(**_components(seed, TINY_TRANSFORMER)), dest, TINY_LABEL, seed)


def build_tiny_large_model(dest: Path, seed: int = 0) -> Path:
    """Build `wan-tiny-large` (WanPipeline, a larger tiny transformer) with seeded random weights. Offline."""
    from diffusers import WanPipeline

    if (dest / "model_index.json").exists():
        return dest
    quiet()
    return _save(WanPipeline(**_components(seed, TINY_LARGE_TRANSFORMER)), dest, TINY_LARGE_LABEL, seed)


def build_tiny_i2v_model(dest: Path, seed: int = 0) -> Path:
    """Build `wan-tiny-i2v` (WanImageToVideoPipeline + a tiny CLIP vision encoder from config). Offline."""
    import torch
    from diffusers import WanImageToVideoPipeline
    from transformers import CLIPVisionConfig, CLIPVisionModel

    if (dest / "model_index.json").exists():
        return dest
    quiet()
    parts = _components(seed, TINY_I2V_TRANSFORMER)
    torch.manual_seed(seed + 3)
    image_encoder = CLIPVisionModel(CLIPVisionConfig(**TINY_CLIP))
    pipe = WanImageToVideoPipeline(**parts, image_encoder=image_encoder,
                                   image_processor=clip_image_processor(TINY_CLIP["image_size"]))
    return _save(pipe, dest, TINY_I2V_LABEL, seed)


BUILDERS = {TINY_VARIANT: build_tiny_model, TINY_I2V_VARIANT: build_tiny_i2v_model,
            TINY_LARGE_VARIANT: build_tiny_large_model}
LABELS = {TINY_VARIANT: TINY_LABEL, TINY_I2V_VARIANT: TINY_I2V_LABEL, TINY_LARGE_VARIANT: TINY_LARGE_LABEL}


def build_tiny_lora(model_folder: Path, dest: Path, seed: int = 0, rank: int = 4) -> Path:
    """A LoRA for a tiny stand-in's transformer, made with peft and saved in diffusers' format (tests, demos).

    Its weights are random (``init_lora_weights=False``), so that loading it visibly changes the clips.
    """
    import torch
    from diffusers import WanTransformer3DModel
    from diffusers.loaders import WanLoraLoaderMixin
    from peft import LoraConfig, get_peft_model_state_dict

    if (dest / "pytorch_lora_weights.safetensors").exists():
        return dest
    quiet()
    transformer = WanTransformer3DModel.from_pretrained(model_folder, subfolder="transformer", local_files_only=True)
    torch.manual_seed(seed)
    transformer.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights=False,
                                       target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
    try:
        WanLoraLoaderMixin.save_lora_weights(tmp, transformer_lora_layers=get_peft_model_state_dict(transformer))
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
