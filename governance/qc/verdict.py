"""From check results to one outcome per clip — pass, needs review or block — with readable reasons.

A passed check passes; a failed one means what the brand's rule says (``on_fail``), a check that did
not run what ``on_not_run`` says. The clip's outcome is the most severe of its checks'.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from governance.qc.context import BrandRules
from governance.qc.registry import BLOCK, PASS, SEVERITY, CheckResult, spec_of

UNCHECKED = "unchecked"  # a clip QC has not judged yet


@dataclass(frozen=True)
class Finding:
    """Why a check did not simply pass, in a sentence, and what it means for the clip."""

    check: str
    outcome: str
    message: str

    def __str__(self) -> str:
        return f"{self.check}: {self.message}"


@dataclass(frozen=True)
class Verdict:
    outcome: str
    findings: tuple[Finding, ...]  # checks that send the clip to review or block it
    notes: tuple[Finding, ...] = ()  # checks that did not run but the brand lets pass
    outcomes: dict[str, str] = field(default_factory=dict)  # per check

    @property
    def reasons(self) -> list[str]:
        return [str(f) for f in self.findings]


def _limit(r: CheckResult) -> str:
    spec = spec_of(r.check)
    if spec is None or r.threshold is None or spec.direction is None:
        return ""
    word = "at most" if spec.direction == "max" else "at least"
    return f" (allowed: {word} {r.threshold:g}{' ' + spec.unit if spec.unit else ''})"


def _check_outcome(r: CheckResult, brand: BrandRules) -> str:
    if r.passed is True:
        return PASS
    rule = brand.rule(r.check)
    return rule.on_fail if r.passed is False else rule.on_not_run


def judge(results: list[CheckResult], brand: BrandRules) -> Verdict:
    findings, notes, outcomes = [], [], {}
    for r in results:
        o = _check_outcome(r, brand)
        outcomes[r.check] = o
        if r.passed is False:
            findings.append(Finding(r.check, o, r.message + _limit(r)))
        elif r.passed is None:
            (findings if o != PASS else notes).append(
                Finding(r.check, o, r.message + (" — brand policy: pass" if o == PASS else "")))
    worst = max((outcomes[c] for c in outcomes), key=SEVERITY.__getitem__, default=PASS)
    findings.sort(key=lambda f: -SEVERITY[f.outcome])
    # a failed check the brand lets pass is a note, not a finding
    notes += [f for f in findings if f.outcome == PASS]
    return Verdict(worst, tuple(f for f in findings if f.outcome != PASS), tuple(notes), outcomes)


def clip_outcome(auto_rejected: bool, review_outcome: str | None) -> str:
    """A clip's QC outcome as the catalog records it: ``block`` when QC auto-rejected it, else the QC
    outcome on its review task (``unchecked`` when it has none yet; a task from before per-check
    outcomes were recorded passed every check)."""
    if auto_rejected:
        return BLOCK
    if review_outcome is None:
        return UNCHECKED
    return review_outcome or PASS
