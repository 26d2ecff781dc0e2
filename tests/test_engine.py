"""The generation engine on the real tiny Wan pipelines (CPU, float32): batches, I2V, LoRA, prompts, the cache."""

from __future__ import annotations

import numpy as np
import pytest

from adapters import engine as e
from adapters import pipelines as m
from adapters.memory import BudgetCard, Policy, footprint_from_folder

P = dict(width=64, height=32, num_frames=5, steps=2, guidance=5.0, flow_shift=3.0)
PROMPTS = [("A red sneaker on a white pedestal", "blurry", 11),
           ("桜並木の下を赤いスニーカーで歩く若い女性", "", 12),  # Japanese
           ("一只红色运动鞋在白色台座上缓慢旋转", "模糊", 13)]  # Chinese


def params(prompt: str, negative: str, seed: int, **kw) -> e.GenerationParams:
    return e.GenerationParams(prompt, negative, seed=seed, **{**P, **kw})


def test_a_batch_equals_one_by_one(tiny_model):
    pipe = m.load_pipeline(tiny_model, "cpu")
    batch = e.run_batch(pipe, [params(*p) for p in PROMPTS])
    assert batch.video.shape == (3, 5, 32, 64, 3) and batch.details["batch_size"] == 3
    for i, p in enumerate(PROMPTS):
        alone = e.run_batch(pipe, [params(*p)])
        np.testing.assert_allclose(batch.video[i], alone.video[0], rtol=0, atol=1e-5)
    assert not np.allclose(batch.video[0], batch.video[1], atol=1e-2)  # different seeds, different clips
    wider = [e.GenerationParams(f"clip {i}", "blurry", 128, 64, 9, 3, 5.0, seed=100 + i) for i in range(4)]
    batch = e.run_batch(pipe, wider)
    for i, p in enumerate(wider):
        np.testing.assert_allclose(batch.video[i], e.run_batch(pipe, [p]).video[0], rtol=0, atol=1e-5)


def test_staged_generation_equals_a_plain_pipeline_call(tiny_model):
    """Timing the stages separately changes nothing: same frames as WanPipeline.__call__ with the same inputs."""
    pipe = m.load_pipeline(tiny_model, "cpu")
    p = params(*PROMPTS[0])
    staged = e.run_batch(pipe, [p])
    assert np.array_equal(staged.video[0], e.reference_call(pipe, p))
    assert set(staged.timings) == {"text_encode_s", "denoise_s", "decode_s", "generate_s"}
    assert all(v > 0 for v in staged.timings.values())
    assert staged.peak_memory_kind.startswith("rss_peak") and staged.peak_memory_bytes > 50 * 2**20


def test_batch_refuses_mixed_shapes(tiny_model):
    pipe = m.load_pipeline(tiny_model, "cpu")
    with pytest.raises(ValueError, match="^width: a batch must share it"):
        e.run_batch(pipe, [params(*PROMPTS[0]), params(*PROMPTS[1], width=96)])


@pytest.mark.parametrize("text", [PROMPTS[1][0], PROMPTS[2][0], "Ｔシャツ姿の男性が「ACME」と書かれた看板の前を走る"])
def test_multilingual_prompts_reach_the_text_encoder_unchanged(tiny_model, text):
    from diffusers.pipelines.wan.pipeline_wan import prompt_clean

    pipe = m.load_pipeline(tiny_model, "cpu")
    cleaned = prompt_clean(text)  # what WanPipeline does to every prompt before tokenizing
    assert cleaned == text.replace("Ｔ", "T")  # ftfy folds full-width Latin only; CJK text is untouched
    ids = pipe.tokenizer(cleaned).input_ids
    assert pipe.tokenizer.unk_token_id not in ids
    assert pipe.tokenizer.decode(ids, skip_special_tokens=True) == cleaned


def test_flow_shift_is_set_on_the_scheduler(tiny_model):
    pipe = m.load_pipeline(tiny_model, "cpu")
    e.set_flow_shift(pipe, 5.0)
    assert pipe.scheduler.config.shift == 5.0
    e.set_flow_shift(pipe, 3.0)
    assert pipe.scheduler.config.shift == 3.0


