"""Every rendition preset, measured from the file with PyAV: codec, profile, pix_fmt, size, fps, duration,
GOP (closed, half the frame rate, 2 B-frames), moov before mdat; framing, label, poster, preview;
preset and brand-policy validation; the generation orientation chosen from the formats."""

from __future__ import annotations

import re
from pathlib import Path

import av
import numpy as np
import pytest

from adapters import encode, fonts, media
from governance.delivery import DeliveryPolicy, parse_delivery
from governance.renditions import PresetInvalid, load_presets, rendition_frames
from wan_tasks.plan import generation_size

SRC_W, SRC_H, SRC_T, SRC_FPS = 96, 64, 17, 16  # 17 frames at 16 fps = 1.0625 s
PRESETS = load_presets()
LABELLED = parse_delivery({"framing": "fill", "ai_label": {"text": {"en": "AI-generated", "ja": "AI生成"}}})


def moving(t: int, w: int = SRC_W, h: int = SRC_H) -> np.ndarray:
    """A moving pattern with texture, so that the encoder has motion to predict (and uses B-frames)."""
    x, y = np.meshgrid(np.arange(w), np.arange(h))
    r = 128 + 90 * np.sin((x - 3 * t) / 6.0)
    g = 128 + 90 * np.cos((y + 2 * t) / 5.0)
    b = (x * 2 + y * 3 + 7 * t) % 256
    return np.stack([r, g, b], -1).clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("src") / "raw.mp4"
    media.write_clip(np.stack([moving(t) for t in range(SRC_T)]), SRC_FPS, path)
    return path


