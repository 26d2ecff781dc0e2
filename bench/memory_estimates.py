"""The memory model's estimates for every real Wan variant at its default sizes, under each memory policy.

Builds each variant's real architecture on the ``meta`` device (nothing allocated, no download: the configs in
governance/variants.py), reads its footprint (bf16 transformers and text encoder, float32 VAE and image encoder,
as on CUDA) and prints ``adapters.memory.estimate_peak`` for batch 1, as a markdown table, beside the Wan
authors' published peak where there is one. Estimates, not measurements: the memory model's activation terms
are approximations, and the published figures were taken with the Wan repository's own offloading.

    python bench/memory_estimates.py            # markdown table on stdout, JSON under bench/results/
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    from adapters import memory as mm
    from adapters.random_weights import random_components
    from governance.variants import PRESETS, REAL_VARIANTS

    rows = []
    for name in REAL_VARIANTS:
        p = PRESETS[name]
        if p.transformer is None:  # VACE: no architecture recorded for random-weights mode yet
            continue
        fp = mm.footprint_from_modules(random_components(name, device="meta"), "cuda")
        sizes = sorted({(w, h) if w >= h else (h, w) for w, h in p.sizes}, key=lambda s: s[0] * s[1])
        for i, (w, h) in enumerate(sizes):
            shape = mm.Shape(w, h, p.num_frames, 1)
            rows.append({"variant": name, "size": f"{w}x{h}x{p.num_frames}",
                         "weights_gib": round(fp.weights() / mm.GIB, 1),
                         "experts": 2 if "transformer_2" in fp.parts else 1,
                         "estimate_gib": {pol.value: round(mm.estimate_peak(fp, shape, pol, "cuda") / mm.GIB, 1)
                                          for pol in mm.LADDER},
                         # the published figure is for the variant's smallest size (see governance/variants.py)
                         "published_gb": p.published_min_memory_gb if i == 0 else None})
    header = "| variant | size × frames | experts | weights (GiB, bf16) | " + " | ".join(
        f"`{pol.value}`" for pol in mm.LADDER) + " | published peak (GB) |"
    print(header)
    print("|" + "---|" * (5 + len(mm.LADDER)))
    for r in rows:
        print(f"| {r['variant']} | {r['size']} | {r['experts']} | {r['weights_gib']} | "
              + " | ".join(str(v) for v in r["estimate_gib"].values()) + f" | {r['published_gb'] or '—'} |")
    out = ROOT / "bench" / "results" / "memory-estimates.json"
    out.write_text(json.dumps({"bench": "memory_estimates", "when": datetime.now(timezone.utc).isoformat(
        timespec="seconds"), "device_model": "cuda (bf16 transformers and text encoder)", "batch": 1, "rows": rows,
        "versions": {k: version(k) for k in ("torch", "diffusers", "transformers")}}, indent=2) + "\n")


if __name__ == "__main__":
    main()