def test_image_to_video_batch_and_image_preparation(tiny_i2v_model, still_image):
    pipe = m.load_pipeline(tiny_i2v_model, "cpu")
    assert type(pipe).__name__ == "WanImageToVideoPipeline" and pipe.transformer.config.in_channels == 36
    img = e.prepare_image(still_image, 64, 32)
    assert img.size == (64, 32) and img.mode == "RGB"
    i2v = [params(*PROMPTS[0][:2], seed=s, image=str(still_image)) for s in (21, 22)]
    batch = e.run_batch(pipe, i2v)
    for i, p in enumerate(i2v):
        np.testing.assert_allclose(batch.video[i], e.run_batch(pipe, [p]).video[0], rtol=0, atol=1e-5)
    assert np.array_equal(e.run_batch(pipe, [i2v[0]]).video[0], e.reference_call(pipe, i2v[0]))
    with pytest.raises(ValueError, match="^image: an image-to-video pipeline needs"):
        e.run_batch(pipe, [params(*PROMPTS[0])])


def test_brand_lora_is_loaded_then_unloaded(tiny_model, tiny_lora):
    pipe = m.load_pipeline(tiny_model, "cpu")
    p = params(*PROMPTS[0])
    plain = e.run_batch(pipe, [p]).video[0]
    full = e.run_batch(pipe, [p], lora=e.Lora(str(tiny_lora), 1.0)).video[0]
    half = e.run_batch(pipe, [p], lora=e.Lora(str(tiny_lora / "pytorch_lora_weights.safetensors"), 0.5)).video[0]
    assert np.abs(full - plain).max() > 1e-2 and np.abs(full - half).max() > 1e-3
    assert np.array_equal(e.run_batch(pipe, [p]).video[0], plain)  # unloaded: the cached pipe is clean again
    assert not any("lora" in n for n, _ in pipe.transformer.named_parameters())


def test_one_load_for_many_jobs_and_eviction_only_when_memory_is_short(tiny_model, tiny_i2v_model):
    m.evict_all()
    before = m.load_count
    t2v = m.load_pipeline(tiny_model, "cpu")
    for seed in range(3):
        m.generate_frames(m.load_pipeline(tiny_model, "cpu"), params("a shoe", "", seed))
    assert m.load_count - before == 1
    # Plenty of memory: a second model is loaded beside the first, which stays cached.
    roomy = BudgetCard("cpu", budget=2**30)
    m.load_pipeline(tiny_i2v_model, "cpu", card=roomy)
    assert m.load_pipeline(tiny_model, "cpu", card=roomy) is t2v and m.load_count - before == 2
    # A card that holds only one of them: the least recently used one is evicted, and reloaded when needed.
    m.evict_all()
    one = footprint_from_folder(tiny_model, "cpu").weights()
    tight = BudgetCard("cpu", budget=int(one * 1.5))
    first = m.load_pipeline(tiny_model, "cpu", card=tight)
    m.load_pipeline(tiny_i2v_model, "cpu", card=tight)
    assert not m.cached(tiny_model, "cpu") and m.evictions[-1] == str(tiny_model.resolve())
    assert m.load_pipeline(tiny_model, "cpu", card=tight) is not first
    assert m.load_count - before == 5 and not m.cached(tiny_i2v_model, "cpu")


def test_every_memory_policy_runs_on_cpu(tiny_model):
    """The policies are applied for real with diffusers' hooks (CPU onload device, no streams)."""
    p = params(*PROMPTS[0])
    m.evict_all()
    ref = e.run_batch(m.load_pipeline(tiny_model, "cpu", Policy.none), [p]).video[0]
    for policy in (Policy.model_cpu_offload, Policy.group_offload_block, Policy.group_offload_leaf):
        m.evict_all()
        pipe = m.load_pipeline(tiny_model, "cpu", policy)
        assert m.policy_of(pipe) == policy and pipe.vae.use_tiling
        np.testing.assert_allclose(e.run_batch(pipe, [p]).video[0], ref, rtol=0, atol=1e-4)
    m.evict_all()
    tiled = e.run_batch(m.load_pipeline(tiny_model, "cpu", Policy.vae_tiling), [p])
    assert tiled.video.shape == (1, 5, 32, 64, 3)
    m.evict_all()
