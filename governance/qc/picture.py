"""Technical checks on the picture: flashing (WCAG 2.3.1), flicker, exposure, blur, temporal instability
and hard cuts, each spec right above its function (numpy on the frames of the decoded
:class:`~governance.qc.clip.Clip`). They look only at frames that are not black (see
:mod:`governance.qc.technical`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core import heavy
from governance.qc.clip import FLAT_STD, Clip, rounded, runs, span
from governance.qc.context import CheckContext
from governance.qc.registry import BLOCK, REVIEW, CheckResult, CheckSpec, Param, not_run, register

SSIM_C3 = (0.03 * 255) ** 2 / 2
FLASH_GRID = 12  # relative luminance on a 12x12 grid; flashes are looked for in 2x2 windows of it (1/36 of the frame)
RED_CHANGE = 20.0  # WCAG 2.2 red flash: a transition is a change of 20 or more in (R - G - B) x 320

# sRGB decoding of luma 0..255 to relative luminance 0..1 (the WCAG 2 formula), as a lookup table
_V = np.arange(256) / 255.0
REL_LUMINANCE = np.where(_V <= 0.04045, _V / 12.92, ((_V + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _transitions(lum: np.ndarray, min_change: float, max_dark: float) -> np.ndarray:
    """(T, C) bool: a WCAG transition completes at frame t in cell c — the luminance moved by
    ``min_change`` or more from the last extreme, against the previous direction, with the darker side
    below ``max_dark``."""
    t_n, c_n = lum.shape
    out = np.zeros((t_n, c_n), dtype=bool)
    hi = lum[0].copy()
    lo = lum[0].copy()
    direction = np.zeros(c_n, dtype=np.int8)  # 0 unknown, +1 rising, -1 falling
    for t in range(1, t_n):
        x = lum[t]
        up = (x - lo >= min_change) & (np.minimum(x, lo) < max_dark) & (direction <= 0)
        down = (hi - x >= min_change) & (np.minimum(x, hi) < max_dark) & (direction >= 0)
        both = up & down  # cannot happen with min_change > 0; keep the larger move
        down &= ~both
        out[t] = up | down
        direction = np.where(up, 1, np.where(down, -1, direction)).astype(np.int8)
        hi = np.where(up | down, x, np.maximum(hi, x))
        lo = np.where(up | down, x, np.minimum(lo, x))
    return out


def _windows(cells: np.ndarray) -> np.ndarray:
    """(T, g, g, ...) cell means → (T, (g-1)², ...) means of the overlapping 2x2 windows of cells."""
    win = (cells[:, :-1, :-1] + cells[:, 1:, :-1] + cells[:, :-1, 1:] + cells[:, 1:, 1:]) / 4
    return win.reshape(win.shape[0], -1, *win.shape[3:])


def _grid(frames: np.ndarray) -> np.ndarray:
    """(T, h, w, ...) → (T, FLASH_GRID, FLASH_GRID, ...) block means."""
    t, h, w = frames.shape[:3]
    g = FLASH_GRID
    hh, ww = h // g, w // g
    return frames[:, :hh * g, :ww * g].reshape(t, g, hh, g, ww, *frames.shape[3:]).mean(axis=(2, 4),
                                                                                      dtype=np.float32)


def _flashes_per_second(clip: Clip, trans: np.ndarray) -> np.ndarray:
    """(windows of one second, cells): flashes (pairs of opposing transitions) in each second-long window."""
    t = len(trans)
    second = max(1, round(clip.fps)) if clip.fps else t
    csum = np.concatenate([np.zeros((1, trans.shape[1]), int), np.cumsum(trans, axis=0)])
    starts = np.arange(max(1, t - second + 1))
    return (csum[np.minimum(starts + second, t)] - csum[starts]) / 2.0


def red_level(rgb_linear: np.ndarray) -> np.ndarray:
    """WCAG 2.2 red flash: (R - G - B) x 320, floored at 0, where the colour is a saturated red
    (R / (R + G + B) >= 0.8, linear sRGB 0..1); 0 elsewhere. A transition is a change of 20 or more."""
    r, g, b = rgb_linear[..., 0], rgb_linear[..., 1], rgb_linear[..., 2]
    saturated = r >= 0.8 * (r + g + b + 1e-6)
    return np.where(saturated, np.maximum(r - g - b, 0) * 320, 0).astype(np.float32)


@register(CheckSpec("flashing", "technical",
                    "flashing: WCAG 2.3.1 three general or red flashes in any one second (hard limit)", {
    "max_flashes": Param(3, 0, 3), "min_change": Param(0.1, 0, 1, "relative-luminance change of a transition"),
    "max_dark": Param(0.8, 0, 1, "the darker state must be below this relative luminance")},
    "max_flashes", "max", BLOCK, BLOCK, "flashes/s", fixed_on_fail=True))
def flashing(ctx: CheckContext) -> CheckResult:
    """WCAG 2.3.1 general flash and red flash: a flash is a pair of opposing transitions; more than
    ``max_flashes`` of either kind in any one second fails. Measured on every window of 1/36 of the frame
    (≈ 25 % of a 10° field): relative luminance for general flashes (from luma), linear sRGB of the RGB
    thumbnails (every other pixel) for red flashes (a saturated red changing by 20 or more on the
    (R - G - B) x 320 scale)."""
    clip, p = ctx.clip, ctx.params["flashing"]
    if clip.frames < 3:
        return not_run("flashing", f"needs at least 3 frames, clip has {clip.frames}")
    general = _flashes_per_second(clip, _transitions(_windows(_grid(REL_LUMINANCE[clip.mid])),
                                                     p["min_change"], p["max_dark"]))
    rgb = REL_LUMINANCE[clip.thumbs[:, ::2, ::2]]  # the same sRGB decoding, per channel
    red = _flashes_per_second(clip, _transitions(_windows(red_level(_grid(rgb))), RED_CHANGE, np.inf))
    worst_general, worst_red = float(general.max()), float(red.max())
    worst = max(worst_general, worst_red)
    ok = worst <= p["max_flashes"]
    details: dict[str, Any] = {"message": f"at most {worst_general:g} general and {worst_red:g} red flashes "
                                          "in any one second", "general_flashes": worst_general,
                               "red_flashes": worst_red}
    if not ok:
        kind, flashes = ("red", red) if worst_red > worst_general else ("general", general)
        second = max(1, round(clip.fps)) if clip.fps else clip.frames
        wi = int(np.argmax(flashes.max(axis=1)))
        details["ranges"] = [span(clip, wi, min(wi + second, clip.frames) - 1)]
        details["message"] += (f" (WCAG 2.3.1 allows {p['max_flashes']:g}), worst ({kind}) from "
                               f"{clip.times[wi]:.2f} s")
    return CheckResult("flashing", ok, worst, p["max_flashes"], details)


@register(CheckSpec("flicker", "technical", "flicker: short-lived brightness jumps between frames",
                    {"max_deviation": Param(6, 0, 255)}, "max_deviation", "max", REVIEW, REVIEW, "luma levels"))
def flicker(ctx: CheckContext) -> CheckResult:
    """Largest short-lived brightness deviation: frame mean luma minus the median of its 5 neighbours.
    Steady ramps and single steps (a light change) leave the median with them and do not count."""
    clip, p = ctx.clip, ctx.params["flicker"]
    idx = np.flatnonzero(~ctx.black)
    if len(idx) < 3:
        return not_run("flicker", f"needs at least 3 frames that are not black, clip has {len(idx)}")
    m = clip.mean_luma[idx]
    pad = np.pad(m, 2, mode="edge")
    med = np.median(np.lib.stride_tricks.sliding_window_view(pad, 5), axis=1)
    dev = np.abs(m - med)
    worst = int(np.argmax(dev))
    ok = float(dev[worst]) <= p["max_deviation"]
    bad = np.zeros(clip.frames, dtype=bool)
    bad[idx[dev > p["max_deviation"]]] = True
    return CheckResult("flicker", ok, rounded(dev[worst], 2), p["max_deviation"], {
        "message": f"largest brightness jump {dev[worst]:.1f} luma levels at {clip.times[idx[worst]]:.2f} s",
        "frames_flickering": int(bad.sum()), "ranges": [span(clip, a, b) for a, b in runs(bad)]})


@register(CheckSpec("exposure", "technical", "exposure clipping: crushed blacks and blown highlights", {
    "max_clipped": Param(0.3, 0, 1), "low": Param(4, 0, 255), "high": Param(251, 0, 255)},
    "max_clipped", "max", REVIEW, REVIEW, "share"))
def exposure(ctx: CheckContext) -> CheckResult:
    clip, p = ctx.clip, ctx.params["exposure"]
    idx = np.flatnonzero(~ctx.black)
    if not len(idx):
        return not_run("exposure", "every frame is black (see black_frames)")
    y = clip.mid[idx]
    crushed = (y <= p["low"]).mean(axis=(1, 2))
    blown = (y >= p["high"]).mean(axis=(1, 2))
    share = float((crushed + blown).mean())
    ok = share <= p["max_clipped"]
    worst = int(np.argmax(crushed + blown))
    return CheckResult("exposure", ok, rounded(share), p["max_clipped"], {
        "message": f"{share:.0%} of the picture clipped (crushed {crushed.mean():.0%}, blown {blown.mean():.0%}); "
                   f"worst frame at {clip.times[idx[worst]]:.2f} s",
        "crushed": rounded(crushed.mean()), "blown": rounded(blown.mean())})


def _laplacian_var(y: np.ndarray) -> np.ndarray:
    """Variance of the 4-neighbour Laplacian of each frame (T, H, W) -> (T,)."""
    lap = (y[:, 1:-1, :-2] + y[:, 1:-1, 2:] + y[:, :-2, 1:-1] + y[:, 2:, 1:-1]) - 4 * y[:, 1:-1, 1:-1]
    return lap.reshape(len(y), -1).var(axis=1)


@register(CheckSpec("blur", "technical", "blur: variance of the Laplacian", {"min_sharpness": Param(40)},
                    "min_sharpness", "min", REVIEW, REVIEW))
def blur(ctx: CheckContext) -> CheckResult:
    """Median over up to 16 frames of the Laplacian variance of the luma (short side <= 240 px)."""
    clip, p = ctx.clip, ctx.params["blur"]
    flat = clip.small.std(axis=(1, 2)) < FLAT_STD
    idx = np.flatnonzero(~ctx.black & ~flat)
    if not len(idx) or min(clip.mid.shape[1:]) < 3:
        return not_run("blur", "no frame has any detail to measure (all black or flat)")
    idx = idx[np.unique(np.linspace(0, len(idx) - 1, min(16, len(idx))).round().astype(int))]
    sharp = _laplacian_var(clip.mid[idx].astype(np.float32))
    value = float(np.median(sharp))
    return CheckResult("blur", value >= p["min_sharpness"], rounded(value, 2), p["min_sharpness"], {
        "message": f"sharpness {value:.1f} (variance of the Laplacian, median of {len(idx)} frames)",
        "frames_measured": len(idx), "least_sharp": rounded(sharp.min(), 2)})


def box_means(x: np.ndarray) -> np.ndarray:
    """Mean over the 7x7 window around each pixel of each frame (T, H, W), the window entirely inside the
    frame: (T, H - 6, W - 6)."""
    return heavy.scipy_ndimage().uniform_filter(x, size=(1, 7, 7))[:, 3:-3, 3:-3]


def structure_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean of SSIM's structure term (local correlation, 7x7 windows) for each frame pair (T, H, W)."""
    a, b = a.astype(np.float32), b.astype(np.float32)
    a = a - a.mean(axis=(1, 2), keepdims=True)  # centred: the local moments keep their precision in float32
    b = b - b.mean(axis=(1, 2), keepdims=True)
    ma, mb = box_means(a), box_means(b)
    va = np.maximum(box_means(a * a) - ma * ma, 0)
    vb = np.maximum(box_means(b * b) - mb * mb, 0)
    cov = box_means(a * b) - ma * mb
    s = (cov + SSIM_C3) / (np.sqrt(va * vb) + SSIM_C3)
    return s.reshape(len(a), -1).mean(axis=1)


