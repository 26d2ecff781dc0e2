"""Technical checks on the file and its frames: decodable, container, size, frame rate, frame count,
duration, black frames and segments, frozen segments. Each spec sits right above its function (numpy on
the frames of the decoded :class:`~governance.qc.clip.Clip`); the picture-quality checks are in
:mod:`governance.qc.picture`.

Black frames belong to the black checks: the picture checks (frozen, flicker, exposure, blur,
instability, cuts) look only at frames that are not black, so one defect is reported once, by the
check meant for it.
"""

from __future__ import annotations

from governance.qc.clip import rounded, runs, span
from governance.qc.context import CheckContext
from governance.qc.registry import BLOCK, CheckResult, CheckSpec, Param, not_run, register


@register(CheckSpec("decodable", "technical", "the file decodes as video", on_fail=BLOCK, on_not_run=BLOCK,
                    fixed_on_fail=True, unit="frames", needs_clip=False))
def decodable(ctx: CheckContext) -> CheckResult:
    if ctx.clip is None:
        return CheckResult("decodable", False, 0.0, None, {"reason": ctx.decode_error, "message": ctx.decode_error})
    n = ctx.clip.frames
    return CheckResult("decodable", True, float(n), None, {"message": f"{n} frames decoded", "frames_decoded": n})


@register(CheckSpec("container", "technical", "container, codec and pixel format are the delivery ones", {
    "formats": Param(["mp4", "mov"], help="container formats (ffmpeg demuxer names)"),
    "codecs": Param(["h264"], help="video codecs"),
    "pix_fmts": Param(["yuv420p"], help="pixel formats")}, on_fail=BLOCK, on_not_run=BLOCK))
def container(ctx: CheckContext) -> CheckResult:
    clip, p = ctx.clip, ctx.params["container"]
    names = clip.format.split(",")
    bad = []
    if not any(f in names for f in p["formats"]):
        bad.append(f"container {clip.format!r} not in {p['formats']}")
    if clip.codec not in p["codecs"]:
        bad.append(f"codec {clip.codec!r} not in {p['codecs']}")
    if clip.pix_fmt not in p["pix_fmts"]:
        bad.append(f"pixel format {clip.pix_fmt!r} not in {p['pix_fmts']}")
    shown = next((f for f in p["formats"] if f in names), names[0])
    msg = "; ".join(bad) or f"{shown} / {clip.codec} / {clip.pix_fmt}"
    return CheckResult("container", not bad, None, None, {
        "message": msg, "actual": {"format": clip.format, "codec": clip.codec, "pix_fmt": clip.pix_fmt},
        "allowed": {k: p[k] for k in ("formats", "codecs", "pix_fmts")}})


def _compare(check: str, actual: float, expected: float | None, tol: float, unit: str) -> CheckResult:
    if expected is None:
        return CheckResult(check, True, float(actual), None,
                           {"message": f"{rounded(actual):g} {unit}; nothing was requested", "actual": actual})
    ok = abs(actual - expected) <= tol
    msg = f"{rounded(actual):g} {unit}" + ("" if ok else f", requested {rounded(expected):g}")
    return CheckResult(check, ok, float(actual), float(expected),
                       {"message": msg, "expected": expected, "actual": actual})


@register(CheckSpec("size", "technical", "width and height as requested", on_fail=BLOCK, on_not_run=BLOCK, unit="px"))
def size(ctx: CheckContext) -> CheckResult:
    clip, expected = ctx.clip, ctx.expected
    actual = {"width": clip.width, "height": clip.height}
    if expected.width is None or expected.height is None:
        return CheckResult("size", True, float(clip.width * clip.height), None, {
            "message": f"{clip.width}x{clip.height}; nothing was requested", "actual": actual,
            "value_is": "pixel area"})
    ok = (clip.width, clip.height) == (expected.width, expected.height)
    return CheckResult("size", ok, float(clip.width * clip.height), float(expected.width * expected.height), {
        "message": f"{clip.width}x{clip.height}" + ("" if ok else f", requested {expected.width}x{expected.height}"),
        "expected": {"width": expected.width, "height": expected.height}, "actual": actual,
        "value_is": "pixel area"})


@register(CheckSpec("fps", "technical", "frame rate as requested", {"tolerance": Param(0.01, 0, 10)},
                    on_fail=BLOCK, on_not_run=BLOCK, unit="fps"))
