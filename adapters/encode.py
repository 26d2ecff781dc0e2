"""Renditions for delivery: framing, frame-rate conversion, lanczos upscale, the visible AI label, encoding.

One function per deliverable (video preset, poster, animated preview), each built with ffmpeg-python
on the imageio-ffmpeg binary and written atomically (see :mod:`adapters.media`). The video graph is

    source → [fill: crop to the aspect] → 16 fps → preset fps (repeat frames | motion interpolation)
           → lanczos scale ([fit: inside the frame, pad with the brand colour]) → label overlay → yuv420p

Interpolation and cropping run at the source size, before the upscale, where they are cheapest.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import ffmpeg
from PIL import Image, ImageDraw, ImageFont

from adapters import fonts, media
from adapters.media import MediaError, MediaInfo
from core.files import temp_path_for
from governance.delivery import AiLabel, DeliveryPolicy
from governance.renditions import PosterPreset, PreviewPreset, VideoPreset, rendition_frames

_MISSING = "\U0010fffd"  # a private-use code point no font draws: its mask is the font's "missing glyph"


@dataclass(frozen=True)
class LabelInfo:
    """What was drawn: the text, its locale, the font (file, family), and why a fallback was used (if it was)."""

    text: str
    locale: str
    font: str  # the font file
    note: str | None = None
    font_family: str | None = None  # its family and style, e.g. "IPAexGothic Regular"


@lru_cache(maxsize=32)
def _load(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def _font(path: str | None, size: int, text: str) -> tuple[ImageFont.FreeTypeFont | ImageFont.ImageFont, str]:
    """The brand's font if it names one; else the first installed font that draws every character of ``text``
    (DejaVu Sans for Latin, IPAexGothic or Noto CJK for Japanese: adapters/fonts.py), else the first one."""
    if path:
        if not Path(path).is_file():
            raise MediaError(path, "label font file not found (brand delivery.ai_label.font)")
        return _load(path, size), path
    candidates = [str(p) for p in fonts.label_fonts()]
    for candidate in candidates:
        font = _load(candidate, size)
        if _draws(font, text):
            return font, candidate
    if candidates:
        return _load(candidates[0], size), candidates[0]
    return ImageFont.load_default(size), "Pillow default font"


def _draws(font: ImageFont.FreeTypeFont | ImageFont.ImageFont, text: str) -> bool:
    """True if the font has a glyph for every visible character of ``text``."""
    missing = font.getmask(_MISSING)
    missing_sig = (missing.size, bytes(missing))
    for ch in set(text) - {" "}:
        m = font.getmask(ch)
        if (m.size, bytes(m)) == missing_sig:
            return False
    return True


def label_image(label: AiLabel, locale: str, height: int) -> tuple[Image.Image, LabelInfo]:
    """The label as an RGBA image for a video ``height`` pixels high: white text on a translucent box.

    Falls back to the ``en`` text, with a note saying why, when the font cannot draw the locale's text.
    """
    px = max(8, round(label.size * height))
    text, used = label.text_for(locale)
    font, font_name = _font(label.font, px, text)
    note = None
    if not _draws(font, text):
        note = f"font {Path(font_name).name} has no glyphs for the {used} text {text!r}; drew the en text"
        text, used = label.text["en"], "en"
        font, font_name = _font(label.font, px, text)
    left, top, right, bottom = font.getbbox(text)
    pad = max(2, round(px * 0.35))
    img = Image.new("RGBA", (right - left + 2 * pad, bottom - top + 2 * pad), (0, 0, 0, 150))
    ImageDraw.Draw(img).text((pad - left, pad - top), text, font=font, fill=(255, 255, 255, 255))
    family = " ".join(font.getname()) if isinstance(font, ImageFont.FreeTypeFont) else font_name
    return img, LabelInfo(text=text, locale=used, font=font_name, note=note, font_family=family)


def _label_xy(position: str, margin: int) -> tuple[str, str]:
    x = f"{margin}" if position.endswith("left") else f"W-w-{margin}"
    y = f"{margin}" if position.startswith("top") else f"H-h-{margin}"
    return x, y


def render_video(src: Path, dest: Path, preset: VideoPreset, policy: DeliveryPolicy, locale: str = "en",
                 threads: int = 0, frame_filter=None) -> tuple[MediaInfo, LabelInfo | None]:  # noqa: ANN001
    """Encode one video preset of ``src`` at ``dest`` (atomic). Returns what was measured and the label.

    ``frame_filter`` (RGB frame → RGB frame, e.g. the invisible watermark) runs on every finished frame, after
    the label and before the one final encode (the graph is cut there: raw frames through Python)."""
    src, dest = Path(src), Path(dest)
    info = media.probe(src)
    n_out = rendition_frames(info.frames, info.fps, preset.fps)
    w, h = preset.width, preset.height
    v = ffmpeg.input(str(src)).video
    if policy.framing == "fill":
        cw, ch, x, y = media.crop_box(info.width, info.height, preset.aspect)
        v = v.filter("crop", cw, ch, x, y)
    # the last frame is held for a second past the end, so the conversion always makes at least n_out frames
    # (whichever way it rounds, and minterpolate stops at the last input timestamp); `-frames:v n_out` below
    # stops the encoder at exactly the count rendition_frames decided
    v = v.filter("tpad", stop_mode="clone", stop_duration=1)
    if preset.frame_rate_conversion == "interpolate":
        v = v.filter(
            "minterpolate", fps=preset.fps, mi_mode="mci", mc_mode="aobmc", me_mode="bidir", vsbmc=1)
    else:
        v = v.filter("fps", fps=preset.fps)
    if policy.framing == "fill":
        v = v.filter("scale", w, h, flags="lanczos")
    else:
        v = v.filter("scale", w, h, force_original_aspect_ratio="decrease", force_divisible_by=2, flags="lanczos")
        v = v.filter("pad", w, h, "(ow-iw)/2", "(oh-ih)/2", color=policy.pad_color)
    v = v.filter("setsar", 1)
    label_info = None
    with media.writing(dest) as tmp:
        png = temp_path_for(dest, suffix=".label.png")
        try:
            if policy.ai_label is not None and policy.ai_label.enabled:
                img, label_info = label_image(policy.ai_label, locale, h)
                img.save(png)
                lx, ly = _label_xy(policy.ai_label.position, max(4, round(0.03 * min(w, h))))
                v = ffmpeg.overlay(v, ffmpeg.input(str(png)).video, x=lx, y=ly)
            if frame_filter is not None:  # everything so far → raw RGB frames → the filter → the encoder below
                source = v.filter("format", "rgb24").output("pipe:", format="rawvideo", pix_fmt="rgb24",
                                                            threads=threads, **{"frames:v": n_out})
                v = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{w}x{h}", framerate=preset.fps).video
                v = v.filter("scale", out_color_matrix="bt709", out_range="tv")
            v = v.filter("format", "yuv420p")
            common = dict(pix_fmt="yuv420p", g=preset.gop, keyint_min=preset.gop, an=None, sn=None, dn=None,
                          fps_mode="cfr", threads=threads, colorspace="bt709", color_primaries="bt709",
                          color_trc="bt709", color_range="tv", **{"frames:v": n_out})
            if preset.container == "mp4":
                graph = v.output(str(tmp), f="mp4", vcodec="libx264", crf=preset.crf, preset=preset.x264_preset,
                                 sc_threshold=0, bf=2, flags="+cgop", movflags="+faststart",
                                 **{"profile:v": "high"}, **common)
            else:
                graph = v.output(str(tmp), f="webm", vcodec="libvpx-vp9", crf=preset.crf_vp9, deadline="good",
                                 **{"b:v": 0, "cpu-used": 4, "row-mt": 1}, **common)
            if frame_filter is None:
                media._run_ffmpeg(graph, dest)
            else:
                media.run_filtered(source, graph, w, h, frame_filter, dest)
        finally:
            png.unlink(missing_ok=True)
        out = media.probe(tmp)
        if (out.width, out.height, out.frames) != (w, h, n_out):
            raise MediaError(dest, f"rendition is {out.width}x{out.height}/{out.frames} frames, "
                                   f"expected {w}x{h}/{n_out}")
    return dataclasses.replace(out, path=dest), label_info


def render_poster(rendition: Path, dest: Path, preset: PosterPreset) -> Path:
    """A JPEG of the frame at ``preset.at`` of a rendition (so it has the rendition's framing and label)."""
    image = media.read_frame(Path(rendition), preset.at)
    dest = Path(dest)
    with media.writing(dest) as tmp:
        image.save(tmp, format="JPEG", quality=preset.quality)
    return dest


def render_preview(rendition: Path, dest: Path, preset: PreviewPreset) -> Path:
    """A short looping animated preview (WebP or GIF) of the first seconds of a rendition."""
    dest = Path(dest)
    v = (ffmpeg.input(str(rendition), t=preset.seconds).video.filter("fps", fps=preset.fps)
         .filter("scale", preset.width, -2, flags="lanczos"))
    with media.writing(dest) as tmp:
        if preset.format == "webp":
            graph = v.output(str(tmp), f="webp", vcodec="libwebp_anim", loop=0, quality=75, an=None)
        else:
            split = v.split()
            palette = split[0].filter("palettegen", stats_mode="diff")
            graph = ffmpeg.filter([split[1], palette], "paletteuse").output(str(tmp), f="gif", loop=0, an=None)
        media._run_ffmpeg(graph, dest)
        with Image.open(tmp) as im:
            if getattr(im, "n_frames", 1) < 2:
                raise MediaError(dest, "preview has fewer than 2 frames")
    return dest


def image_info(path: Path) -> tuple[int, int, int]:
    """(width, height, frames) of a still or animated image."""
    with Image.open(path) as im:
        return im.width, im.height, getattr(im, "n_frames", 1)