@register(CheckSpec("temporal_instability", "technical", "temporal instability: low structural similarity "
                    "between consecutive frames", {"max_unstable": Param(0.25, 0, 1),
                                                   "min_similarity": Param(0.5, -1, 1)},
                    "max_unstable", "max", REVIEW, REVIEW, "share of frame pairs"))
def temporal_instability(ctx: CheckContext) -> CheckResult:
    clip, p = ctx.clip, ctx.params["temporal_instability"]
    ok_pairs = np.flatnonzero(clip.pairs(ctx.black, need_structure=True))
    if not len(ok_pairs) or min(clip.small.shape[1:]) < 8:
        return not_run("temporal_instability", "no two consecutive frames with structure to compare")
    sim = structure_similarity(clip.small[ok_pairs], clip.small[ok_pairs + 1])
    unstable = sim < p["min_similarity"]
    share = float(unstable.mean())
    bad = np.zeros(clip.frames, dtype=bool)
    for i in ok_pairs[unstable]:
        bad[i:i + 2] = True
    return CheckResult("temporal_instability", share <= p["max_unstable"], rounded(share), p["max_unstable"], {
        "message": f"{unstable.sum()} of {len(sim)} frame pairs unstable (structural similarity < "
                   f"{p['min_similarity']:g}); median similarity {np.median(sim):.2f}",
        "median_similarity": rounded(np.median(sim)), "ranges": [span(clip, a, b) for a, b in runs(bad)]})


