"""A clip: its page (player, frames, prompt, seed, params, model, QC findings, history, other variants)
and its decisions (approve / reject with a reason / request changes), as HTML forms and as JSON."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse

from catalog.db import session_scope
from catalog.models import Decision, Role
from core.i18n import N_
from dashboard.deps import Catalog, CurrentUser, User, require
from dashboard.i18n import say
from dashboard.routes.media import NOT_FOUND
from dashboard.schemas import BAD_ID, AssigneeIn, Conflict, DecisionIn, DecisionOut, parse_id
from flows import events
from wan_tasks.queue import clip_detail
from wan_tasks.review import (REJECT_REASONS, Changes, DecisionConflict, NotAllowed, NoTask, ReviewError, assign,
                              decide, publishable_campaign, task_state)

pages = APIRouter(include_in_schema=False)
api = APIRouter(tags=["clips"])
Decider = Annotated[CurrentUser, Depends(require(Role.reviewer))]
VIEWERS = N_("Viewers can watch and read, not decide.")


def asset_id_of(ref: str) -> int:
    """Path parameter → asset id; anything but a plain 32-bit number (a path, `..`, "²", 2**31) is 404."""
    asset_id = parse_id(ref)
    if asset_id is None:
        raise HTTPException(404, NOT_FOUND)
    return asset_id


def _decide(request: Request, catalog, user: CurrentUser, asset_id: int, body: DecisionIn) -> DecisionOut:
    changes = (Changes(body.prompt, body.negative_prompt, body.seed)
               if body.decision == Decision.request_changes else None)
    with session_scope(catalog) as s:
        row = decide(s, asset_id, body.decision, body.reason, user.name, role=user.role,
                     expected_stage=body.expected_stage or None, reason_code=body.reason_code or None,
                     changes=changes, brands_dir=request.app.state.settings.brands_dir)
        out = DecisionOut(state=task_state(s, row.task_id), revision_job_id=row.revision_job_id)
        publishable = publishable_campaign(s, asset_id)
    if publishable:  # after the commit: the publish deployment's trigger may run at once
        events.clip_approved(publishable, asset_id, user.name)
    return out


def _render(request: Request, catalog, user: CurrentUser, asset_id: int, status: int = 200, **extra):
    with session_scope(catalog) as s:
        clip = clip_detail(s, asset_id)
    if clip is None:
        raise HTTPException(404, NOT_FOUND)
    return request.app.state.templates.TemplateResponse(request, "clip.html", {
        "user": user, "clip": clip, "reasons": REJECT_REASONS, "can_decide": user.at_least(Role.reviewer),
        "form": {}, **extra}, status_code=status)


@pages.get("/clips/{ref}")
def clip_page(ref: str, request: Request, catalog: Catalog, user: User, done: str | None = None):
    return _render(request, catalog, user, asset_id_of(ref), done=done)


@pages.post("/clips/{ref}/decision")
def decide_form(ref: str, request: Request, catalog: Catalog, user: User,
                decision: Annotated[Decision, Form()], reason: Annotated[str, Form(max_length=4000)] = "",
                reason_code: Annotated[str, Form(max_length=32)] = "",
                expected_stage: Annotated[str, Form(max_length=16)] = "",
                prompt: Annotated[str | None, Form(max_length=2000)] = None,
                negative_prompt: Annotated[str | None, Form(max_length=2000)] = None,
                seed: Annotated[str, Form(max_length=12)] = ""):
    asset_id = asset_id_of(ref)
    form = {"decision": decision.value, "reason": reason, "reason_code": reason_code, "prompt": prompt,
            "negative_prompt": negative_prompt, "seed": seed}
    if not user.at_least(Role.reviewer):
        return _render(request, catalog, user, asset_id, 403, error=VIEWERS)
    new_seed = parse_id(seed) if seed else None
    if seed and new_seed is None:
        return _render(request, catalog, user, asset_id, 422, error=f"seed: {BAD_ID}: {seed!r}", form=form)
    body = DecisionIn(decision=decision, reason=reason, reason_code=reason_code or None,
                      expected_stage=expected_stage or None, prompt=prompt, negative_prompt=negative_prompt,
                      seed=new_seed)
    try:
        _decide(request, catalog, user, asset_id, body)
    except DecisionConflict as e:
        return _render(request, catalog, user, asset_id, 409, conflict=str(e), state=e.state)
    except NoTask as e:
        raise HTTPException(404, str(e)) from e
    except NotAllowed as e:
        return _render(request, catalog, user, asset_id, 403, error=str(e))
    except ReviewError as e:
        return _render(request, catalog, user, asset_id, 422, error=str(e), form=form)
    return RedirectResponse(f"/clips/{asset_id}?done={decision.value}", status_code=303)


@pages.post("/clips/{ref}/assignee")
def assign_form(ref: str, request: Request, catalog: Catalog, user: Decider,
                assignee: Annotated[str, Form(max_length=64)] = ""):
    asset_id = asset_id_of(ref)
    try:
        with session_scope(catalog) as s:
            assign(s, asset_id, assignee.strip() or None, user.name)
    except NoTask as e:
        raise HTTPException(404, str(e)) from e
    return RedirectResponse(f"/clips/{asset_id}", status_code=303)


@api.get("/clips/{ref}")
def clip_json(ref: str, catalog: Catalog, user: User) -> dict:
    """Everything about one clip: prompt, seed, params, model version, QC findings, decisions, variants."""
    with session_scope(catalog) as s:
        clip = clip_detail(s, asset_id_of(ref))
    if clip is None:
        raise HTTPException(404, NOT_FOUND)
    return clip


@api.post("/clips/{ref}/decision", response_model=DecisionOut,
          responses={403: {"description": "role not allowed"}, 409: {"model": Conflict}, 422: {}})
def decide_json(ref: str, request: Request, catalog: Catalog, user: Decider, body: DecisionIn):
    """Approve, reject (reason or reason_code required) or request changes (edited prompt and/or new seed:
    a new generation job linked to this clip). 409 with the fresh state if someone decided first."""
    try:
        return _decide(request, catalog, user, asset_id_of(ref), body)
    except DecisionConflict as e:
        return JSONResponse(Conflict(detail=say(request, str(e)), state=e.state).model_dump(mode="json"), status_code=409)
    except NoTask as e:
        raise HTTPException(404, str(e)) from e
    except NotAllowed as e:
        raise HTTPException(403, str(e)) from e
    except ReviewError as e:
        raise HTTPException(422, str(e)) from e


@api.post("/clips/{ref}/assignee")
def assign_json(ref: str, catalog: Catalog, user: Decider, body: AssigneeIn) -> dict:
    """Assign the clip's review task to a user (or to nobody)."""
    asset_id = asset_id_of(ref)
    try:
        with session_scope(catalog) as s:
            task_id = assign(s, asset_id, (body.assignee or "").strip() or None, user.name)
            return task_state(s, task_id)
    except NoTask as e:
        raise HTTPException(404, str(e)) from e
