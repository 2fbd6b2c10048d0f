"""Operator routes for the device registry."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from suture.scheduler.api.deps import CurrentOperator, DeviceIdPath, NowDep, SessionDep, StateDep
from suture.scheduler.api.operator_route import OperatorRoute, needs
from suture.scheduler.authz import Permission
from suture.scheduler.errors import InvalidInputError
from suture.scheduler.schemas import (
    CredentialRotation,
    DecommissionRequest,
    DeviceCreate,
    DeviceCredential,
    DeviceDetail,
    DeviceEventPublic,
    DevicePublic,
    DeviceUpdate,
)
from suture.scheduler.services import devices

router = APIRouter(prefix="/api/v1/devices", tags=["operator: devices"],
                   route_class=OperatorRoute)


class DeviceList(BaseModel):
    total: int
    devices: list[DevicePublic]


class DeviceProvisioned(BaseModel):
    device: DevicePublic
    credential: DeviceCredential


@router.get("", response_model=DeviceList, **needs(Permission.DEVICE_READ))
def list_devices(
    session: SessionDep, operator: CurrentOperator,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    group: Annotated[str | None, Query(max_length=64)] = None,
) -> DeviceList:
    rows, total = devices.list_devices(session, limit=limit, offset=offset, group=group,
                                       tenant=operator.tenant)
    return DeviceList(total=total, devices=[DevicePublic.model_validate(d) for d in rows])


@router.post("", response_model=DeviceProvisioned, status_code=201,
             **needs(Permission.DEVICE_WRITE))
def add_device(create: DeviceCreate, session: SessionDep, operator: CurrentOperator,
               state: StateDep, now: NowDep) -> DeviceProvisioned:
    """Register a device; the response holds its secret, shown this once."""
    device, credential = devices.add_device(
        session, create=create, root_secret=state.settings.root_secret_bytes(), actor=operator,
        now=now)
    return DeviceProvisioned(device=DevicePublic.model_validate(device), credential=credential)


@router.get("/{device_id}", response_model=DeviceDetail, **needs(Permission.DEVICE_READ))
def show_device(device_id: DeviceIdPath, session: SessionDep, operator: CurrentOperator
                ) -> DeviceDetail:
    device, events = devices.get_device(session, device_id=device_id, tenant=operator.tenant)
    public = DevicePublic.model_validate(device).model_dump()
    return DeviceDetail(**public, history=[DeviceEventPublic.model_validate(e) for e in events])


@router.patch("/{device_id}", response_model=DevicePublic, **needs(Permission.DEVICE_WRITE))
def update_device(device_id: DeviceIdPath, change: DeviceUpdate, session: SessionDep,
                  operator: CurrentOperator, now: NowDep) -> DevicePublic:
    """Change location, criticality, tags, groups, or mark the device busy (in clinical use)."""
    device = devices.update_device(session, device_id=device_id, change=change, actor=operator,
                                   now=now)
    return DevicePublic.model_validate(device)


@router.post("/{device_id}/credential", response_model=DeviceCredential,
             **needs(Permission.DEVICE_CREDENTIAL))
def rotate_credential(device_id: DeviceIdPath, session: SessionDep, operator: CurrentOperator,
                      state: StateDep, now: NowDep,
                      body: CredentialRotation | None = None) -> DeviceCredential:
    """Issue a new device secret; the previous one stops working. A ``public_key`` in the body
    registers the device's new key (its reports must be signed by it)."""
    return devices.rotate_credential(session, device_id=device_id,
                                     root_secret=state.settings.root_secret_bytes(),
                                     actor=operator, now=now,
                                     public_key=body.public_key if body else None)


@router.post("/{device_id}/decommission", response_model=DevicePublic,
             **needs(Permission.DEVICE_DECOMMISSION))
def decommission(device_id: DeviceIdPath, body: DecommissionRequest, session: SessionDep,
                 operator: CurrentOperator, now: NowDep) -> DevicePublic:
    """The device leaves service for good: its credential stops working, its unfinished
    rollout entries are cancelled, no rollout targets it again; the record stays."""
    try:
        record = None if body.record is None else base64.b64decode(body.record, validate=True)
    except ValueError:
        raise InvalidInputError("the decommission record is not base64") from None
    return DevicePublic.model_validate(devices.decommission_device(
        session, device_id=device_id, actor=operator, now=now, reason=body.reason,
        record=record))