@register(CheckSpec("hard_cuts", "technical", "unexpected hard cuts inside a single shot", {
    "max_cuts": Param(0), "min_change": Param(0.5, 0, 2, "1 - correlation of consecutive frames"),
    "min_ratio": Param(4, 1, None, "times the clip's median change")}, "max_cuts", "max", REVIEW, REVIEW, "cuts"))
def hard_cuts(ctx: CheckContext) -> CheckResult:
    """A cut: consecutive frames decorrelate by ``min_change`` or more and by ``min_ratio`` times the
    clip's median change, so content that changes all the time (noise) is instability, not cuts. The
    jump at the end of a frozen segment belongs to that segment (frozen_frames), not to this check."""
    clip, p = ctx.clip, ctx.params["hard_cuts"]
    frozen = ctx.frozen[0]
    usable = clip.pairs(ctx.black, need_structure=True)
    usable[1:] &= ~frozen[:-1]  # the pair right after a frozen run
    ok_pairs = np.flatnonzero(usable)
    if not len(ok_pairs):
        return not_run("hard_cuts", "no two consecutive frames with structure to compare")
    a = clip.small[ok_pairs].reshape(len(ok_pairs), -1)
    b = clip.small[ok_pairs + 1].reshape(len(ok_pairs), -1)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    corr = (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    change = 1.0 - corr
    cut = (change >= p["min_change"]) & (change >= p["min_ratio"] * max(float(np.median(change)), 1e-3))
    times = [rounded(clip.times[i + 1], 3) for i in ok_pairs[cut]]
    n = int(cut.sum())
    return CheckResult("hard_cuts", n <= p["max_cuts"], float(n), p["max_cuts"], {
        "message": (f"{n} hard cut(s) at " + ", ".join(f"{t:.2f} s" for t in times)) if n else "no hard cut",
        "cut_times": times, "median_change": rounded(np.median(change)),
        "ranges": [span(clip, i, i + 1) for i in ok_pairs[cut]]})
