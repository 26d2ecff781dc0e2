"""Edits: what a brief item that changes an existing clip asks for, the rules it must follow, and its geometry.

An item with an ``edit:`` block names a **source** (``asset:N``, ``item:CAMPAIGN/ITEM`` — the approved clip of
an earlier campaign's item — or a video file) and one **operation**:

- ``reframe`` (``to: "9:16"``): outpaint to another aspect ratio; the source keeps its pixels where it was,
  centred on a larger canvas, and only the new area is generated;
- ``extend`` (``frames: N``, ``direction: forward|backward``): continue the clip by N frames (a multiple of 4),
  conditioned on its last (first) ``context_frames``; the source frames are kept;
- ``replace`` / ``remove``: regenerate a region given as ``mask`` (a video, or an image held for all frames)
  or a ``box: [x0, y0, x1, y1]`` with an optional ``range: [first, last]`` of frames; pixels outside it are kept;
- ``restyle`` (``strength``): video-to-video with the T2V model (diffusers ``WanVideoToVideoPipeline``);
- ``reference`` (``references: [image, …]``): generate with reference images (VACE ``reference_images``);
  no source needed.

The VACE operations run on the model named by the brief's ``edit_model`` (default ``wan-vace@champion``).
The promise of reframe, extend and replace — the untouched region equals the source — is kept by the
product, not hoped from the model: after decoding, the source's pixels are pasted back outside the region
(:func:`keep_mask` says where), and QC compares that region of the decoded clip with the source
(:func:`untouched_region`, :func:`seam_jump`). Pure rules here; decoding media is ``adapters``' job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

OPS = ("reframe", "extend", "replace", "remove", "restyle", "reference")
VACE_OPS = ("reframe", "extend", "replace", "remove", "reference")  # restyle: the T2V model, video-to-video
MASKED_OPS = ("reframe", "extend", "replace", "remove")  # ops with a region that must stay untouched
ASPECTS = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1), "4:5": (4, 5)}
DEFAULT_EDIT_MODEL = "wan-vace@champion"
MIN_SOURCE_FRAMES = 5
DEFAULT_CONTEXT_FRAMES = 9
DEFAULT_STRENGTH = 0.7
# Keys each op takes in its ``edit:`` block (besides ``source`` and ``op``); anything else is an error.
OP_KEYS: dict[str, tuple[str, ...]] = {
    "reframe": ("to", "conditioning_scale", "feather"),
    "extend": ("frames", "direction", "context_frames", "conditioning_scale"),
    "replace": ("mask", "box", "range", "conditioning_scale", "feather"),
    "remove": ("mask", "box", "range", "conditioning_scale", "feather"),
    "restyle": ("strength",),
    "reference": ("references", "conditioning_scale"),
}
# QC tolerances on the decoded output (H.264 CRF 12, yuv420p): the untouched region after a re-encode.
MIN_UNTOUCHED_PSNR_DB = 30.0  # a re-encode of the same pixels measures 34-45 dB on the stand-in; a region the
#                                model regenerated measures 10-15 dB
MAX_UNTOUCHED_ABS_DIFF = 64  # a pixel further than this from the source is a violation, whatever the PSNR …
CODEC_BAND = 4  # … except within this many pixels of the generated area, where H.264 blocks and 4:2:0 chroma mix both
SEAM_JUMP_FACTOR = 3.0  # extend: the jump at the seam may be at most this many times the source's own p95 jump


class EditError(ValueError):
    """A bad ``edit:`` block; ``field`` is the key (``edit.to``) and the message says why."""

    def __init__(self, field: str, message: str) -> None:
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class Geometry:
    """The clip an edit makes: its size and frames, and where the source sits in it.

    ``frames_used``: source frames taken (the largest 4k+1 that fits); ``x, y``: the source's top-left corner on
    the canvas (reframe); ``window``: for extend, the frames the model generates (context + new), and
    ``offset`` the index in the joined clip where that window starts.
    """

    width: int
    height: int
    num_frames: int
    frames_used: int
    x: int = 0
    y: int = 0
    window: int = 0
    offset: int = 0

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in ("width", "height", "num_frames", "frames_used", "x", "y", "window",
                                             "offset")}


def parse(block: Any) -> dict[str, Any]:
    """Check an ``edit:`` block's structure and types; return it normalised. Raises EditError."""
    if not isinstance(block, dict):
        raise EditError("edit", f"must be a mapping with 'source' and 'op', got {type(block).__name__}")
    op = block.get("op")
    if op not in OPS:
        raise EditError("edit.op", f"unknown operation {op!r} (one of: {', '.join(OPS)})")
    unknown = sorted(set(block) - {"source", "op", *OP_KEYS[op]})
    if unknown:
        raise EditError(f"edit.{unknown[0]}", f"{op} takes no {unknown[0]!r} (it takes: {', '.join(OP_KEYS[op])})")
    src = block.get("source")
    if op != "reference" and not (isinstance(src, str) and src.strip()):
        raise EditError("edit.source", f"{op} needs a source: asset:N, item:CAMPAIGN/ITEM or a video file")
    out: dict[str, Any] = {"op": op, "source": src.strip() if isinstance(src, str) else None}
    if "conditioning_scale" in block:
        out["conditioning_scale"] = _number(block, "conditioning_scale", 0.0, 2.0)
    if op == "reframe":
        if block.get("to") not in ASPECTS:
            raise EditError("edit.to", f"reframe needs 'to', one of {', '.join(ASPECTS)} (got {block.get('to')!r})")
        out["to"] = block["to"]
    if op in ("reframe", "replace", "remove"):
        out["feather"] = int(_number(block, "feather", 0, 8, default=0))
    if op == "extend":
        frames = block.get("frames")
        if not isinstance(frames, int) or isinstance(frames, bool) or frames < 4 or frames % 4:
            raise EditError("edit.frames", f"extend needs 'frames', a positive multiple of 4 (got {frames!r})")
        direction = block.get("direction", "forward")
        if direction not in ("forward", "backward"):
            raise EditError("edit.direction", f"'forward' or 'backward', got {direction!r}")
        ctx = block.get("context_frames", DEFAULT_CONTEXT_FRAMES)
        if not isinstance(ctx, int) or ctx < 1 or (ctx - 1) % 4:
            raise EditError("edit.context_frames", f"must be 4k+1 (1, 5, 9, …), got {ctx!r}")
        out |= {"frames": frames, "direction": direction, "context_frames": ctx}
    if op in ("replace", "remove"):
        has_mask, has_box = block.get("mask") is not None, block.get("box") is not None
        if has_mask == has_box:
            raise EditError("edit.mask", f"{op} needs exactly one of 'mask' (a video or image file) and 'box'")
        if has_mask:
            if not isinstance(block["mask"], str):
                raise EditError("edit.mask", f"a file path, got {block['mask']!r}")
            out["mask"] = block["mask"]
            if "range" in block:
                raise EditError("edit.range", "a range goes with a box; a mask video gives its own frames")
        else:
            box = block["box"]
            if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, int) for v in box)
                    and box[0] < box[2] and box[1] < box[3] and min(box) >= 0):
                raise EditError("edit.box", f"[x0, y0, x1, y1] in pixels with x0 < x1 and y0 < y1, got {box!r}")
            out["box"] = box
            rng = block.get("range")
            if rng is not None and not (isinstance(rng, list) and len(rng) == 2 and all(isinstance(v, int) for v in rng)
                                        and 0 <= rng[0] <= rng[1]):
                raise EditError("edit.range", f"[first, last] frame indices, got {rng!r}")
            out["range"] = rng
    if op == "restyle":
        out["strength"] = _number(block, "strength", 0.05, 1.0, default=DEFAULT_STRENGTH)
    if op == "reference":
        refs = block.get("references")
        if isinstance(refs, str):
            refs = [refs]
        if not (isinstance(refs, list) and refs and all(isinstance(r, str) for r in refs)):
            raise EditError("edit.references", f"reference needs 'references': one or more image files (got {refs!r})")
        out["references"] = refs
    return out