def fps(ctx: CheckContext) -> CheckResult:
    return _compare("fps", ctx.clip.fps, ctx.expected.fps, ctx.params["fps"]["tolerance"], "fps")


@register(CheckSpec("frame_count", "technical", "number of frames as requested", on_fail=BLOCK, on_not_run=BLOCK,
                    unit="frames"))
def frame_count(ctx: CheckContext) -> CheckResult:
    return _compare("frame_count", ctx.clip.frames, ctx.expected.frames, 0, "frames")


@register(CheckSpec("duration", "technical", "duration as requested (frames / fps)",
                    {"tolerance_s": Param(0.05, 0, 10)}, on_fail=BLOCK, on_not_run=BLOCK, unit="s"))
def duration(ctx: CheckContext) -> CheckResult:
    expected = ctx.expected
    want = expected.frames / expected.fps if expected.frames and expected.fps else None
    return _compare("duration", ctx.clip.duration, want, ctx.params["duration"]["tolerance_s"], "s")


@register(CheckSpec("black_frames", "technical", "share of black frames", {
    "max_fraction": Param(0.5, 0, 1), "pixel_luma": Param(32, 0, 255, "a pixel this dark (0..255) is black"),
    "pixel_share": Param(0.98, 0, 1, "a frame with this share of black pixels is black")},
    "max_fraction", "max", BLOCK, BLOCK, "share"))
def black_frames(ctx: CheckContext) -> CheckResult:
    clip, p, black = ctx.clip, ctx.params["black_frames"], ctx.black
    share = float(black.mean())
    ok = share <= p["max_fraction"]
    return CheckResult("black_frames", ok, rounded(share), p["max_fraction"], {
        "message": f"{int(black.sum())} of {clip.frames} frames black ({share:.0%})",
        "black_frames": int(black.sum()), "frames": clip.frames,
        "ranges": [span(clip, a, b) for a, b in runs(black)]})


@register(CheckSpec("black_segments", "technical", "black segments inside the clip", {"max_seconds": Param(0.1)},
                    "max_seconds", "max", BLOCK, BLOCK, "s"))
def black_segments(ctx: CheckContext) -> CheckResult:
    clip, p = ctx.clip, ctx.params["black_segments"]
    segs = [(a, b, (b - a + 1) * clip.frame_s) for a, b in runs(ctx.black)]
    longest = max((s for *_, s in segs), default=0.0)
    ok = longest <= p["max_seconds"]
    bad = [span(clip, a, b) for a, b, s in segs if s > p["max_seconds"]]
    msg = ("no black segment" if not segs else
           f"longest black segment {longest:.2f} s" + "".join(f"; black {r['start']:.2f}-{r['end']:.2f} s" for r in bad))
    return CheckResult("black_segments", ok, rounded(longest), p["max_seconds"],
                       {"message": msg, "ranges": bad or [span(clip, a, b) for a, b, _ in segs]})


@register(CheckSpec("frozen_frames", "technical", "frozen or static segments", {
    "max_seconds": Param(0.3), "max_change": Param(0.3, 0, 255, "mean luma change (0..255) below which "
                                                              "two frames count as the same picture")},
    "max_seconds", "max", BLOCK, BLOCK, "s"))
def frozen_frames(ctx: CheckContext) -> CheckResult:
    clip, p = ctx.clip, ctx.params["frozen_frames"]
    if clip.frames < 2:
        return not_run("frozen_frames", f"needs at least 2 frames, clip has {clip.frames}")
    frozen, change = ctx.frozen
    segs = [(a, b + 1, (b - a + 2) * clip.frame_s) for a, b in runs(frozen)]  # pairs a..b hold frames a..b+1
    longest = max((s for *_, s in segs), default=0.0)
    bad = [span(clip, a, b) for a, b, s in segs if s > p["max_seconds"]]
    msg = ("no frozen segment" if not segs else f"longest frozen segment {longest:.2f} s"
           + "".join(f"; frozen {r['start']:.2f}-{r['end']:.2f} s" for r in bad))
    return CheckResult("frozen_frames", longest <= p["max_seconds"], rounded(longest), p["max_seconds"], {
        "message": msg, "min_change": rounded(change.min()), "frozen_pairs": int(frozen.sum()), "pairs": len(change),
        "ranges": bad})
