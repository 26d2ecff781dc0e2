"""Automatic QC: every check wanflow runs on a clip, each registered once with its spec.

A check is a spec (:class:`CheckSpec`: parameters with defaults and bounds, what a failure or a check
that could not run means) and a pure function of one :class:`CheckContext` returning a
:class:`CheckResult` (check, passed, value, threshold, details); ``passed=None`` means it did not run and
``details["reason"]`` says why. The spec sits right above the function in its group module, and
registration order is the order the checks run and are listed in (:data:`QC_CHECKS`):

- :mod:`~governance.qc.technical` and :mod:`~governance.qc.picture`: the file and the picture;
- :mod:`~governance.qc.text`: the brand's text policy on the prompt;
- :mod:`~governance.qc.color`: the brand palette;
- :mod:`~governance.qc.semantic`: the visual brand-safety hooks (NudeNet out of the box) and the semantic
  checks (models);
- :mod:`~governance.qc.onscreen`: text in the picture (the OCR the install ships);
- :mod:`~governance.qc.vbench`: the model-free VBench dimensions (dynamic degree, motion smoothness, imaging
  quality).

The brand profile gives each check its parameters and decides what its result means (:func:`judge`:
pass / needs_review / block). Adding a check is editing one group module. Decoding a file and loading
models are the adapters' (:mod:`adapters.clip_frames`, :mod:`adapters.qc_models`); the QC stage
(:mod:`wan_tasks.quality`) decodes the clip, runs the checks, records the results and routes the clip.
"""

from __future__ import annotations

# The group modules register their checks when imported, and the checks run (and are listed) in registration
# order: keep these imports in this order (tests/test_qc_calibration.py checks QC_CHECKS).
from governance.qc import technical  # noqa: F401, I001
from governance.qc import picture  # noqa: F401
from governance.qc import text  # noqa: F401
from governance.qc import color  # noqa: F401
from governance.qc import semantic  # noqa: F401
from governance.qc import onscreen  # noqa: F401
from governance.qc import vbench  # noqa: F401
from governance.qc.clip import Clip, Expected
from governance.qc.context import BrandRules, CheckContext, ModelSource, ModelUnavailable, run
from governance.qc.registry import (BLOCK, GROUPS, OUTCOMES, PASS, PROFILE_OUTCOMES, REVIEW, SEVERITY, Check, CheckResult,
                                    CheckRule, CheckSpec, Param, not_run, register, registered)
from governance.qc.verdict import UNCHECKED, Finding, Verdict, clip_outcome, judge

CHECKS: tuple[Check, ...] = registered()
SPECS: tuple[CheckSpec, ...] = tuple(c.spec for c in CHECKS)
BY_NAME: dict[str, CheckSpec] = {s.name: s for s in SPECS}
QC_CHECKS: tuple[str, ...] = tuple(BY_NAME)
TECHNICAL: tuple[str, ...] = tuple(s.name for s in SPECS if s.group == "technical")

__all__ = ["BLOCK", "BY_NAME", "CHECKS", "GROUPS", "OUTCOMES", "PASS", "PROFILE_OUTCOMES", "QC_CHECKS",
           "REVIEW", "SEVERITY", "SPECS", "TECHNICAL", "UNCHECKED", "BrandRules", "Check", "CheckContext",
           "CheckResult", "CheckRule", "CheckSpec", "Clip", "Expected", "Finding", "ModelSource", "ModelUnavailable",
           "Param", "Verdict", "clip_outcome", "judge", "not_run", "register", "run"]
