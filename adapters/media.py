"""Clip files: write, probe, transcode, posters, contact sheets and hashes.

Encoding goes through the ffmpeg binary shipped by imageio-ffmpeg, driven by ffmpeg-python, so
every clip and rendition in the project comes from one encoder build (one libx264, one mp4
muxer with ``+faststart``) whatever PyAV wheel happens to be installed. PyAV is used only to
probe and decode. Every writer is atomic: it writes a hidden temp file beside ``dest``, checks
it, fsyncs it and ``os.replace``s it into place; on any error the temp file is removed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import os
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import ffmpeg
import numpy as np
from imageio_ffmpeg import get_ffmpeg_exe
from PIL import Image, ImageDraw, ImageFont

from core.files import atomic_path, sha256_file

CLIP_CRF = 12
RENDITION_CRF = 18
PRESET = "medium"
ASPECTS: dict[str, tuple[int, int]] = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1), "4:5": (4, 5)}
STDERR_TAIL = 1500
LABEL_HEIGHT = 14  # contact-sheet label strip, pixels
_DECODE_ERRORS = (av.FFmpegError, OSError, ValueError, IndexError)


class MediaError(Exception):
    """A clip could not be written, read or transcoded."""

    def __init__(self, path: Path | str, message: str) -> None:
        super().__init__(path, message)  # args kept so the error pickles across processes
        self.path = Path(path)
        self.message = message

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class MediaWriteError(MediaError, OSError):
    """A file could not be written (a full disk, a folder in the way): an I/O failure, retried like any OSError."""


@dataclass(frozen=True)
class MediaInfo:
    """What a clip file is, as measured from the file itself."""

    path: Path
    size: int
    sha256: str
    codec: str
    profile: str | None
    pix_fmt: str
    width: int
    height: int
    frames: int
    fps: float
    duration: float
    faststart: bool


def frames_sha256(frames: np.ndarray) -> str:
    """Hex SHA-256 of a uint8 frame array before encoding: ``b"uint8:T,H,W,C;"`` + the C-order bytes."""
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frames.dtype}")
    h = hashlib.sha256(f"uint8:{','.join(map(str, frames.shape))};".encode())
    h.update(np.ascontiguousarray(frames).data)
    return h.hexdigest()


def mp4_faststart(path: Path) -> bool:
    """True if the top-level ``moov`` box comes before the first ``mdat`` box."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        pos = 0
        while pos + 8 <= size:
            f.seek(pos)
            box_size, box_type = struct.unpack(">I4s", f.read(8))
            if box_size == 1:  # 64-bit "largesize" follows the type
                raw = f.read(8)
                if len(raw) < 8:
                    return False
                box_size = struct.unpack(">Q", raw)[0]
            elif box_size == 0:  # box runs to the end of the file
                box_size = size - pos
            if box_type == b"moov":
                return True
            if box_type == b"mdat" or box_size < 8:
                return False
            pos += box_size
    return False


def probe(path: Path) -> MediaInfo:
    """Measure a clip; frames are counted by decoding. Raises MediaError if it does not decode."""
    path = Path(path)
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            ctx = stream.codec_context
            frames = sum(1 for _ in container.decode(stream))
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else 0.0
            if container.duration is not None:
                duration = container.duration / av.time_base
            else:
                duration = frames / fps if fps else 0.0
            codec, profile, pix_fmt = ctx.name, ctx.profile, ctx.pix_fmt
            width, height = ctx.width, ctx.height
    except _DECODE_ERRORS as exc:
        raise MediaError(path, f"not decodable: {type(exc).__name__}: {exc}") from exc
    if frames == 0:
        raise MediaError(path, "not decodable: no video frames")
    return MediaInfo(
        path=path, size=path.stat().st_size, sha256=sha256_file(path), codec=codec,
        profile=profile, pix_fmt=pix_fmt or "", width=width, height=height, frames=frames,
        fps=fps, duration=duration, faststart=mp4_faststart(path),
    )


@contextlib.contextmanager
def writing(dest: Path) -> Iterator[Path]:
    """:func:`core.files.atomic_path` for media files: a failure to write is a :class:`MediaError`."""
    try:
        with atomic_path(dest) as tmp:
            yield tmp
    except OSError as exc:
        raise MediaWriteError(dest, f"could not write: {exc}") from exc


def _run_ffmpeg(stream: ffmpeg.nodes.OutputStream, dest: Path, data: bytes | None = None) -> None:
    """Run an ffmpeg-python graph with the imageio-ffmpeg binary; MediaError with the stderr tail on failure."""
    stream = stream.global_args("-hide_banner", "-nostats", "-loglevel", "error")
    if data is None:
        stream = stream.global_args("-nostdin")
    try:
        stream.overwrite_output().run(
            cmd=get_ffmpeg_exe(), input=data, capture_stdout=True, capture_stderr=True, quiet=True
        )
    except ffmpeg.Error as exc:
        tail = (exc.stderr or b"").decode("utf-8", "replace").strip()[-STDERR_TAIL:]
        raise MediaError(dest, f"ffmpeg failed: {tail or 'no stderr'}") from exc


