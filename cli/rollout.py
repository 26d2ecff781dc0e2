"""`wanflow rollout evaluate|status|promote|rollback|vote`: evaluate a challenger against the champion, show the
verdict, promote, roll back.

Exit codes: 0 done, 2 invalid input, 1 refused or failed (a promotion refused by the gates says which gates and
why).
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from adapters.lora_registry import LoraRegistry
from catalog.db import session_scope
from catalog.models import RolloutEvaluation
from cli.context import catalog, console, fail, guard, prefect_flows, settings
from wan_tasks.intake import registry_for, validate
from wan_tasks.rollout import RolloutError, last_evaluation, load_policy, promote, record_vote, rollback
from wan_tasks.rollout_run import check_holdout, publish_evaluation


def _registry(model: str):  # noqa: ANN202 - adapters.registry.Registry or adapters.lora_registry.LoraRegistry
    """The registry holding `model`: a brand LoRA (`lora-NAME`) or a base model."""
    if model.startswith("lora-"):
        return LoraRegistry(settings().mlflow_uri)
    return registry_for(settings())

app = typer.Typer(help="Champion/challenger rollout: evaluate, gates, promote, rollback.", no_args_is_help=True)
STATUS_STYLE = {"pass": "green", "fail": "red", "not evaluated": "yellow"}


def _refused(fn):
    """RolloutError → its message, exit 1 (inside `guard`, which handles everything else)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RolloutError as e:
            fail(1, [f"error: {e}"])

    return wrapper


def _print_evaluation(ev: dict) -> None:
    m = ev["metrics"]
    console.print(f"[bold]evaluation {ev['id']}[/]: {ev['model']}/{ev['champion_version']} (champion) vs "
                  f"{ev['model']}/{ev['challenger_version']} (challenger)")
    if ev.get("base"):
        console.print(f"  a LoRA evaluation on the base {ev['base']} (version 0: without a LoRA)", markup=False,
                      highlight=False)
    for arm in ("champion", "challenger"):
        console.print(f"  {arm}: {ev['labels'].get(arm, '')}", markup=False, highlight=False)
    t = Table("metric", "champion", "challenger")
    for k, v in m.get("challenger", {}).items():
        if k == "devices":
            continue
        t.add_row(k, *("not run" if m[a].get(k) is None else str(m[a].get(k)) for a in ("champion", "challenger")))
    console.print(t)
    p = m.get("preference", {})
    if p.get("win_rate") is None:
        console.print(f"human preference: [yellow]not run[/] — {p.get('reason', '')}")
    else:
        console.print(f"human preference: challenger {p['win_rate']:.1%} of {p['wins'] + p['losses']} decisive votes "
                      f"(95 % CI {p['ci_low']:.1%}–{p['ci_high']:.1%}; {p['ties']} ties)")
    if ev["gates"]:
        g = Table("gate", "value", "threshold", "status", "why", title=f"gates ({ev['policy_path']})")
        for r in ev["gates"]:
            g.add_row(r["gate"], "not run" if r["value"] is None else f"{r['value']:g}",
                      f"{r['op']} {'—' if r['threshold'] is None else format(r['threshold'], 'g')}",
                      f"[{STATUS_STYLE[r['status']]}]{r['status']}[/]", r["reason"])
        console.print(g)
    verdict = ("[yellow]no policy: gates not evaluated[/]" if ev["passed"] is None
               else "[green]PASSED every gate[/]" if ev["passed"] else "[red]did not pass every gate[/]")
    console.print(f"verdict: {verdict}\nreport: {ev['report']}\nMLflow run: {ev['mlflow_run_id']}")


