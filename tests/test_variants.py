"""Wan variant presets against the published numbers, size checks, and random-weights mode (configs only)."""

from __future__ import annotations

import pytest

from governance.variants import DEFAULT_NEGATIVE_PROMPT, PRESETS, preset_for, variants_table

# Published: Wan 2.1 README / wan/configs (SUPPORTED_SIZES, frame_num 81, sample_fps 16), generate.py
# (50 steps T2V, 40 steps I2V, guide scale 5.0, shift 3.0 at 480p), diffusers docs (shift 5.0 at 720p).
PUBLISHED = {
    "wan2.1-t2v-1.3b": ("Wan-AI/Wan2.1-T2V-1.3B-Diffusers", "t2v", {(832, 480), (480, 832)}, 50),
    "wan2.1-t2v-14b": ("Wan-AI/Wan2.1-T2V-14B-Diffusers", "t2v", {(1280, 720), (720, 1280), (832, 480), (480, 832)}, 50),
    "wan2.1-i2v-14b-480p": ("Wan-AI/Wan2.1-I2V-14B-480P-Diffusers", "i2v", {(832, 480), (480, 832)}, 40),
    "wan2.1-i2v-14b-720p": ("Wan-AI/Wan2.1-I2V-14B-720P-Diffusers", "i2v", {(1280, 720), (720, 1280)}, 40),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_presets_match_the_published_defaults(name):
    repo, task, sizes, steps = PUBLISHED[name]
    p = preset_for(name)
    assert (p.repo_id, p.task, set(p.sizes), p.steps) == (repo, task, sizes, steps)
    assert (p.num_frames, p.fps, p.guidance) == (81, 16, 5.0)
    assert p.flow_shift(832, 480) == p.flow_shift(480, 832) == 3.0
    assert p.flow_shift(1280, 720) == p.flow_shift(720, 1280) == 5.0
    assert not p.stand_in


def test_only_the_published_variants_plus_labelled_stand_ins():
    stand_ins = {"wan-tiny", "wan-tiny-i2v", "wan-tiny-large", "wan-tiny-ti2v", "wan-tiny-moe", "wan-tiny-moe-i2v"}
    wan22 = ["wan2.2-ti2v-5b", "wan2.2-t2v-a14b", "wan2.2-i2v-a14b"]  # read against their sources in test_wan22.py
    vace = ["wan2.1-vace-1.3b", "wan2.1-vace-14b"]  # read against their sources in test_edits.py
    stand_ins.add("wan-tiny-vace")
    assert set(PRESETS) == set(PUBLISHED) | set(wan22) | set(vace) | stand_ins
    assert all(PRESETS[n].stand_in and "stand-in" in PRESETS[n].label for n in stand_ins)
    assert all(PRESETS[n].licence == "Apache-2.0" for n in PUBLISHED)
    assert [r["variant"] for r in variants_table()] == [*PUBLISHED, *wan22, *vace]
    assert preset_for("wan2.1-t2v-1.3b").published_min_memory_gb == 8.19


def test_default_negative_prompt_is_wans_own():
    # wan/configs/shared_config.py: wan_shared_cfg.sample_neg_prompt, copied independently of the module
    published = ("色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
                 "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，"
                 "形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走")
    assert DEFAULT_NEGATIVE_PROMPT == published


def test_sizes_refused_or_warned():
    p13 = preset_for("wan2.1-t2v-1.3b")
    assert p13.check_size(832, 480).ok and p13.check_size(832, 480).warning is None
    warned = p13.check_size(1280, 720)
    assert warned.ok and "less stable" in warned.warning
    refused = p13.check_size(640, 360)
    assert not refused.ok and "640x360" in refused.error and "832x480, 480x832" in refused.error
    assert not preset_for("wan2.1-t2v-14b").check_size(1024, 1024).ok
    assert "720p" in preset_for("wan2.1-i2v-14b-480p").check_size(1280, 720).warning
    assert preset_for("wan-tiny").check_size(64, 32).ok  # the stand-in takes any size


def test_random_weights_have_the_real_architectures_on_meta():
    """Full-size configs, built on the meta device: nothing allocated, parameter counts of the real models."""
    from adapters.random_weights import random_components

    counts = {}
    for name in ("wan2.1-t2v-1.3b", "wan2.1-t2v-14b", "wan2.1-i2v-14b-720p"):
        parts = random_components(name, device="meta")
        tr = parts["transformer"]
        assert all(p.is_meta for p in tr.parameters())
        counts[name] = sum(p.numel() for p in tr.parameters())
        dim = tr.config.num_attention_heads * tr.config.attention_head_dim
        assert (dim, tr.config.ffn_dim, tr.config.num_layers) == {
            "wan2.1-t2v-1.3b": (1536, 8960, 30)}.get(name, (5120, 13824, 40))
        te = parts["text_encoder"].config
        assert (te.d_model, te.num_layers, te.vocab_size) == (4096, 24, 256384)  # umT5-XXL encoder
        assert parts["vae"].config.z_dim == 16 and parts["vae"].config.base_dim == 96
    assert 1.40e9 < counts["wan2.1-t2v-1.3b"] < 1.45e9
    assert 14.2e9 < counts["wan2.1-t2v-14b"] < 14.4e9
    i2v = random_components("wan2.1-i2v-14b-720p", device="meta")
    assert i2v["transformer"].config.in_channels == 36 and i2v["transformer"].config.image_dim == 1280
    assert i2v["image_encoder"].config.hidden_size == 1280


def test_random_weights_are_never_for_a_campaign(tmp_path, tiny_model):
    from conftest import EXAMPLES

    from adapters.pipelines import resolve_source
    from adapters.random_weights import RandomWeightsRefused
    from adapters.registry import Registry
    from governance.model_refs import ModelRefError
    from core.settings import Settings
    from governance.brief import BriefInvalid
    from wan_tasks.intake import validate

    settings = Settings(home=tmp_path / "home")
    reg = Registry(settings.mlflow_uri, settings.models_dir)
    with pytest.raises(ModelRefError, match="random-weights mode"):
        reg.register("wan-t2v", "random-weights:wan2.1-t2v-1.3b", "wan2.1-t2v-1.3b", stand_in=True)
    with pytest.raises(ModelRefError, match="random-weights mode"):
        reg.register("wan-t2v", tiny_model, "wan2.1-t2v-1.3b@random", stand_in=True)
    # Someone writes such a version into MLflow by hand: resolving and intake still refuse it.
    reg.ensure_bootstrap()
    mv = reg.client.create_model_version("wan-t2v", source="random-weights:wan2.1-t2v-1.3b?seed=0",
                                         tags={"variant": "wan2.1-t2v-1.3b", "random_weights": "true"})
    reg.client.set_registered_model_alias("wan-t2v", "bench", mv.version)
    with pytest.raises(ModelRefError, match="never for a campaign"):
        reg.resolve("wan-t2v@bench")
    brief = tmp_path / "brief.yaml"
    brief.write_text((EXAMPLES / "brief.yaml").read_text("utf-8").replace("wan-t2v@champion", "wan-t2v@bench"), "utf-8")
    with pytest.raises(BriefInvalid) as e:
        validate(brief, settings.model_copy(update={"brands_dir": EXAMPLES / "brands"}))
    assert any(p.field == "model" and "never for a campaign" in p.message for p in e.value.problems)
    with pytest.raises(RandomWeightsRefused):
        resolve_source("random-weights:wan2.1-t2v-14b")
