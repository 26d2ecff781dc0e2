"""The brand's text policy (blocked terms and patterns, competitors, sensitive topics) and the brand
profile schema: disguised spellings are caught, innocent words are not, bad profiles name the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import EXAMPLES

from governance.brand import BrandInvalid, load_brand, load_brand_ref
from governance.qc import BLOCK, PASS, REVIEW
from governance.text_policy import check_text, normalize_text, outcome_of, reason, undisguise

ACME = load_brand("acme", EXAMPLES / "brands")


def kinds(text: str) -> list[tuple[str, str]]:
    return [(f.kind, f.term) for f in check_text(text, ACME)]


@pytest.mark.parametrize(("text", "hit"), [
    ("nike", ("blocked_term", "nike")),
    ("NiKe runners", ("blocked_term", "nike")),                        # mixed case
    ("ＮＩＫＥのスニーカー", ("blocked_term", "nike")),                  # full-width Latin, Japanese around it
    ("n i k e shoes", ("blocked_term", "nike")),                       # spaced out
    ("N.I.K.E", ("blocked_term", "nike")),
    ("n-i-k-e", ("blocked_term", "nike")),
    ("Ｎ　Ｉ　Ｋ　Ｅ", ("blocked_term", "nike")),                        # full-width letters and ideographic spaces
    ("n1ke and n!ke", ("blocked_term", "nike")),                       # look-alike characters
    ("nіke", ("blocked_term", "nike")),                                # Cyrillic і
    ("ni\u200bke", ("blocked_term", "nike")),                          # zero-width space
    ("ぎゃんぶるの場面", ("blocked_term", "ギャンブル")),                 # hiragana for a katakana term
    ("ｷﾞｬﾝﾌﾞﾙ", ("blocked_term", "ギャンブル")),                        # half-width katakana
    ("ギ ャ ン ブ ル", ("blocked_term", "ギャンブル")),                   # spaced-out Japanese
    ("ギャン・ブル", ("blocked_term", "ギャンブル")),
    ("暴力的なシーン", ("blocked_term", "暴力")),
    ("ADIDAS vs us", ("competitor", "adidas")),
    ("アディダスの靴", ("competitor", "アディダス")),
    ("new   balance", ("competitor", "new balance")),
    ("ＧＵＡＲＡＮＴＥＥＤ results!", ("blocked_pattern", r"\bguaranteed\s+(?:results|weight\s*loss)\b")),
    ("100 % risk-free", ("blocked_pattern", r"\b100\s*%\s*(?:safe|risk[- ]free)\b")),
])
def test_blocked_spellings_are_caught(text: str, hit: tuple[str, str]) -> None:
    assert hit in kinds(text)
    assert outcome_of(check_text(text, ACME)) == BLOCK


@pytest.mark.parametrize("text", [
    "snikers on sale", "nikeless", "a spike heel", "Nikel alloy", "competitor-xyz", "暴れる", "ネコとイヌ",
    "a puma concolor in the mountains",                 # allowed phrase containing a competitor name
    "pumas and reebokers",                              # whole-word terms do not match inside longer words
    "guaranteed delivery", "100% cotton", "n i k e l",  # spaced letters spelling something longer
    "the beerus figurine", "curetage", "electionary",
    "Run 10k in 40 minutes",
])
def test_innocent_text_is_not_flagged(text: str) -> None:
    assert check_text(text, ACME) == []


@pytest.mark.parametrize(("text", "topic"), [
    ("Runners before the election", "politics"), ("選挙の朝に走る", "politics"), ("a cold BEER after", "alcohol"),
    ("ビールを飲む", "alcohol"), ("clinically proven comfort", "health claims"),
])
def test_sensitive_topics_need_review(text: str, topic: str) -> None:
    found = check_text(text, ACME)
    assert [(f.kind, f.topic) for f in found] == [("sensitive_topic", topic)]
    assert outcome_of(found) == REVIEW and f'sensitive topic "{topic}"' in found[0].message


def test_findings_read_well() -> None:
    found = check_text("n i k e and adidas, guaranteed results", ACME)
    assert outcome_of(found) == BLOCK
    text = reason(found)
    assert 'blocked term "nike" (spaced out or disguised)' in text and 'competitor name "adidas"' in text
    assert "blocked pattern /" in text
    assert reason(check_text("nike or ＮＩＫＥ, 暴力", ACME)) == 'blocked terms "nike", "暴力"'
    assert outcome_of([]) == PASS


def test_normal_forms() -> None:
    assert normalize_text("ＡＢＣ　ｄｅｆ") == "abc def"
    assert undisguise(normalize_text("N 1 K E")) == "nike"
    assert undisguise("air max 90") == "air max 90"  # numbers alone are not letters in disguise


def test_intake_applies_the_whole_policy(tmp_path: Path) -> None:
    from governance.brief import load_brief

    (tmp_path / "brands").mkdir()
    (tmp_path / "brands" / "acme.yaml").write_text((EXAMPLES / "brands" / "acme.yaml").read_text("utf-8"), "utf-8")
    brief = tmp_path / "b.yaml"
    brief.write_text("""campaign: policy
