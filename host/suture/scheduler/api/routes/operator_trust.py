"""Operator routes for trust-anchor rotations (docs/formats/trust-store.md): publish a signed
trust-store update to the devices, list those published, and see which version each device
holds; what ``suture scheduler trust publish | list | status`` do on the scheduler's host."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, StringConstraints

from suture.formats import trust_store
from suture.scheduler.api.deps import CurrentOperator, NowDep, SessionDep, StateDep
from suture.scheduler.api.operator_route import OperatorRoute, needs
from suture.scheduler.api.routes.operator_releases import decode_b64
from suture.scheduler.authz import Permission
from suture.scheduler.schemas import DeviceTrustPublic, TrustRotationPublic
from suture.scheduler.services import trust_rotations

router = APIRouter(prefix="/api/v1/trust", tags=["operator: trust"], route_class=OperatorRoute)


class TrustRotationImport(BaseModel):
    """A signed trust-store update (COSE_Sign1, ``suture scheduler trust sign``), base64."""

    document_b64: Annotated[str, StringConstraints(
        max_length=(trust_store.MAX_DOCUMENT + 2) // 3 * 4)]


_PUBLISH = needs(Permission.RELEASE_IMPORT)
_PUBLISH["responses"].update({
    403: {"description": "the operator's roles do not grant release:import, or the operator "
                         "is a hospital's in a vendor-run scheduler (rotations are the "
                         "provider's)"},
    409: {"description": "the version is not above the one published: devices would refuse it"},
    422: {"description": "not a trust-store update, or not signed by the role's anchors as the "
                         "last published rotation left them"},
})


@router.post("/rotations", response_model=TrustRotationPublic, status_code=201, **_PUBLISH)
def publish_rotation(body: TrustRotationImport, session: SessionDep, operator: CurrentOperator,
                     state: StateDep, now: NowDep) -> TrustRotationPublic:
    """Check a rotation as a device will (signed by the role's current anchors, a version
    above theirs) and carry it in the schedule of every device that does not hold it yet,
    one version at a time."""
    document = decode_b64("document_b64", body.document_b64)
    baseline = trust_rotations.baseline(state.schedule_ctx.key.public_key(),
                                        state.live.trust_anchors())
    row = trust_rotations.publish(session, document=document, baseline=baseline,
                                  actor=operator, now=now)
    return TrustRotationPublic.model_validate(row)


@router.get("/rotations", response_model=list[TrustRotationPublic],
            **needs(Permission.DEVICE_READ))
def list_rotations(session: SessionDep, operator: CurrentOperator
                   ) -> list[TrustRotationPublic]:
    """The rotations published, by role and version."""
    return [TrustRotationPublic.model_validate(r)
            for r in trust_rotations.list_rotations(session)]


@router.get("/devices", response_model=list[DeviceTrustPublic],
            **needs(Permission.DEVICE_READ))
def device_trust(session: SessionDep, operator: CurrentOperator,
                 limit: Annotated[int, Query(ge=1, le=10_000)] = 1000
                 ) -> list[DeviceTrustPublic]:
    """Per in-service device of the operator's tenant, by id (the first ``limit``): the
    versions it reports per role and the rotation its schedule still carries."""
    return [DeviceTrustPublic(device_id=r.device_id, versions=r.versions, pending=r.pending)
            for r in trust_rotations.device_trust(session, limit=limit,
                                                  tenant=operator.tenant)]
