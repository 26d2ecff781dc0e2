"""Job claims with a lease: how GPU workers share a campaign's jobs through the catalog.

A worker claims a shard (up to ``n`` claimable jobs) in one atomic statement and gets a random token; the
jobs carry the token, the worker's name and a lease expiry. While it works it renews the lease; when it
records a clip the write is conditional on the token (``finish``), so a worker whose lease ran out and whose
jobs were claimed again can no longer record them: a job is recorded exactly once, by the current holder.

Claimable: ``pending``, or ``running`` under a claim whose lease has expired (its worker died or hung). A job
run in-process by ``wanflow run`` (status running, no claim) is never taken. A job whose lease has expired
``max_claims`` times is marked failed (it kills its workers) instead of being claimed forever.

PostgreSQL: ``SELECT … FOR UPDATE SKIP LOCKED`` then ``UPDATE … WHERE id IN (…)`` in one transaction —
concurrent claimers skip each other's rows instead of waiting or double-claiming. SQLite: the same statements
inside ``BEGIN IMMEDIATE`` (the database's single write lock is taken before anything is read), so two claimers
are serialised.
Times are the workers' UTC clocks (keep them in NTP sync; leases are tens of seconds to minutes).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, and_, func, or_, select, update

from catalog.models import Campaign, GenerationJob, JobStatus, utcnow

J = GenerationJob


class LeaseLost(RuntimeError):
    """The worker's claim on a job was taken over (its lease expired); it must not record the job."""


@dataclass(frozen=True)
class Claim:
    token: str
    worker: str
    job_ids: list[int]
    expires_at: datetime


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the write lock from its first statement on SQLite (BEGIN IMMEDIATE)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


def claimable(now: datetime):  # noqa: ANN201 - a SQL boolean expression
    expired = and_(J.status == JobStatus.running, J.claim_token.is_not(None), J.lease_expires_at < now)
    return or_(J.status == JobStatus.pending, expired)


def campaign_id(conn: Connection, name: str) -> int:
    cid = conn.scalar(select(Campaign.id).where(Campaign.name == name))
    if cid is None:
        raise LookupError(f"unknown campaign {name!r}: record its brief first (wanflow run BRIEF or the campaign flow)")
    return cid


def claim(engine: Engine, worker: str, n: int, lease_s: float, campaign: int | None = None,
          max_claims: int = 3) -> Claim | None:
    """Atomically claim up to ``n`` claimable jobs (oldest first) for ``lease_s`` seconds; None if there are none."""
    if n < 1 or lease_s <= 0:
        raise ValueError(f"claim: n must be ≥ 1 and lease_s > 0, got n={n!r}, lease_s={lease_s!r}")
    token, now = uuid.uuid4().hex, utcnow()
    expires = now + timedelta(seconds=lease_s)
    scope = [J.campaign_id == campaign] if campaign is not None else []
    with write_transaction(engine) as conn:
        # Jobs that outlived max_claims leases are poison (they kill or hang their workers): fail them, visibly.
        conn.execute(update(J).where(*scope, J.status == JobStatus.running, J.claim_token.is_not(None),
                                     J.lease_expires_at < now, J.claims >= max_claims)
                     .values(status=JobStatus.failed, finished_at=now, lease_expires_at=None,
                             error=f"lease expired {max_claims} times: the workers that claimed it died or hung")
                     .execution_options(synchronize_session=False))
        # Two index range scans instead of one OR over the whole campaign (which would walk every finished job
        # on each claim): jobs whose lease expired first (running rows are few), then the oldest pending ones
        # (index status, campaign_id, id gives them in order).
        ids = list(conn.scalars(select(J.id).where(*scope, J.status == JobStatus.running, J.claim_token.is_not(None),
                                                   J.lease_expires_at < now)
                                .order_by(J.id).limit(n).with_for_update(skip_locked=True)))
        if len(ids) < n:
            ids += conn.scalars(select(J.id).where(J.status == JobStatus.pending, *scope).order_by(J.id)
                                .limit(n - len(ids)).with_for_update(skip_locked=True))
        if not ids:
            return None
        result = conn.execute(update(J).where(J.id.in_(ids), claimable(now))  # rows locked (PG) / db locked (SQLite)
                              .values(status=JobStatus.running, claim_token=token, claimed_by=worker,
                                      lease_expires_at=expires, claims=J.claims + 1, attempts=J.attempts + 1,
                                      started_at=now, error=None)
                              .execution_options(synchronize_session=False))
        if not result.rowcount:
            return None
        job_ids = list(conn.scalars(select(J.id).where(J.claim_token == token).order_by(J.id)))
    return Claim(token=token, worker=worker, job_ids=job_ids, expires_at=expires)


