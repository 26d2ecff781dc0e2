"""Blind A/B rounds of a rollout evaluation: the same prompt and seed by champion and challenger, side by side
in a random left/right order (fixed per pair when the round was opened); the reviewer picks left, right or no
preference and never learns which model is which. Each vote is stored as champion/challenger/tie and audited.

Pages: ``GET /ab/{evaluation}`` (the next pair this reviewer has not voted on), ``POST /ab/{evaluation}/vote``.
API: ``GET /api/ab/{evaluation}/next``, ``POST /api/ab/pairs/{pair}/vote`` ({"side": "left"|"right"|"none"}),
``GET /api/ab/{evaluation}`` (progress; the result itself only to approvers, so reviewers stay blind).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel
from sqlalchemy import func, select

from catalog.db import session_scope
from catalog.models import AbPair, AbVote, Asset, GenerationJob, PromptItem, Role, RolloutEvaluation
from core.i18n import N_
from dashboard.deps import Catalog, CurrentUser, require
from dashboard.schemas import Id
from wan_tasks import rollout

pages = APIRouter(include_in_schema=False)
api = APIRouter(tags=["a/b"])
Reviewer = Annotated[CurrentUser, Depends(require(Role.reviewer))]
NO_ROUND, NO_PAIR = N_("no A/B round for this evaluation"), N_("no such A/B pair")


class VoteIn(BaseModel):
    side: Literal["left", "right", "none"]


def _evaluation(s, evaluation_id: int) -> RolloutEvaluation:  # noqa: ANN001
    ev = s.get(RolloutEvaluation, evaluation_id)
    if ev is None or not ev.ab_round:
        raise HTTPException(404, NO_ROUND)
    return ev


def _next(s, evaluation_id: int, reviewer: str) -> dict | None:  # noqa: ANN001
    pair = rollout.next_pair(s, evaluation_id, reviewer)
    if pair is None:
        return None
    left, right = ((pair.champion_asset_id, pair.challenger_asset_id) if pair.left_arm == "champion"
                   else (pair.challenger_asset_id, pair.champion_asset_id))
    item = s.scalar(select(PromptItem).join(GenerationJob, GenerationJob.item_id == PromptItem.id)
                    .join(Asset, Asset.job_id == GenerationJob.id).where(Asset.id == left))
    return {"pair_id": pair.id, "left_asset": left, "right_asset": right, "prompt": item.prompt if item else "",
            "item": pair.item_key}


def _progress(s, evaluation_id: int, reviewer: str) -> dict:  # noqa: ANN001
    pairs = s.scalar(select(func.count()).select_from(AbPair).where(AbPair.evaluation_id == evaluation_id))
    mine = s.scalar(select(func.count()).select_from(AbVote).join(AbPair, AbPair.id == AbVote.pair_id)
                    .where(AbPair.evaluation_id == evaluation_id, AbVote.reviewer == reviewer))
    return {"pairs": pairs, "voted": mine}


@pages.get("/ab/{evaluation_id}")
def ab_page(evaluation_id: Id, request: Request, catalog: Catalog, user: Reviewer):
    with session_scope(catalog) as s:
        _evaluation(s, evaluation_id)
        pair, progress = _next(s, evaluation_id, user.name), _progress(s, evaluation_id, user.name)
    return request.app.state.templates.TemplateResponse(
        request, "ab.html", {"user": user, "evaluation_id": evaluation_id, "pair": pair, "progress": progress})


@pages.post("/ab/{evaluation_id}/vote")
def ab_vote_form(evaluation_id: Id, catalog: Catalog, user: Reviewer, pair_id: Annotated[Id, Form()],
                 side: Annotated[str, Form()]):
    _vote(catalog, pair_id, side, user.name, evaluation_id)
    return RedirectResponse(f"/ab/{evaluation_id}", status_code=303)


def _vote(catalog, pair_id: int, side: str, reviewer: str, evaluation_id: int | None = None) -> dict:  # noqa: ANN001
    with session_scope(catalog) as s:
        pair = s.get(AbPair, pair_id)
        if pair is None or (evaluation_id is not None and pair.evaluation_id != evaluation_id):
            raise HTTPException(404, NO_PAIR)
        try:
            rollout.record_vote(s, pair_id, side, reviewer)  # type: ignore[arg-type]
        except rollout.RolloutError as e:
            raise HTTPException(409 if "already voted" in str(e) else 422, str(e)) from e
        return {"pair_id": pair_id, "side": side, "recorded": True}


@api.get("/ab/{evaluation_id}/next")
def ab_next(evaluation_id: Id, catalog: Catalog, user: Reviewer) -> dict:
    with session_scope(catalog) as s:
        _evaluation(s, evaluation_id)
        return {"pair": _next(s, evaluation_id, user.name), **_progress(s, evaluation_id, user.name)}


@api.post("/ab/pairs/{pair_id}/vote")
def ab_vote(pair_id: Id, body: VoteIn, catalog: Catalog, user: Reviewer) -> dict:
    return _vote(catalog, pair_id, body.side, user.name)


@api.get("/ab/{evaluation_id}")
def ab_summary(evaluation_id: Id, catalog: Catalog, user: Reviewer) -> dict:
    """Progress for everyone; the win rate and its interval only for approvers (reviewers stay blind)."""
    with session_scope(catalog) as s:
        ev = _evaluation(s, evaluation_id)
        out = {"evaluation_id": evaluation_id, **_progress(s, evaluation_id, user.name)}
        if user.at_least(Role.approver):
            out["preference"] = rollout.preference(s, ev)
        return out
