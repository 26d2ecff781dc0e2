"""Calibration of the on-screen text checks: detection rate and false-positive rate per finding, and what the
bundled recogniser reads per script, on labelled frames rendered here (tests/onscreen_frames.py).

    python bench/qc_calibration.py [--variants 8] [--out bench/results/qc-calibration.json]

Each case (a text and the finding it must raise, or none) is drawn ``--variants`` times over a textured
832x480 scene, cycling sizes (20, 32, 48, 72 px), colours (white, black, red, yellow), angles (0, 8, -15
degrees) and a random position; each frame is encoded as a one-frame H.264 clip like the pipeline's and run
through the QC stage's checks (:func:`wan_tasks.quality.run_checks`) under a test brand (blocked terms
"nike", "暴力", "ギャンブル"; competitors "adidas", "アディダス", "reebok", "new balance"; protected name
"ACME"). A detection counts only if the finding's box overlaps the drawn text. A false positive is a check
failing on a frame whose case is not one of its own. Prints the Markdown tables of docs/qc-calibration.md
and writes a JSON row.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from collections import defaultdict
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

CHECKS = ("screen_text_policy", "watermark", "brand_misspelling", "pseudo_text")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", type=int, default=8)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "qc-calibration.json")
    args = ap.parse_args()

    from onscreen_frames import ANGLES, BRAND, CASES, COLOURS, SIZES, frame, overlaps

    from adapters import media
    from adapters.qc_models import Models
    from governance.brand import load_brand
    from governance.qc import Expected
    from wan_tasks.quality import run_checks

    work = Path(tempfile.mkdtemp(prefix="wanflow-qc-calibration-"))
    (work / "acme.yaml").write_text(BRAND, "utf-8")
    brand, models = load_brand("acme", work), Models()
    # per check: positives seen / detected; negatives seen / flagged
    pos, hit, neg, fp = (defaultdict(int) for _ in range(4))
    per_script: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # script -> [frames, read exactly]
    rows = []
    for ci, case in enumerate(CASES):
        for v in range(args.variants):
            kw = dict(size=SIZES[v % len(SIZES)], colour=COLOURS[(v + ci) % len(COLOURS)],
                      angle=ANGLES[v % len(ANGLES)], seed=1000 * ci + v)
            img, box = frame(case, **kw)
            path = media.write_clip(img[None], 16, work / f"c{ci}-{v}.mp4").path
            by = {r.check: r for r in run_checks(path, Expected(), brand, models=models, only=CHECKS)}
            flagged = {c: r.passed is False for c, r in by.items()}
            for c in CHECKS:
                if case.finding == c:
                    pos[c, case.script] += 1
                    found = flagged[c] and any(overlaps(h["box"], box) for h in by[c].details["boxes"])
                    hit[c, case.script] += int(found)
                else:
                    neg[c] += 1
                    fp[c] += int(flagged[c])
            if case.script in ("latin", "kanji", "kana") and by["screen_text_policy"].passed is not None:
                per_script[case.script][0] += 1
                read = _read_texts(models, img)
                per_script[case.script][1] += int(case.text.replace(" ", "") in "".join(read).replace(" ", ""))
            rows.append({"case": case.text, "finding": case.finding, "script": case.script, **kw,
                         "flagged": [c for c in CHECKS if flagged[c]]})

    print(f"{len(rows)} frames ({len(CASES)} cases x {args.variants} variants), 832x480, "
          f"rapidocr-onnxruntime {version('rapidocr-onnxruntime')}, onnxruntime {version('onnxruntime')}\n")
    print("| check | positives (script) | detected | detection rate | negatives | false positives | FP rate |")
    print("|---|---|---|---|---|---|---|")
    table = {}
    for c in CHECKS:
        scripts = sorted({s for (k, s) in pos if k == c})
        for s in scripts:
            p, h = pos[c, s], hit[c, s]
            print(f"| {c} | {p} ({s}) | {h} | {h / p:.0%} | | | |")
            table[f"{c}/{s}"] = {"positives": p, "detected": h}
        print(f"| {c} | | | | {neg[c]} | {fp[c]} | {fp[c] / max(1, neg[c]):.1%} |")
        table[c] = {"negatives": neg[c], "false_positives": fp[c]}
    print("\n| script | frames | read exactly (recogniser, spaces ignored) |\n|---|---|---|")
    for s, (n, ok) in sorted(per_script.items()):
        print(f"| {s} | {n} | {ok} ({ok / max(1, n):.0%}) |")
    row = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.machine(),
           "python": platform.python_version(), "rapidocr": version("rapidocr-onnxruntime"),
           "onnxruntime": version("onnxruntime"), "variants": args.variants, "table": table,
           "scripts": {s: {"frames": n, "read_exactly": ok} for s, (n, ok) in per_script.items()}, "frames": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(dump(row), "utf-8")
    print(f"\nwrote {args.out}")


def dump(row: dict) -> str:
    """The JSON row, one line per frame."""
    frames = row.pop("frames")
    head = json.dumps(row, indent=2, ensure_ascii=False)[:-2]
    lines = ",\n".join("    " + json.dumps(f, ensure_ascii=False) for f in frames)
    return f'{head},\n  "frames": [\n{lines}\n  ]\n}}\n'


def _read_texts(models, img) -> list[str]:
    """What the recogniser reads on the frame as drawn (before encoding), every region."""
    return [r["text"] for r in models.get("ocr").read([img])[0]]


if __name__ == "__main__":
    main()