def renew(engine: Engine, token: str, lease_s: float) -> int:
    """Extend the lease of the jobs still held under ``token`` (running); returns how many are still held."""
    with write_transaction(engine) as conn:
        return conn.execute(update(J).where(J.claim_token == token, J.status == JobStatus.running)
                            .values(lease_expires_at=utcnow() + timedelta(seconds=lease_s))
                            .execution_options(synchronize_session=False)).rowcount


def release(engine: Engine, token: str) -> int:
    """Give back the jobs still held under ``token`` that were not finished (a worker shutting down cleanly)."""
    with write_transaction(engine) as conn:
        return conn.execute(update(J).where(J.claim_token == token, J.status == JobStatus.running)
                            .values(status=JobStatus.pending, claim_token=None, claimed_by=None,
                                    lease_expires_at=None)
                            .execution_options(synchronize_session=False)).rowcount


def finish(session, job_id: int, token: str) -> None:  # noqa: ANN001 - sqlalchemy.orm.Session
    """Mark a claimed job done, in the caller's transaction, only if ``token`` still holds it.

    The conditional UPDATE takes the row's write lock (PostgreSQL) or the database's (SQLite) before anything
    else in the transaction, so a takeover either happened before (→ LeaseLost) or waits for this commit.
    """
    now = utcnow()
    n = session.execute(update(J).where(J.id == job_id, J.claim_token == token, J.status == JobStatus.running)
                        .values(status=JobStatus.done, error=None, finished_at=now, lease_expires_at=None)
                        .execution_options(synchronize_session=False)).rowcount
    if n != 1:
        raise LeaseLost(f"job {job_id}: claim {token[:8]}… no longer holds it (lease expired and it was claimed "
                        "again, or it was finished); its clip is not recorded")


def holds(session, job_id: int, token: str) -> bool:  # noqa: ANN001
    return session.scalar(select(func.count()).select_from(J).where(
        J.id == job_id, J.claim_token == token, J.status == JobStatus.running)) == 1


def live_tokens(session) -> set[str]:  # noqa: ANN001
    """Tokens of the claims that still hold a job under a lease that has not expired (their workers may be writing)."""
    return set(session.scalars(select(J.claim_token).distinct().where(
        J.status == JobStatus.running, J.claim_token.is_not(None), J.lease_expires_at >= utcnow())))


def queue_depth(conn, campaign: int | None = None) -> int:  # noqa: ANN001 - Connection or Session
    """Jobs a worker could claim now."""
    scope = [J.campaign_id == campaign] if campaign is not None else []
    return conn.scalar(select(func.count()).select_from(J).where(*scope, claimable(utcnow())))


def unfinished(conn, campaign: int | None = None) -> int:  # noqa: ANN001
    """Jobs the fleet still has to finish: pending, or running under some claim (not an in-process run's)."""
    scope = [J.campaign_id == campaign] if campaign is not None else []
    return conn.scalar(select(func.count()).select_from(J).where(
        *scope, or_(J.status == JobStatus.pending, and_(J.status == JobStatus.running, J.claim_token.is_not(None)))))
