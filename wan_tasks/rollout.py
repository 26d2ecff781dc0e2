"""The rollout from one Wan version to the next, with evidence: metrics per arm, blind A/B preference, gates,
promotion, override and rollback.

An evaluation generates the golden prompts with the champion and the challenger (same prompts, same seeds:
jobs labelled ``arm`` champion/challenger in one golden campaign), runs QC and brand safety on both, and
compares them here. The numbers per arm:

- ``qc_pass_rate``: clips QC did not block / clips checked (as a campaign's run summary counts it);
  ``qc_clean_rate``: clips with every check passing (outcome ``pass``) / clips checked;
- ``brand_safety_pass_rate``: clips no brand check (text policy, sensitive topics, palette, unsafe content,
  forbidden elements) blocked / clips checked;
- ``palette_match``: the mean share of the picture in the brand's colours (the QC palette check's value, CIEDE2000);
  ``None`` with the reason "not run" when the brand defines no palette or the check did not run;
- ``brand_likeness`` (set by :mod:`wan_tasks.rollout_run`): clips against held-out brand images in an
  image-embedding model's space, or "not run" with the reason;
- semantic scores (text–video alignment, aesthetic, subject consistency): their mean where configured, else
  ``None`` with the reason "not run" (no model folder) — never a number made up; likewise the model-free VBench
  dimensions (dynamic degree, motion smoothness, imaging quality), which need no model;
- ``seconds_per_clip`` (generate + encode, as campaigns report it) and ``gpu_seconds_per_clip`` (load + generate
  on a CUDA device; 0 on CPU, where ``device_seconds_per_clip`` is what was spent instead);
- ``cost_per_approved_clip``: device-seconds × GPU price per hour / 3600, over the clips QC approved (not
  blocked). On a machine without a GPU the CPU seconds are priced at the same rate and the basis says so.

Preference comes from a blind A/B round in the review dashboard: each pair (same item and seed) is shown in a
random left/right order; the reviewer picks left, right or no preference. The challenger's win rate is wins /
decisive votes, with a Wilson score interval (95 %). No round run, or no vote yet: ``None``, "not run" — and a
gate on it is *not evaluated*, which fails the evaluation: nothing passes silently.

Gates live in a policy YAML (``examples/rollout-policy.yaml``). Promotion moves ``champion`` only when the
last evaluation passed every gate (recomputed at promotion time with the votes then recorded) and the champion
is still the one that was evaluated; ``--override --reason`` promotes anyway and is written to the audit log.
Rollback moves the alias back one step. Every move is an ``alias_moves`` row and an audit event.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog import audit
from catalog.models import (AbPair, AbVote, AliasMove, Asset, AssetKind, ClipStatus, GenerationJob, PromptItem,
                            QcResult, ReviewTask, RolloutEvaluation)
from governance.qc import SPECS

ARMS = ("champion", "challenger")
NOT_RUN = "not run"
Z95 = 1.959963984540054


class RolloutError(ValueError):
    """A rollout step refused (gates not passed, stale evaluation, nothing to roll back) or bad input."""


# --- statistics -------------------------------------------------------------------------------------------

def wilson_interval(wins: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (wins of n); (0, 1) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = wins / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


# --- metrics per arm --------------------------------------------------------------------------------------

def _brand_and_semantic_checks() -> tuple[set[str], list[str]]:
    """The brand-safety checks, and the scored ones averaged per arm: semantic (models) and the model-free VBench
    dimensions (dynamic degree, motion smoothness, imaging quality)."""
    return ({s.name for s in SPECS if s.group == "brand"},
            [s.name for s in SPECS if s.group in ("semantic", "quality")])


def arm_metrics(session: Session, job_ids: list[int], gpu_price_per_hour: float) -> dict[str, Any]:
    """The numbers of one arm over its jobs' raw clips (see the module docstring for each definition)."""
    brand_checks, semantic = _brand_and_semantic_checks()
    jobs = session.scalars(select(GenerationJob).where(GenerationJob.id.in_(job_ids))).all() if job_ids else []
    clips = session.scalars(select(Asset).where(Asset.job_id.in_(job_ids), Asset.kind == AssetKind.raw_clip)).all() \
        if job_ids else []
    checked = [c for c in clips if c.status != ClipStatus.generated]
    blocked = {c.id for c in checked if c.status == ClipStatus.qc_failed}
    tasks = {t.asset_id: t for t in session.scalars(select(ReviewTask).where(
        ReviewTask.asset_id.in_([c.id for c in checked])))} if checked else {}
    clean = [c for c in checked if c.id not in blocked and tasks.get(c.id) and tasks[c.id].qc_outcome == "pass"]
    results = session.scalars(select(QcResult).where(QcResult.asset_id.in_([c.id for c in checked]))).all() \
        if checked else []
    brand_blocked = {r.asset_id for r in results if r.check in brand_checks and r.outcome == "block"}
    scores: dict[str, Any] = {}
    for name in semantic:
        values = [r.value for r in results if r.check == name and r.passed is not None and r.value is not None]
        scores[name] = round(sum(values) / len(values), 4) if values else None
        if not values:
            why = next((r.details.get("message") for r in results if r.check == name and r.passed is None), None)
            scores[f"{name}_status"] = f"{NOT_RUN}: {why}" if why else NOT_RUN
    shares = [r.value for r in results if r.check == "palette" and r.passed is not None and r.value is not None]
    scores["palette_match"] = round(sum(shares) / len(shares), 4) if shares else None
    if not shares:
        why = next((r.details.get("message") for r in results if r.check == "palette"), None) or "no palette result"
        scores["palette_match_status"] = f"{NOT_RUN}: {why}"
    timed = [j for j in jobs if j.timings and "generate_s" in j.timings]
    on_gpu = [j for j in timed if (j.device or "").startswith("cuda")]
    secs = [j.timings.get("generate_s", 0.0) + j.timings.get("encode_s", 0.0) for j in timed]
    gpu_s = [j.timings.get("gpu_s", 0.0) for j in on_gpu]
    device_s = [j.timings.get("gpu_s", 0.0) if (j.device or "").startswith("cuda")
                else j.timings.get("load_s", 0.0) + j.timings.get("generate_s", 0.0) for j in timed]
    cost = sum(device_s) * gpu_price_per_hour / 3600
    approved = len(checked) - len(blocked)
    n = len(checked)
    return {
        "jobs": len(jobs), "clips": len(clips), "clips_checked": n, "clips_blocked": len(blocked),
        "clips_approved": approved,
        "qc_pass_rate": round(approved / n, 4) if n else None,
        "qc_clean_rate": round(len(clean) / n, 4) if n else None,
        "brand_safety_pass_rate": round(1 - len(brand_blocked) / n, 4) if n else None,
        **scores,
        "seconds_per_clip": round(sum(secs) / len(secs), 4) if secs else None,
        "gpu_seconds_per_clip": round(sum(gpu_s) / len(gpu_s), 4) if gpu_s else (0.0 if timed else None),
        "device_seconds_per_clip": round(sum(device_s) / len(device_s), 4) if device_s else None,
        "cost_basis": ("GPU-seconds" if timed and len(on_gpu) == len(timed) else
                       "device-seconds (no GPU: CPU time priced at the GPU rate)" if timed else NOT_RUN),
        "gpu_price_per_hour": gpu_price_per_hour,
        "cost_total": round(cost, 6) if timed else None,
        "cost_per_clip": round(cost / len(timed), 6) if timed else None,
        "cost_per_approved_clip": round(cost / approved, 6) if timed and approved else None,
        "devices": sorted({j.device or "?" for j in timed}),
    }


