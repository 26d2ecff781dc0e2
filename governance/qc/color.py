"""The brand palette check: the clip's dominant colours (k-means in CIELAB) against the brand palette,
with CIEDE2000 colour differences (Sharma, Wu & Dalal 2005)."""

from __future__ import annotations

import numpy as np

from governance.qc.context import CheckContext
from governance.qc.registry import REVIEW, CheckResult, CheckSpec, Param, not_run, register

_M = np.array([[0.4124564, 0.3575761, 0.1804375],  # linear sRGB -> XYZ (D65)
               [0.2126729, 0.7151522, 0.0721750],
               [0.0193339, 0.1191920, 0.9503041]])
_WHITE = np.array([0.95047, 1.0, 1.08883])
PIXELS = 20_000  # pixels sampled from the clip for k-means


def hex_to_rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.float64)


def rgb_to_hex(rgb: np.ndarray) -> str:
    return "#" + "".join(f"{int(round(c)):02X}" for c in np.clip(rgb, 0, 255))


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB 0..255 (..., 3) -> CIELAB (..., 3), D65."""
    v = np.asarray(rgb, dtype=np.float64) / 255.0
    lin = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    xyz = lin @ _M.T / _WHITE
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference between Lab arrays (broadcasting; kL = kC = kH = 1)."""
    L1, a1, b1 = np.moveaxis(np.asarray(lab1, dtype=np.float64), -1, 0)
    L2, a2, b2 = np.moveaxis(np.asarray(lab2, dtype=np.float64), -1, 0)
    c_bar = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_bar ** 7 / (c_bar ** 7 + 25.0 ** 7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    dLp, dCp = L2 - L1, c2p - c1p
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(c1p * c2p == 0, 0, dh)
    dHp = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh) / 2)
    L_bar, C_bar = (L1 + L2) / 2, (c1p + c2p) / 2
    hsum = h1p + h2p
    h_bar = np.where(np.abs(h1p - h2p) > 180, np.where(hsum < 360, hsum + 360, hsum - 360), hsum) / 2
    h_bar = np.where(c1p * c2p == 0, hsum, h_bar)
    t = (1 - 0.17 * np.cos(np.radians(h_bar - 30)) + 0.24 * np.cos(np.radians(2 * h_bar))
         + 0.32 * np.cos(np.radians(3 * h_bar + 6)) - 0.20 * np.cos(np.radians(4 * h_bar - 63)))
    d_theta = 30 * np.exp(-(((h_bar - 275) / 25) ** 2))
    r_c = 2 * np.sqrt(C_bar ** 7 / (C_bar ** 7 + 25.0 ** 7))
    s_l = 1 + 0.015 * (L_bar - 50) ** 2 / np.sqrt(20 + (L_bar - 50) ** 2)
    s_c = 1 + 0.045 * C_bar
    s_h = 1 + 0.015 * C_bar * t
    r_t = -np.sin(np.radians(2 * d_theta)) * r_c
    return np.sqrt((dLp / s_l) ** 2 + (dCp / s_c) ** 2 + (dHp / s_h) ** 2 + r_t * (dCp / s_c) * (dHp / s_h))


def dominant_colours(lab: np.ndarray, k: int, iterations: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """k-means on Lab pixels (N, 3), deterministic (farthest-point start): (centres (k, 3), shares (k,))."""
    k = min(k, len(lab))
    centres = [lab[np.argmin(lab[:, 0])]]
    for _ in range(1, k):
        d = np.min(((lab[:, None, :] - np.array(centres)[None]) ** 2).sum(-1), axis=1)
        centres.append(lab[int(np.argmax(d))])
    c = np.array(centres)
    for _ in range(iterations):
        label = np.argmin(((lab[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
        c = np.array([lab[label == j].mean(axis=0) if np.any(label == j) else c[j] for j in range(k)])
    label = np.argmin(((lab[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
    shares = np.bincount(label, minlength=k) / len(lab)
    order = np.argsort(-shares)
    return c[order], shares[order]


def _lab_to_srgb(lab: np.ndarray) -> np.ndarray:
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], axis=-1)
    xyz = np.where(f > 6 / 29, f ** 3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * _WHITE
    lin = np.clip(xyz @ np.linalg.inv(_M).T, 0, 1)
    return 255 * np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)


@register(CheckSpec("palette", "brand", "dominant colours against the brand palette (CIEDE2000)", {
    "max_delta_e": Param(20, 0, 200), "min_share": Param(0.3, 0, 1), "colors": Param(6, 1, 16)},
    "min_share", "min", REVIEW, REVIEW, "share"))
def palette(ctx: CheckContext) -> CheckResult:
    """Share of the picture whose dominant colour is within ``max_delta_e`` of a palette colour."""
    clip, p, colours = ctx.clip, ctx.params["palette"], ctx.brand.palette
    if not colours:
        return CheckResult("palette", True, None, p["min_share"],
                           {"message": "nothing to check: the brand defines no palette"})
    px = clip.thumbs.reshape(-1, 3)
    if not len(px):
        return not_run("palette", "no pixels")
    px = px[np.linspace(0, len(px) - 1, min(PIXELS, len(px))).astype(int)]
    centres, shares = dominant_colours(srgb_to_lab(px), int(p["colors"]))
    brand = srgb_to_lab(np.array([hex_to_rgb(c) for c in colours]))
    de = ciede2000(centres[:, None, :], brand[None, :, :])  # (k, palette)
    nearest, dist = de.argmin(axis=1), de.min(axis=1)
    on = dist <= p["max_delta_e"]
    share = float(shares[on].sum())
    found = [{"colour": rgb_to_hex(_lab_to_srgb(c)), "share": round(float(s), 3), "nearest": colours[n],
              "delta_e": round(float(d), 1)} for c, s, n, d in zip(centres, shares, nearest, dist)]
    off = ", ".join(f"{f['colour']} {f['share']:.0%} (ΔE {f['delta_e']:.0f} to {f['nearest']})"
                    for f in found if f["delta_e"] > p["max_delta_e"])
    msg = f"{share:.0%} of the picture in brand colours" + (f"; off-palette: {off}" if off else "")
    return CheckResult("palette", share >= p["min_share"], round(share, 4), p["min_share"],
                       {"message": msg, "dominant": found})
