"""Request and response bodies of the JSON API (separate from the catalog's ORM rows)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from catalog.models import Decision, Role


class SignIn(BaseModel):
    name: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class SessionOut(BaseModel):
    signed_in: bool
    user: str | None = None
    role: Role | None = None
    csrf_token: str


class DecisionIn(BaseModel):
    decision: Decision
    reason: str = Field(default="", max_length=4000)
    reason_code: str | None = Field(default=None, description="One of the rejection reasons (GET /api/reasons).")
    expected_stage: str | None = Field(default=None, description="The stage you saw (review/approval): "
                                       "if the task has moved on, the answer is 409 with its fresh state.")
    prompt: str | None = Field(default=None, max_length=2000, description="request_changes: the edited prompt.")
    negative_prompt: str | None = Field(default=None, max_length=2000)
    seed: int | None = Field(default=None, description="request_changes: a new seed.")


class DecisionOut(BaseModel):
    state: dict[str, Any]
    revision_job_id: int | None = None


class Conflict(BaseModel):
    detail: str
    state: dict[str, Any]


class AssigneeIn(BaseModel):
    assignee: str | None = Field(default=None, max_length=64)


class RoleIn(BaseModel):
    role: Role
