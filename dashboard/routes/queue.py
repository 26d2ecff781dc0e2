"""The review queue: filters, due-date order, pages and counts per status (page and JSON)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request

from catalog.db import session_scope
from dashboard.deps import Catalog, User
from wan_tasks.queue import STATUS_LABELS, QueueFilters, queue
from wan_tasks.review import REJECT_REASONS

pages = APIRouter(include_in_schema=False)
api = APIRouter(tags=["queue"])
Status = Literal["open", "to_review", "to_approve", "approved", "rejected", "changes_requested", "all"]


def filters(campaign: Annotated[str | None, Query(max_length=64)] = None,
            brand: Annotated[str | None, Query(max_length=64)] = None,
            status: Status = "open", qc: Literal["pass", "needs_review", ""] = "",
            assignee: Annotated[str | None, Query(max_length=64)] = None,
            page: Annotated[int, Query(ge=1, le=100_000)] = 1,
            per_page: Annotated[int, Query(ge=1, le=200)] = 50) -> QueueFilters:
    return QueueFilters(campaign or None, brand or None, status, qc or None, assignee or None, page, per_page)


Filters = Annotated[QueueFilters, Depends(filters)]


@pages.get("/")
def queue_page(request: Request, catalog: Catalog, user: User, f: Filters):
    if f.assignee == "me":
        f = QueueFilters(**(asdict(f) | {"assignee": user.name}))
    with session_scope(catalog) as s:
        page = queue(s, f)
    keep = {k: v for k, v in asdict(f).items() if v and k not in ("page", "per_page")}

    def link(**changes) -> str:
        return "/?" + urlencode({k: v for k, v in (keep | changes).items() if v})

    return request.app.state.templates.TemplateResponse(request, "queue.html", {
        "user": user, "page": page, "f": f, "link": link, "labels": STATUS_LABELS, "reasons": REJECT_REASONS})


@api.get("/queue")
def queue_json(catalog: Catalog, user: User, f: Filters) -> dict:
    """One page of review tasks (soonest due first) with the counts per status for the same filters."""
    with session_scope(catalog) as s:
        page = queue(s, f)
    return {"total": page.total, "page": page.page, "pages": page.pages, "counts": page.counts,
            "items": [asdict(r) for r in page.rows]}


@api.get("/reasons")
def reasons(user: User) -> dict[str, str]:
    """The rejection reasons offered to reviewers (reason_code → label)."""
    return REJECT_REASONS