@app.command("evaluate")
@guard
@_refused
def evaluate_challenger(
    challenger: Annotated[Optional[str], typer.Option(
        help="The version to evaluate, e.g. wan-t2v/2 or wan-t2v@challenger.")] = None,
    golden: Annotated[Path, typer.Option(help="Golden prompts (a brief).")] = Path("examples/golden.yaml"),
    policy: Annotated[Optional[Path], typer.Option(help="Rollout gates YAML (default: WANFLOW_ROLLOUT_POLICY).")] = None,
    champion: Annotated[Optional[str], typer.Option(help="Compare with this instead of the golden file's model.")] = None,
    ab: Annotated[bool, typer.Option("--ab/--no-ab", help="Open a blind A/B round in the review dashboard.")] = False,
    lora: Annotated[Optional[str], typer.Option(
        help="Evaluate a brand LoRA version instead (e.g. acme-style@challenger), on the golden file's base.")] = None,
    against: Annotated[Optional[str], typer.Option(
        help="With --lora: the LoRA version to beat (default NAME@champion), or 'none' (the base alone).")] = None,
    lora_scale: Annotated[float, typer.Option(help="With --lora: the LoRA scale of both arms.")] = 1.0,
    holdout: Annotated[Optional[Path], typer.Option(
        help="Held-out brand images (folder) for brand likeness; needs WANFLOW_CLIP_MODEL.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Generate the golden prompts with champion and challenger, QC both, compare, check the gates, log an
    MLflow evaluation run with an HTML report. Exit 0 when every gate passed (or no policy), 1 when not.
    With --lora: two arms on the same base differing by their LoRA, filed under lora-NAME."""
    cfg = settings()
    if (challenger is None) == (lora is None):
        fail(2, ["error: give --challenger (a model version) or --lora (a brand LoRA version), exactly one"])
    if against and not lora:
        fail(2, ["error: --against goes with --lora"])
    validate(golden, cfg)  # exit 2 with every problem before any flow starts
    if policy:
        load_policy(policy)
    check_holdout(str(holdout) if holdout else None)
    ev = prefect_flows().rollout.rollout_evaluate(challenger, str(golden), str(policy) if policy else None, champion,
                                                   ab, cfg, lora=lora, against=against, lora_scale=lora_scale,
                                                   holdout=str(holdout) if holdout else None)
    if as_json:
        sys.stdout.write(json.dumps(ev, indent=2, default=str, ensure_ascii=False) + "\n")
    else:
        _print_evaluation(ev)
        if ev["ab_round"]:
            console.print(f"blind A/B round: http://127.0.0.1:8000/ab/{ev['id']} (`wanflow review serve`), then "
                          f"`wanflow rollout status {ev['id']}`")
    if ev["passed"] is False:
        raise typer.Exit(1)


@app.command("status")
@guard
@_refused
def rollout_status(
    evaluation: Annotated[Optional[int], typer.Argument(help="Evaluation id (default: the last one).")] = None,
    model: Annotated[str, typer.Option(help="Registry model.")] = "wan-t2v",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Recompute an evaluation's preference and gates with the A/B votes recorded so far; update its report and
    MLflow run."""
    with session_scope(catalog()) as s:
        ev = s.get(RolloutEvaluation, evaluation) if evaluation else last_evaluation(s, model)
        if ev is None:
            raise RolloutError(f"evaluation {evaluation} not found")
        ev_id = ev.id
    data = publish_evaluation(catalog(), settings(), ev_id)
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")
    else:
        _print_evaluation(data)


@app.command("promote")
@guard
@_refused
def rollout_promote(
    model: Annotated[str, typer.Option(help="Registry model (a brand LoRA: lora-NAME).")] = "wan-t2v",
    override: Annotated[bool, typer.Option("--override", help="Promote although gates did not pass (audited).")] = False,
    reason: Annotated[str, typer.Option(help="Why (required with --override).")] = "",
    as_user: Annotated[str, typer.Option("--as", help="Who promotes (audit log).")] = "admin (cli)",
) -> None:
    """Move `champion` to the last evaluation's challenger — only if it passed every gate (recomputed now),
    unless --override --reason."""
    with session_scope(catalog()) as s:
        move = promote(s, _registry(model), model, as_user, override, reason)
        text = (f"{model}@champion: {move.from_version} → {move.to_version} ({move.action}"
                f"{', reason: ' + move.reason if move.reason else ''}; audit event written)")
    console.print(text, markup=False, highlight=False)


@app.command("rollback")
@guard
@_refused
def rollout_rollback(
    model: Annotated[str, typer.Option(help="Registry model.")] = "wan-t2v",
    reason: Annotated[str, typer.Option(help="Why (audit log).")] = "",
    as_user: Annotated[str, typer.Option("--as", help="Who rolls back (audit log).")] = "admin (cli)",
) -> None:
    """Move `champion` back where its last move took it from, in one step (audited)."""
    with session_scope(catalog()) as s:
        move = rollback(s, _registry(model), model, as_user, reason)
        text = f"{model}@champion: {move.from_version} → {move.to_version} (rollback of move #{move.reverts_id})"
    console.print(text, markup=False, highlight=False)


@app.command("vote")
@guard
@_refused
def rollout_vote(
    pair: Annotated[int, typer.Argument(help="A/B pair id (the dashboard shows it).")],
    side: Annotated[str, typer.Argument(help="left, right or none.")],
    as_user: Annotated[str, typer.Option("--as", help="Who votes.")] = ...,  # type: ignore[assignment]
) -> None:
    """Record a blind preference from a script (the dashboard's A/B page is the usual way)."""
    with session_scope(catalog()) as s:
        vote = record_vote(s, pair, side, as_user)  # type: ignore[arg-type]
        pair_id = vote.pair_id
    console.print(f"pair {pair_id}: vote recorded ({side})")
