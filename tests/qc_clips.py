"""Clips with known defects, for calibrating the QC checks: ffmpeg lavfi sources and numpy frames.

Every clip is 160x96 at 16 fps, 33 frames (about 2 s) unless its defect is the size, rate or length.
``DEFECTS`` says which checks each clip is meant to fail; every other check must pass (or, where
``NOT_RUN`` says so, not run because the defect leaves it nothing to measure).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from imageio_ffmpeg import get_ffmpeg_exe

from adapters import media

W, H, FPS, T = 160, 96, 16, 33
TESTSRC = f"testsrc2=size={W}x{H}:rate={FPS}"

DEFECTS: dict[str, set[str]] = {
    "clean_testsrc": set(),
    "clean_motion": set(),
    "clean_slow": set(),
    "all_black": {"black_frames", "black_segments"},
    "black_segment": {"black_segments"},
    "frozen_segment": {"frozen_frames"},
    "flashing_4hz": {"flashing", "flicker"},  # a flash is a brightness jump too
    "red_flash_4hz": {"flashing"},  # saturated red against a grey of the same luma: no brightness change at all
    "flicker": {"flicker"},
    "heavy_blur": {"blur"},
    "blown_highlights": {"exposure"},
    "hard_cut": {"hard_cuts"},
    "wrong_size": {"size"},
    "wrong_fps": {"fps", "duration"},  # 33 frames at 24 fps last 1.375 s, not 2.06 s
    "wrong_frame_count": {"frame_count", "duration"},
    "wrong_pixel_format": {"container"},
    "undecodable": {"decodable"},
    "zero_byte": {"decodable"},
}
PICTURE = {"frozen_frames", "flicker", "exposure", "blur", "temporal_instability", "hard_cuts", "flashing",
           "black_frames", "black_segments", "container", "size", "fps", "frame_count", "duration", "palette"}
NOT_RUN: dict[str, set[str]] = {
    # every frame black: nothing left for the picture checks, which leave black frames to the black checks
    "all_black": {"flicker", "exposure", "blur", "temporal_instability", "hard_cuts"},
    "undecodable": PICTURE,
    "zero_byte": PICTURE,
}


def scene(t: float, width: int = W, height: int = H, variant: int = 0) -> np.ndarray:
    """A textured picture moving ``t`` pixels: gradient sky, a checkerboard floor, a moving disc and bars.
    ``variant=1`` is a different shot (other colours and layout), for hard cuts."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.empty((height, width, 3), np.float32)
    if variant == 0:
        img[..., 0] = 60 + 120 * x / width
        img[..., 1] = 80 + 60 * y / height
        img[..., 2] = 170 - 90 * x / width
        check = ((np.floor((x + t) / 16) + np.floor(y / 12)) % 2 == 0) & (y > height * 0.6)
        img[check] = (210, 200, 60)
        img[~check & (y > height * 0.6)] = (40, 60, 90)
        disc = (x - (20 + 1.5 * t)) ** 2 + (y - height * 0.35) ** 2 < (height * 0.15) ** 2
        img[disc] = (200, 40, 40)
        img[(np.abs(x - width * 0.7) < 3) & (y < height * 0.6)] = (20, 20, 20)
    else:
        img[..., 0] = 40 + 30 * np.sin(y / 5 + t / 4)
        img[..., 1] = 150 + 60 * y / height
        img[..., 2] = 90
        stripes = (np.floor((y - t / 4) / 6) % 2 == 0) & (x < width * 0.4)
        img[stripes] = (240, 230, 220)
        box = (np.abs(x - width * 0.7 - t) < 14) & (np.abs(y - height * 0.5) < 20)
        img[box] = (30, 30, 160)
    return img.clip(0, 255).astype(np.uint8)


def frames(n: int = T, speed: float = 1.0, **kw) -> np.ndarray:
    return np.stack([scene(speed * t, **kw) for t in range(n)])


def brightness(clip: np.ndarray, gains: np.ndarray) -> np.ndarray:
    return (clip.astype(np.float32) * gains[:, None, None, None]).clip(0, 255).astype(np.uint8)


def _lavfi(dest: Path, graph: str, n: int = T, pix_fmt: str = "yuv420p") -> Path:
    import ffmpeg

    (ffmpeg.input(graph, f="lavfi")
     .output(str(dest), vframes=n, pix_fmt=pix_fmt, vcodec="libx264", crf=12, preset="veryfast", an=None)
     .global_args("-hide_banner", "-loglevel", "error", "-nostdin")
     .overwrite_output().run(cmd=get_ffmpeg_exe(), capture_stdout=True, capture_stderr=True))
    return dest


def make_clips(folder: Path) -> dict[str, Path]:
    """Write every calibration clip into ``folder``; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}

    def np_clip(name: str, data: np.ndarray, fps: int = FPS) -> None:
        out[name] = media.write_clip(data, fps, folder / f"{name}.mp4").path

    def lavfi(name: str, graph: str, **kw) -> None:
        out[name] = _lavfi(folder / f"{name}.mp4", graph, **kw)

    lavfi("clean_testsrc", TESTSRC)
    np_clip("clean_motion", frames())
    np_clip("clean_slow", frames(speed=0.5))
    lavfi("all_black", f"color=black:size={W}x{H}:rate={FPS}")
    lavfi("black_segment", f"{TESTSRC},drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='between(t,0.75,1.24)'")
    held = frames()
    held[10:26] = held[10]  # 16 identical frames: frozen for 1 s
    np_clip("frozen_segment", held)
    gains = np.where((np.arange(T) // 2) % 2 == 1, 0.25, 1.0)  # 2 frames bright, 2 dark: 4 flashes/s
    np_clip("flashing_4hz", brightness(frames(), gains))
    red = frames()
    alternate = (np.arange(T) // 2) % 2 == 1
    red[:, H // 4:3 * H // 4, W // 4:3 * W // 4] = np.where(alternate[:, None, None, None],
                                                             np.uint8([255, 0, 0]), np.uint8([76, 76, 76]))
    np_clip("red_flash_4hz", red)
    spikes = np.ones(T)
    spikes[[4, 12, 20, 28]] = 1.18  # single-frame brightness jumps, 2 per second: flicker, not a WCAG flash
    np_clip("flicker", brightness(frames(), spikes))
    lavfi("heavy_blur", f"{TESTSRC},gblur=sigma=6")
    lavfi("blown_highlights", f"{TESTSRC},eq=brightness=0.4:contrast=2")
    np_clip("hard_cut", np.concatenate([frames(16), frames(T - 16, variant=1)]))
    lavfi("wrong_size", f"testsrc2=size={W - 16}x{H}:rate={FPS}")
    lavfi("wrong_fps", f"testsrc2=size={W}x{H}:rate=24")
    lavfi("wrong_frame_count", TESTSRC, n=T - 8)
    lavfi("wrong_pixel_format", TESTSRC, pix_fmt="yuv444p")
    (folder / "undecodable.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes())
    (folder / "zero_byte.mp4").write_bytes(b"")
    out["undecodable"], out["zero_byte"] = folder / "undecodable.mp4", folder / "zero_byte.mp4"
    return {name: out[name] for name in DEFECTS}