@pytest.fixture(scope="module")
def rendered(source, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("renditions")
    return {p.name: encode.render_video(source, out / f"{p.name}.{p.extension}", p, LABELLED, "en")[0].path
            for p in PRESETS.video}


def _gop_facts(path: Path) -> tuple[list[int], list[str], list[bool], str]:
    """Keyframe indices, picture types, whether each keyframe packet holds an IDR slice, x264 options."""
    keys, idr, sei = [], [], ""
    with av.open(str(path)) as c:
        for i, pkt in enumerate(p for p in c.demux(video=0) if p.size):
            data = bytes(pkt)
            if pkt.is_keyframe:
                keys.append(i)
                nal_types, pos = [], 0
                while pos + 4 <= len(data):  # MP4 stores H.264 as 4-byte length-prefixed NAL units
                    n = int.from_bytes(data[pos:pos + 4], "big")
                    nal_types.append(data[pos + 4] & 0x1F)
                    pos += 4 + n
                idr.append(5 in nal_types)
            if not sei and b"x264 - core" in data:
                sei = data[data.index(b"x264 - core"):].split(b"\x00")[0].decode("ascii", "replace")
    with av.open(str(path)) as c:
        types = [{1: "I", 2: "P", 3: "B"}.get(int(f.pict_type), "?") for f in c.decode(video=0)]
    return keys, types, idr, sei


@pytest.mark.parametrize("preset", [p for p in PRESETS.video], ids=lambda p: p.name)
def test_every_preset_meets_its_delivery_spec(preset, rendered, source):
    src = media.probe(source)
    info = media.probe(rendered[preset.name])
    assert (info.width, info.height) == (preset.width, preset.height)
    assert info.fps == pytest.approx(preset.fps) and info.pix_fmt == "yuv420p"
    assert info.frames == rendition_frames(SRC_T, SRC_FPS, preset.fps)
    assert abs(info.duration - src.duration) <= 0.5 / preset.fps + 1e-3  # the clip's duration, to half a frame
    if preset.container == "webm":
        assert info.codec == "vp9"
        return
    assert (info.codec, info.profile) == ("h264", "High")
    assert info.faststart and media.mp4_faststart(info.path)  # moov before mdat
    keys, types, idr, sei = _gop_facts(info.path)
    assert keys == list(range(0, info.frames, preset.gop)), "a keyframe every half second, no others"
    assert all(idr), "every keyframe is an IDR frame: closed GOPs"
    assert "B" in types
    opts = dict(re.findall(r"(\w+)=(\S+)", sei))
    assert (opts["bframes"], opts["open_gop"], opts["keyint"], opts["scenecut"]) == ("2", "0", str(preset.gop), "0")


def test_frame_interpolation_keeps_duration_and_makes_new_frames(source, tmp_path):
    preset = PRESETS.video[1].model_copy(update={"frame_rate_conversion": "interpolate"})
    repeat = PRESETS.video[1]
    a, _ = encode.render_video(source, tmp_path / "interp.mp4", preset, DeliveryPolicy())
    b, _ = encode.render_video(source, tmp_path / "repeat.mp4", repeat, DeliveryPolicy())
    assert a.frames == b.frames == rendition_frames(SRC_T, SRC_FPS, preset.fps)
    assert a.duration == pytest.approx(b.duration)

    def duplicates(path: Path) -> int:
        with av.open(str(path)) as c:
            frames = [f.to_ndarray(format="gray").astype(int) for f in c.decode(video=0)]
        return sum(np.abs(x - y).mean() < 0.5 for x, y in zip(frames, frames[1:]))

    # 16 → 24 fps by repetition shows every other source frame twice; interpolation makes in-between frames
    assert duplicates(b.path) >= 6 and duplicates(a.path) <= 1


def test_fit_pads_with_the_brand_colour_and_fill_crops(source, tmp_path):
    portrait = next(p for p in PRESETS.video if p.aspect == "9:16")
    fit = parse_delivery({"framing": "fit", "pad_color": "#C8102E"})
    info, _ = encode.render_video(source, tmp_path / "fit.mp4", portrait, fit)
    top = np.asarray(media.read_frame(info.path, 0.5))[:200].reshape(-1, 3).mean(axis=0)
    assert np.abs(top - fit.pad_rgb).max() < 12  # the band above the picture is ACME red
    info, _ = encode.render_video(source, tmp_path / "fill.mp4", portrait, DeliveryPolicy(framing="fill"))
    top = np.asarray(media.read_frame(info.path, 0.5))[:200].reshape(-1, 3).mean(axis=0)
    assert np.abs(top - fit.pad_rgb).max() > 30  # picture, not padding


def test_label_is_drawn_where_the_brand_says_and_falls_back_honestly(source, tmp_path):
    preset = PRESETS.video[1]
    plain, _ = encode.render_video(source, tmp_path / "plain.mp4", preset, DeliveryPolicy())
    policy = parse_delivery({"ai_label": {"text": {"en": "AI-generated", "ja": "AI生成"}, "position": "top-left"}})
    labelled, label = encode.render_video(source, tmp_path / "label.mp4", preset, policy, locale="ja")
    a, b = (np.asarray(media.read_frame(p.path, 0.5)).astype(int) for p in (plain, labelled))
    h, w = a.shape[:2]
    box, _ = encode.label_image(policy.ai_label, "ja", h)  # where the label lies: from the margin, its size
    m = max(4, round(0.03 * min(w, h)))
    assert np.abs(a[m:m + box.height, m:m + box.width] - b[m:m + box.height, m:m + box.width]).mean() > 10
    assert np.abs(a[-h // 8:, -w // 4:] - b[-h // 8:, -w // 4:]).mean() < 2  # bottom-right did not change
    # the install ships a CJK font (adapters/fonts.py): the Japanese text is drawn, no fallback
    assert label.text == "AI生成" and label.locale == "ja" and label.note is None
    # a brand font without the glyphs falls back to the English text, and says why
    latin = parse_delivery({"ai_label": {"text": {"en": "AI-generated", "ja": "AI生成"},
                                         "font": str(fonts.latin_fonts()[0])}})
    _, fallback = encode.label_image(latin.ai_label, "ja", h)
    assert fallback.text == "AI-generated" and "no glyphs" in fallback.note


def test_poster_and_animated_previews(rendered, tmp_path):
    primary = rendered[PRESETS.video[0].name]
    poster = encode.render_poster(primary, tmp_path / "poster.jpg", PRESETS.poster)
    assert encode.image_info(poster) == (PRESETS.video[0].width, PRESETS.video[0].height, 1)
    webp = encode.render_preview(primary, tmp_path / "p.webp", PRESETS.preview)
    w, h, frames = encode.image_info(webp)
    assert (w, frames) == (PRESETS.preview.width, 13) and abs(h - w * 9 / 16) <= 2  # 1.06 s at 12 fps
    gif = encode.render_preview(primary, tmp_path / "p.gif", PRESETS.preview.model_copy(update={"format": "gif"}))
    assert encode.image_info(gif)[2] > 1


def test_presets_pick_by_format():
    assert [p.name for p in PRESETS.for_formats(["16:9", "9:16"])] == ["landscape-1080p", "landscape-720p",
                                                                      "portrait-1080p"]
    assert all(p.gop == p.fps // 2 for p in PRESETS.video)


@pytest.mark.parametrize("bad, field, message", [
    ("  - {name: a, aspect: '16:9', width: 1921, height: 1080, fps: 24}", "video[0].width", "even"),
    ("  - {name: a, aspect: '16:9', width: 1080, height: 1080, fps: 24}", "video[0]", "is not 16:9"),
    ("  - {name: a, aspect: '16:9', width: 1280, height: 720, fps: 16}", "video[0].fps", "greater than or equal"),
    ("  - {name: a, aspect: '16:9', width: 1280, height: 720, fps: 24, bitrate: 5}", "video[0].bitrate", "unknown"),
    ("  - {name: a, aspect: 16:9, width: 1280, height: 720, fps: 24}", "video[0].aspect", "Input should be"),
    ("  - {name: a, aspect: '1:1', width: 720, height: 720, fps: 24}\n"
     "  - {name: a, aspect: '1:1', width: 720, height: 720, fps: 30}", "video", "unique"),
])
def test_bad_presets_are_clear_errors(tmp_path, bad, field, message):
    path = tmp_path / "presets.yaml"
    path.write_text(f"# presets\nvideo:\n{bad}\n", "utf-8")
    with pytest.raises(PresetInvalid) as e:
        load_presets(path)
    p, row = e.value.problems[0], 2 if field == "video" else 3  # the line of the list, or of the preset
    assert (p.file, p.row, p.field) == (str(path), row, field) and message in p.message
    assert str(p).startswith(f"{path}:{row}:{field}: ")


def test_brand_delivery_block_is_validated(tmp_path):
    from governance.brand import BrandInvalid, load_brand

    base = "name: b\ndisplay_name: B\n"
    (tmp_path / "b.yaml").write_text(base, "utf-8")
    assert load_brand("b", tmp_path).delivery == DeliveryPolicy()  # profiles without the block still load
    for block, key in [("delivery: {framing: stretch}", "delivery.framing"),
                       ("delivery: {pad_color: red}", "delivery.pad_color"),
                       ("delivery: {ai_label: {text: {ja: AI生成}}}", "delivery.ai_label"),
                       ("delivery: {ai_label: {colour: white}}", "delivery.ai_label.colour")]:
        (tmp_path / "b.yaml").write_text(base + block + "\n", "utf-8")
        with pytest.raises(BrandInvalid) as e:
            load_brand("b", tmp_path)
        assert e.value.key == key
    acme = load_brand("acme", Path(__file__).parent.parent / "examples" / "brands")
    assert acme.delivery.framing == "fill" and acme.delivery.ai_label.text_for("ja-JP") == ("AI生成", "ja")
    assert acme.delivery.ai_label.text_for("pt") == ("AI-generated", "en")


def test_generation_orientation_follows_the_formats():
    assert generation_size(832, 480, ["9:16"]) == (480, 832)  # portrait deliverable → portrait generation
    assert generation_size(832, 480, ["9:16", "4:5"]) == (480, 832)
    assert generation_size(832, 480, ["16:9", "9:16", "1:1"]) == (832, 480)  # a tie keeps the brief's
    assert generation_size(832, 480, ["16:9", "4:5"]) == (832, 480)
    assert generation_size(480, 832, ["16:9"]) == (832, 480)
    assert generation_size(512, 512, ["9:16"]) == (512, 512)
