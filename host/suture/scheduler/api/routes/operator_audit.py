"""Operator routes for the audit log: recent records, verification, export for a SIEM, signed
checkpoints."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from suture.scheduler.api.deps import CurrentOperator, NowDep, SessionDep, StateDep
from suture.scheduler.api.operator_route import OperatorRoute, needs
from suture.scheduler.authz import Permission
from suture.scheduler.schemas import AuditCheckpoint, AuditRecordPublic, AuditVerification
from suture.scheduler.services import audit, tenants

router = APIRouter(prefix="/api/v1/audit", tags=["operator: audit"],
                   route_class=OperatorRoute)


@router.get("", response_model=list[AuditRecordPublic], **needs(Permission.AUDIT_READ))
def recent(session: SessionDep, operator: CurrentOperator,
           limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[AuditRecordPublic]:
    return [AuditRecordPublic.model_validate(r) for r in audit.recent(session, limit=limit,
                                                                       tenant=operator.tenant)]


@router.get("/verify", response_model=AuditVerification, **needs(Permission.AUDIT_READ))
def verify(session: SessionDep, operator: CurrentOperator) -> AuditVerification:
    """Recompute the hash chain and every record's MAC over the whole log, and check the head.
    Checkpoints kept elsewhere are checked by ``suture scheduler audit verify --checkpoints``.
    The chain holds every tenant's records: the scheduler's own auditors verify it."""
    tenants.require_provider(operator, "verifying the whole audit log")
    result = audit.verify(session)
    return AuditVerification(ok=result.ok, records=result.records,
                             first_bad_seq=result.first_bad_seq, reason=result.reason,
                             checkpoints=result.checkpoints)


_EXPORT = needs(Permission.AUDIT_READ)
_EXPORT["responses"][200] = {"content": {"application/jsonl": {}, "text/plain": {}},
                             "description": "one record per line (JSON, or RFC 5424 syslog), "
                                            "then a signed checkpoint of the last one"}


@router.get("/export", response_class=StreamingResponse, **_EXPORT)
def export(state: StateDep, operator: CurrentOperator, now: NowDep,
           since: Annotated[int, Query(ge=0, le=2**62)] = 0,
           fmt: Annotated[Literal["jsonl", "syslog"], Query(alias="format")] = "jsonl",
           ) -> StreamingResponse:
    """The records after ``since`` for a SIEM (a session of its own while it streams)."""
    def lines() -> Iterator[bytes]:
        with state.sessions() as session:
            for line in audit.export_lines(session, since=since, fmt=fmt, now=now,
                                           tenant=operator.tenant):
                yield (line + "\n").encode()

    return StreamingResponse(lines(), media_type="application/jsonl" if fmt == "jsonl"
                             else "text/plain")


@router.post("/checkpoint", response_model=AuditCheckpoint, **needs(Permission.AUDIT_READ))
def checkpoint(session: SessionDep, operator: CurrentOperator, state: StateDep, now: NowDep
               ) -> AuditCheckpoint:
    """A signed checkpoint of the log's end now, to keep outside the database."""
    tenants.require_provider(operator, "a checkpoint of the whole audit log")
    cp = audit.checkpoint(session, now=now)
    return AuditCheckpoint(**cp.to_json(),
                           public_key_pem=audit.public_key_pem(state.audit_key))