# --- blind A/B round --------------------------------------------------------------------------------------

def open_ab_round(session: Session, evaluation: RolloutEvaluation, seed: int = 0) -> int:
    """Pairs of the evaluation (same item, variant and seed by both arms), each side and the order shuffled.

    Idempotent: an evaluation's existing pairs are kept. The shuffle is seeded by the evaluation id and
    ``seed``, so a round can be reproduced, and the reviewer never learns which side is the challenger.
    """
    existing = session.scalar(select(func.count()).select_from(AbPair).where(AbPair.evaluation_id == evaluation.id))
    if existing:
        return existing
    # The arm comes from this evaluation's job lists, not the job's `arm` column: a version that was the
    # challenger of an earlier evaluation is the champion of the next one, and its clips are reused.
    arm_of = {job_id: arm for arm in ARMS for job_id in evaluation.metrics.get("job_ids", {}).get(arm, [])}
    rows = session.execute(
        select(GenerationJob.id, GenerationJob.item_id, GenerationJob.variant_index, GenerationJob.seed, Asset.id,
               PromptItem.item_key)
        .join(Asset, (Asset.job_id == GenerationJob.id) & (Asset.kind == AssetKind.raw_clip))
        .join(PromptItem, PromptItem.id == GenerationJob.item_id)
        .where(GenerationJob.id.in_(list(arm_of)))
    ).all()
    by_key: dict[tuple, dict[str, tuple[int, str]]] = {}
    for job_id, item_id, variant, seed_, asset_id, key in rows:
        by_key.setdefault((item_id, variant, seed_), {})[arm_of[job_id]] = (asset_id, key)
    rng = random.Random(f"ab/{evaluation.id}/{seed}")
    pairs = [v for _, v in sorted(by_key.items()) if set(v) == set(ARMS)]
    order = list(range(len(pairs)))
    rng.shuffle(order)
    for pos, i in enumerate(order):
        p = pairs[i]
        session.add(AbPair(evaluation_id=evaluation.id, item_key=p["champion"][1], champion_asset_id=p["champion"][0],
                           challenger_asset_id=p["challenger"][0], left_arm=rng.choice(ARMS), position=pos))
    evaluation.ab_round = True
    audit.append(session, "rollout", "rollout.ab_round_opened", "rollout_evaluation", evaluation.id,
                 {"pairs": len(pairs)})
    session.flush()
    return len(pairs)


