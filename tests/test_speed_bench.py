"""bench/gpu.sh's logic on CPU (``--device cpu``: the same two rows at stand-in size, no GPU): the package
check, both rows, one JSON row per preset with the fields docs/performance.md reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.fixture(scope="session", autouse=True)
def prefect_api():
    """No Prefect here (the script runs in a subprocess without it)."""
    yield


def test_gpu_script_runs_both_rows_on_cpu_and_writes_one_row_per_preset(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": sys.executable, "TMPDIR": str(tmp_path)}
    r = subprocess.run(["bash", str(ROOT / "bench" / "gpu.sh"), "--device", "cpu", "--out", str(out),
                        "--wheels", str(tmp_path / "no-wheels"), "--budget-s", "500"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "missing Python packages:" in (out / "setup.txt").read_text()
    rows = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
    assert set(rows) == {f"cpu-row{i}-{p}" for i in (1, 2) for p in ("plain", "fast", "turbo")}
    for name, row in rows.items():
        assert row["device"] == "cpu" and row["versions"]["diffusers"] and row["shape"]["frames"] == 5
        assert set(row["seconds"]) >= {"text_encode_s", "denoise_s", "decode_s", "compile_s", "clip_s"}
        assert row["peak_memory_bytes"] > 0 and row["flops"]["transformer_per_clip"] > 0
        assert row["matmul_ceiling_tflops"] > 0 and row["mfu"] is not None
        assert row["speed"]["preset"]["name"] == row["preset"]
    assert rows["cpu-row1-plain"]["vs_plain"]["max_abs_diff"] == 0.0
    assert rows["cpu-row1-fast"]["vs_plain"]["max_abs_diff"] <= 1e-5  # lossless within float32 rounding
    assert rows["cpu-row1-turbo"]["vs_plain"]["psnr_db"] is not None  # quality-trading: reported
    fb = {f["feature"] for f in rows["cpu-row1-turbo"]["speed"]["fallbacks"]}
    assert {"fp8", "tf32", "attention"} <= fb  # CPU: each said, never silent
    assert rows["cpu-row2-fast"]["extrapolated"]["to_steps"] == 50
