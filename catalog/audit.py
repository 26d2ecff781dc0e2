"""The audit trail: append-only events chained by hashes, so that an edited or deleted row is found.

Each event's ``hash`` is sha256 over its own fields and the previous event's hash. Every writer goes
through :func:`append`, which first bumps the single ``audit_head`` row: that UPDATE holds PostgreSQL's
row lock (or SQLite's write lock) until the transaction ends, so concurrent appends are serialized and
the chain never forks. :func:`verify` walks the chain and names the first broken link; the head row
also catches a deleted last event. The database additionally refuses UPDATE and DELETE on the table
(triggers from migration 0002); the chain catches whoever gets past them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from catalog.models import AuditEvent, AuditHead, utcnow

GENESIS = "0" * 64


class AuditError(RuntimeError):
    """The audit chain cannot be appended to (its head row is missing)."""


def _canonical_time(at: datetime) -> str:
    if at.tzinfo is not None:
        at = at.astimezone(timezone.utc).replace(tzinfo=None)
    return at.isoformat(timespec="microseconds")


def event_hash(seq: int, at: datetime, actor: str, action: str, entity: str, entity_id: int | None,
               payload: dict[str, Any], prev_hash: str) -> str:
    """The chain's hash of one event. A stable contract: changing it would break every existing chain."""
    body = json.dumps([seq, _canonical_time(at), actor, action, entity, entity_id, payload, prev_hash],
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def append(session: Session, actor: str, action: str, entity: str, entity_id: int | None = None,
           payload: dict[str, Any] | None = None) -> AuditEvent:
    """Append one event to the chain inside the caller's transaction (it commits or rolls back with it)."""
    payload = json.loads(json.dumps(payload or {}, default=str, ensure_ascii=False))
    head = session.execute(
        update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1)
        .returning(AuditHead.seq, AuditHead.hash),
        execution_options={"synchronize_session": False},
    ).one_or_none()
    if head is None:
        raise AuditError("the audit chain has no head row: run `wanflow db upgrade`")
    seq, prev = head
    at = utcnow()
    digest = event_hash(seq, at, actor, action, entity, entity_id, payload, prev)
    event = AuditEvent(id=seq, at=at, actor=actor, action=action, entity=entity, entity_id=entity_id,
                       payload=payload, prev_hash=prev, hash=digest)
    session.add(event)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(hash=digest),
                    execution_options={"synchronize_session": False})
    session.flush()
    return event


@dataclass(frozen=True)
class ChainVerification:
    ok: bool
    events: int
    head_hash: str
    broken_at: int | None = None  # id of the first event whose link does not hold
    problem: str | None = None


def verify_chain(session: Session) -> ChainVerification:
    """Recompute the chain from the first event; report the first broken link, if any."""
    prev, prev_id, count = GENESIS, None, 0
    rows = session.execute(select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=2000)).scalars()
    for e in rows:
        count += 1
        if e.prev_hash != prev:
            where = f"after event {prev_id}" if prev_id is not None else "at the start of the chain"
            return ChainVerification(False, count, prev, e.id, f"event {e.id} does not follow the event before it: "
                                f"an event {where} was deleted, inserted or altered")
        if event_hash(e.id, e.at, e.actor, e.action, e.entity, e.entity_id, e.payload, e.prev_hash) != e.hash:
            return ChainVerification(False, count, prev, e.id, f"event {e.id} was altered: its content no longer "
                                f"matches its hash ({e.action} by {e.actor})")
        prev, prev_id = e.hash, e.id
    head = session.get(AuditHead, 1)
    if head is None or head.hash != prev or (prev_id or 0) != head.seq:
        last = f"event {head.seq}" if head is not None else "the head row"
        return ChainVerification(False, count, prev, head.seq if head else None,
                            f"the chain ends at event {prev_id} but its head records {last}: "
                            f"the last event(s) were deleted")
    return ChainVerification(True, count, prev)
