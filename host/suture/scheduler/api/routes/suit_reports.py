"""SUIT reports (docs/formats/suit-report.md): a device posts its own (``device_router``, the
device API's HMAC scheme); operators read a device's (``router``, ``device:read``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from suture.formats.suit_report import CONTENT_TYPE
from suture.scheduler.api.deps import (
    BoundedBody,
    CurrentOperator,
    DeviceIdPath,
    DeviceRequestWithBody,
    NowDep,
    SessionDep,
)
from suture.scheduler.api.operator_route import OperatorRoute, needs
from suture.scheduler.authz import Permission
from suture.scheduler.services import suit_reports

device_router = APIRouter(prefix="/api/v1", tags=["device"])
router = APIRouter(prefix="/api/v1/devices", tags=["operator: devices"],
                   route_class=OperatorRoute)


class SuitReportAck(BaseModel):
    accepted: bool
    id: int
    #: True when the same bytes were stored before (a report re-sent after a lost answer).
    duplicate: bool


class SuitReportList(BaseModel):
    device_id: str
    reports: list[dict[str, Any]]


@device_router.post(
    "/devices/{device_id}/suit-reports",
    response_model=SuitReportAck,
    responses={401: {"description": "bad or replayed device credential, a keyed device's "
                                    "report that is not a COSE_Sign1 under its key, or a "
                                    "COSE_Mac0 not under the device's report MAC key"},
               403: {"description": "another device's resource"},
               413: {"description": "report body too large"},
               422: {"description": "not a SUIT report"}},
    openapi_extra={"requestBody": {"required": True, "content": {
        CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}}}},
)
def post_suit_report(
    device_id: DeviceIdPath, body: BoundedBody, proof: DeviceRequestWithBody,
    session: SessionDep, now: NowDep,
) -> SuitReportAck:
    """A SUIT report (draft-ietf-suit-report): a COSE_Sign1 (ES256) under the device's
    registered key; from a device without one, a COSE_Mac0 (HMAC 256/256) under its report MAC
    key (derived from its secret) or the bare SUIT_Report. The request's MAC is checked first;
    the report is verified and decoded before anything is stored."""
    stored = suit_reports.record_suit_report(
        session, device_id=proof.req.device_id, counter=proof.req.counter, body=body, now=now,
        proof=proof)
    return SuitReportAck(accepted=True, id=stored.id, duplicate=stored.duplicate)


@router.get("/{device_id}/suit-reports", response_model=SuitReportList,
            **needs(Permission.DEVICE_READ))
def list_suit_reports(
    device_id: DeviceIdPath, session: SessionDep, operator: CurrentOperator,
    limit: Annotated[int, Query(ge=1, le=suit_reports.MAX_SHOWN)] = suit_reports.MAX_SHOWN,
) -> SuitReportList:
    """The device's SUIT reports, newest first: the manifest each is about, whether the update
    succeeded, the records of the conditions that held, the claims of what is installed, and
    the failing command's record with its reason."""
    return SuitReportList(device_id=device_id, reports=suit_reports.list_suit_reports(
        session, device_id=device_id, limit=limit, tenant=operator.tenant))
