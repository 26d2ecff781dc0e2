"""Tiny models with random weights for the QC model plumbing, built from configs and saved with
``save_pretrained`` to local folders: no hub. Their scores mean nothing; they exercise loading, the
pre-processing, the checks' arithmetic and the "not run" paths exactly as real weights would."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _tokenizer():
    from tokenizers import Tokenizer, decoders, pre_tokenizers
    from tokenizers.models import BPE
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    vocab = {c: i for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    vocab |= {"<|startoftext|>": 256, "<|endoftext|>": 257, "<pad>": 258}
    tok = Tokenizer(BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = TemplateProcessing(single="<|startoftext|> $A <|endoftext|>",
                                            special_tokens=[("<|startoftext|>", 256), ("<|endoftext|>", 257)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|startoftext|>", eos_token="<|endoftext|>",
                                   pad_token="<pad>", unk_token="<|endoftext|>", model_max_length=77)


def tiny_clip(dest: Path, seed: int = 0, projection_dim: int = 16) -> Path:
    import torch
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    cfg = CLIPConfig(
        text_config=dict(vocab_size=300, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=77, bos_token_id=256, eos_token_id=257,
                         pad_token_id=258),
        vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                           image_size=32, patch_size=8),
        projection_dim=projection_dim)
    CLIPModel(cfg).save_pretrained(dest)
    _tokenizer().save_pretrained(dest)
    return dest


def tiny_dino(dest: Path, seed: int = 0) -> Path:
    import torch
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(seed)
    Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                             image_size=32, patch_size=8)).save_pretrained(dest)
    return dest


def tiny_safety(dest: Path, seed: int = 0) -> Path:
    import torch
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(seed)
    cfg = ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, image_size=32,
                    patch_size=8, num_labels=2, id2label={0: "normal", 1: "nsfw"}, label2id={"normal": 0, "nsfw": 1})
    ViTForImageClassification(cfg).save_pretrained(dest)
    return dest


def tiny_aesthetic(dest: Path, dim: int = 16, seed: int = 0, fmt: str = "safetensors") -> Path:
    """LAION's MLP layout (layers.0/2/4/6/7: 1024-128-64-16-1 there, smaller here), random weights."""
    rng = np.random.default_rng(seed)
    sizes = [dim, 24, 12, 8, 4, 1]
    state = {}
    for idx, (i, o) in zip((0, 2, 4, 6, 7), zip(sizes, sizes[1:])):
        state[f"layers.{idx}.weight"] = rng.normal(0, 0.3, (o, i)).astype(np.float32)
        state[f"layers.{idx}.bias"] = rng.normal(0, 0.1, o).astype(np.float32)
    dest.mkdir(parents=True, exist_ok=True)
    if fmt == "safetensors":
        from safetensors.numpy import save_file

        save_file(state, str(dest / "predictor.safetensors"))
    else:
        import torch

        torch.save({k: torch.from_numpy(v) for k, v in state.items()}, dest / "predictor.pth")
    return dest
