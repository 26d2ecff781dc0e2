"""Intake of what the generation engine needs from a brief: conditioning images (I2V), the brand LoRA,
and whether the brief fits its model's Wan variant. Bad input is a `file:row:field` problem, never a traceback.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT

from governance.brief import BriefInvalid, load_brief
from governance.fit import check_fit

HEAD = """campaign: media-test
brand: acme
model: {model}
{extra}defaults: {{num_frames: 5, width: 64, height: 32, variants: 1, formats: ["16:9"], steps: 2}}
items:
"""


def write(tmp_path: Path, items: str, model: str = "wan-i2v@champion", extra: str = "") -> Path:
    (tmp_path / "brands").mkdir(exist_ok=True)
    (tmp_path / "brands" / "acme.yaml").write_text((EXAMPLES / "brands" / "acme.yaml").read_text("utf-8"), "utf-8")
    brief = tmp_path / "brief.yaml"
    brief.write_text(HEAD.format(model=model, extra=extra) + items, "utf-8")
    return brief


def problems(brief: Path) -> list:
    with pytest.raises(BriefInvalid) as e:
        load_brief(brief)
    return e.value.problems


def test_good_image_is_resolved_and_hashed(tmp_path, still_image):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "p.png").write_bytes(still_image.read_bytes())
    b = load_brief(write(tmp_path, '  - id: a\n    prompt: "a red sneaker"\n    image: img/p.png\n'))
    spec = b.items[0]
    assert Path(spec.image) == (tmp_path / "img" / "p.png").resolve() and len(spec.image_sha256) == 64
    assert check_fit(b, "wan-tiny-i2v") == []
    other = tmp_path / "img" / "p.png"
    from PIL import Image

    Image.new("RGB", (40, 40), "blue").save(other)
    assert load_brief(tmp_path / "brief.yaml").sha256 != b.sha256  # new image bytes: a new brief version


def test_bad_or_missing_image_is_a_row_level_error(tmp_path, still_image):
    (tmp_path / "p.png").write_bytes(still_image.read_bytes())
    (tmp_path / "notes.png").write_text("not an image")
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "tiny.png")
    brief = write(tmp_path, '  - id: ok\n    prompt: "a red sneaker"\n    image: p.png\n'
                            '  - id: gone\n    prompt: "a red sneaker"\n    image: missing.jpg\n'
                            '  - id: text\n    prompt: "a red sneaker"\n    image: notes.png\n'
                            '  - id: small\n    prompt: "a red sneaker"\n    image: tiny.png\n')
    ps = problems(brief)
    assert {(p.row, p.field) for p in ps} == {(11, "image"), (14, "image"), (17, "image")}  # the lines naming them
    msgs = {p.row: p.message for p in ps}
    assert "does not exist" in msgs[11] and "cannot be read as an image" in msgs[14] and "8x8" in msgs[17]
    assert all(p.file == str(brief) for p in ps)


def test_csv_image_column_is_relative_to_the_csv(tmp_path, still_image):
    (tmp_path / "shots").mkdir()
    (tmp_path / "shots" / "p.png").write_bytes(still_image.read_bytes())
    (tmp_path / "shots" / "list.csv").write_text("id,prompt,image\na,a red sneaker,p.png\nb,a blue sneaker,nope.png\n")
    brief = write(tmp_path, "").read_text().replace("items:\n", "items_csv: shots/list.csv\n")
    (tmp_path / "brief.yaml").write_text(brief)
    ps = problems(tmp_path / "brief.yaml")
    assert [(Path(p.file).name, p.row, p.field) for p in ps] == [("list.csv", 3, "image")]


def test_the_brief_must_fit_the_models_variant(tmp_path, still_image):
    (tmp_path / "p.png").write_bytes(still_image.read_bytes())
    i2v = load_brief(write(tmp_path, '  - id: a\n    prompt: "a red sneaker"\n'))
    with pytest.raises(BriefInvalid, match="needs a conditioning image"):
        check_fit(i2v, "wan-tiny-i2v")
    t2v = load_brief(write(tmp_path, '  - id: a\n    prompt: "a red sneaker"\n    image: p.png\n', "wan-t2v@champion"))
    with pytest.raises(BriefInvalid, match="text-to-video"):
        check_fit(t2v, "wan-tiny")
    sized = load_brief(write(tmp_path, '  - id: a\n    prompt: "a red sneaker"\n    width: 1280\n    height: 720\n'
                                       '  - id: b\n    prompt: "a red sneaker"\n    width: 640\n    height: 368\n',
                             "wan-t2v@champion"))
    with pytest.raises(BriefInvalid) as e:
        check_fit(sized, "wan2.1-t2v-1.3b")
    [p] = e.value.problems
    assert (p.row, p.field) == (10, "width") and "640x368 is not a size wan2.1-t2v-1.3b supports" in p.message
    ok = load_brief(write(tmp_path, '  - id: a\n    prompt: "a red sneaker"\n    width: 1280\n    height: 720\n',
                          "wan-t2v@champion"))
    [warning] = check_fit(ok, "wan2.1-t2v-1.3b")
    assert ":6:width: advised against" in warning and "less stable" in warning


def test_brand_lora_is_checked_and_hashed(tmp_path, tiny_lora):
    import shutil

    shutil.copytree(tiny_lora, tmp_path / "loras" / "style")
    item = '  - id: a\n    prompt: "a red sneaker"\n'
    b = load_brief(write(tmp_path, item, "wan-t2v@champion", "lora: {path: loras/style, scale: 0.7}\n"))
    assert b.lora.scale == 0.7 and b.lora.path.endswith("pytorch_lora_weights.safetensors") and len(b.lora.sha256) == 64
    (tmp_path / "fake.safetensors").write_text("nope")
    ps = problems(write(tmp_path, item, "wan-t2v@champion", "lora: {path: fake.safetensors, scale: 9}\n"))
    assert {p.field for p in ps} == {"lora.path", "lora.scale"} and all(p.row == 4 for p in ps)
    ps = problems(write(tmp_path, item, "wan-t2v@champion", "lora: {path: nowhere/}\n"))
    assert [(p.field, "does not exist" in p.message) for p in ps] == [("lora.path", True)]


def test_cli_validate_names_file_row_and_field_for_a_bad_image(tmp_path):
    brief = write(tmp_path, '  - id: a\n    prompt: "a red sneaker"\n    image: missing.png\n')
    env = {"WANFLOW_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-m", "cli.main", "validate", str(brief)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{brief}:8:image: image " in r.stderr and "does not exist" in r.stderr
