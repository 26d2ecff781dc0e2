"""The expectation suite over a campaign's QC results table, built from the brand profile.

The table has one row per clip and check (:data:`COLUMNS`: ``asset_id, item, variant, check, status,
value, threshold, outcome, clip_outcome``; the QC stage reads it from the catalog). The suite checks,
independently of the code that routed the clips:

- integrity: only known checks, one row per clip and check, every check present for every clip,
  every clip judged (pass / needs_review / block);
- the brand's hard rules: no clip that reached review has a check that blocks on failure failing or
  (where the brand says so) not run, nor a value beyond that check's limit;
- campaign gates from the profile's ``campaign:`` (``max_block_rate``, ``min_pass_rate``).

The QC stage stores the result as a ``QcValidation`` row and the QC report shows it. great_expectations
is imported on first use (:mod:`core.heavy`).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from core import heavy
from governance.brand import BrandProfile
from governance.qc import BLOCK, BY_NAME, OUTCOMES, PASS, QC_CHECKS, REVIEW

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ("asset_id", "item", "variant", "check", "status", "value", "threshold", "outcome", "clip_outcome")
_lock = threading.Lock()


def qc_suite(brand: BrandProfile, clips: int) -> Any:
    """The expectation suite for a table of ``clips`` clips under ``brand``'s rules."""
    gx = heavy.great_expectations()
    gxe = gx.expectations
    reached_review = 'clip_outcome != "block"'

    def meta(text: str) -> dict[str, str]:
        return {"description": text}

    exps = [
        gxe.ExpectColumnValuesToBeInSet(column="check", value_set=list(QC_CHECKS),
                                        meta=meta("only checks wanflow knows")),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["asset_id", "check"], meta=meta("one row per clip and check")),
        gxe.ExpectTableRowCountToEqual(value=clips * len(QC_CHECKS), meta=meta(
            f"every check recorded for each of the {clips} clips ({len(QC_CHECKS)} per clip)")),
        gxe.ExpectColumnValuesToBeInSet(column="status", value_set=["pass", "fail", "not_run"],
                                        meta=meta("every check passed, failed or did not run")),
        gxe.ExpectColumnValuesToBeInSet(column="clip_outcome", value_set=list(OUTCOMES),
                                        meta=meta("every clip judged: pass, needs_review or block")),
    ]
    if clips:
        exps.append(gxe.ExpectColumnDistinctValuesToEqualSet(column="check", value_set=list(QC_CHECKS),
                                                             meta=meta("every check recorded")))
    for name in QC_CHECKS:
        rule, spec = brand.rule(name), BY_NAME[name]
        must_run = rule.on_not_run == BLOCK
        if rule.on_fail == BLOCK:
            ok = ["pass"] if must_run else ["pass", "not_run"]
            exps.append(gxe.ExpectColumnValuesToBeInSet(
                column="status", value_set=ok, row_condition=f'check == "{name}" & {reached_review}',
                condition_parser="pandas", meta=meta(f"no clip in review fails {name}"
                                                     + (" or skipped it" if must_run else ""))))
            limit = rule.params.get(spec.threshold) if spec.threshold else None
            if limit is not None:
                bound = {"max_value": limit} if spec.direction == "max" else {"min_value": limit}
                exps.append(gxe.ExpectColumnValuesToBeBetween(
                    column="value", **bound, row_condition=f'check == "{name}" & {reached_review} & status != "not_run"',
                    condition_parser="pandas", meta=meta(
                        f"no clip in review has {name} {'above' if spec.direction == 'max' else 'below'} {limit:g}")))
        elif must_run:
            exps.append(gxe.ExpectColumnValuesToBeInSet(
                column="status", value_set=["pass", "fail"], row_condition=f'check == "{name}" & {reached_review}',
                condition_parser="pandas", meta=meta(f"no clip reaches review without {name} having run")))
    if "max_block_rate" in brand.campaign:
        rate = brand.campaign["max_block_rate"]
        exps.append(gxe.ExpectColumnValuesToBeInSet(
            column="clip_outcome", value_set=[PASS, REVIEW], mostly=round(1 - rate, 6),
            meta=meta(f"at most {rate:.0%} of the campaign's clips blocked")))
    if "min_pass_rate" in brand.campaign:
        rate = brand.campaign["min_pass_rate"]
        exps.append(gxe.ExpectColumnValuesToBeInSet(
            column="clip_outcome", value_set=[PASS], mostly=rate,
            meta=meta(f"at least {rate:.0%} of the campaign's clips pass QC outright")))
    return gx.ExpectationSuite(name=f"qc_results.{brand.name}", expectations=exps)


def run_suite(df: pd.DataFrame, brand: BrandProfile) -> dict[str, Any]:
    """Validate ``df``; returns {suite, success, evaluated, failed, results: [...]} ready to store."""
    gx = heavy.great_expectations()
    clips = int(df["asset_id"].nunique()) if len(df) else 0
    with _lock:
        ctx = gx.get_context(mode="ephemeral")
        ctx.variables.progress_bars = gx.data_context.types.base.ProgressBarsConfig(globally=False)
        batch = ctx.data_sources.add_pandas("qc").add_dataframe_asset("qc_results").add_batch_definition_whole_dataframe("all")
        suite = ctx.suites.add(qc_suite(brand, clips))
        vd = ctx.validation_definitions.add(gx.ValidationDefinition(name="qc_results", data=batch, suite=suite))
        result = vd.run(batch_parameters={"dataframe": df.reset_index(drop=True)},
                        result_format={"result_format": "COMPLETE"})
    out = []
    for r in result.results:
        cfg = r.expectation_config
        res = r.result or {}
        idx = res.get("unexpected_index_list") or []
        rows = [{"asset_id": int(df.at[i, "asset_id"]), "check": str(df.at[i, "check"])} for i in idx[:10]
                if i in df.index]
        info = r.exception_info or {}
        raised = info.get("raised_exception") or any(isinstance(v, dict) and v.get("raised_exception")
                                                     for v in info.values())
        out.append({"expectation": cfg.type, "description": (cfg.meta or {}).get("description", cfg.type),
                    "success": bool(r.success), "unexpected": res.get("unexpected_count"),
                    "observed": res.get("observed_value"), "examples": rows, "error": bool(raised)})
    failed = sum(not r["success"] for r in out)
    return {"suite": suite.name, "success": bool(result.success), "evaluated": len(out), "failed": failed,
            "results": out}
