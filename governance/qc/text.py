"""The brand's text policy as QC checks on the clip's prompt and negative prompt."""

from __future__ import annotations

from governance.brand import BrandProfile
from governance.checks import BLOCK
from governance.text_policy import TextFinding, check_prompt
from governance.qc.base import CheckResult, not_run


def _result(check: str, found: list[TextFinding]) -> CheckResult:
    msg = "; ".join(f"{f.field}: {f.message}" for f in found) or "no policy term found"
    return CheckResult(check, not found, float(len(found)), 0.0, {
        "message": msg, "findings": [{"kind": f.kind, "term": f.term, "field": f.field, "topic": f.topic,
                                      "disguised": f.disguised} for f in found]})


def text_checks(prompt: str | None, negative_prompt: str | None, brand: BrandProfile) -> list[CheckResult]:
    """``text_policy`` (blocked terms and patterns, competitors) and ``sensitive_topics``."""
    if prompt is None:
        return [not_run(c, "no prompt given") for c in ("text_policy", "sensitive_topics")]
    found = check_prompt(prompt, negative_prompt or "", brand)
    return [_result("text_policy", [f for f in found if f.outcome == BLOCK]),
            _result("sensitive_topics", [f for f in found if f.outcome != BLOCK])]
