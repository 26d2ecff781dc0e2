"""Decoding a video file into the arrays the QC checks read (:class:`governance.qc.Clip`), with PyAV.

Every frame is scaled by swscale (area filter) to luma at most ``MID_SIDE`` pixels on its short side
(full range 0..255) and to an RGB thumbnail at most ``THUMB_SIDE`` on its short side; ``STILL_FRAMES``
frames spread evenly over the clip also become RGB stills at most ``STILL_SIDE`` on their short side (chosen
from the stream's frame count; a stream that does not declare it keeps a still of every frame until the
end, then keeps the spread). The file is read once; a file that does not decode raises one of
:data:`DECODE_ERRORS`.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from governance.qc.clip import MID_SIDE, STILL_FRAMES, STILL_SIDE, THUMB_SIDE, Clip, spread

DECODE_ERRORS = (av.FFmpegError, OSError, ValueError, IndexError, EOFError)


def _scaled(w: int, h: int, side: int) -> tuple[int, int]:
    """(w, h) scaled so the short side is at most ``side``, both even and >= 2."""
    f = min(1.0, side / min(w, h))
    return max(2, round(w * f / 2) * 2), max(2, round(h * f / 2) * 2)


def decode(path: Path) -> Clip:
    """Decode every frame; raises one of DECODE_ERRORS on any failure or when there are no video frames."""
    path = Path(path)
    mids, thumbs, pts, stills = [], [], [], {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        ctx = stream.codec_context
        w, h = ctx.width, ctx.height
        if not w or not h:
            raise ValueError("video stream has no size")
        mw, mh = _scaled(w, h, MID_SIDE)
        tw, th = _scaled(w, h, THUMB_SIDE)
        sw, sh = _scaled(w, h, STILL_SIDE)
        declared = set(spread(stream.frames, STILL_FRAMES).tolist()) if stream.frames else None
        for i, frame in enumerate(container.decode(stream)):
            mids.append(frame.to_ndarray(format="gray", width=mw, height=mh, interpolation="AREA"))
            thumbs.append(frame.to_ndarray(format="rgb24", width=tw, height=th, interpolation="AREA"))
            if declared is None or i in declared:
                stills[i] = frame.to_ndarray(format="rgb24", width=sw, height=sh, interpolation="AREA")
            pts.append(frame.time if frame.time is not None else (i / fps if fps else float(i)))
        fmt, codec, pix_fmt = container.format.name, ctx.name, ctx.pix_fmt or ""
    if not mids:
        raise ValueError("no video frames")
    keep = [i for i in spread(len(mids), STILL_FRAMES).tolist() if i in stills] if declared is None else sorted(stills)
    times = np.asarray(pts, dtype=np.float64)
    times -= times[0]
    duration = float(times[-1] + (1.0 / fps if fps else 0.0))
    return Clip(path, np.stack(mids), np.stack(thumbs), times, fps, w, h, fmt, codec, pix_fmt, duration,
                np.stack([stills[i] for i in keep]) if keep else None, np.asarray(keep, dtype=int))
