"""The Wan 2.2 family (TI2V-5B, T2V-A14B, I2V-A14B) on the same path as 2.1: presets read against the published
numbers, fps advice at intake, the full-size architectures on ``meta``, and the tiny Wan 2.2-shaped stand-ins
(`wan-tiny-ti2v`, `wan-tiny-moe`, `wan-tiny-moe-i2v`: real diffusers classes, seeded random weights) through the
engine — each expert exactly on its side of the boundary — and through the campaign flow on SQLite and
PostgreSQL, with the registry's variant facts and the lineage of both experts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from governance.brief import load_brief
from governance.fit import check_fit
from governance.variants import DEFAULT_NEGATIVE_PROMPT, PRESETS, preset_for, variants_table

# Copied by hand from Wan-Video/Wan2.2 (commit 42bf4cf): wan/configs/__init__.py SUPPORTED_SIZES;
# wan_t2v_A14B.py / wan_i2v_A14B.py / wan_ti2v_5B.py (sample_steps, sample_shift, boundary,
# sample_guide_scale = (low noise, high noise), frame_num, sample_fps); README (peak memory, comp_effic.png);
# diffusers scripts/convert_wan_to_diffusers.py (repo names, boundary_ratio in the published pipelines).
PUBLISHED_22 = {
    # name: (repo, task, sizes, frames, fps, steps, high-noise guidance, low-noise guidance, boundary, shift, GB)
    "wan2.2-ti2v-5b": ("Wan-AI/Wan2.2-TI2V-5B-Diffusers", "ti2v", {(1280, 704), (704, 1280)}, 121, 24, 50,
                       5.0, None, None, 5.0, 22.9),
    "wan2.2-t2v-a14b": ("Wan-AI/Wan2.2-T2V-A14B-Diffusers", "t2v",
                        {(1280, 720), (720, 1280), (832, 480), (480, 832)}, 81, 16, 40, 4.0, 3.0, 0.875, 12.0, 41.3),
    "wan2.2-i2v-a14b": ("Wan-AI/Wan2.2-I2V-A14B-Diffusers", "i2v",
                        {(1280, 720), (720, 1280), (832, 480), (480, 832)}, 81, 16, 40, 3.5, 3.5, 0.9, 5.0, 41.0),
}
STAND_INS_22 = ("wan-tiny-ti2v", "wan-tiny-moe", "wan-tiny-moe-i2v")


@pytest.mark.parametrize("name", sorted(PUBLISHED_22))
def test_wan22_presets_match_the_published_defaults(name):
    repo, task, sizes, frames, fps, steps, g_high, g_low, boundary, shift, gb = PUBLISHED_22[name]
    p = preset_for(name)
    assert (p.repo_id, p.task, set(p.sizes), p.num_frames, p.fps, p.steps) == (repo, task, sizes, frames, fps, steps)
    assert (p.guidance, p.guidance_2, p.boundary_ratio) == (g_high, g_low, boundary)
    assert {p.flow_shift(w, h) for w, h in sizes} == {shift}  # one shift per model, as generate.py uses it
    assert p.published_min_memory_gb == gb and p.licence == "Apache-2.0" and not p.stand_in
    assert p.moe == (boundary is not None) and (p.transformer_2 is not None) == p.moe
    if p.moe:
        assert p.default_params["guidance_2"] == g_low and p.default_params["boundary_ratio"] == boundary
    assert DEFAULT_NEGATIVE_PROMPT  # Wan 2.2's shared_config.sample_neg_prompt is 2.1's, verbatim


def test_wan22_rows_in_the_presets_table_and_the_labelled_stand_ins():
    rows = {r["variant"]: r for r in variants_table()}
    assert set(PUBLISHED_22) <= set(rows) and not set(STAND_INS_22) & set(rows)
    assert rows["wan2.2-t2v-a14b"]["guidance"] == "4.0 (high noise) / 3.0 (low noise), boundary 0.875"
    assert rows["wan2.2-t2v-a14b"]["flow shift"] == "12.0 (every size)"
    assert rows["wan2.2-ti2v-5b"]["fps"] == 24
    for name in STAND_INS_22:
        assert PRESETS[name].stand_in and "stand-in" in PRESETS[name].label and PRESETS[name].repo_id is None


def test_ti2v_5b_sizes_are_its_own_720p():
    p = preset_for("wan2.2-ti2v-5b")
    assert p.check_size(1280, 704).ok and p.check_size(704, 1280).ok
    refused = p.check_size(1280, 720)  # 720 is not a multiple of the 5B's 32-pixel token
    assert not refused.ok and "1280x704, 704x1280" in refused.error


def _brief(tmp_path: Path, fps: int, width: int = 832, height: int = 480, image: str | None = None):
    (tmp_path / "brands").mkdir(exist_ok=True)
    (tmp_path / "brands" / "acme.yaml").write_text("name: acme\ndisplay_name: ACME\n", "utf-8")
    path = tmp_path / "brief.yaml"
    img = f"\n    image: {image}" if image else ""
    path.write_text(f"campaign: fps\nbrand: acme\nmodel: wan-t2v@champion\ndefaults: {{fps: {fps}, width: {width}, "
                    f"height: {height}}}\nitems:\n  - id: a\n    prompt: A red sneaker{img}\n", "utf-8")
    return load_brief(path, tmp_path / "brands")


def test_a_brief_at_another_fps_than_the_model_renders_is_told_so(tmp_path, still_image):
    on_a14b = check_fit(_brief(tmp_path, fps=24), "wan2.2-t2v-a14b")
    assert len(on_a14b) == 1 and ":fps:" in on_a14b[0] and "wan2.2-t2v-a14b renders at 16 fps" in on_a14b[0]
    assert "1.50x (faster)" in on_a14b[0]
    on_5b = check_fit(_brief(tmp_path, fps=16, width=1280, height=704), "wan2.2-ti2v-5b")
    assert len(on_5b) == 1 and "renders at 24 fps" in on_5b[0] and "(slower)" in on_5b[0]
    assert check_fit(_brief(tmp_path, fps=24, width=1280, height=704), "wan2.2-ti2v-5b") == []
    assert check_fit(_brief(tmp_path, fps=16), "wan2.2-t2v-a14b") == []
    assert check_fit(_brief(tmp_path, fps=24), "wan2.1-t2v-1.3b") != []  # 2.1 renders at 16 fps too
    # TI2V-5B takes an item with or without an image; the A14B T2V expert pair takes none
    assert check_fit(_brief(tmp_path, fps=24, width=1280, height=704, image=str(still_image)), "wan2.2-ti2v-5b") == []
    from governance.brief import BriefInvalid

    with pytest.raises(BriefInvalid, match="text-to-video"):
        check_fit(_brief(tmp_path, fps=16, image=str(still_image)), "wan2.2-t2v-a14b")


def test_random_weights_have_the_wan22_architectures_on_meta():
    from adapters.random_weights import random_components

    five = random_components("wan2.2-ti2v-5b", device="meta", text_encoder=False)
    assert "transformer_2" not in five and 4.9e9 < sum(p.numel() for p in five["transformer"].parameters()) < 5.1e9
    vae = five["vae"].config
    assert (vae.z_dim, vae.patch_size, vae.scale_factor_spatial, vae.in_channels) == (48, 2, 16, 12)
    assert five["transformer"].config.in_channels == 48
    for name, in_channels in (("wan2.2-t2v-a14b", 16), ("wan2.2-i2v-a14b", 36)):
        parts = random_components(name, device="meta", text_encoder=False)
        for expert in ("transformer", "transformer_2"):
            assert 14.2e9 < sum(p.numel() for p in parts[expert].parameters()) < 14.4e9
            assert parts[expert].config.in_channels == in_channels and parts[expert].config.image_dim is None
        assert parts["vae"].config.z_dim == 16 and "image_encoder" not in parts  # the 2.1 VAE, no CLIP branch
    from adapters.random_weights import build_random_pipeline

    moe = build_random_pipeline("wan2.2-i2v-a14b@random", device="meta", text_encoder=False)
    assert type(moe).__name__ == "WanImageToVideoPipeline" and moe.config.boundary_ratio == 0.9
    assert moe.transformer_2 is not None and moe.image_encoder is None
    ti2v = build_random_pipeline("wan2.2-ti2v-5b@random", device="meta", text_encoder=False)
    assert type(ti2v).__name__ == "WanPipeline" and ti2v.config.expand_timesteps and ti2v.config.boundary_ratio is None


def test_memory_model_one_expert_at_a_time_and_the_22_vae_tokens():
    from adapters import memory as mm
    from adapters.random_weights import random_components

    fps = {v: mm.footprint_from_modules(random_components(v, device="meta", text_encoder=False), "cuda")
           for v in ("wan2.1-t2v-14b", "wan2.2-t2v-a14b", "wan2.2-ti2v-5b")}
    a14b, t14b, five = fps["wan2.2-t2v-a14b"], fps["wan2.1-t2v-14b"], fps["wan2.2-ti2v-5b"]
    expert = a14b.weights(["transformer"])
    assert a14b.weights(["transformer_2"]) == expert == t14b.weights(["transformer"])
    shape = mm.Shape(1280, 720, 81)
    resident = mm.estimate_peak(a14b, shape, mm.Policy.none, "cuda")
    offload = mm.estimate_peak(a14b, shape, mm.Policy.model_cpu_offload, "cuda")
    assert resident - mm.estimate_peak(t14b, shape, mm.Policy.none, "cuda") == expert  # both experts resident
    assert offload == mm.estimate_peak(t14b, shape, mm.Policy.model_cpu_offload, "cuda") < resident - expert
    assert (a14b.spatial, five.spatial, five.vae_patch) == (16, 32, 2)  # 8x VAE x 2x2 patch; 16x VAE x 2x2
    act = mm._activations(five, mm.Shape(1280, 704, 121), "cuda", tiled=False)["transformer"]  # 27,280 tokens
    assert act == 31 * 22 * 40 * (4 * 3072 + 14336) * 2 + 8 * 31 * 22 * 40 * 64 * 4


# --- the stand-ins --------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def wan22_models(tmp_path_factory) -> dict[str, Path]:
    from adapters.standins import BUILDERS

    root = tmp_path_factory.mktemp("models")
    return {name: BUILDERS[name](root / name) for name in STAND_INS_22}


def test_stand_ins_have_the_wan22_layouts(wan22_models):
    index = {n: json.loads((f / "model_index.json").read_text()) for n, f in wan22_models.items()}
    assert index["wan-tiny-ti2v"]["expand_timesteps"] is True and index["wan-tiny-ti2v"]["transformer_2"] == [None, None]
    assert json.loads((wan22_models["wan-tiny-ti2v"] / "vae" / "config.json").read_text())["z_dim"] == 48
    assert (index["wan-tiny-moe"]["boundary_ratio"], index["wan-tiny-moe-i2v"]["boundary_ratio"]) == (0.875, 0.9)
    assert index["wan-tiny-moe-i2v"]["_class_name"] == "WanImageToVideoPipeline"
    for name, folder in wan22_models.items():
        assert "stand-in" in (folder / "WANFLOW_STANDIN.txt").read_text() and "not Wan2.2" in (
            folder / "WANFLOW_STANDIN.txt").read_text()
    high = (wan22_models["wan-tiny-moe"] / "transformer" / "diffusion_pytorch_model.safetensors").read_bytes()
    low = (wan22_models["wan-tiny-moe"] / "transformer_2" / "diffusion_pytorch_model.safetensors").read_bytes()
    assert high != low  # two experts, not one copied


def _params(image: str | None = None, steps: int = 6, guidance_2: float | None = 3.0, seed: int = 1):
    from adapters.engine import GenerationParams

    return GenerationParams("A red sneaker on a white pedestal", "", 64, 32, 5, steps, 4.0, seed, image=image,
                            flow_shift=12.0, guidance_2=guidance_2)


@pytest.mark.parametrize("name", ["wan-tiny-moe", "wan-tiny-moe-i2v"])
def test_each_expert_runs_exactly_the_steps_on_its_side_of_the_boundary(wan22_models, still_image, name):
    """Forward hooks count each expert's calls and the timesteps it saw, against the scheduler's timesteps."""
    from adapters.engine import run_batch
    from adapters.pipelines import load_pipeline

    pipe = load_pipeline(wan22_models[name], "cpu")
    seen: dict[str, list[float]] = {"transformer": [], "transformer_2": []}
    hooks = [getattr(pipe, expert).register_forward_pre_hook(
        lambda _m, _a, kw, expert=expert: seen[expert].append(float(kw["timestep"].flatten()[0])), with_kwargs=True)
        for expert in seen]
    try:
        image = str(still_image) if name.endswith("i2v") else None
        result = run_batch(pipe, [_params(image)])
    finally:
        for h in hooks:
            h.remove()
    boundary = pipe.config.boundary_ratio * pipe.scheduler.config.num_train_timesteps
    timesteps = [float(t) for t in pipe.scheduler.timesteps]
    high = [t for t in timesteps if t >= boundary]
    low = [t for t in timesteps if t < boundary]
    assert len(timesteps) == 6 and high and low  # the shift puts steps on both sides: the test can fail
    # guidance > 1: each step calls its expert twice (conditional and unconditional), at that step's timestep
    assert seen["transformer"] == [t for t in high for _ in (0, 1)]
    assert seen["transformer_2"] == [t for t in low for _ in (0, 1)]
    assert result.details["experts"]["steps"] == {"transformer": len(high), "transformer_2": len(low)}
    assert result.details["experts"]["boundary_ratio"] == pipe.config.boundary_ratio


@pytest.mark.parametrize(("name", "with_image"), [("wan-tiny-moe", False), ("wan-tiny-moe-i2v", True),
                                                  ("wan-tiny-ti2v", False), ("wan-tiny-ti2v", True)])
def test_staged_generation_equals_the_plain_pipeline_call(wan22_models, still_image, name, with_image):
    """The engine's staged run is diffusers' own computation for two experts and for TI2V (both tasks)."""
    import numpy as np

    from adapters.engine import reference_call, run_batch
    from adapters.pipelines import load_pipeline

    pipe = load_pipeline(wan22_models[name], "cpu")
    p = _params(str(still_image) if with_image else None, steps=3, guidance_2=None if "ti2v" in name else 3.0)
    assert np.array_equal(run_batch(pipe, [p]).video[0], reference_call(pipe, p))


@pytest.mark.parametrize("name", ["wan-tiny-moe", "wan-tiny-ti2v"])
def test_every_memory_policy_runs_each_expert_and_the_22_vae(wan22_models, name):
    """The ladder applies per expert: offload hooks on both transformers (and the 2.2 VAE), same clips."""
    import numpy as np

    from adapters import pipelines as m
    from adapters.engine import run_batch
    from adapters.memory import Policy

    p = _params(steps=3, guidance_2=None)
    m.evict_all()
    ref = run_batch(m.load_pipeline(wan22_models[name], "cpu", Policy.none), [p])
    for policy in (Policy.model_cpu_offload, Policy.group_offload_block, Policy.group_offload_leaf):
        m.evict_all()
        pipe = m.load_pipeline(wan22_models[name], "cpu", policy)
        got = run_batch(pipe, [p])
        np.testing.assert_allclose(got.video[0], ref.video[0], rtol=0, atol=1e-4)
        assert got.details.get("experts") == ref.details.get("experts")
    m.evict_all()


def test_the_low_noise_guidance_reaches_the_low_noise_expert(wan22_models):
    import numpy as np

    from adapters.engine import run_batch
    from adapters.pipelines import load_pipeline

    pipe = load_pipeline(wan22_models["wan-tiny-moe"], "cpu")
    same = run_batch(pipe, [_params(guidance_2=None)])
    explicit = run_batch(pipe, [_params(guidance_2=4.0)])
    other = run_batch(pipe, [_params(guidance_2=1.5)])
    assert same.details["experts"]["guidance_2"] == 4.0  # unset: the high-noise guidance, as diffusers does
    np.testing.assert_allclose(same.video, explicit.video, atol=1e-6)
    assert np.abs(other.video - same.video).max() > 1e-4


def test_ti2v_makes_text_and_image_to_video_with_one_model(wan22_models, still_image, tmp_path):
    import numpy as np
    from PIL import Image

    from adapters.engine import run_batch
    from adapters.pipelines import load_pipeline

    pipe = load_pipeline(wan22_models["wan-tiny-ti2v"], "cpu")
    t2v = run_batch(pipe, [_params(guidance_2=None, steps=2)])
    i2v = run_batch(pipe, [_params(str(still_image), guidance_2=None, steps=2)])
    other = tmp_path / "blue.png"
    Image.new("RGB", (120, 90), (20, 40, 220)).save(other)
    i2v_other = run_batch(pipe, [_params(str(other), guidance_2=None, steps=2)])
    assert t2v.frames[0].shape == i2v.frames[0].shape == (5, 32, 64, 3)
    assert np.abs(i2v.video - t2v.video).max() > 1e-3 and np.abs(i2v.video - i2v_other.video).max() > 1e-3
    assert "experts" not in t2v.details
    assert pipe._wanflow_i2v.transformer is pipe.transformer  # the I2V view shares the weights, no second load


@pytest.fixture(scope="session")
def moe_loras(tmp_path_factory, wan22_models) -> tuple[Path, Path]:
    """A high-noise and a low-noise LoRA for `wan-tiny-moe`, made with peft on each expert (random weights)."""
    from adapters.standins import build_tiny_lora

    root, model = tmp_path_factory.mktemp("loras"), wan22_models["wan-tiny-moe"]
    return (build_tiny_lora(model, root / "high", seed=1) / "pytorch_lora_weights.safetensors",
            build_tiny_lora(model, root / "low", seed=2, expert="transformer_2") / "pytorch_lora_weights.safetensors")


def test_a_lora_pair_goes_onto_each_expert_and_one_file_onto_both(wan22_models, moe_loras):
    from safetensors.torch import load_file

    from adapters.engine import Lora, lora_applied
    from adapters.pipelines import load_pipeline

    pipe = load_pipeline(wan22_models["wan-tiny-moe"], "cpu")
    high, low = moe_loras
    key = "blocks.0.attn1.to_q.lora_A"
    in_file = {f: next(v for k, v in load_file(str(f)).items() if key in k) for f in (high, low)}
    assert not (in_file[high] == in_file[low]).all()

    def loaded(expert: str):
        return dict(getattr(pipe, expert).named_parameters())[f"{key}.brand.weight"].detach()

    with lora_applied(pipe, Lora(path=str(high), low_noise_path=str(low))):
        assert (loaded("transformer") == in_file[high]).all() and (loaded("transformer_2") == in_file[low]).all()
    with lora_applied(pipe, Lora(path=str(high))):  # one file: onto both experts
        assert (loaded("transformer") == in_file[high]).all() and (loaded("transformer_2") == in_file[high]).all()
    for expert in ("transformer", "transformer_2"):  # unloaded after each batch: the cached pipeline stays clean
        assert not any("lora" in n for n, _ in getattr(pipe, expert).named_parameters())


def test_a_low_noise_lora_on_a_one_transformer_model_is_refused_at_intake(tmp_path, moe_loras):
    from governance.brief import BriefInvalid

    high, low = moe_loras
    (tmp_path / "brands").mkdir()
    (tmp_path / "brands" / "acme.yaml").write_text("name: acme\ndisplay_name: ACME\n", "utf-8")
    path = tmp_path / "brief.yaml"
    path.write_text(f"campaign: lora-pair\nbrand: acme\nmodel: wan-t2v@champion\n"
                    f"lora: {{path: {high}, low_noise_path: {low}}}\n"
                    "defaults: {width: 832, height: 480}\nitems:\n  - id: a\n    prompt: A red sneaker\n", "utf-8")
    brief = load_brief(path, tmp_path / "brands")
    assert brief.lora.low_noise_path == str(low) and brief.lora.low_noise_sha256 and brief.lora.sha256
    assert check_fit(brief, "wan2.2-t2v-a14b") == []
    with pytest.raises(BriefInvalid) as e:
        check_fit(brief, "wan2.1-t2v-14b")
    assert [p.field for p in e.value.problems] == ["lora.low_noise_path"] and "one transformer" in str(e.value)
    path.write_text(path.read_text("utf-8").replace(str(low), str(tmp_path / "missing.safetensors")), "utf-8")
    with pytest.raises(BriefInvalid) as e:
        load_brief(path, tmp_path / "brands")
    assert [p.field for p in e.value.problems] == ["lora.low_noise_path"]


# --- through the campaign flow, with the registry and lineage ----------------------------------------------

CAMPAIGNS = [  # (stand-in, registered model, conditioning image)
    ("wan-tiny-ti2v", "wan-t2v", False), ("wan-tiny-ti2v", "wan-i2v", True),
    ("wan-tiny-moe", "wan-t2v", False), ("wan-tiny-moe-i2v", "wan-i2v", True),
]


@pytest.mark.parametrize(("variant", "name", "with_image"), CAMPAIGNS,
                         ids=[f"{v}-{n}" for v, n, _ in CAMPAIGNS])
def test_campaign_end_to_end_on_each_wan22_stand_in(settings, wan22_models, still_image, moe_loras, tmp_path, monkeypatch,
                                                     variant, name, with_image):
    """One clip per stand-in through the campaign flow; `wan-tiny-moe` with a high-/low-noise LoRA pair."""
    from conftest import EXAMPLES

    from catalog.db import open_catalog, session_scope
    from catalog.lineage import lineage
    from catalog.models import Asset, AssetKind, GenerationJob
    from flows.campaign import campaign
    from wan_tasks.intake import registry_for

    settings = settings.model_copy(update={"brands_dir": EXAMPLES / "brands"})
    settings.ensure_dirs()
    shutil.copytree(wan22_models[variant], settings.models_dir / variant)
    reg = registry_for(settings)
    version = reg.register(name, settings.models_dir / variant, variant)
    tags = reg.client.get_model_version(name, str(version)).tags
    preset = preset_for(variant)
    assert tags["variant"] == variant and tags["stand_in"] == "true" and "not Wan2.2" in tags["label"]
    assert json.loads(tags["default_params"]) == preset.default_params and tags["task"] == preset.task
    files = reg.file_digests(name, version)
    if preset.moe:  # both experts' digests and the folder's boundary are variant facts of the version
        assert float(tags["boundary_ratio"]) == preset.boundary_ratio
        assert tags["expert_sha256.transformer"] != tags["expert_sha256.transformer_2"]
        assert any(f.startswith("transformer_2/") for f in files)
    else:
        assert "expert_sha256.transformer" not in tags
    image = f"\n    image: {still_image}" if with_image else ""
    lora = f"lora: {{path: {moe_loras[0]}, low_noise_path: {moe_loras[1]}}}\n" if variant == "wan-tiny-moe" else ""
    brief = tmp_path / "brief.yaml"
    brief.write_text(f"campaign: c-{variant}-{name}\nbrand: acme\nmodel: {name}/{version}\n{lora}"
                     "defaults: {num_frames: 5, fps: 8, width: 64, height: 32, formats: [\"16:9\"], steps: 4, seed: 7}\n"
                     f"items:\n  - id: shoe\n    prompt: A red sneaker on a white pedestal{image}\n", "utf-8")
    summary = campaign(str(brief), settings)
    assert summary["model"] == f"{name}/{version}"
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        job = s.scalars(select(GenerationJob)).one()
        assert job.status.value == "done", job.error
        clip = s.scalar(select(Asset).where(Asset.job_id == job.id, Asset.kind == AssetKind.raw_clip))
        assert (clip.width, clip.height, clip.frames) == (64, 32, 5) and Path(clip.uri).is_file()
        chain = lineage(s, str(clip.id))
    assert (chain["conditioning_image"] is not None) == with_image
    if preset.moe:
        experts = chain["experts"]
        assert experts["weights_sha256"] == {"transformer": tags["expert_sha256.transformer"],
                                             "transformer_2": tags["expert_sha256.transformer_2"]}
        assert experts["boundary_ratio"] == preset.boundary_ratio
        assert (experts["guidance"], experts["guidance_2"]) == (5.0, preset.guidance_2)  # the brief's, the preset's
        assert experts["steps"]["transformer"] + experts["steps"]["transformer_2"] == 4
        assert min(experts["steps"].values()) >= 1
        from cli.context import console
        from cli.lineage import print_lineage

        monkeypatch.setattr(console, "width", 400)  # one tree line per row, whatever the terminal
        with console.capture() as shown:
            print_lineage(chain)
        text = shown.get()
        assert f"experts  boundary_ratio={preset.boundary_ratio}" in text
        for expert in ("transformer", "transformer_2"):
            assert f"{expert} (" in text and f"weights={tags[f'expert_sha256.{expert}']}" in text
    else:
        assert chain["experts"] is None
    if lora:  # both files hashed, recorded on the job and shown in lineage
        from core.files import sha256_file

        assert (chain["lora"]["sha256"], chain["lora"]["low_noise_sha256"]) == (sha256_file(moe_loras[0]),
                                                                                sha256_file(moe_loras[1]))


def test_rollout_from_a_21_champion_to_a_22_challenger(settings, tiny_model, wan22_models, tmp_path):
    """`wan-tiny` (2.1 layout, the champion) → `wan-tiny-moe` (two experts): evaluation through the flow, blind
    votes, promotion through the gates; a campaign planned on 2.1 stays there; a canary campaign routes jobs to
    the 2.2 challenger, each recording its experts; rollback goes back one step."""
    from conftest import EXAMPLES

    from catalog.db import open_catalog, session_scope
    from catalog.models import AbPair, GenerationJob, ModelVersion
    from flows.campaign import campaign
    from flows.rollout import rollout_evaluate
    from wan_tasks import plan, rollout
    from wan_tasks.intake import registry_for, resolve_models, validate
    from wan_tasks.rollout_run import publish_evaluation

    settings = settings.model_copy(update={"brands_dir": EXAMPLES / "brands"})
    settings.ensure_dirs()
    for src, name in ((tiny_model, "wan-tiny"), (wan22_models["wan-tiny-moe"], "wan-tiny-moe")):
        shutil.copytree(src, settings.models_dir / name)
    reg = registry_for(settings)
    reg.ensure_bootstrap("wan-t2v")  # wan-t2v/1 = wan-tiny, @champion
    v2 = reg.register("wan-t2v", settings.models_dir / "wan-tiny-moe", "wan-tiny-moe")
    reg.set_alias("wan-t2v", "challenger", v2)

    def brief(name: str, items: int, extra: str = "") -> Path:
        rows = "\n".join(f'  - {{id: item-{i}, prompt: "A red sneaker on a white pedestal {i}"}}' for i in range(items))
        path = tmp_path / f"{name}.yaml"
        path.write_text(f"campaign: {name}\nbrand: acme\nmodel: wan-t2v@champion\n{extra}\ndefaults: {{num_frames: 5, "
                        f"fps: 16, width: 64, height: 32, variants: 2, formats: [\"16:9\"], steps: 4, seed: 7}}\n"
                        f"items:\n{rows}\n", "utf-8")
        return path

    engine = open_catalog(settings.catalog_db_url)
    frozen = brief("frozen-on-21", items=1)
    with session_scope(engine) as s:
        frozen_id = plan.record_brief(s, validate(frozen, settings))
    assert resolve_models(settings, frozen_id, "acme")[0].version == 1  # planned on 2.1, not yet run

    ev = rollout_evaluate(f"wan-t2v/{v2}", str(brief("golden-22", items=2)), str(EXAMPLES / "rollout-policy.yaml"),
                          ab=True, settings=settings)
    assert (ev["champion_version"], ev["challenger_version"]) == (1, v2) and "not Wan2.2" in ev["labels"]["challenger"]
    with session_scope(engine) as s:
        pairs = s.scalars(select(AbPair).where(AbPair.evaluation_id == ev["id"])).all()
        assert len(pairs) == 4
        for p in pairs:  # ten reviewers, each preferring the challenger's side of every pair
            side = "left" if p.left_arm == "challenger" else "right"
            for r in range(10):
                rollout.record_vote(s, p.id, side, f"reviewer-{r}")
        challenger_jobs = s.scalars(select(GenerationJob).where(GenerationJob.arm == "challenger")).all()
        assert len(challenger_jobs) == 4 and all(j.batch["experts"]["boundary_ratio"] == 0.875 for j in challenger_jobs)
    updated = publish_evaluation(engine, settings, ev["id"])
    assert updated["metrics"]["preference"]["win_rate"] == 1.0
    failing = [g["name"] for g in updated["gates"] if g["status"] != "pass"]
    with session_scope(engine) as s:
        if failing:  # QC of noise-like stand-ins decides some gates; a refusal says which, then an audited override
            with pytest.raises(rollout.RolloutError, match="refused"):
                rollout.promote(s, reg, "wan-t2v", "maria")
            move = rollout.promote(s, reg, "wan-t2v", "maria", override=True, reason=f"stand-in rehearsal: {failing}")
        else:
            move = rollout.promote(s, reg, "wan-t2v", "maria")
        assert (move.from_version, move.to_version) == (1, v2)
    assert reg.aliases("wan-t2v")["champion"] == v2
    # the campaign planned on 2.1 runs on 2.1 after the alias moved
    assert campaign(str(frozen), settings)["model"] == "wan-t2v/1"
    # canary: with the challenger alias on the 2.1 version now, half the jobs of a new 2.2 campaign go back to it
    reg.set_alias("wan-t2v", "challenger", 1)
    summary = campaign(str(brief("canary-22", items=3, extra="canary: 0.5")), settings)
    assert summary["model"] == f"wan-t2v/{v2}" and summary["canary"]["model"] == "wan-t2v/1"
    with session_scope(engine) as s:
        jobs = s.scalars(select(GenerationJob).where(GenerationJob.arm.in_(["main", "canary"]))).all()
        assert {j.arm for j in jobs} == {"main", "canary"} and all(j.status.value == "done" for j in jobs)
        for j in jobs:  # the 2.2 jobs record their experts; the 2.1 canary jobs have none
            version = s.get(ModelVersion, j.model_version_id).version
            assert version == (1 if j.arm == "canary" else v2)
            assert ("experts" in j.batch) == (version == v2) and ("experts" in j.params) == (version == v2)
    with session_scope(engine) as s:
        back = rollout.rollback(s, reg, "wan-t2v", "maria", "field says 2.1")
        assert (back.from_version, back.to_version) == (v2, 1)
    assert reg.aliases("wan-t2v")["champion"] == 1