def _check_frames(frames: np.ndarray, dest: Path) -> None:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        raise MediaError(dest, f"frames must be a uint8 numpy array, got {getattr(frames, 'dtype', type(frames))}")
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise MediaError(dest, f"frames must have shape (T>=1, H, W, 3), got {frames.shape}")
    _, h, w, _ = frames.shape
    if h % 2 or w % 2 or h < 2 or w < 2:
        raise MediaError(dest, f"frames width and height must be even for yuv420p H.264, got {w}x{h}")


def write_clip(frames: np.ndarray, fps: int, dest: Path) -> MediaInfo:
    """Encode RGB uint8 frames (T,H,W,3) as H.264 yuv420p +faststart MP4 at ``dest``, atomically.

    Frames go to ffmpeg over a rawvideo pipe with ``-fps_mode passthrough`` so none are dropped or
    duplicated; colour is converted and tagged BT.709 limited range. The temp file is probed and
    must hold exactly T frames before it is renamed.
    """
    dest = Path(dest)
    _check_frames(frames, dest)
    if not fps or fps <= 0:
        raise MediaError(dest, f"fps must be positive, got {fps!r}")
    t, h, w, _ = frames.shape
    with writing(dest) as tmp:
        rgb = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{w}x{h}", framerate=fps)
        # BT.709 matrix, limited range, tagged on the frames (output options alone lose primaries/trc);
        # PyAV, players and the renditions made from this clip all follow the tags.
        yuv = (rgb.filter("scale", out_color_matrix="bt709", out_range="tv").filter("format", "yuv420p")
               .filter("setparams", color_primaries="bt709", color_trc="bt709", colorspace="bt709", range="tv"))
        graph = yuv.output(
            str(tmp), f="mp4", vcodec="libx264", pix_fmt="yuv420p", crf=CLIP_CRF, preset=PRESET,
            movflags="+faststart", fps_mode="passthrough", an=None,
        )
        _run_ffmpeg(graph, dest, np.ascontiguousarray(frames).tobytes())
        info = probe(tmp)
        if info.frames != t:
            raise MediaError(dest, f"encoded {info.frames} frames, expected {t}")
    return dataclasses.replace(info, path=dest)


def crop_box(width: int, height: int, aspect: str) -> tuple[int, int, int, int]:
    """Largest centred crop of ``aspect`` inside width×height, dims rounded down to even: (w, h, x, y)."""
    if aspect not in ASPECTS:
        raise ValueError(f"aspect must be one of {sorted(ASPECTS)}, got {aspect!r}")
    a, b = ASPECTS[aspect]
    if width * b > height * a:  # source is wider than the target: keep the full height
        cw, ch = height * a // b, height
    else:
        cw, ch = width, width * b // a
    cw, ch = cw - cw % 2, ch - ch % 2
    if cw < 2 or ch < 2:
        raise ValueError(f"{width}x{height} is too small for a {aspect} crop")
    return cw, ch, (width - cw) // 2, (height - ch) // 2


def transcode_rendition(src: Path, dest: Path, aspect: str, fps: int | None = None) -> MediaInfo:
    """Centre-crop ``src`` to ``aspect`` and encode H.264 High yuv420p +faststart, no audio, atomically.

    GOP follows the delivery notes: closed, half the frame rate long, 2 B-frames.
    """
    src, dest = Path(src), Path(dest)
    if fps is not None and fps <= 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    info = probe(src)
    cw, ch, x, y = crop_box(info.width, info.height, aspect)
    out_fps = fps or info.fps
    video = ffmpeg.input(str(src)).video.filter("crop", cw, ch, x, y)
    extra: dict[str, object] = {}
    if fps is not None:
        video = video.filter("fps", fps=fps)
    else:
        extra["fps_mode"] = "passthrough"
    with writing(dest) as tmp:
        graph = video.output(
            str(tmp), f="mp4", vcodec="libx264", pix_fmt="yuv420p", crf=RENDITION_CRF, preset=PRESET,
            movflags="+faststart", an=None, sn=None, dn=None, g=max(1, round(out_fps / 2)), bf=2,
            flags="+cgop", **{"profile:v": "high"}, **extra,
        )
        _run_ffmpeg(graph, dest)
        out = probe(tmp)
        if (out.width, out.height) != (cw, ch) or (fps is None and out.frames != info.frames):
            raise MediaError(dest, f"rendition is {out.width}x{out.height}/{out.frames} frames, "
                                   f"expected {cw}x{ch}/{info.frames}")
    return dataclasses.replace(out, path=dest)


