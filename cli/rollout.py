"""`wanflow rollout`: evaluate a challenger against the champion, show the verdict, promote, roll back.

Registered on the main app by cli.main (`app.add_typer(rollout_app, name="rollout")`). Exit codes: 0 done,
2 invalid input, 1 refused or failed (a promotion refused by the gates says which gates and why).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from cli.main import _fail, _guard, _settings, console

rollout_app = typer.Typer(help="Champion/challenger rollout: evaluate, gates, promote, rollback.",
                          no_args_is_help=True)
STATUS_STYLE = {"pass": "green", "fail": "red", "not evaluated": "yellow"}


def _refused(fn):
    """RolloutError → its message, exit 1 (inside `_guard`, which handles everything else)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from wan_tasks.rollout import RolloutError

        try:
            return fn(*args, **kwargs)
        except RolloutError as e:
            _fail(1, [f"error: {e}"])

    return wrapper


def _print_evaluation(ev: dict) -> None:
    m = ev["metrics"]
    console.print(f"[bold]evaluation {ev['id']}[/]: {ev['model']}/{ev['champion_version']} (champion) vs "
                  f"{ev['model']}/{ev['challenger_version']} (challenger)")
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


@rollout_app.command("evaluate")
@_guard
@_refused
def rollout_evaluate(
    challenger: Annotated[str, typer.Option(help="The version to evaluate, e.g. wan-t2v/2 or wan-t2v@challenger.")],
    golden: Annotated[Path, typer.Option(help="Golden prompts (a brief).")] = Path("examples/golden.yaml"),
    policy: Annotated[Optional[Path], typer.Option(help="Rollout gates YAML (default: WANFLOW_ROLLOUT_POLICY).")] = None,
    champion: Annotated[Optional[str], typer.Option(help="Compare with this instead of the golden file's model.")] = None,
    ab: Annotated[bool, typer.Option("--ab/--no-ab", help="Open a blind A/B round in the review dashboard.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Generate the golden prompts with champion and challenger, QC both, compare, check the gates, log an
    MLflow evaluation run with an HTML report. Exit 0 when every gate passed (or no policy), 1 when not."""
    from wan_tasks.intake import validate
    from flows.rollout import rollout_evaluate as flow
    from wan_tasks.rollout import load_policy

    settings = _settings()
    validate(golden, settings)  # exit 2 with every problem before any flow starts
    if policy:
        load_policy(policy)
    ev = flow(challenger, str(golden), str(policy) if policy else None, champion, ab, settings)
    if as_json:
        sys.stdout.write(json.dumps(ev, indent=2, default=str, ensure_ascii=False) + "\n")
    else:
        _print_evaluation(ev)
        if ev["ab_round"]:
            console.print(f"blind A/B round: http://127.0.0.1:8000/ab/{ev['id']} (`wanflow review serve`), then "
                          f"`wanflow rollout status {ev['id']}`")
    if ev["passed"] is False:
        raise typer.Exit(1)


@rollout_app.command("status")
@_guard
@_refused
def rollout_status(
    evaluation: Annotated[Optional[int], typer.Argument(help="Evaluation id (default: the last one).")] = None,
    model: Annotated[str, typer.Option(help="Registry model.")] = "wan-t2v",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Recompute an evaluation's preference and gates with the A/B votes recorded so far; update its report and
    MLflow run."""
    from catalog.db import open_catalog, session_scope
    from catalog.models import RolloutEvaluation
    from flows.rollout import publish_evaluation
    from wan_tasks.rollout import RolloutError, last_evaluation

    settings = _settings()
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        ev = s.get(RolloutEvaluation, evaluation) if evaluation else last_evaluation(s, model)
        if ev is None:
            raise RolloutError(f"evaluation {evaluation} not found")
        ev_id = ev.id
    data = publish_evaluation(settings, ev_id)
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")
    else:
        _print_evaluation(data)


@rollout_app.command("promote")
@_guard
@_refused
def rollout_promote(
    model: Annotated[str, typer.Option(help="Registry model.")] = "wan-t2v",
    override: Annotated[bool, typer.Option("--override", help="Promote although gates did not pass (audited).")] = False,
    reason: Annotated[str, typer.Option(help="Why (required with --override).")] = "",
    as_user: Annotated[str, typer.Option("--as", help="Who promotes (audit log).")] = "admin (cli)",
) -> None:
    """Move `champion` to the last evaluation's challenger — only if it passed every gate (recomputed now),
    unless --override --reason."""
    from catalog.db import open_catalog, session_scope
    from wan_tasks.intake import registry_for
    from wan_tasks.rollout import promote

    settings = _settings()
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        move = promote(s, registry_for(settings), model, as_user, override, reason)
        text = (f"{model}@champion: {move.from_version} → {move.to_version} ({move.action}"
                f"{', reason: ' + move.reason if move.reason else ''}; audit event written)")
    console.print(text, markup=False, highlight=False)


@rollout_app.command("rollback")
@_guard
@_refused
def rollout_rollback(
    model: Annotated[str, typer.Option(help="Registry model.")] = "wan-t2v",
    reason: Annotated[str, typer.Option(help="Why (audit log).")] = "",
    as_user: Annotated[str, typer.Option("--as", help="Who rolls back (audit log).")] = "admin (cli)",
) -> None:
    """Move `champion` back where its last move took it from, in one step (audited)."""
    from catalog.db import open_catalog, session_scope
    from wan_tasks.intake import registry_for
    from wan_tasks.rollout import rollback

    settings = _settings()
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        move = rollback(s, registry_for(settings), model, as_user, reason)
        text = f"{model}@champion: {move.from_version} → {move.to_version} (rollback of move #{move.reverts_id})"
    console.print(text, markup=False, highlight=False)


@rollout_app.command("vote")
@_guard
@_refused
def rollout_vote(
    pair: Annotated[int, typer.Argument(help="A/B pair id (the dashboard shows it).")],
    side: Annotated[str, typer.Argument(help="left, right or none.")],
    as_user: Annotated[str, typer.Option("--as", help="Who votes.")] = ...,  # type: ignore[assignment]
) -> None:
    """Record a blind preference from a script (the dashboard's A/B page is the usual way)."""
    from catalog.db import open_catalog, session_scope
    from wan_tasks.rollout import record_vote

    with session_scope(open_catalog(_settings().catalog_db_url)) as s:
        vote = record_vote(s, pair, side, as_user)  # type: ignore[arg-type]
        pair_id = vote.pair_id
    console.print(f"pair {pair_id}: vote recorded ({side})")
