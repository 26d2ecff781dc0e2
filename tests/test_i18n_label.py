"""The Japanese AI label is drawn with a font the install ships (found without configuration), the rendition
says which font and text it used, and the label's pixels differ from no label and from the English label."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adapters import encode, fonts, media
from governance.delivery import DeliveryPolicy, parse_delivery
from governance.renditions import load_presets

POLICY = parse_delivery({"ai_label": {"text": {"en": "AI-generated", "ja": "AI生成"}, "position": "top-left",
                                      "size": 0.08}})


def test_a_cjk_font_is_found_without_configuration():
    found = fonts.cjk_fonts()
    assert found, "no Japanese font: japanize-matplotlib (a main dependency) ships IPAexGothic"
    assert found[0].name == "ipaexg.ttf" and found[0].is_file()
    assert fonts.needs_cjk("AI生成") and not fonts.needs_cjk("AI-generated")


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    x, y = np.meshgrid(np.arange(96), np.arange(64))
    clip = np.stack([np.stack([(x * 2 + t) % 256, (y * 3) % 256, np.full_like(x, 90)], -1) for t in range(9)])
    path = tmp_path_factory.mktemp("src") / "raw.mp4"
    media.write_clip(clip.astype(np.uint8), 16, path)
    return path


def test_japanese_label_is_drawn_and_recorded(source, tmp_path):
    preset = load_presets().video[1].model_copy(update={"width": 320, "height": 180})  # small: a quick encode
    plain, none = encode.render_video(source, tmp_path / "plain.mp4", preset, DeliveryPolicy())
    ja, ja_label = encode.render_video(source, tmp_path / "ja.mp4", preset, POLICY, locale="ja-JP")
    en, en_label = encode.render_video(source, tmp_path / "en.mp4", preset, POLICY, locale="en")
    assert none is None
    assert (ja_label.text, ja_label.locale, ja_label.note) == ("AI生成", "ja", None)
    assert Path(ja_label.font).name == "ipaexg.ttf" and ja_label.font_family == "IPAexGothic Regular"
    assert en_label.text == "AI-generated" and "DejaVu" in en_label.font_family
    a, b, c = (np.asarray(media.read_frame(p.path, 0.2)).astype(int) for p in (plain, ja, en))
    box = (slice(0, 30), slice(0, 70))  # the top-left label area at this size
    assert np.abs(a[box] - b[box]).mean() > 10  # the Japanese label is there
    assert np.abs(b[box] - c[box]).mean() > 5  # and it is not the English one
    assert np.abs(a[-40:, -80:] - b[-40:, -80:]).mean() < 2  # elsewhere the picture is untouched
