"""Operator routes for the deltas of a release (docs/formats/delta.md): import a vendor-signed
delta (verified against the release and its source release before anything is stored), list a
release's deltas."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from suture.scheduler.api.deps import CurrentOperator, NowDep, ReleaseIdPath, SessionDep, StateDep
from suture.scheduler.api.operator_route import OperatorRoute, needs
from suture.scheduler.api.routes.operator_releases import B64, decode_b64
from suture.scheduler.authz import Permission
from suture.scheduler.errors import PayloadTooLargeError
from suture.scheduler.schemas import DeltaPublic
from suture.scheduler.services import deltas

router = APIRouter(prefix="/api/v1/releases", tags=["operator: releases"],
                   route_class=OperatorRoute)


class DeltaImport(BaseModel):
    """A delta's files, base64: its signed SUIT envelope and the patch it names."""

    envelope_b64: B64
    patch_b64: B64


_IMPORT = needs(Permission.RELEASE_IMPORT)
_IMPORT["responses"].update({
    404: {"description": "no such release"},
    409: {"description": "the release has a delta from that source already"},
    413: {"description": "upload too large (api/bodylimit.py: max_release_bytes in base64)"},
    422: {"description": "the delta does not verify, is not of this release, or its source is "
                         "no earlier release of the component"},
})


@router.post("/{release_id}/deltas", response_model=DeltaPublic, status_code=201, **_IMPORT)
def import_delta(release_id: ReleaseIdPath, body: DeltaImport, session: SessionDep,
                 operator: CurrentOperator, state: StateDep, now: NowDep) -> DeltaPublic:
    """Verify a vendor-signed delta of the release against the vendor trust anchors (as the
    settings file names them now), the release (component, sequence number, image) and its
    source (an earlier release's image), then store it: devices on the source release are
    served the patch instead of the full payload."""
    state.live.refresh_and_audit(state.sessions, now)
    envelope = decode_b64("envelope_b64", body.envelope_b64)
    patch = decode_b64("patch_b64", body.patch_b64)
    limit = state.settings.max_release_bytes
    if len(envelope) + len(patch) > limit:
        raise PayloadTooLargeError(f"the delta is larger than {limit} bytes")
    delta = deltas.import_delta(session, release_id=release_id, envelope=envelope, patch=patch,
                                trust_anchors=state.live.trust_anchors(), actor=operator,
                                now=now)
    return DeltaPublic.model_validate(delta)


@router.get("/{release_id}/deltas", response_model=list[DeltaPublic],
            **needs(Permission.RELEASE_READ))
def list_deltas(release_id: ReleaseIdPath, session: SessionDep, operator: CurrentOperator
                ) -> list[DeltaPublic]:
    """The release's deltas: each one's source release, patch size and digest."""
    return [DeltaPublic.model_validate(d)
            for d in deltas.list_deltas(session, release_id=release_id, actor=operator)]
