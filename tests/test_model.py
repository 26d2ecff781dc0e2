"""The wan-tiny stand-in: a real diffusers WanPipeline, built offline, loaded once per process."""

from __future__ import annotations

import numpy as np
import pytest

from adapters import pipelines as m
from adapters.standins import build_tiny_model


def test_build_is_deterministic_and_labelled(tiny_model, tmp_path):
    again = build_tiny_model(tmp_path / "wan-tiny")
    assert m.weights_sha256(again) == m.weights_sha256(tiny_model)
    assert "not Wan 1.3B or 14B" in (tiny_model / "WANFLOW_STANDIN.txt").read_text()
    other_seed = build_tiny_model(tmp_path / "wan-tiny-7", seed=7)
    assert m.weights_sha256(other_seed) != m.weights_sha256(tiny_model)


def test_loaded_once_per_process(tiny_model):
    before = m.load_count
    first = m.load_pipeline(tiny_model, "cpu")
    second = m.load_pipeline(tiny_model, "cpu")
    assert first is second
    assert m.load_count - before <= 1  # 0 if an earlier test already loaded it in this process
    assert type(first).__name__ == "WanPipeline"


def test_japanese_prompt_survives_tokenization(tiny_model):
    tok = m.load_pipeline(tiny_model, "cpu").tokenizer
    text = "桜並木の下を赤いスニーカーで歩く"
    ids = tok(text).input_ids
    assert tok.unk_token_id not in ids
    assert tok.decode(ids, skip_special_tokens=True) == text


def test_same_seed_same_frames(tiny_model):
    pipe = m.load_pipeline(tiny_model, "cpu")
    p = m.GenerationParams("a red sneaker", "blurry", width=64, height=32, num_frames=5, steps=2, guidance=5.0, seed=3)
    a, timings = m.generate_frames(pipe, p)
    b, _ = m.generate_frames(pipe, p)
    c, _ = m.generate_frames(pipe, m.GenerationParams(**{**p.__dict__, "seed": 4}))
    assert a.shape == (5, 32, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert timings["generate_s"] > 0


def test_missing_weights_say_where_and_how(tmp_path):
    with pytest.raises(m.ModelNotFound) as e:
        m.load_pipeline(tmp_path / "nowhere", "cpu")
    assert str(tmp_path / "nowhere") in str(e.value)
    assert "Wan-AI/Wan2.1-T2V-1.3B-Diffusers" in str(e.value)


def test_hub_id_missing_from_the_cache_says_where_and_how():
    with pytest.raises(m.ModelNotFound) as e:
        m.resolve_source("Wan-AI/Wan2.1-T2V-14B-Diffusers", "wan2.1-t2v-14b", offline=True)
    msg = str(e.value)
    assert "not in the Hugging Face cache" in msg and "HF_HUB_OFFLINE" in msg
    assert "huggingface-cli download Wan-AI/Wan2.1-T2V-14B-Diffusers --local-dir" in msg


def test_a_folder_is_loaded_with_the_dtype_policy(tiny_model, tiny_i2v_model):
    import torch

    assert m.dtype_name("cpu") == "float32" and m.dtype_name("cuda:0") == "bfloat16"
    pipe = m.load_pipeline(tiny_i2v_model, "cpu")
    assert {pipe.transformer.dtype, pipe.text_encoder.dtype, pipe.vae.dtype, pipe.image_encoder.dtype} == {torch.float32}
    with pytest.raises(m.ModelNotFound, match="Wan-AI/Wan2.1-I2V-14B-720P-Diffusers"):
        m.load_pipeline(tiny_model.parent / "absent", "cpu", variant="wan2.1-i2v-14b-720p")
