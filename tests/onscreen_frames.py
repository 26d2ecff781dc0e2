"""Labelled frames for the on-screen text checks: text rendered with fonts the install has (matplotlib's DejaVu
Sans for Latin; IPAexGothic from the japanize-matplotlib test dependency for Japanese) in several sizes,
colours, angles and positions over a textured scene, and clean frames with no text. Nothing is downloaded.

``CASES`` lists what each text is (which finding it must raise, if any); :func:`frame` draws one case and
returns the picture and where the text is. Used by the tests (tests/test_qc_detectors.py) and by the
calibration table (bench/qc_calibration.py, docs/qc-calibration.md).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from qc_clips import scene

W, H = 832, 480
BRAND = """name: acme
display_name: ACME Footwear
blocked_terms: ["nike", "暴力", "ギャンブル"]
competitors: ["adidas", "アディダス", "reebok", "new balance"]
protected_names: ["ACME"]
"""


@dataclass(frozen=True)
class Case:
    text: str  # "" for a clean frame
    finding: str | None  # the check it must fail, None: no on-screen finding
    script: str  # latin | kanji | kana | none | pseudo


CASES: tuple[Case, ...] = (
    # blocked terms and competitors (screen_text_policy)
    Case("NIKE", "screen_text_policy", "latin"), Case("Just buy Nike", "screen_text_policy", "latin"),
    Case("adidas", "screen_text_policy", "latin"), Case("REEBOK CLASSIC", "screen_text_policy", "latin"),
    Case("New Balance", "screen_text_policy", "latin"), Case("暴力", "screen_text_policy", "kanji"),
    Case("ギャンブル", "screen_text_policy", "kana"), Case("アディダス", "screen_text_policy", "kana"),
    # stock-photo watermarks
    Case("shutterstock", "watermark", "latin"), Case("Getty Images", "watermark", "latin"),
    Case("iStock", "watermark", "latin"), Case("alamy", "watermark", "latin"),
    Case("Adobe Stock", "watermark", "latin"),
    # the brand's name misspelt
    Case("ACNE", "brand_misspelling", "latin"), Case("AKME", "brand_misspelling", "latin"),
    Case("ACMEE", "brand_misspelling", "latin"), Case("ACME SPORT", None, "latin"),
    # neutral text: no finding
    Case("ACME", None, "latin"), Case("Run further", None, "latin"), Case("Summer sale 30%", None, "latin"),
    Case("Free shipping", None, "latin"), Case("新作", None, "kanji"), Case("走ろう", None, "kana"),
    # letter-like shapes no script has (pseudo_text), and clean frames
    Case("#pseudo", "pseudo_text", "pseudo"), Case("", None, "none"),
)
SIZES = (20, 32, 48, 72)  # pixels
COLOURS = ((255, 255, 255), (15, 15, 15), (200, 16, 46), (250, 220, 40))
ANGLES = (0, 8, -15)


def font_path(script: str) -> Path | None:
    """A font file that draws ``script``: DejaVu Sans (matplotlib) for Latin, IPAexGothic for Japanese,
    or None if the install has none."""
    if script in ("kanji", "kana"):
        spec = importlib.util.find_spec("japanize_matplotlib")
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(spec.submodule_search_locations[0]) / "fonts" / "ipaexg.ttf"
        return path if path.is_file() else None
    from matplotlib import font_manager

    return Path(font_manager.findfont("DejaVu Sans", fallback_to_default=False))


def _pseudo(size: int, colour: tuple[int, int, int], rng: np.random.Generator) -> Image.Image:
    """Letter-like glyphs no script has: each cell a few random strokes and arcs, in a line of 5-9 cells."""
    n = int(rng.integers(5, 10))
    cell = max(8, int(size * 0.7))
    img = Image.new("RGBA", (n * cell + cell, int(size * 1.3)), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    width = max(2, size // 9)
    for i in range(n):
        x0, y0 = i * cell + cell // 4, int(size * 0.15)
        for _ in range(int(rng.integers(2, 4))):
            pts = [(x0 + float(rng.uniform(0, cell * 0.8)), y0 + float(rng.uniform(0, size))) for _ in range(2)]
            if rng.random() < 0.5:
                d.line(pts, fill=(*colour, 255), width=width)
            else:
                box = [min(p[0] for p in pts), min(p[1] for p in pts), max(p[0] for p in pts) + 3,
                       max(p[1] for p in pts) + 3]
                d.arc(box, float(rng.uniform(0, 180)), float(rng.uniform(180, 360)), fill=(*colour, 255), width=width)
    return img


def frame(case: Case, size: int = 48, colour: tuple[int, int, int] = (255, 255, 255), angle: float = 0,
          seed: int = 0, width: int = W, height: int = H) -> tuple[np.ndarray, list[float] | None]:
    """The case drawn over a scene: (RGB frame, text box ``[x, y, w, h]`` in fractions, None for a clean
    frame). The position is random (``seed``) but the text stays inside the frame."""
    rng = np.random.default_rng(seed)
    base = Image.fromarray(scene(float(rng.uniform(0, 40)), width, height, variant=int(rng.integers(0, 2))))
    if not case.text:
        return np.asarray(base), None
    if case.script == "pseudo":
        layer = _pseudo(size, colour, rng)
    else:
        path = font_path(case.script)
        if path is None:
            raise LookupError(f"no font for {case.script} text")
        font = ImageFont.truetype(str(path), size)
        left, top, right, bottom = font.getbbox(case.text)
        layer = Image.new("RGBA", (right - left + 8, bottom - top + 8), (0, 0, 0, 0))
        ImageDraw.Draw(layer).text((4 - left, 4 - top), case.text, font=font, fill=(*colour, 255))
    if angle:
        layer = layer.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC)
    lw, lh = min(layer.width, width - 8), min(layer.height, height - 8)
    x = int(rng.integers(4, max(5, width - lw - 4)))
    y = int(rng.integers(4, max(5, height - lh - 4)))
    base.paste(layer, (x, y), layer)
    return np.asarray(base), [x / width, y / height, layer.width / width, layer.height / height]


def overlaps(a: list[float], b: list[float]) -> bool:
    """Whether two ``[x, y, w, h]`` boxes intersect."""
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]
