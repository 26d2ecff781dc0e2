"""Request and response bodies of the JSON API (separate from the catalog's ORM rows), and the one check of an
id (or seed) from a URL, a form or a body."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field

from catalog.models import Decision, Role

MAX_ID = 2**31 - 1  # ids and seeds are 32-bit INTEGER columns on PostgreSQL
ASCII_ID = re.compile(r"[0-9]{1,10}")  # not \d, str.isdigit() or int(): they take "²", "１" and "١"
BAD_ID = f"not a whole number within 0..{MAX_ID} (ASCII digits only)"


def parse_id(text: str) -> int | None:
    """A number from a URL or a form: ASCII digits within 0..MAX_ID, else None."""
    return int(text) if ASCII_ID.fullmatch(text) and int(text) <= MAX_ID else None


def _checked_id(value: object) -> int:
    n = parse_id(value) if isinstance(value, str) else value
    if type(n) is not int or not 0 <= n <= MAX_ID:
        raise ValueError(BAD_ID)
    return n


Id = Annotated[int, BeforeValidator(_checked_id)]
"""A typed id parameter (path, form or body field): anything but ASCII digits within the column's range is 422."""


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
    seed: Id | None = Field(default=None, description=f"request_changes: a new seed (0..{MAX_ID}).")


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
