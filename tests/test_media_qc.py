"""Media writing/probing/transcoding on tiny real clips encoded with real ffmpeg (QC: test_qc_calibration.py)."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import av
import ffmpeg
import numpy as np
import pytest
from imageio_ffmpeg import get_ffmpeg_exe
from PIL import Image

from adapters import media
from adapters.media import MediaError

W, H, T, FPS = 128, 64, 9, 16


def gradient(t: int, width: int = W, height: int = H) -> np.ndarray:
    """A smooth colour gradient that moves a few pixels per frame step ``t``."""
    x = np.arange(width, dtype=np.float32)[None, :]
    y = np.arange(height, dtype=np.float32)[:, None]
    r = 128 + 100 * np.sin(2 * np.pi * (x - 4 * t) / 64) + 0 * y
    g = 128 + 100 * np.cos(2 * np.pi * (y + 3 * t) / 48) + 0 * x
    b = 40 + 150 * (x + y) / (width + height) + 0 * t
    return np.stack([r, g, b], axis=-1).clip(0, 255).astype(np.uint8)


def clean_frames(n: int = T, width: int = W) -> np.ndarray:
    return np.stack([gradient(t, width) for t in range(n)])


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    made = {
        "clean": clean_frames(),
        "black": np.zeros((T, H, W, 3), np.uint8),
        # frames 3..11 identical: 8 of 11 consecutive pairs frozen
        "frozen": np.stack([gradient(min(t, 3)) for t in range(12)]),
        "wrong_size": clean_frames(width=96),
        "single": clean_frames(1),
    }
    out = {name: d / f"{name}.mp4" for name in made}
    for name, frames in made.items():
        media.write_clip(frames, FPS, out[name])
    (d / "zero.mp4").write_bytes(b"")
    (d / "garbage.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes())
    out["zero"], out["garbage"] = d / "zero.mp4", d / "garbage.mp4"
    return out


def bt709_limited(ctx: av.video.codeccontext.VideoCodecContext) -> bool:
    """Matrix, primaries and transfer tagged BT.709 (1), range limited/"tv" (1)."""
    return (ctx.colorspace, ctx.color_primaries, ctx.color_trc, ctx.color_range) == (1, 1, 1, 1)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- media ---------------------------------------------------------------------------------


def test_write_clip_round_trips(tmp_path: Path) -> None:
    frames = clean_frames()
    info = media.write_clip(frames, FPS, tmp_path / "clip.mp4")
    assert info.path == tmp_path / "clip.mp4"
    assert (info.frames, info.width, info.height, info.fps) == (T, W, H, float(FPS))
    assert (info.codec, info.pix_fmt, info.faststart) == ("h264", "yuv420p", True)
    assert info.duration == pytest.approx(T / FPS, abs=1e-3)
    assert info.size == info.path.stat().st_size and info.sha256 == media.sha256_file(info.path)
    assert media.probe(info.path) == info
    with av.open(str(info.path)) as c:
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
        assert not c.streams.audio
        assert bt709_limited(c.streams.video[0].codec_context)
    assert np.abs(decoded.astype(int) - frames).mean() < 4  # BT.709 tagged and decoded as such
    assert leftovers(tmp_path) == ["clip.mp4"]


def test_frames_sha256_covers_bytes_and_shape() -> None:
    frames = clean_frames(2)
    assert media.frames_sha256(frames) == media.frames_sha256(frames.copy())
    assert media.frames_sha256(frames) != media.frames_sha256(frames.reshape(2, W, H, 3))
    changed = frames.copy()
    changed[1, 0, 0, 0] ^= 1
    assert media.frames_sha256(frames) != media.frames_sha256(changed)
    with pytest.raises(ValueError, match="uint8"):
        media.frames_sha256(frames.astype(np.float32))


@pytest.mark.parametrize(
    ("aspect", "size"), [("16:9", (112, 64)), ("9:16", (36, 64)), ("1:1", (64, 64)), ("4:5", (50, 64))]
)
def test_transcode_rendition(clips: dict[str, Path], tmp_path: Path, aspect: str, size: tuple[int, int]) -> None:
    info = media.transcode_rendition(clips["clean"], tmp_path / "r.mp4", aspect)
    assert (info.width, info.height) == size
    assert (info.codec, info.profile, info.pix_fmt, info.faststart) == ("h264", "High", "yuv420p", True)
    assert (info.frames, info.fps) == (T, float(FPS))
    with av.open(str(info.path)) as c:
        assert not c.streams.audio
        assert bt709_limited(c.streams.video[0].codec_context)
    assert leftovers(tmp_path) == ["r.mp4"]


def test_transcode_rendition_changes_fps(clips: dict[str, Path], tmp_path: Path) -> None:
    info = media.transcode_rendition(clips["clean"], tmp_path / "r24.mp4", "1:1", fps=24)
    assert info.fps == 24.0 and (info.width, info.height) == (64, 64)
    assert info.frames == pytest.approx(T * 24 / FPS, abs=1)


def test_crop_box() -> None:
    assert media.crop_box(1920, 1080, "9:16") == (606, 1080, 657, 0)
    assert media.crop_box(720, 1280, "16:9") == (720, 404, 0, 438)
    assert media.crop_box(1080, 1920, "4:5") == (1080, 1350, 0, 285)
    with pytest.raises(ValueError, match="aspect"):
        media.crop_box(128, 64, "2:1")


def test_poster_is_middle_frame_jpeg(clips: dict[str, Path], tmp_path: Path) -> None:
    dest = media.write_poster(clips["clean"], tmp_path / "poster.jpg")
    assert dest.read_bytes()[:3] == b"\xff\xd8\xff"
    with Image.open(dest) as img:
        assert (img.format, img.size) == ("JPEG", (W, H))
        poster = np.asarray(img.convert("RGB"), dtype=int)
    errors = [np.abs(poster - gradient(t)).mean() for t in range(T)]
    assert int(np.argmin(errors)) == T // 2
    assert leftovers(tmp_path) == ["poster.jpg"]


def test_contact_sheet(clips: dict[str, Path], tmp_path: Path) -> None:
    paths = [clips["clean"], clips["wrong_size"], clips["black"]]
    sheet = media.contact_sheet(paths, tmp_path / "sheet.png", columns=2, thumb_height=32,
                                labels=["clean", "narrow", "black"])
    with Image.open(sheet) as img:  # cells 64 wide (widest thumb), 2 columns, 2 rows of 32 + label
        assert (img.format, img.size) == ("PNG", (2 * 64, 2 * (32 + media.LABEL_HEIGHT)))
    plain = media.contact_sheet(paths, tmp_path / "plain.png", columns=4, thumb_height=32)
    with Image.open(plain) as img:
        assert img.size == (3 * 64, 32)
    with pytest.raises(ValueError, match="labels"):
        media.contact_sheet(paths, tmp_path / "x.png", labels=["one"])
    assert leftovers(tmp_path) == ["plain.png", "sheet.png"]


def test_faststart_parser(tmp_path: Path, clips: dict[str, Path]) -> None:
    def box(kind: bytes, payload: bytes = b"", large: bool = False) -> bytes:
        if large:
            return struct.pack(">I4sQ", 1, kind, 16 + len(payload)) + payload
        return struct.pack(">I4s", 8 + len(payload), kind) + payload

    first = tmp_path / "first.mp4"
    first.write_bytes(box(b"ftyp", b"isom") + box(b"free", b"x" * 4, large=True) + box(b"moov") + box(b"mdat", b"y"))
    last = tmp_path / "last.mp4"
    last.write_bytes(box(b"ftyp", b"isom") + box(b"mdat", b"y" * 9, large=True) + box(b"moov"))
    assert media.mp4_faststart(first) and not media.mp4_faststart(last)
    # and a real file muxed without +faststart
    plain = tmp_path / "plain.mp4"
    ffmpeg.input(str(clips["clean"])).output(str(plain), c="copy").run(cmd=get_ffmpeg_exe(), quiet=True)
    assert not media.mp4_faststart(plain) and media.mp4_faststart(clips["clean"])


def test_probe_rejects_undecodable(clips: dict[str, Path]) -> None:
    for name in ("zero", "garbage"):
        with pytest.raises(MediaError, match="not decodable") as err:
            media.probe(clips[name])
        assert err.value.path == clips[name] and str(err.value).startswith(f"{clips[name]}: ")
    restored = pickle.loads(pickle.dumps(err.value))
    assert str(restored) == str(err.value)


@pytest.mark.parametrize(
    ("frames", "match"),
    [
        (clean_frames(3).astype(np.float32), "uint8"),
        (clean_frames(3)[..., :2], "shape"),
        (np.zeros((3, 63, 127, 3), np.uint8), "even"),
        (np.zeros((0, 64, 64, 3), np.uint8), "shape"),
    ],
)
def test_write_clip_rejects_bad_frames(tmp_path: Path, frames: np.ndarray, match: str) -> None:
    with pytest.raises(MediaError, match=match):
        media.write_clip(frames, FPS, tmp_path / "bad.mp4")
    assert leftovers(tmp_path) == []


def test_failed_write_leaves_no_temp_file(tmp_path: Path, clips: dict[str, Path]) -> None:
    (tmp_path / "taken.mp4").mkdir()  # rename onto a folder fails after the temp file is complete
    with pytest.raises(MediaError, match="could not write"):
        media.write_clip(clean_frames(3), FPS, tmp_path / "taken.mp4")
    with pytest.raises(MediaError, match="could not write"):
        media.write_poster(clips["clean"], tmp_path / "taken.mp4")
    with pytest.raises(MediaError, match="not decodable"):
        media.transcode_rendition(clips["garbage"], tmp_path / "r.mp4", "1:1")
    assert leftovers(tmp_path) == ["taken.mp4"] and leftovers(tmp_path / "taken.mp4") == []


def test_ffmpeg_failure_carries_stderr(tmp_path: Path, clips: dict[str, Path]) -> None:
    graph = ffmpeg.input(str(clips["garbage"])).output(str(tmp_path / "out.mp4"))
    with pytest.raises(MediaError, match="(?s)ffmpeg failed: .*Invalid data") as err:
        media._run_ffmpeg(graph, tmp_path / "out.mp4")
    assert err.value.path == tmp_path / "out.mp4"


def test_writers_create_the_destination_folder(tmp_path: Path, clips: dict[str, Path]) -> None:
    info = media.write_clip(clean_frames(2), FPS, tmp_path / "a" / "b" / "clip.mp4")
    assert info.frames == 2 and leftovers(tmp_path / "a" / "b") == ["clip.mp4"]
    assert media.write_poster(clips["clean"], tmp_path / "p" / "poster.jpg").is_file()