def _number(block: dict[str, Any], key: str, lo: float, hi: float, default: float | None = None) -> float:
    v = block.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
        raise EditError(f"edit.{key}", f"a number from {lo} to {hi}, got {v!r}")
    return float(v)


def frames_usable(n: int) -> int:
    """The largest 4k+1 frame count not above ``n`` (what Wan's VAE takes)."""
    return 4 * ((n - 1) // 4) + 1


def _up16(v: float) -> int:
    return int(math.ceil(v / 16.0) * 16)


def geometry(edit: dict[str, Any], width: int, height: int, frames: int) -> Geometry:
    """The output of ``edit`` on a ``width``x``height`` source of ``frames`` frames. Raises EditError."""
    op = edit["op"]
    if frames < MIN_SOURCE_FRAMES:
        raise EditError("edit.source", f"the source has {frames} frame(s); an edit needs at least {MIN_SOURCE_FRAMES}")
    if width % 16 or height % 16:
        raise EditError("edit.source", f"the source is {width}x{height}; Wan needs sides that are multiples of 16")
    used = frames_usable(frames)
    if op == "reframe":
        a, b = ASPECTS[edit["to"]]
        if width * b >= height * a:  # wider than the target: grow the height
            w, h = width, max(height, _up16(width * b / a))
        else:
            w, h = max(width, _up16(height * a / b)), height
        if (w, h) == (width, height):
            raise EditError("edit.to", f"the source ({width}x{height}) already has aspect {edit['to']}: nothing to outpaint")
        # centred, on a multiple of 16 so the codec's macroblocks do not straddle the border
        return Geometry(w, h, used, used, x=((w - width) // 2) // 16 * 16, y=((h - height) // 2) // 16 * 16)
    if op == "extend":
        ctx = edit["context_frames"]
        if ctx > used:
            raise EditError("edit.context_frames", f"{ctx} context frames but the source has {used} usable frames")
        total = used + edit["frames"]
        offset = used - ctx if edit["direction"] == "forward" else 0
        return Geometry(width, height, total, used, window=ctx + edit["frames"], offset=offset)
    if op in ("replace", "remove") and edit.get("box"):
        x0, y0, x1, y1 = edit["box"]
        if x1 > width or y1 > height:
            raise EditError("edit.box", f"{edit['box']} reaches outside the {width}x{height} source")
        if edit.get("range") and edit["range"][1] >= used:
            raise EditError("edit.range", f"{edit['range']} reaches past frame {used - 1} (the source has {used} usable frames)")
    return Geometry(width, height, used, used)


def keep_mask(edit: dict[str, Any], geo: Geometry, mask: np.ndarray | None = None) -> np.ndarray:
    """Where the output must equal the source: bool (T, H, W) over the output clip (extend: over the whole
    joined clip). ``mask``: a replace's region from a file, bool (T, H, W) or (H, W), True = regenerate."""
    t, h, w = geo.num_frames, geo.height, geo.width
    keep = np.zeros((t, h, w), dtype=bool)
    op = edit["op"]
    if op == "reframe":
        sh, sw = edit["source"]["height"], edit["source"]["width"]
        keep[:, geo.y:geo.y + sh, geo.x:geo.x + sw] = True
    elif op == "extend":
        if edit["direction"] == "forward":
            keep[:geo.frames_used] = True
        else:
            keep[t - geo.frames_used:] = True
    elif op in ("replace", "remove"):
        keep[:] = True
        if mask is not None:
            keep &= ~(mask if mask.ndim == 3 else np.broadcast_to(mask, (t, h, w)))
        else:
            x0, y0, x1, y1 = edit["box"]
            first, last = edit.get("range") or (0, t - 1)
            keep[first:last + 1, y0:y1, x0:x1] = False
    return keep


def feathered(keep: np.ndarray, width: int) -> np.ndarray:
    """The paste-back weight of the source (1 = source): ``keep`` with its border to the generated area
    ramped over ``width`` pixels *inside the generated area*, so the kept region stays exact."""
    alpha = keep.astype(np.float32)
    if width <= 0:
        return alpha
    grow = keep.copy()
    for step in range(1, width + 1):
        ring = np.zeros_like(grow)
        ring[:, 1:, :] |= grow[:, :-1, :]
        ring[:, :-1, :] |= grow[:, 1:, :]
        ring[:, :, 1:] |= grow[:, :, :-1]
        ring[:, :, :-1] |= grow[:, :, 1:]
        new = ring & ~grow
        alpha[new] = 1.0 - step / (width + 1)
        grow |= ring
    return alpha


def untouched_region(out: np.ndarray, source: np.ndarray, keep: np.ndarray,
                     min_psnr: float = MIN_UNTOUCHED_PSNR_DB, max_abs: int = MAX_UNTOUCHED_ABS_DIFF) -> dict[str, Any]:
    """Compare the untouched region of a decoded edit (``out``, uint8 T,H,W,3) with the source laid out the same
    way (``source``, same shape; only ``keep`` pixels matter). Returns the record QC stores: PSNR over the
    region, the largest difference, whether both are within tolerance, and the frames that are not."""
    if out.shape != source.shape or keep.shape != out.shape[:3]:
        return {"passed": None, "value": None, "details": {"reason": f"shapes differ: output {out.shape}, source "
                                                                     f"{source.shape}, region {keep.shape}"}}
    if not keep.any():
        return {"passed": None, "value": None, "details": {"reason": "no untouched region to compare"}}
    err = (out.astype(np.float64) - source.astype(np.float64)) ** 2
    sq = err.mean(axis=3)  # per pixel, over the channels (PSNR)
    diff = np.sqrt(err.max(axis=3))  # per pixel, the worst channel (max abs)
    # judged on the kept region less a band along its border with generated pixels (H.264 blocks and 4:2:0 chroma
    # mix both sides there); the band is reported, not judged
    inner = keep & (feathered(~keep, CODEC_BAND) == 0)
    judged = inner if inner.any() else keep
    bad, worst = [], 99.0
    for i in range(out.shape[0]):
        if not judged[i].any():
            continue
        d = diff[i][judged[i]]
        frame_psnr = _psnr(float(np.mean(sq[i][judged[i]])))
        worst = min(worst, frame_psnr)
        if frame_psnr < min_psnr or d.max() > max_abs:
            bad.append(i)
    psnr = _psnr(float(np.mean(sq[judged])))
    return {"passed": not bad, "value": round(psnr, 2), "threshold": min_psnr,
            "details": {"psnr_db": round(psnr, 2), "max_abs_diff": int(diff[judged].max()), "max_abs_allowed": max_abs,
                        "psnr_db_with_band": round(_psnr(float(np.mean(sq[keep]))), 2),
                        "codec_band_px": CODEC_BAND, "max_abs_diff_in_band": int(diff[keep & ~inner].max(initial=0)),
                        "pixels_compared": int(judged.sum()), "frames_violating": bad[:50],
                        "worst_frame_psnr_db": round(worst, 2)}}


def _psnr(mse: float) -> float:
    return 99.0 if mse <= 1e-10 else 10.0 * math.log10(255.0 ** 2 / mse)


def seam_jump(frames: np.ndarray, seam: int, factor: float = SEAM_JUMP_FACTOR) -> dict[str, Any]:
    """Extend: the mean absolute change between frame ``seam - 1`` and ``seam`` against the clip's own
    frame-to-frame changes elsewhere (their 95th percentile). A jump well above the clip's usual motion is a
    visible seam."""
    if not 0 < seam < len(frames):
        return {"passed": None, "value": None, "details": {"reason": f"no seam at frame {seam}"}}
    f = frames.astype(np.float32)
    steps = np.abs(np.diff(f, axis=0)).mean(axis=(1, 2, 3))
    jump = float(steps[seam - 1])
    others = np.delete(steps, seam - 1)
    usual = float(np.percentile(others, 95)) if others.size else 0.0
    limit = max(factor * usual, 2.0)
    return {"passed": jump <= limit, "value": round(jump, 3), "threshold": round(limit, 3),
            "details": {"seam_frame": seam, "jump": round(jump, 3), "usual_p95": round(usual, 3),
                        "frames_violating": [] if jump <= limit else [seam - 1, seam]}}
