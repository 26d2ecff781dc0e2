"""The brand's text policy as two QC checks on the clip's prompt and negative prompt: ``text_policy``
(blocked terms and patterns, competitors: block) and ``sensitive_topics`` (needs review). The matching
itself is :mod:`governance.text_policy`, reached through the brand profile; both checks share its findings."""

from __future__ import annotations

from typing import Any

from governance.qc.context import CheckContext
from governance.qc.registry import BLOCK, REVIEW, CheckResult, CheckSpec, not_run, register


def _result(check: str, found: list[Any]) -> CheckResult:
    msg = "; ".join(f"{f.field}: {f.message}" for f in found) or "no policy term found"
    return CheckResult(check, not found, float(len(found)), 0.0, {
        "message": msg, "findings": [{"kind": f.kind, "term": f.term, "field": f.field, "topic": f.topic,
                                      "disguised": f.disguised} for f in found]})


@register(CheckSpec("text_policy", "brand", "prompt and negative prompt: blocked terms, patterns, competitors",
                    on_fail=BLOCK, on_not_run=REVIEW, unit="findings", needs_clip=False))
def text_policy(ctx: CheckContext) -> CheckResult:
    if ctx.prompt is None:
        return not_run("text_policy", "no prompt given")
    return _result("text_policy", [f for f in ctx.prompt_findings if f.outcome == BLOCK])


@register(CheckSpec("sensitive_topics", "brand", "prompt and negative prompt: sensitive topics",
                    on_fail=REVIEW, on_not_run=REVIEW, unit="findings", needs_clip=False))
def sensitive_topics(ctx: CheckContext) -> CheckResult:
    if ctx.prompt is None:
        return not_run("sensitive_topics", "no prompt given")
    return _result("sensitive_topics", [f for f in ctx.prompt_findings if f.outcome != BLOCK])
