"""Queries of the provenance marks: reserve a rendition's watermark payload, record its read-back and
fingerprint, find renditions by payload or by fingerprint prefix. The rules (which id, which match) are in
``governance/watermark.py``; these functions take the session and do what they are told."""

from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.models import FingerprintHash, RenditionMark

U64, S64 = 2**64, 2**63


def to_signed(h: int) -> int:
    return h - U64 if h >= S64 else h


def to_unsigned(h: int) -> int:
    return h + U64 if h < 0 else h


def mark_for(session: Session, clip_id: int, preset: str) -> RenditionMark | None:
    return session.scalar(select(RenditionMark).where(RenditionMark.clip_id == clip_id, RenditionMark.preset == preset))


def mark_of_asset(session: Session, asset_id: int) -> RenditionMark | None:
    return session.scalar(select(RenditionMark).where(RenditionMark.asset_id == asset_id))


def issued_payloads(session: Session) -> list[int]:
    return list(session.scalars(select(RenditionMark.payload).where(RenditionMark.payload.is_not(None))))


def add_mark(session: Session, clip_id: int, preset: str, payload: int | None, method: str, params: dict[str, Any],
             policy: dict[str, Any]) -> RenditionMark:
    row = RenditionMark(clip_id=clip_id, preset=preset, payload=payload, method=method, params=params, policy=policy)
    session.add(row)
    session.flush()
    return row


def finish_mark(session: Session, mark_id: int, asset_id: int, readback: dict[str, Any] | None,
                fingerprint: dict[str, Any], frame_hashes: Iterable[tuple[float, int]], prefix_bits: int) -> None:
    """Tie the mark to its rendition asset; replace its frame hashes (a re-render gives new ones)."""
    row = session.get(RenditionMark, mark_id)
    row.asset_id, row.readback, row.fingerprint = asset_id, readback, fingerprint
    for old in session.scalars(select(FingerprintHash).where(FingerprintHash.mark_id == mark_id)):
        session.delete(old)
    session.flush()
    session.add_all(FingerprintHash(mark_id=mark_id, t=t, hash=to_signed(h), prefix=h >> (64 - prefix_bits))
                    for t, h in frame_hashes)


def by_payload(session: Session, payloads: Iterable[int]) -> dict[int, RenditionMark]:
    wanted = list(payloads)
    if not wanted:
        return {}
    rows = session.scalars(select(RenditionMark).where(RenditionMark.payload.in_(wanted),
                                                       RenditionMark.asset_id.is_not(None)))
    return {r.payload: r for r in rows}


def fingerprints(session: Session, prefixes: Iterable[int] | None = None) -> dict[int, list[int]]:
    """Frame hashes (unsigned) per recorded mark id: of the marks having a frame with one of ``prefixes``
    (the index narrows the search), or of every mark when ``prefixes`` is None."""
    q = select(FingerprintHash.mark_id, FingerprintHash.hash).join(
        RenditionMark, RenditionMark.id == FingerprintHash.mark_id).where(RenditionMark.asset_id.is_not(None))
    if prefixes is not None:
        wanted = sorted(set(prefixes))
        if not wanted:
            return {}
        hits = select(FingerprintHash.mark_id).where(FingerprintHash.prefix.in_(wanted))
        q = q.where(FingerprintHash.mark_id.in_(hits))
    out: dict[int, list[int]] = {}
    for mark_id, h in session.execute(q):
        out.setdefault(mark_id, []).append(to_unsigned(h))
    return out
