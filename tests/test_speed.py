"""Speed presets on the tiny stand-in (CPU, float32): plain, fast (lossless) and turbo (quality-trading), what
applies and what falls back, the shared prompt cache, a step-distillation LoRA, and a campaign whose jobs record
their preset, show it in lineage and regenerate with it.

Compilation is exercised with torch.compile's ``aot_eager`` backend (the same regional-compilation wiring, no C++
build: inductor takes about a minute per block shape on two cores); bench/speed.py times the real one.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy import select

from adapters import engine as e
from adapters import pipelines as m
from adapters import speed as speedup
from governance import speed as gs

P = dict(width=64, height=32, num_frames=5, steps=6, guidance=5.0, flow_shift=3.0)
TOLERANCE = 1e-5  # fast vs plain, float frames in [0, 1]: float32 rounding only (batching, compiled kernels)


def params(prompt: str, seed: int, **kw) -> e.GenerationParams:
    return e.GenerationParams(prompt, "blurry", seed=seed, **{**P, **kw})


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


@pytest.fixture
def eager_compile(monkeypatch):
    monkeypatch.setitem(speedup.COMPILE_KW, "backend", "aot_eager")


def test_choice_order_and_bad_names():
    assert gs.choose("turbo", "fast", "plain") == ("turbo", "cli")
    assert gs.choose(None, "fast", "plain") == ("fast", "brief")
    assert gs.choose(None, None, "fast") == ("fast", "deployment")
    with pytest.raises(gs.UnknownSpeed, match=r"^speed \(brief\): 'warp' is not a speed preset \(one of plain, fast, turbo\)"):
        gs.choose(None, "warp")
    assert gs.preset("plain").lossless and gs.preset("fast").lossless and not gs.preset("turbo").lossless
    assert gs.preset("turbo").cache_threshold == gs.DEFAULT_CACHE_THRESHOLD
    with pytest.raises(ValueError, match="steps: 0 must be an integer"):
        gs.distill_settings({"steps": 0}, "distill.json")


def test_plain_fast_turbo_on_the_stand_in(tiny_model, eager_compile):
    pipe = m.load_pipeline(tiny_model, "cpu")
    batch = [params("A red sneaker on a white pedestal", 11), params("桜並木の下を歩く", 12)]
    plain = e.run_batch(pipe, batch, speed=gs.preset("plain"))
    assert plain.details["speed"]["fallbacks"] == [] and plain.details["speed"]["preset"]["lossless"]

    fast = e.run_batch(pipe, batch, speed=gs.preset("fast"))
    rec = fast.details["speed"]
    assert rec["applied"]["compile"]["blocks"] == 2 and rec["applied"]["compile"]["compiled_now"]
    assert rec["applied"]["batched_cfg"] and rec["applied"]["prompt_cache"] and rec["applied"]["attention"] == "native"
    assert {f["feature"] for f in rec["fallbacks"]} == {"attention", "tf32"}  # CPU: said, never silent
    assert float(np.abs(fast.video - plain.video).max()) <= TOLERANCE and psnr(fast.video, plain.video) >= 40

    turbo = gs.preset("turbo", cache_threshold=0.3)  # the stand-in's random weights need a high threshold to skip
    t1, t2 = e.run_batch(pipe, batch, speed=turbo), e.run_batch(pipe, batch, speed=turbo)
    assert np.array_equal(t1.video, t2.video)  # deterministic per seed: each batch starts with a clean cache
    assert psnr(t1.video, plain.video) < 60  # the step cache skipped blocks: other (nearby) frames
    fb = {f["feature"]: f for f in t1.details["speed"]["fallbacks"]}
    assert fb["fp8"]["used"] == "float32" and "compute capability" in fb["fp8"]["reason"]
    assert t1.details["speed"]["applied"]["step_cache"] == {"kind": "first_block", "threshold": 0.3}

    again = e.run_batch(pipe, batch, speed=gs.preset("plain"))  # plain after fast/turbo: uncompiled, unhooked
    assert np.array_equal(again.video, plain.video)
    assert all(b._compiled_call_impl is None for b in pipe.transformer.blocks)  # noqa: SLF001


def test_one_encoding_per_prompt_shared_across_batches(tiny_model):
    pipe = m.load_pipeline(tiny_model, "cpu")
    fast = gs.preset("fast", compile=False)
    pipe.text_encoder.__dict__.pop("_wanflow_prompt_cache", None)
    first = e.run_batch(pipe, [params("a shared prompt", 1), params("a shared prompt", 2)], speed=fast)
    assert first.details["speed"]["prompt_cache_hits"] == 1  # two variants of one item: one encoding
    other_format = e.run_batch(pipe, [params("a shared prompt", 3, width=32, height=64)], speed=fast)
    assert other_format.details["speed"]["prompt_cache_hits"] == 1  # another format of the item, another batch
    alone = e.run_batch(pipe, [params("a shared prompt", 3, width=32, height=64)], speed=gs.preset("plain"))
    assert float(np.abs(other_format.video - alone.video).max()) <= TOLERANCE


def test_turbo_with_a_step_distillation_lora(tiny_model, tiny_lora, tmp_path):
    folder = tmp_path / "distill"
    folder.mkdir()
    (folder / "pytorch_lora_weights.safetensors").write_bytes(
        (tiny_lora / "pytorch_lora_weights.safetensors").read_bytes())  # a stand-in: any LoRA of the right shape
    (folder / "distill.json").write_text(json.dumps({"steps": 2, "guidance": 1.0}))
    pipe = m.load_pipeline(tiny_model, "cpu")
    steps: list[int] = []
    r = e.run_batch(pipe, [params("a red sneaker", 5)], on_step=lambda i, n: steps.append(n),
                    speed=gs.preset("turbo", compile=False, distill_lora=str(folder)))
    rec = r.details["speed"]
    assert steps == [2, 2] and rec["steps"] == 2 and rec["guidance"] == 1.0
    assert rec["distill"]["sha256"] == rec["applied"]["distill_lora"]["sha256"] and len(rec["distill"]["sha256"]) == 64
    assert {f["feature"] for f in rec["fallbacks"]} >= {"batched_cfg", "fp8"}  # guidance 1: nothing to batch
    assert not pipe.get_list_adapters()  # unloaded after the batch


TURBO_BRIEF = """campaign: speedy
brand: acme
model: wan-t2v@champion
speed: turbo
defaults: {num_frames: 5, width: 32, height: 32, variants: 2, formats: ["1:1"], steps: 4, seed: 9}
items:
  - id: one
    prompt: "A red sneaker on a white floor"
