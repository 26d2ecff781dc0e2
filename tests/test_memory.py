"""Memory policies: the choice from free memory (real 1.3B/14B sizes from meta-device models), and the
out-of-memory fallback order, simulated on CPU by a card with a memory budget (the same torch error CUDA raises).
"""

from __future__ import annotations

import pytest
import torch

from adapters import engine as e
from adapters import memory as mm
from adapters import pipelines as m

GB = 1e9


@pytest.fixture(scope="module")
def real_footprints():
    from adapters.random_weights import random_components

    return {v: mm.footprint_from_modules(random_components(v, device="meta"), "cuda")
            for v in ("wan2.1-t2v-1.3b", "wan2.1-t2v-14b", "wan2.1-i2v-14b-720p")}


def test_weights_follow_the_dtype_policy(real_footprints):
    fp = real_footprints["wan2.1-t2v-1.3b"]
    assert fp.parts["transformer"].bytes_per_param == 2 and fp.parts["text_encoder"].bytes_per_param == 2  # bf16
    assert fp.parts["vae"].bytes_per_param == 4  # the VAE stays float32
    assert 2.8 * GB < fp.weights(["transformer"]) < 2.9 * GB and 11.3 * GB < fp.weights(["text_encoder"]) < 11.5 * GB
    assert mm.dtype_bytes("transformer", "cpu") == 4


def test_1_3b_fits_the_8_19_gb_the_wan_authors_report(real_footprints):
    fp = real_footprints["wan2.1-t2v-1.3b"]
    shape = mm.Shape(832, 480, 81)
    policy, batch = mm.choose(fp, shape, int(8.19 * GB), "cuda")
    assert policy == mm.Policy.group_offload_block and batch == 1
    assert mm.estimate_peak(fp, shape, policy, "cuda") <= 8.19 * GB * mm.USABLE
    assert mm.estimate_peak(fp, shape, mm.Policy.none, "cuda") > 8.19 * GB  # it would not fit resident
    assert mm.estimate_peak(fp, shape, mm.Policy.model_cpu_offload, "cuda") > 8.19 * GB  # umT5-XXL alone is 11 GB


def test_the_ladder_and_the_choice_by_card(real_footprints):
    p720 = mm.Shape(1280, 720, 81)
    for fp in real_footprints.values():
        peaks = [mm.estimate_peak(fp, p720, p, "cuda") for p in mm.LADDER[:4]]
        assert peaks == sorted(peaks, reverse=True) and peaks[0] > peaks[3]
    t2v_14b = real_footprints["wan2.1-t2v-14b"]
    assert mm.choose(real_footprints["wan2.1-t2v-1.3b"], mm.Shape(832, 480, 81), int(80 * GB), "cuda", 4) == (
        mm.Policy.none, 4)  # an 80 GB card: everything resident, and room to batch
    assert mm.choose(t2v_14b, p720, int(80 * GB), "cuda")[0] == mm.Policy.none
    assert mm.choose(t2v_14b, p720, int(40 * GB), "cuda")[0] == mm.Policy.model_cpu_offload
    assert mm.choose(t2v_14b, p720, int(24 * GB), "cuda")[0] == mm.Policy.group_offload_block
    assert mm.choose(t2v_14b, p720, int(24 * GB), "cuda", start=mm.Policy.none) == (mm.Policy.none, 1)


def test_out_of_memory_falls_back_down_the_ladder_in_order(tiny_model):
    """The card has less free memory than when the policy was chosen: each rung that does not fit raises
    torch.OutOfMemoryError, the next rung is tried, and the one that ran is returned with every attempt."""
    fp = mm.footprint_from_folder(tiny_model, "cpu")
    shape = mm.Shape(64, 32, 5, 1)
    fits = mm.estimate_peak(fp, shape, mm.Policy.model_cpu_offload, "cpu")
    card = mm.BudgetCard("cpu", budget=fits + 1)
    ran: list[mm.Policy] = []
    p = e.GenerationParams("a red sneaker", "", 64, 32, 5, 2, 5.0, seed=1)

    def run(policy: mm.Policy):
        ran.append(policy)
        return e.run_batch(m.load_pipeline(tiny_model, "cpu", policy, card), [p])

    m.evict_all()
    result, used, attempts = mm.run_with_fallback(mm.Policy.none, run, card,
                                                  need=lambda pol: mm.estimate_peak(fp, shape, pol, "cpu"))
    assert used == mm.Policy.model_cpu_offload and ran == [mm.Policy.model_cpu_offload]
    assert [(a["policy"], a["outcome"]) for a in attempts] == [
        ("none", "out of memory"), ("vae_tiling", "out of memory"), ("model_cpu_offload", "ok")]
    assert "simulated card" in attempts[0]["detail"] and result.frames[0].shape == (5, 32, 64, 3)
    assert m.policy_of(m.load_pipeline(tiny_model, "cpu", used, card)) == mm.Policy.model_cpu_offload
    m.evict_all()


def test_a_real_out_of_memory_error_from_the_run_also_falls_back():
    calls = []

    def run(policy: mm.Policy) -> str:
        calls.append(policy)
        if policy in (mm.Policy.vae_tiling, mm.Policy.model_cpu_offload):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return policy.value

    result, used, attempts = mm.run_with_fallback(mm.Policy.vae_tiling, run, mm.Card("cpu"), need=lambda p: 0)
    assert (result, calls) == ("group_offload_block", [mm.Policy.vae_tiling, mm.Policy.model_cpu_offload,
                                                       mm.Policy.group_offload_block])
    with pytest.raises(mm.OutOfMemoryOnEveryPolicy) as err:
        mm.run_with_fallback(mm.Policy.none, run, mm.BudgetCard("cpu", budget=1), need=lambda p: 10)
    assert [a["policy"] for a in err.value.attempts] == [p.value for p in mm.LADDER]


def test_batch_size_comes_from_the_budget(tiny_model):
    fp = mm.footprint_from_folder(tiny_model, "cpu")
    one = mm.estimate_peak(fp, mm.Shape(128, 64, 9, 1), mm.Policy.none, "cpu")
    three = mm.estimate_peak(fp, mm.Shape(128, 64, 9, 3), mm.Policy.none, "cpu")
    assert mm.choose(fp, mm.Shape(128, 64, 9), int((three + 1) / mm.USABLE), "cpu", max_batch=8) == (mm.Policy.none, 3)
    assert mm.choose(fp, mm.Shape(128, 64, 9), int((one + 1) / mm.USABLE), "cpu", max_batch=8) == (mm.Policy.none, 1)