def next_pair(session: Session, evaluation_id: int, reviewer: str) -> AbPair | None:
    """The first pair (in the shuffled order) this reviewer has not voted on."""
    voted = select(AbVote.pair_id).where(AbVote.reviewer == reviewer)
    return session.scalar(select(AbPair).where(AbPair.evaluation_id == evaluation_id, AbPair.id.not_in(voted))
                          .order_by(AbPair.position))


def record_vote(session: Session, pair_id: int, side: Literal["left", "right", "none"], reviewer: str) -> AbVote:
    """A reviewer's blind preference: `left`, `right` or `none`, stored as champion/challenger/tie; one per pair."""
    pair = session.get(AbPair, pair_id)
    if pair is None:
        raise RolloutError(f"A/B pair {pair_id} not found")
    if side not in ("left", "right", "none"):
        raise RolloutError(f"side: {side!r} must be left, right or none")
    if session.scalar(select(AbVote).where(AbVote.pair_id == pair_id, AbVote.reviewer == reviewer)):
        raise RolloutError(f"{reviewer} already voted on pair {pair_id}")
    right_arm = "challenger" if pair.left_arm == "champion" else "champion"
    choice = "tie" if side == "none" else pair.left_arm if side == "left" else right_arm
    vote = AbVote(pair_id=pair_id, reviewer=reviewer, choice=choice)
    session.add(vote)
    session.flush()
    audit.append(session, reviewer, "rollout.ab_vote", "ab_pair", pair_id,
                 {"evaluation_id": pair.evaluation_id, "side": side, "choice": choice})
    return vote


def preference(session: Session, evaluation: RolloutEvaluation) -> dict[str, Any]:
    """The challenger's win rate over decisive votes with its Wilson 95 % interval; "not run" without votes."""
    if not evaluation.ab_round:
        return {"status": NOT_RUN, "reason": "no blind A/B round was opened for this evaluation", "win_rate": None,
                "ci_low": None, "ci_high": None, "votes": 0, "wins": 0, "losses": 0, "ties": 0}
    votes = session.execute(select(AbVote.choice, func.count()).join(AbPair, AbPair.id == AbVote.pair_id)
                            .where(AbPair.evaluation_id == evaluation.id).group_by(AbVote.choice)).all()
    counts = {c: n for c, n in votes}
    wins, losses, ties = counts.get("challenger", 0), counts.get("champion", 0), counts.get("tie", 0)
    pairs = session.scalar(select(func.count()).select_from(AbPair).where(AbPair.evaluation_id == evaluation.id))
    n = wins + losses
    base = {"votes": wins + losses + ties, "wins": wins, "losses": losses, "ties": ties, "pairs": pairs}
    if n == 0:
        return {"status": NOT_RUN, "reason": "the A/B round has no decisive vote yet", "win_rate": None,
                "ci_low": None, "ci_high": None, **base}
    lo, hi = wilson_interval(wins, n)
    return {"status": "run", "reason": "", "win_rate": round(wins / n, 4), "ci_low": round(lo, 4),
            "ci_high": round(hi, 4), "method": "Wilson score interval, 95 %, ties excluded", **base}


# --- gates ------------------------------------------------------------------------------------------------

OPS = {">=": lambda a, b: a >= b, ">": lambda a, b: a > b, "<=": lambda a, b: a <= b, "<": lambda a, b: a < b}


class Gate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metric: str
    op: Literal[">=", ">", "<=", "<"]
    value: float | None = None
    than: Literal["champion"] | None = None  # compare with the champion's value of the same metric
    margin: float = 0.0  # added to the champion's value (e.g. -0.02: at most 2 points worse)
    name: str | None = None


class GatePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "rollout"
    gates: list[Gate] = Field(min_length=1)


@dataclass(frozen=True)
class LoadedPolicy:
    path: Path
    sha256: str
    policy: GatePolicy


def load_policy(path: Path) -> LoadedPolicy:
    """The rollout policy YAML; every problem names the file and the field (`gates.1.op: ...`)."""
    path = Path(path)
    if not path.is_file():
        raise RolloutError(f"{path}: no such policy file")
    raw = path.read_bytes()
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise RolloutError(f"{path}: not valid YAML: {exc}") from None
    try:
        policy = GatePolicy.model_validate(data if isinstance(data, dict) else {"gates": data})
    except ValidationError as exc:
        lines = [f"{path}:{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise RolloutError("\n".join(lines)) from None
    for i, g in enumerate(policy.gates):
        if (g.value is None) == (g.than is None):
            raise RolloutError(f"{path}:gates.{i}: give exactly one of `value` and `than: champion`")
    return LoadedPolicy(path, hashlib.sha256(raw).hexdigest(), policy)


def metric_value(metrics: dict[str, Any], pref: dict[str, Any], arm: str, metric: str) -> Any:
    """A metric by name: `preference_win_rate` / `preference_ci_low` / `preference_ci_high` or an arm's metric."""
    if metric.startswith("preference_"):
        key = {"preference_win_rate": "win_rate", "preference_ci_low": "ci_low",
               "preference_ci_high": "ci_high"}.get(metric)
        if key is None:
            raise RolloutError(f"unknown preference metric {metric!r} (preference_win_rate, preference_ci_low, "
                               "preference_ci_high)")
        return pref.get(key) if arm == "challenger" else None
    arm_metrics_ = metrics.get(arm, {})
    if metric not in arm_metrics_:
        known = ", ".join(sorted(k for k, v in metrics.get("challenger", {}).items()
                                 if isinstance(v, (int, float)) or v is None))
        raise RolloutError(f"unknown metric {metric!r} (known: {known}, preference_win_rate, preference_ci_low)")
    return arm_metrics_[metric]


def evaluate_gates(policy: GatePolicy, metrics: dict[str, Any], pref: dict[str, Any]) -> tuple[list[dict], bool]:
    """Each gate: pass, fail, or not evaluated (a metric that was not run) — which counts as not passed."""
    out = []
    for g in policy.gates:
        value = metric_value(metrics, pref, "challenger", g.metric)
        if g.than == "champion":
            base = metric_value(metrics, pref, "champion", g.metric)
            threshold = None if base is None else base + g.margin
            wording = f"challenger {g.metric} {g.op} champion's" + (f" {g.margin:+g}" if g.margin else "")
        else:
            threshold, wording = g.value, f"challenger {g.metric} {g.op} {g.value:g}"
        if value is None or threshold is None:
            missing = g.metric if value is None else f"champion's {g.metric}"
            why = pref.get("reason") if g.metric.startswith("preference_") else f"{missing} was not measured"
            status, reason = "not evaluated", f"{NOT_RUN}: {why}"
        else:
            ok = OPS[g.op](value, threshold)
            status, reason = ("pass" if ok else "fail"), f"{value:g} {g.op} {threshold:g}: {'yes' if ok else 'no'}"
        out.append({"gate": g.name or wording, "metric": g.metric, "op": g.op, "threshold": threshold,
                    "value": value, "status": status, "reason": reason})
    return out, all(r["status"] == "pass" for r in out)


# --- evaluations, promotion, rollback ---------------------------------------------------------------------

def refresh(session: Session, evaluation: RolloutEvaluation) -> RolloutEvaluation:
    """Recompute preference and gates with the votes recorded now; store them on the evaluation."""
    pref = preference(session, evaluation)
    evaluation.metrics = {**evaluation.metrics, "preference": pref}
    if evaluation.policy_path:
        policy = load_policy(Path(evaluation.policy_path))
        if policy.sha256 != evaluation.policy_sha256:
            raise RolloutError(f"{evaluation.policy_path} changed since evaluation {evaluation.id} "
                               "(sha256 differs): run `wanflow rollout evaluate` again")
        gates, passed = evaluate_gates(policy.policy, evaluation.metrics, pref)
        evaluation.gates, evaluation.passed = gates, passed
    session.flush()
    return evaluation


def last_evaluation(session: Session, registry_name: str) -> RolloutEvaluation:
    ev = session.scalar(select(RolloutEvaluation).where(RolloutEvaluation.registry_name == registry_name)
                        .order_by(RolloutEvaluation.id.desc()))
    if ev is None:
        raise RolloutError(f"no rollout evaluation of {registry_name} yet: run `wanflow rollout evaluate`")
    return ev


def _move(session: Session, registry, name: str, alias: str, to: int, action: str, actor: str, reason: str,
          evaluation_id: int | None = None, reverts_id: int | None = None,
          extra: dict[str, Any] | None = None) -> AliasMove:  # noqa: ANN001 - adapters.registry.Registry
    before = registry.aliases(name).get(alias)
    move = AliasMove(registry_name=name, alias=alias, from_version=before, to_version=to, action=action,
                     evaluation_id=evaluation_id, reverts_id=reverts_id, actor=actor, reason=reason)
    session.add(move)
    session.flush()
    audit.append(session, actor, f"model.alias_{action}", "alias_move", move.id,
                 {"model": name, "alias": alias, "from_version": before, "to_version": to, "reason": reason,
                  "evaluation_id": evaluation_id, **(extra or {})})
    # The registry moves last, inside the catalog transaction: if it fails, the move and its audit roll back
    registry.set_alias(name, alias, to)
    return move


def promote(session: Session, registry, name: str, actor: str, override: bool = False, reason: str = "",
            alias: str = "champion") -> AliasMove:  # noqa: ANN001 - adapters.registry.Registry
    """Move `alias` to the last evaluation's challenger — only if that evaluation passed every gate and the
    alias still points at the champion it was compared with — or with an override and its reason (audited)."""
    ev = refresh(session, last_evaluation(session, name))
    current = registry.aliases(name).get(alias)
    problems = []
    if ev.passed is None:
        problems.append(f"evaluation {ev.id} was run without a rollout policy: its gates were not evaluated")
    elif not ev.passed:
        problems += [f"gate {g['gate']}: {g['status']} ({g['reason']})" for g in ev.gates if g["status"] != "pass"]
    if current != ev.champion_version:
        problems.append(f"{name}@{alias} is {name}/{current} now, evaluation {ev.id} compared {name}/"
                        f"{ev.champion_version}: evaluate again against the current champion")
    if current == ev.challenger_version:
        raise RolloutError(f"{name}@{alias} already is {name}/{ev.challenger_version}")
    if problems and not override:
        raise RolloutError(f"promotion of {name}/{ev.challenger_version} refused (evaluation {ev.id}):\n  - "
                           + "\n  - ".join(problems) + "\n(promote anyway with --override --reason TEXT; audited)")
    if override and not reason.strip():
        raise RolloutError("--override needs --reason: why is the evaluation overridden?")
    return _move(session, registry, name, alias, ev.challenger_version, "override" if problems else "promote",
                 actor, reason, ev.id, extra={"gates": ev.gates, "passed": ev.passed, "overridden": problems})


def rollback(session: Session, registry, name: str, actor: str, reason: str = "",
             alias: str = "champion") -> AliasMove:  # noqa: ANN001 - adapters.registry.Registry
    """Move `alias` back to where the last move (not yet rolled back) took it from: one step."""
    reverted = select(AliasMove.reverts_id).where(AliasMove.reverts_id.is_not(None))
    last = session.scalar(select(AliasMove).where(AliasMove.registry_name == name, AliasMove.alias == alias,
                                                  AliasMove.action != "rollback", AliasMove.id.not_in(reverted))
                          .order_by(AliasMove.id.desc()))
    if last is None or last.from_version is None:
        raise RolloutError(f"nothing to roll back: no recorded move of {name}@{alias} with a previous version")
    current = registry.aliases(name).get(alias)
    if current != last.to_version:
        raise RolloutError(f"{name}@{alias} is {name}/{current}, not {name}/{last.to_version} as the last recorded "
                           f"move (#{last.id}) left it: it was moved outside wanflow; set it explicitly")
    return _move(session, registry, name, alias, last.from_version, "rollback", actor, reason, last.evaluation_id,
                 reverts_id=last.id)


def pin(session: Session, registry, name: str, alias: str, version: int, actor: str,
        reason: str = "", action: str = "set") -> AliasMove:  # noqa: ANN001 - adapters.registry.Registry
    """Set an alias directly (a brand pin such as `acme-champion`, or `challenger`; `champion` only as an
    override with a reason); recorded and audited."""
    if alias == "champion" and (action != "override" or not reason.strip()):
        raise RolloutError("champion is set directly only as an override with a reason")
    return _move(session, registry, name, alias, version, action, actor, reason)
