"""The audit log: append-only and hash-chained.

Each record's hash is ``SHA-256(prev_hash_bytes || canonical_json(record))`` where the canonical
JSON holds ``seq, at, actor, action, subject, detail`` with sorted keys and no spaces. Appends
lock the single ``audit_head`` row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` already serialises writers), so several scheduler nodes keep one chain.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from suture.scheduler.models import AuditHead, AuditRecord

GENESIS_HASH = "0" * 64


def _canonical(seq: int, at: int, actor: str, action: str, subject: str, detail: str) -> bytes:
    record = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "action": action,
        "subject": subject,
        "detail": detail,
    }
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode()


def chain_hash(prev_hash: str, seq: int, at: int, actor: str, action: str, subject: str,
               detail: str) -> str:
    """The hash of one record given its predecessor's hash."""
    body = _canonical(seq, at, actor, action, subject, detail)
    return hashlib.sha256(bytes.fromhex(prev_hash) + body).hexdigest()


def append(
    session: Session, *, at: int, actor: str, action: str, subject: str,
    detail: dict[str, Any] | None = None,
) -> AuditRecord:
    """Append one record inside the caller's transaction (it commits with the change it audits)."""
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).with_for_update()
    ).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, seq=0, hash=GENESIS_HASH)
        session.add(head)
    detail_text = json.dumps(detail or {}, sort_keys=True, separators=(",", ":"), default=str)
    seq = head.seq + 1
    digest = chain_hash(head.hash, seq, at, actor, action, subject, detail_text)
    record = AuditRecord(
        seq=seq, at=at, actor=actor[:80], action=action, subject=subject[:128],
        detail=detail_text, prev_hash=head.hash, hash=digest,
    )
    session.add(record)
    head.seq = seq
    head.hash = digest
    session.flush()
    return record


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int
    #: The first record that does not chain (None when ``ok``).
    first_bad_seq: int | None
    reason: str


def verify(session: Session, *, batch: int = 5000) -> VerifyResult:
    """Recompute the whole chain; report the first record that does not match."""
    with session.begin():
        prev = GENESIS_HASH
        expected_seq = 1
        count = 0
        last_seq = 0
        while True:
            rows = session.execute(
                select(AuditRecord).where(AuditRecord.seq > last_seq)
                .order_by(AuditRecord.seq).limit(batch)
            ).scalars().all()
            if not rows:
                break
            for rec in rows:
                if rec.seq != expected_seq:
                    return VerifyResult(False, count, expected_seq, "a record is missing")
                if rec.prev_hash != prev:
                    return VerifyResult(False, count, rec.seq, "prev_hash does not chain")
                digest = chain_hash(prev, rec.seq, rec.at, rec.actor, rec.action, rec.subject,
                                    rec.detail)
                if digest != rec.hash:
                    return VerifyResult(False, count, rec.seq, "record content was altered")
                prev = digest
                expected_seq += 1
                count += 1
                last_seq = rec.seq
            session.expunge_all()
        head = session.get(AuditHead, 1)
        head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
        if head_seq != count or head_hash != prev:
            return VerifyResult(False, count, count + 1, "records were removed from the end")
    return VerifyResult(True, count, None, "chain intact")


def recent(session: Session, *, limit: int = 50) -> list[AuditRecord]:
    with session.begin():
        rows = session.execute(
            select(AuditRecord).order_by(AuditRecord.seq.desc()).limit(limit)
        ).scalars().all()
        return list(reversed(rows))
