"""Operator routes for the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from suture.scheduler.api.deps import CurrentOperator, SessionDep
from suture.scheduler.api.operator_route import OperatorRoute
from suture.scheduler.schemas import AuditRecordPublic, AuditVerification
from suture.scheduler.services import audit

router = APIRouter(prefix="/api/v1/audit", tags=["operator: audit"],
                   route_class=OperatorRoute)


@router.get("", response_model=list[AuditRecordPublic])
def recent(session: SessionDep, operator: CurrentOperator,
           limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[AuditRecordPublic]:
    return [AuditRecordPublic.model_validate(r) for r in audit.recent(session, limit=limit)]


@router.get("/verify", response_model=AuditVerification)
def verify(session: SessionDep, operator: CurrentOperator) -> AuditVerification:
    """Recompute the hash chain over the whole log."""
    result = audit.verify(session)
    return AuditVerification(ok=result.ok, records=result.records,
                             first_bad_seq=result.first_bad_seq, reason=result.reason)