"""


def test_a_campaign_records_its_preset_shows_it_in_lineage_and_regenerates_with_it(tmp_path):
    from test_generation import brief_dir, wanflow

    from catalog.db import open_catalog, session_scope
    from catalog.lineage import lineage
    from catalog.models import GenerationJob
    from core.settings import Settings
    from flows.campaign import campaign

    settings = Settings(home=tmp_path / "home", catalog_url=f"sqlite:///{tmp_path / 'home' / 'catalog.db'}",
                        speed_compile=False, speed_cache_threshold=0.3)
    summary = campaign(str(brief_dir(tmp_path / "b", TURBO_BRIEF)), settings)
    assert (summary["clips_generated"], summary["jobs_failed"]) == (2, 0)
    engine = open_catalog(settings.catalog_db_url)
    with session_scope(engine) as s:
        jobs = s.scalars(select(GenerationJob).order_by(GenerationJob.id)).all()
        assert [j.speed for j in jobs] == ["turbo", "turbo"]
        rec = jobs[0].batch["speed"]
        assert rec["chosen_by"] == "brief" and rec["preset"]["cache_threshold"] == 0.3
        assert "fp8" in {f["feature"] for f in rec["fallbacks"]}
        info = lineage(s, f"job:{jobs[0].id}")["speed"]
    assert info["preset"] == "turbo" and info["lossless"] is False and info["chosen_by"] == "brief"
    r = wanflow("regenerate", f"job:{jobs[0].id}", "--json", settings=settings)  # deployment default: plain
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["matches"] and report["speed"] == "turbo"
