"""Users (admin only): list accounts and change a role. Role changes are audit events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from sqlalchemy import select

from catalog.db import session_scope
from catalog.models import Role
from catalog.models import User as UserRow
from dashboard.deps import Catalog, CurrentUser, require
from dashboard.schemas import RoleIn
from wan_tasks.accounts import AccountError, set_role

pages = APIRouter(include_in_schema=False)
api = APIRouter(tags=["users"])
Admin = Annotated[CurrentUser, Depends(require(Role.admin))]


@api.get("/users")
def list_users(catalog: Catalog, user: Admin) -> list[dict]:
    with session_scope(catalog) as s:
        return [{"name": u.name, "role": u.role.value, "active": u.active}
                for u in s.scalars(select(UserRow).order_by(UserRow.name))]


@api.post("/users/{name}/role")
def change_role(name: str, body: RoleIn, catalog: Catalog, user: Admin) -> dict:
    try:
        with session_scope(catalog) as s:
            row = set_role(s, name, body.role, user.name)
            return {"name": row.name, "role": row.role.value}
    except AccountError as e:
        raise HTTPException(404, str(e)) from e
