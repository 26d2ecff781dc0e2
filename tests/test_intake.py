"""Brief intake: YAML/CSV parsing, problem reporting with locations, brand text policy."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from governance.brand import BrandInvalid, BrandNotFound, BrandProfile, load_brand
from governance.brief import BriefInvalid, Problem, load_brief
from governance.text_policy import find_blocked_terms, normalize_text

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
BRAND = 'name: acme\ndisplay_name: ACME\nblocked_terms: ["nike", "ギャンブル", "competitor-x"]\n'
# Line numbers: campaign 1, brand 2, model 3, defaults 4, num_frames 5, width 6, height 7,
# formats 8, items 9; the first item starts on line 10.
HEAD = """campaign: test-camp
brand: acme
model: wan-t2v@champion
defaults:
  num_frames: 9
  width: 128
  height: 64
  formats: ["16:9"]
items:
"""
GOOD_ITEM = '  - id: ok\n    prompt: "A red sneaker on a table"\n'


def write(tmp_path: Path, body: str, head: str = HEAD, brand: str | None = BRAND) -> Path:
    if brand is not None:
        (tmp_path / "brands").mkdir(exist_ok=True)
        (tmp_path / "brands" / "acme.yaml").write_text(brand, encoding="utf-8")
    path = tmp_path / "brief.yaml"
    path.write_text(head + body, encoding="utf-8")
    return path


def problems(path: Path, **kw) -> list[Problem]:
    with pytest.raises(BriefInvalid) as info:
        load_brief(path, **kw)
    return info.value.problems


def locs(ps: list[Problem]) -> set[tuple[str, int | None, str]]:
    return {(Path(p.file).name, p.row, p.field) for p in ps}


# --- valid briefs ---------------------------------------------------------------------------

def test_example_brief_loads_with_rejected_row() -> None:
    brief = load_brief(EXAMPLES / "brief.yaml", known_models=lambda ref: ref == "wan-t2v@champion")
    assert brief.campaign == "spring-launch" and brief.model_ref == "wan-t2v@champion"
    assert brief.brand.name == "acme" and brief.brand.display_name == "ACME Footwear"
    assert [i.key for i in brief.items] == ["hero-shot", "city-run", "sakura-walk"]
    hero, city, sakura = brief.items
    assert (hero.num_frames, hero.fps, hero.width, hero.height) == (9, 16, 128, 64)
    assert (hero.variants, hero.steps, hero.guidance, hero.seed) == (2, 4, 5.0, 1234)
    assert hero.formats == ("16:9", "9:16", "1:1") and city.formats == ("9:16",)
    assert sakura.locale == "ja" and hero.locale == "en"
    assert hero.row == 17 and hero.source_file == str(EXAMPLES / "brief.yaml")
    assert len(brief.rejected) == 1
    rej = brief.rejected[0]
    assert rej.item.key == "versus-shot" and rej.field == "prompt"
    assert rej.reason == 'blocked term "nike" (brand acme)'
    assert len(brief.sha256) == 64


def test_csv_brief_loads(tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "prompts.csv", tmp_path / "prompts.csv")
    head = HEAD.replace("items:\n", "items_csv: prompts.csv\n")
    brief = load_brief(write(tmp_path, "", head=head))
    assert [i.key for i in brief.items] == ["hero-shot", "trail-run", "sakura-walk"]
    assert [i.row for i in brief.items] == [2, 3, 4]
    assert brief.items[0].source_file == str(tmp_path / "prompts.csv")
    assert brief.items[1].num_frames == 13 and brief.items[0].num_frames == 9
    assert brief.items[1].negative_prompt == "blurry, text" and brief.items[2].locale == "ja"
    # the hash covers the CSV too
    import hashlib
    expected = hashlib.sha256((tmp_path / "brief.yaml").read_bytes() + (tmp_path / "prompts.csv").read_bytes())
    assert brief.sha256 == expected.hexdigest()


def test_seconds_converted_to_4k_plus_1(tmp_path: Path) -> None:
    head = HEAD.replace("  num_frames: 9\n", "  seconds: 0.5\n  fps: 16\n")
    brief = load_brief(write(tmp_path, GOOD_ITEM, head=head))
    assert brief.items[0].num_frames == 9  # 0.5 s * 16 fps = 8 -> nearest 4k+1 is 9
    head = HEAD.replace("  num_frames: 9\n", "  seconds: 0.1\n")
    assert load_brief(write(tmp_path, GOOD_ITEM, head=head)).items[0].num_frames == 5


# --- bad input, each located --------------------------------------------------------------

def test_missing_file(tmp_path: Path) -> None:
    (p,) = problems(tmp_path / "nope.yaml")
    assert (p.row, p.field) == (None, "file") and "cannot read" in p.message


def test_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "brief.yaml"
    path.write_text("campaign: x\nitems:\n  - id: [unclosed\n  prompt: x\n", encoding="utf-8")
    (p,) = problems(path)
    assert p.field == "yaml" and p.row == 4 and "not valid YAML" in p.message


def test_top_level_not_mapping(tmp_path: Path) -> None:
    (p,) = problems(write(tmp_path, "", head="- just\n- a list\n"))
    assert (p.row, p.field) == (1, "file") and "mapping" in p.message


def test_missing_required_fields(tmp_path: Path) -> None:
    ps = problems(write(tmp_path, "", head="defaults:\n  fps: 16\n"))
    assert locs(ps) >= {("brief.yaml", 1, f) for f in ("campaign", "brand", "model", "items")}


def test_empty_prompt(tmp_path: Path) -> None:
    (p,) = problems(write(tmp_path, GOOD_ITEM + '  - id: blank\n    prompt: "   "\n'))
    assert (p.row, p.field, p.message) == (13, "prompt", "prompt is empty")


def test_prompt_too_long(tmp_path: Path) -> None:
    (p,) = problems(write(tmp_path, f'  - id: long\n    prompt: "{"x" * 5000}"\n'))
    assert (Path(p.file).name, p.row, p.field) == ("brief.yaml", 11, "prompt")
    assert "5000 characters" in p.message


def test_duplicate_ids_reported_at_each_duplicate(tmp_path: Path) -> None:
    body = GOOD_ITEM + '  - id: other\n    prompt: "fine prompt"\n' + GOOD_ITEM + GOOD_ITEM
    ps = problems(write(tmp_path, body))
    assert [(p.row, p.field) for p in ps] == [(14, "id"), (16, "id")]
    assert all("duplicate id 'ok' (first at row 10)" == p.message for p in ps)


def test_num_frames_not_4k_plus_1(tmp_path: Path) -> None:
    (p,) = problems(write(tmp_path, '  - id: a\n    prompt: "a sneaker"\n    num_frames: 10\n'))
    assert (p.row, p.field) == (12, "num_frames") and "4k+1" in p.message and "10" in p.message


def test_bad_default_reported_once_at_defaults(tmp_path: Path) -> None:
    head = HEAD.replace("num_frames: 9", "num_frames: 10")
    (p,) = problems(write(tmp_path, GOOD_ITEM + '  - id: b\n    prompt: "another one"\n', head=head))
    assert (Path(p.file).name, p.row, p.field) == ("brief.yaml", 5, "defaults.num_frames")


def test_width_not_multiple_of_16(tmp_path: Path) -> None:
    (p,) = problems(write(tmp_path, '  - id: a\n    prompt: "a sneaker"\n    width: 100\n'))
    assert (p.row, p.field) == (12, "width") and "multiple of 16" in p.message


def test_unknown_format(tmp_path: Path) -> None:
    body = '  - id: a\n    prompt: "a sneaker"\n    formats: ["16:9", "21:9"]\n'
    (p,) = problems(write(tmp_path, body))
    assert (p.row, p.field) == (12, "formats") and "'21:9'" in p.message


def test_unknown_brand(tmp_path: Path) -> None:
    (p,) = problems(write(tmp_path, GOOD_ITEM, head=HEAD.replace("brand: acme", "brand: globex")))
    assert (p.row, p.field) == (2, "brand") and "globex" in p.message


def test_malformed_and_unknown_model_refs(tmp_path: Path) -> None:
    (p,) = problems(write(tmp_path, GOOD_ITEM, head=HEAD.replace("wan-t2v@champion", "wan-t2v:latest")))
    assert (p.row, p.field) == (3, "model") and "malformed" in p.message
    (p,) = problems(write(tmp_path, GOOD_ITEM, head=HEAD.replace("wan-t2v@champion", "sdxl@champion")))
    assert (p.row, p.field) == (3, "model") and "unknown model name" in p.message
    assert load_brief(write(tmp_path, GOOD_ITEM, head=HEAD.replace("@champion", "/3"))).model_ref == "wan-t2v/3"


def test_unknown_model_alias_from_registry(tmp_path: Path) -> None:
    seen: list[str] = []

    def known(ref: str) -> bool:
        seen.append(ref)
        return False

    (p,) = problems(write(tmp_path, GOOD_ITEM), known_models=known)
    assert seen == ["wan-t2v@champion"]
    assert (p.row, p.field) == (3, "model") and p.message.startswith("unknown model alias")


def test_registry_error_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    def down(ref: str) -> bool:
        raise ConnectionError("registry down")

    (p,) = problems(write(tmp_path, GOOD_ITEM), known_models=down)
    assert (p.row, p.field) == (3, "model") and "registry down" in p.message


def test_num_frames_and_seconds_together(tmp_path: Path) -> None:
    head = HEAD.replace("  num_frames: 9\n", "  num_frames: 9\n  seconds: 1\n")
    (p,) = problems(write(tmp_path, GOOD_ITEM, head=head))
    assert (p.row, p.field) == (6, "defaults.seconds")


def test_yaml_merge_keys_and_duplicate_keys(tmp_path: Path) -> None:
    body = GOOD_ITEM.replace("  - id", "  - &base\n    id") + "  - <<: *base\n    id: two\n    width: 100\n"
    (p,) = problems(write(tmp_path, body))
    assert (p.row, p.field) == (15, "width")
    (p,) = problems(write(tmp_path, GOOD_ITEM + '    prompt: "again"\n'))
    assert (p.row, p.field, p.message) == (12, "prompt", "duplicate key 'prompt'")


def test_csv_missing_prompt_column(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("id,promt\na,hello there\n", encoding="utf-8")
    ps = problems(write(tmp_path, "", head=HEAD.replace("items:\n", "items_csv: p.csv\n")))
    assert ("p.csv", 1, "prompt") in locs(ps)
    assert ("p.csv", 1, "promt") in locs(ps)  # the unknown column is named too


def test_csv_missing_file(tmp_path: Path) -> None:
    (p,) = problems(write(tmp_path, "", head=HEAD.replace("items:\n", "items_csv: gone.csv\n")))
    assert (p.row, p.field) == (9, "items_csv") and "gone.csv" in p.message


def test_csv_row_problems_use_physical_lines(tmp_path: Path) -> None:
    csv_text = 'id,prompt,width\na,"multi\nline prompt",128\nb,"",128\nc,a sneaker,100\n'
    (tmp_path / "p.csv").write_text(csv_text, encoding="utf-8")
    ps = problems(write(tmp_path, "", head=HEAD.replace("items:\n", "items_csv: p.csv\n")))
    assert locs(ps) == {("p.csv", 4, "prompt"), ("p.csv", 5, "width")}


def test_unknown_key_typo(tmp_path: Path) -> None:
    ps = problems(write(tmp_path, '  - id: a\n    promt: "a sneaker"\n'))
    typo = [p for p in ps if p.field == "promt"]
    assert len(typo) == 1 and typo[0].row == 11
    assert "unknown key 'promt'" in typo[0].message and "did you mean 'prompt'" in typo[0].message
    (p,) = problems(write(tmp_path, GOOD_ITEM, head="campain: x\n" + HEAD))
    assert (p.row, p.field) == (1, "campain")


def test_wrong_types(tmp_path: Path) -> None:
    ps = problems(write(tmp_path, '  - id: a\n    prompt: "a sneaker"\n    variants: "two"\n'))
    assert locs(ps) == {("brief.yaml", 12, "variants")}


def test_several_problems_reported_together(tmp_path: Path) -> None:
    head = HEAD.replace("brand: acme", "brand: globex").replace("wan-t2v@champion", "wan")
    body = (GOOD_ITEM + GOOD_ITEM + '  - id: b\n    prompt: ""\n    width: 100\n'
            '  - id: c\n    prompt: "a sneaker"\n    num_frames: 10\n    formats: ["21:9"]\n')
    ps = problems(write(tmp_path, body, head=head))
    assert locs(ps) == {
        ("brief.yaml", 2, "brand"), ("brief.yaml", 3, "model"), ("brief.yaml", 12, "id"),
        ("brief.yaml", 15, "prompt"), ("brief.yaml", 16, "width"),
        ("brief.yaml", 19, "num_frames"), ("brief.yaml", 20, "formats"),
    }
    assert str(ps[0]).startswith(str(tmp_path / "brief.yaml") + ":")


def test_brand_profile_errors(tmp_path: Path) -> None:
    with pytest.raises(BrandNotFound):
        load_brand("globex", tmp_path)
    with pytest.raises(BrandNotFound):
        load_brand("../etc", tmp_path)
    (tmp_path / "acme.yaml").write_text(BRAND + "blocked_term: [x]\n", encoding="utf-8")
    with pytest.raises(BrandInvalid) as info:
        load_brand("acme", tmp_path)
    assert info.value.key == "blocked_term" and "acme.yaml" in str(info.value)
    (p,) = problems(write(tmp_path, GOOD_ITEM, brand=BRAND + "colour: red\n"))
    assert (Path(p.file).name, p.field) == ("acme.yaml", "colour")


def test_prompt_table_rules_standalone() -> None:
    from governance.brief_rules import check_prompt_table
    from governance.brief_schema import ItemSpec

    ok = ItemSpec(key="a", prompt="a sneaker", negative_prompt="", locale="en", num_frames=9, fps=16, width=64,
                  height=64, variants=1, formats=("16:9", "4:5"), steps=4, guidance=5.0, seed=0, source_file="t.csv",
                  row=2)
    bad = dataclasses.replace(ok, row=3, num_frames=10, width=100, locale="english!", prompt="ab", seed=-1)
    got = [(p.row, p.field) for p in check_prompt_table([ok, bad], allowed_formats=["16:9"])]
    assert sorted(got) == [(2, "formats"), (3, "formats"), (3, "id"), (3, "locale"),
                           (3, "num_frames"), (3, "prompt"), (3, "seed"), (3, "width")]
    assert check_prompt_table([ok]) == []
    (p,) = check_prompt_table([dataclasses.replace(ok, key="bad/id")])
    assert (p.file, p.row, p.field, p.message) == (
        "t.csv", 2, "id", "id 'bad/id' must be 1..64 letters or digits (any script), - _ . ・ or spaces, "
                          "starting with a letter or digit")
    assert check_prompt_table([dataclasses.replace(ok, key="桜 並木・ＳＡＫＵＲＡ１")]) == []  # Unicode ids (issue 19)


# --- text policy ---------------------------------------------------------------------------

PROFILE = BrandProfile("acme", "ACME", ("nike", "ギャンブル", "competitor-x", "暴力"), Path("acme.yaml"))


def test_normalize_text() -> None:
    assert normalize_text("ＮＩＫＥ") == "nike"
    assert normalize_text("ギャンブル") == normalize_text("ぎゃんぶる") == normalize_text("ｷﾞｬﾝﾌﾞﾙ")
    assert normalize_text("  A\u200bB \t c ") == "ab c"


@pytest.mark.parametrize("text", [
    "ＮＩＫＥ shoes", "NiKe runners", "a nike-branded shoe", "nike", "(Nike)", "nikeのスニーカー",
    "ぎゃんぶるの場面", "ｷﾞｬﾝﾌﾞﾙ", "best ＣＯＭＰＥＴＩＴＯＲ-Ｘ deal",
])
def test_blocked_terms_found(text: str) -> None:
    assert find_blocked_terms(text, PROFILE)


@pytest.mark.parametrize("text", ["snikers on sale", "nikeless", "a spike heel", "competitor-xyz", "暴れる"])
def test_innocent_words_not_blocked(text: str) -> None:
    assert find_blocked_terms(text, PROFILE) == []


def test_blocked_terms_reported_in_profile_spelling() -> None:
    assert find_blocked_terms("暴力とNIKE", PROFILE) == ["nike", "暴力"]
