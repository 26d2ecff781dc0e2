"""Automatic versus human: how well each QC check agrees with what reviewers decided (`wanflow qc agreement`).

Pure statistics on plain records; the catalog query that builds them is :mod:`wan_tasks.agreement`.

- A **reviewed clip** is a raw clip whose review task is decided. Its human label is the final decision:
  *rejected* when the reviewer rejected it or asked for changes (not acceptable as it is), *approved* otherwise.
  Clips QC blocked never reach a reviewer: they are counted apart and left out of every comparison.
- Per check, a clip is **flagged** when the check ran and failed its threshold (``passed`` false, whatever the
  brand lets that mean); a check that did not run is counted as "not run" and left out. Positive = rejected:
  precision is the share of flagged clips reviewers rejected, recall the share of rejected clips the check
  flagged, specificity the share of approved clips it passed. Cohen's kappa is given where it applies (both
  labels vary, so chance agreement is below 1).
- **Suggested threshold**: per check and brand, among the values the reviewed clips had, the threshold whose
  pass/fail would have matched the reviewers best (highest kappa; ties go to the one nearest the current
  threshold). Only a suggestion: nothing here changes a brand profile.
- **Reviewers among themselves**: two-stage brands (the review stage's decision against the approval stage's)
  and blind A/B votes (each pair of reviewers over the pairs both voted on).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import combinations
from typing import Any

from governance.qc import BY_NAME

VERDICT = "qc_verdict"  # the clip's QC outcome as a whole: needs_review counts as flagged


@dataclass(frozen=True)
class CheckRecord:
    """One check's recorded result on a reviewed clip."""

    passed: bool | None
    value: float | None
    threshold: float | None


@dataclass(frozen=True)
class ReviewedClip:
    """A raw clip with a final human decision, and the QC results recorded for it."""

    asset_id: int
    campaign: str
    brand: str
    rejected: bool  # the final decision was reject or request_changes
    decision: str
    reason_code: str | None
    decided_at: datetime
    qc_outcome: str  # pass | needs_review (the review task's QC verdict)
    checks: dict[str, CheckRecord] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        """Why it was not accepted: the reviewer's reason code, ``changes_requested`` or ``unspecified``."""
        return self.reason_code or ("changes_requested" if self.decision == "request_changes" else "unspecified")


@dataclass(frozen=True)
class StagePair:
    """A two-stage clip: the review stage's decision, then the approval stage's (each with who took it)."""

    asset_id: int
    first: str
    second: str
    first_reviewer: str
    second_reviewer: str


@dataclass(frozen=True)
class Vote:
    pair_id: int
    reviewer: str
    choice: str  # champion | challenger | tie


def ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two raters' labels on the same items: (p_o - p_e) / (1 - p_e). None when it does not
    apply: no items, or chance agreement p_e = 1 (both raters gave one and the same label throughout)."""
    if len(a) != len(b):
        raise ValueError(f"kappa needs the same items rated twice, got {len(a)} and {len(b)} labels")
    n = len(a)
    if not n:
        return None
    ca, cb = Counter(a), Counter(b)
    p_o = sum(x == y for x, y in zip(a, b)) / n
    p_e = sum(ca[k] * cb[k] for k in ca) / (n * n)
    if p_e >= 1:
        return None
    return round((p_o - p_e) / (1 - p_e), 4)


@dataclass(frozen=True)
class Confusion:
    """Check (flagged or not) against reviewers (rejected or approved); positive = rejected."""

    tp: int = 0  # flagged, rejected
    fp: int = 0  # flagged, approved
    fn: int = 0  # passed, rejected
    tn: int = 0  # passed, approved

    @classmethod
    def of(cls, flagged: Iterable[bool], rejected: Iterable[bool]) -> Confusion:
        c = Counter(zip(flagged, rejected))
        return cls(c[True, True], c[True, False], c[False, True], c[False, False])

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def kappa(self) -> float | None:
        """Cohen's kappa of the two binary raters; None where it does not apply: unless reviewers both approved and
        rejected some clips, agreement beyond chance means nothing (0 or undefined whatever the check did)."""
        n = self.n
        if not self.tp + self.fn or not self.fp + self.tn:
            return None
        p_o = (self.tp + self.tn) / n
        p_e = ((self.tp + self.fp) * (self.tp + self.fn) + (self.fn + self.tn) * (self.fp + self.tn)) / (n * n)
        return None if p_e >= 1 else round((p_o - p_e) / (1 - p_e), 4)

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn,
                "precision": ratio(self.tp, self.tp + self.fp), "recall": ratio(self.tp, self.tp + self.fn),
                "specificity": ratio(self.tn, self.tn + self.fp), "accuracy": ratio(self.tp + self.tn, self.n),
                "kappa": self.kappa}


def kappa_note(c: Confusion) -> str:
    """Why kappa is missing for ``c`` (empty when it is given)."""
    if c.kappa is not None:
        return ""
    if not c.n:
        return "no reviewed clip where it ran"
    return f"reviewers {'approved' if c.tp + c.fn == 0 else 'rejected'} every clip: kappa needs both"


def _fails(value: float, threshold: float, direction: str) -> bool:
    return value > threshold if direction == "max" else value < threshold


def suggest_threshold(values: Sequence[float], rejected: Sequence[bool], direction: str,
                      current: float | None) -> dict[str, Any] | None:
    """The threshold that would have matched the reviewers best on these clips (highest Cohen's kappa; ties go
    to the candidate nearest ``current``, so an equally good current threshold stays), with the kappa it and
    ``current`` give. Candidates are the observed values and ``current``. None when reviewers did not both
    approve and reject some of these clips."""
    if len(set(rejected)) < 2 or not values:
        return None
    bad = sorted(v for v, r in zip(values, rejected) if r)
    good = sorted(v for v, r in zip(values, rejected) if not r)

    def score(t: float) -> Confusion:  # counts by bisection: a long history stays O(n log n)
        def flagged(xs: list[float]) -> int:
            return len(xs) - bisect_right(xs, t) if direction == "max" else bisect_left(xs, t)

        tp, fp = flagged(bad), flagged(good)
        return Confusion(tp, fp, len(bad) - tp, len(good) - fp)

    ref = current if current is not None else 0.0
    scored = [(score(t), t) for t in sorted(set(values) | ({current} if current is not None else set()))]
    best_c, best = max(scored, key=lambda ct: (-2 if ct[0].kappa is None else ct[0].kappa, -abs(ct[1] - ref)))
    now = score(current) if current is not None else None
    return {"direction": direction, "current": current, "suggested": best,
            "kappa_current": now.kappa if now else None, "kappa_suggested": best_c.kappa,
            "at_current": now.as_dict() if now else None, "at_suggested": best_c.as_dict(), "n": len(values),
            "rejected": sum(rejected), "approved": len(rejected) - sum(rejected)}


def check_agreement(name: str, clips: Sequence[ReviewedClip]) -> dict[str, Any]:
    """One check against the reviewers over ``clips``: confusion counts and rates, kappa (or why not), the
    reasons given for the rejections it caught and missed, and a threshold suggestion per brand."""
    if name == VERDICT:
        rows = [(c, c.qc_outcome != "pass", None) for c in clips]
        not_run = 0
    else:
        recorded = [(c, c.checks[name]) for c in clips if name in c.checks]
        rows = [(c, r.passed is False, r) for c, r in recorded if r.passed is not None]
        not_run = len(recorded) - len(rows)
    conf = Confusion.of([f for _, f, _ in rows], [c.rejected for c, _, _ in rows])
    spec = BY_NAME.get(name)
    out = {"check": name, "title": spec.title if spec else "the clip's QC verdict (needs review = flagged)",
           "group": spec.group if spec else "verdict", "not_run": not_run, **conf.as_dict(),
           "kappa_note": kappa_note(conf),
           "reasons_caught": dict(Counter(c.reason for c, f, _ in rows if f and c.rejected)),
           "reasons_missed": dict(Counter(c.reason for c, f, _ in rows if not f and c.rejected)),
           "suggestions": []}
    if spec is None or spec.direction is None:
        return out
    for brand in sorted({c.brand for c, _, _ in rows}):
        # only results the threshold decided (dynamic degree, for one, passes whatever its value when the
        # prompt asks for no motion)
        measured = [(c, r) for c, _, r in rows if c.brand == brand and r.value is not None
                    and (r.threshold is None or r.passed is not _fails(r.value, r.threshold, spec.direction))]
        currents = Counter(r.threshold for _, r in measured if r.threshold is not None)
        current = currents.most_common(1)[0][0] if currents else None
        s = suggest_threshold([r.value for _, r in measured], [c.rejected for c, _ in measured], spec.direction,
                              current)
        if s is not None:
            out["suggestions"].append({"brand": brand, "parameter": spec.threshold, **s})
    return out


def stage_agreement(pairs: Sequence[StagePair]) -> dict[str, Any] | None:
    """The approval stage against the review stage on two-stage clips. The approval stage only sees clips the
    review stage approved, so kappa does not apply: the figure is how often the approver confirmed."""
    if not pairs:
        return None
    agreed = sum(p.first == p.second for p in pairs)
    return {"clips": len(pairs), "agreed": agreed, "agreement": ratio(agreed, len(pairs)),
            "second_stage": dict(Counter(p.second for p in pairs)),
            "kappa": cohen_kappa([p.first for p in pairs], [p.second for p in pairs])
            if len({p.first for p in pairs}) > 1 else None,
            "kappa_note": "" if len({p.first for p in pairs}) > 1 else
            "the approval stage sees only clips the review stage approved: kappa does not apply"}


def vote_agreement(votes: Sequence[Vote]) -> dict[str, Any] | None:
    """Blind A/B voters among themselves: per pair of reviewers, over the pairs both voted on, how often they
    chose the same (champion, challenger or tie) and Cohen's kappa; overall, the share of agreeing voter
    pairs over every A/B pair with two or more votes."""
    by_pair: dict[int, dict[str, str]] = {}
    for v in votes:
        by_pair.setdefault(v.pair_id, {})[v.reviewer] = v.choice
    shared = {p: c for p, c in by_pair.items() if len(c) >= 2}
    if not shared:
        return None
    reviewers = sorted({r for c in shared.values() for r in c})
    pairs = []
    for r1, r2 in combinations(reviewers, 2):
        both = [(c[r1], c[r2]) for c in shared.values() if r1 in c and r2 in c]
        if both:
            a, b = [x for x, _ in both], [y for _, y in both]
            k = cohen_kappa(a, b)
            pairs.append({"reviewers": [r1, r2], "pairs": len(both), "agreed": sum(x == y for x, y in both),
                          "agreement": ratio(sum(x == y for x, y in both), len(both)), "kappa": k,
                          "kappa_note": "" if k is not None else "both gave one and the same choice throughout"})
    matches = [c1 == c2 for c in shared.values() for c1, c2 in combinations(c.values(), 2)]
    return {"pairs_with_two_votes": len(shared), "votes": sum(len(c) for c in shared.values()),
            "reviewers": reviewers, "agreement": ratio(sum(matches), len(matches)), "by_reviewers": pairs}


def agreement(clips: Sequence[ReviewedClip], checks: Sequence[str], blocked: int = 0,
              stages: Sequence[StagePair] = (), votes: Sequence[Vote] = ()) -> dict[str, Any]:
    """The whole comparison: the reviewed clips' decisions and reasons, each check (``checks`` order, the QC
    verdict first) against them, and the reviewers among themselves."""
    rejected = sum(c.rejected for c in clips)
    return {"clips_reviewed": len(clips), "approved": len(clips) - rejected, "rejected": rejected,
            "blocked_unreviewed": blocked,
            "decisions": dict(Counter(c.decision for c in clips)),
            "reasons": dict(Counter(c.reason for c in clips if c.rejected)),
            "checks": [check_agreement(n, clips) for n in (VERDICT, *checks)],
            "stages": stage_agreement(stages), "ab_votes": vote_agreement(votes)}