def read_frame(src: Path, at: float = 0.5) -> Image.Image:
    """The decoded frame at fraction ``at`` (0..1) of the clip, as an RGB PIL image."""
    src = Path(src)
    if not 0.0 <= at <= 1.0:
        raise ValueError(f"at must be within [0, 1], got {at!r}")
    try:
        with av.open(str(src)) as container:
            total = container.streams.video[0].frames  # from the MP4 sample table; 0 if unknown
        total = total or probe(src).frames
        target, image = min(int(at * total), total - 1), None
        with av.open(str(src)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                image = frame.to_image() if i >= target else None
                if image is not None:
                    break
    except _DECODE_ERRORS as exc:
        raise MediaError(src, f"not decodable: {type(exc).__name__}: {exc}") from exc
    if image is None:
        raise MediaError(src, f"not decodable: frame {target} of {total} not found")
    return image


def write_poster(src: Path, dest: Path, at: float = 0.5) -> Path:
    """Write a JPEG of the frame at fraction ``at`` of ``src`` to ``dest``, atomically."""
    image = read_frame(src, at)
    dest = Path(dest)
    with writing(dest) as tmp:
        image.save(tmp, format="JPEG", quality=90)
    return dest


def contact_sheet(
    paths: list[Path], dest: Path, columns: int = 4, thumb_height: int = 96, labels: list[str] | None = None
) -> Path:
    """Write a PNG grid of each clip's middle frame (optionally labelled) to ``dest``, atomically.

    Cells are as wide as the widest thumbnail; the sheet is ``min(columns, n)`` cells wide and
    ``ceil(n / columns)`` rows of ``thumb_height`` (+ a label strip when labels are given) high.
    """
    if not paths:
        raise ValueError("paths must not be empty")
    if columns < 1 or thumb_height < 1:
        raise ValueError(f"columns and thumb_height must be >= 1, got {columns}, {thumb_height}")
    if labels is not None and len(labels) != len(paths):
        raise ValueError(f"labels has {len(labels)} entries for {len(paths)} paths")
    thumbs = []
    for p in paths:
        img = read_frame(p, 0.5)
        width = max(1, round(img.width * thumb_height / img.height))
        thumbs.append(img.resize((width, thumb_height), Image.Resampling.LANCZOS))
    font = ImageFont.load_default()
    label_h = LABEL_HEIGHT if labels is not None else 0
    cell_w, cell_h = max(t.width for t in thumbs), thumb_height + label_h
    cols = min(columns, len(thumbs))
    sheet = Image.new("RGB", (cols * cell_w, math.ceil(len(thumbs) / cols) * cell_h), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for i, thumb in enumerate(thumbs):
        x, y = (i % cols) * cell_w, (i // cols) * cell_h
        sheet.paste(thumb, (x + (cell_w - thumb.width) // 2, y))
        if labels is not None:
            draw.text((x + 2, y + thumb_height + 1), labels[i], fill=(235, 235, 235), font=font)
    dest = Path(dest)
    with writing(dest) as tmp:
        sheet.save(tmp, format="PNG")
    return dest


def run_filtered(source: ffmpeg.nodes.OutputStream, sink: ffmpeg.nodes.OutputStream, width: int, height: int,
                 frame_filter, dest: Path) -> int:  # noqa: ANN001 — Callable[[np.ndarray], np.ndarray]
    """Two ffmpeg processes with Python between them: ``source`` writes raw RGB frames to its stdout, each
    goes through ``frame_filter`` (H, W, 3 uint8 → same), then into ``sink``'s stdin (which encodes it).
    Frame by frame, so memory stays at one frame whatever the length. Returns the frame count; MediaError
    with both stderr tails on failure."""
    quiet = ("-hide_banner", "-nostats", "-loglevel", "error")
    size = width * height * 3
    n = 0
    with tempfile.TemporaryFile() as err1, tempfile.TemporaryFile() as err2:
        p1 = subprocess.Popen(source.global_args(*quiet, "-nostdin").compile(cmd=get_ffmpeg_exe()),
                              stdout=subprocess.PIPE, stderr=err1, stdin=subprocess.DEVNULL)
        p2 = subprocess.Popen(sink.global_args(*quiet).overwrite_output().compile(cmd=get_ffmpeg_exe()),
                              stdin=subprocess.PIPE, stderr=err2, stdout=subprocess.DEVNULL)
        problem = None
        try:
            while True:
                chunk = p1.stdout.read(size)
                if len(chunk) < size:
                    break
                frame = np.frombuffer(chunk, np.uint8).reshape(height, width, 3)
                p2.stdin.write(np.ascontiguousarray(frame_filter(frame), dtype=np.uint8).tobytes())
                n += 1
        except BrokenPipeError:
            problem = "the encoder stopped reading"
        except Exception:
            p1.kill()
            p2.kill()
            raise
        finally:
            with contextlib.suppress(BrokenPipeError):
                p2.stdin.close()
            p1.stdout.close()
            rc1, rc2 = p1.wait(), p2.wait()
        if rc1 or rc2 or problem:
            tails = []
            for f in (err1, err2):
                f.seek(0)
                tails.append(f.read().decode("utf-8", "replace").strip()[-STDERR_TAIL:])
            raise MediaError(dest, f"ffmpeg failed ({problem or f'exit {rc1}/{rc2}'}): {' | '.join(t for t in tails if t) or 'no stderr'}")
    return n