brand: acme
model: wan-t2v@champion
defaults: {num_frames: 5, width: 32, height: 32, variants: 1, formats: ["1:1"], steps: 2}
items:
  - {id: ok, prompt: "A red sneaker on a white floor"}
  - {id: rival, prompt: "Our shoe next to an A-D-I-D-A-S one"}
  - {id: claim, prompt: "Guaranteed  results with every step"}
  - {id: vote, prompt: "Sneakers on election day"}
  - {id: neg, prompt: "A red sneaker", negative_prompt: "no ｎｉｋｅ logos"}
""", "utf-8")
    b = load_brief(brief, known_models=lambda ref: True)
    assert [i.key for i in b.items] == ["ok", "vote"]  # a sensitive topic is accepted; QC sends it to review
    reasons = {r.item.key: (r.field, r.reason) for r in b.rejected}
    assert reasons["rival"] == ("prompt", 'competitor name "adidas" (spaced out or disguised) (brand acme)')
    assert reasons["claim"][1].startswith("blocked pattern /")
    assert reasons["neg"] == ("negative_prompt", 'blocked term "nike" (brand acme)')


# --- the profile schema ---------------------------------------------------------------------

HEAD = "name: acme\ndisplay_name: ACME\n"


@pytest.mark.parametrize(("body", "key", "message"), [
    ("colour: red\n", "colour", "unknown key"),
    ("checks: {blurr: {}}\n", "checks.blurr", "unknown check"),
    ("checks: {blur: {min_sharpnes: 3}}\n", "checks.blur.min_sharpnes", "unknown setting (allowed: min_sharpness"),
    ("checks: {blur: {min_sharpness: lots}}\n", "checks.blur.min_sharpness", "must be a number"),
    ("checks: {blur: {min_sharpness: -1}}\n", "checks.blur.min_sharpness", "out of range"),
    ("checks: {exposure: {max_clipped: 1.5}}\n", "checks.exposure.max_clipped", "out of range 0..1"),
    ("checks: {blur: {on_fail: maybe}}\n", "checks.blur.on_fail", "block, review, pass"),
    ("checks: {flashing: {on_fail: review}}\n", "checks.flashing.on_fail", "hard limit"),
    ("checks: {flashing: {max_flashes: 5}}\n", "checks.flashing.max_flashes", "out of range 0..3"),
    ("checks: {container: {codecs: h264}}\n", "checks.container.codecs", "list of non-empty strings"),
    ("checks: [blur]\n", "checks", "mapping"),
    ("palette: ['#C8102E', red]\n", "palette[1]", "not an sRGB colour"),
    ("blocked_patterns: ['(unclosed']\n", "blocked_patterns[0]", "not a valid regular expression"),
    ("sensitive_topics: {politics: election}\n", "sensitive_topics.politics", "list of non-empty strings"),
    ("campaign: {max_block_rate: 2}\n", "campaign.max_block_rate", "out of range"),
    ("campaign: {max_blocks: 2}\n", "campaign.max_blocks", "unknown key"),
    ("competitors: ['']\n", "competitors", "non-empty"),
])
def test_bad_profiles_name_the_key(tmp_path: Path, body: str, key: str, message: str) -> None:
    (tmp_path / "acme.yaml").write_text(HEAD + body, encoding="utf-8")
    with pytest.raises(BrandInvalid) as err:
        load_brand("acme", tmp_path)
    assert err.value.key == key and message in err.value.message
    assert str(err.value).startswith(f"{tmp_path / 'acme.yaml'}: {key}: ")


def test_example_profile_and_rules() -> None:
    assert ACME.palette[0] == "#C8102E" and ACME.campaign == {"max_block_rate": 0.5} and len(ACME.sha256) == 64
    blur = ACME.rule("blur")
    assert blur.params == {"min_sharpness": 40} and (blur.on_fail, blur.on_not_run) == (REVIEW, REVIEW)
    palette = ACME.rule("palette")
    assert palette.params["max_delta_e"] == 25 and palette.params["colors"] == 6
    assert ACME.rule("flashing").on_fail == BLOCK and ACME.rule("text_video_alignment").on_not_run == REVIEW
    assert load_brand_ref(str(EXAMPLES / "brands" / "acme.yaml"), Path("/nonexistent")) == ACME
