"""The QC check registry: what a check is (its spec), what it returns, and how it is registered.

A check is a spec (name, group, what it catches, its parameters with defaults and bounds, and what a
failure or a check that could not run means unless the brand profile says otherwise) and a pure function
of a :class:`~governance.qc.context.CheckContext` returning a :class:`CheckResult`. The group modules
(``technical``, ``text``, ``color``, ``semantic``) write each spec right above its function::

    @register(CheckSpec("blur", "technical", "blur: variance of the Laplacian", {"min_sharpness": Param(40)},
                        "min_sharpness", "min", REVIEW, REVIEW))
    def blur(ctx: CheckContext) -> CheckResult: ...

Checks run, and are listed, in the order they are registered. A brand profile (``checks:`` in
``brands/<name>.yaml``) may override any parameter and the two outcomes of any registered check; an
unknown check or parameter, or a value out of bounds, is an error. Outcomes: ``pass``, ``needs_review``
(a person looks, with the findings), ``block`` (auto-rejected with readable reasons). In a profile they
are written ``pass`` / ``review`` / ``block``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PASS, REVIEW, BLOCK = "pass", "needs_review", "block"
OUTCOMES = (PASS, REVIEW, BLOCK)
PROFILE_OUTCOMES = {"pass": PASS, "review": REVIEW, "block": BLOCK}
SEVERITY = {PASS: 0, REVIEW: 1, BLOCK: 2}
GROUPS = ("technical", "brand", "semantic", "quality")  # quality: the model-free VBench dimensions


@dataclass(frozen=True)
class Param:
    """A check parameter: a number within [lo, hi], or a list of strings (``default`` is a list)."""

    default: Any
    lo: float | None = 0.0
    hi: float | None = None
    help: str = ""


@dataclass(frozen=True)
class CheckRule:
    """A check as a brand runs it: parameters (defaults merged) and what failing / not running means."""

    params: dict[str, Any]
    on_fail: str
    on_not_run: str


@dataclass(frozen=True)
class CheckSpec:
    """One check. ``threshold`` names the parameter reported as the result's threshold; ``direction``
    says how the value must compare with it to pass (``max``: value <= threshold, ``min``: >=).
    ``needs_clip``: the check looks at the decoded picture (when the file does not decode, it is
    reported not run with the reason)."""

    name: str
    group: str
    title: str
    params: dict[str, Param] = field(default_factory=dict)
    threshold: str | None = None
    direction: str | None = None
    on_fail: str = REVIEW
    on_not_run: str = REVIEW
    unit: str = ""
    fixed_on_fail: bool = False  # a hard limit: a profile may not soften what a failure means
    needs_clip: bool = True

    def defaults(self) -> dict[str, Any]:
        """The default parameters (lists copied)."""
        return {k: (list(p.default) if isinstance(p.default, list) else p.default) for k, p in self.params.items()}

    def rule(self, overrides: dict[str, Any]) -> CheckRule:
        """The check under a profile's (already validated) settings for it: defaults overridden, and
        ``on_fail`` / ``on_not_run`` as written in a profile (pass / review / block)."""
        params = self.defaults() | {k: v for k, v in overrides.items() if k not in ("on_fail", "on_not_run")}
        return CheckRule(params,
                         PROFILE_OUTCOMES[overrides["on_fail"]] if "on_fail" in overrides else self.on_fail,
                         PROFILE_OUTCOMES[overrides["on_not_run"]] if "on_not_run" in overrides else self.on_not_run)


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome; ``passed`` is None when the check was not run (``details["reason"]``).

    ``details["message"]`` says in a sentence what was found; ``details["ranges"]``, where present,
    lists the time ranges (seconds) concerned; ``details["boxes"]``, where present, lists the regions found
    on the picture (``time`` in seconds, ``box`` as ``[x, y, w, h]`` fractions of the frame, ``label``).
    ``judge`` says which detector produced the result (package, version, sha256 of its weight files);
    None for the rules that need no model (the QC stage records which wanflow ran them).
    """

    check: str
    passed: bool | None
    value: float | None
    threshold: float | None
    details: dict[str, Any] = field(default_factory=dict)
    judge: dict[str, Any] | None = None

    @property
    def message(self) -> str:
        if self.passed is None:
            return f"not run: {self.details.get('reason', 'no reason recorded')}"
        return str(self.details.get("message", "passed" if self.passed else "failed"))


def judge_line(judge: dict[str, Any] | None) -> str:
    """A result's judge in words: 'nudenet 3.4.2 (320n.onnx sha256 1a2b3c4d5e6f…)'; 'not recorded' when
    there is none (a check that did not run, or a row from before judges were recorded)."""
    if not judge:
        return "not recorded"
    weights = ", ".join(f"{name} sha256 {sha[:12]}…" for name, sha in (judge.get("weights") or {}).items())
    return f"{judge.get('detector')} {judge.get('version')}" + (f" ({weights})" if weights else "")


def not_run(check: str, reason: str) -> CheckResult:
    return CheckResult(check, None, None, None, {"reason": reason})


@dataclass(frozen=True)
class Check:
    """A registered check: its spec and the function that runs it on a context."""

    spec: CheckSpec
    function: Callable[[Any], CheckResult]


_registered: dict[str, Check] = {}


def register(spec: CheckSpec) -> Callable[[Callable[[Any], CheckResult]], Callable[[Any], CheckResult]]:
    """Decorator: register the function below as check ``spec.name`` (once; a second registration of
    the same name is an error). The function is returned unchanged."""

    def add(fn: Callable[[Any], CheckResult]) -> Callable[[Any], CheckResult]:
        if spec.name in _registered:
            raise ValueError(f"QC check {spec.name!r} is registered twice")
        if spec.group not in GROUPS:
            raise ValueError(f"QC check {spec.name!r}: unknown group {spec.group!r} (known: {', '.join(GROUPS)})")
        _registered[spec.name] = Check(spec, fn)
        return fn

    return add


def registered() -> tuple[Check, ...]:
    """Every registered check, in registration order."""
    return tuple(_registered.values())


def spec_of(name: str) -> CheckSpec | None:
    """The spec of check ``name``, or None if no such check is registered."""
    check = _registered.get(name)
    return check.spec if check else None
