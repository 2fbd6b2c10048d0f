"""Operator routes for releases: import (verified), list, show, SBOM and SBOM diff, update,
recall."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, StringConstraints

from suture.scheduler.api.deps import (
    CurrentOperator,
    NowDep,
    ReleaseIdPath,
    SessionDep,
    StateDep,
)
from suture.scheduler.api.operator_route import OperatorRoute, needs
from suture.scheduler.authz import Permission
from suture.scheduler.errors import InvalidInputError
from suture.scheduler.schemas import RecallRequest, ReleasePublic, ReleaseUpdate, Requirement
from suture.scheduler.services import release_sboms, releases

router = APIRouter(prefix="/api/v1/releases", tags=["operator: releases"],
                   route_class=OperatorRoute)

B64 = Annotated[str, StringConstraints(max_length=96 * 1024 * 1024)]


class ReleaseImport(BaseModel):
    """The release files, base64: envelope, payload and the CycloneDX SBOM the manifest binds
    (required unless the scheduler's setting allow_releases_without_sbom is on)."""

    envelope_b64: B64
    payload_b64: B64
    sbom_b64: B64 | None = None
    notes: Annotated[str, StringConstraints(max_length=65536)] | None = None
    must_pass_through: bool = False
    requires: list[Requirement] = Field(default_factory=list, max_length=16)


def decode_b64(name: str, text: str) -> bytes:
    """The bytes of a base64 field, or a 422 naming the field."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError(f"{name} is not valid base64") from None


_IMPORT = needs(Permission.RELEASE_IMPORT)
_IMPORT["responses"][413] = {"description": "upload too large (api/bodylimit.py: "
                                            "max_release_bytes in base64)"}


@router.post("", response_model=ReleasePublic, status_code=201, **_IMPORT)
def import_release(body: ReleaseImport, session: SessionDep, operator: CurrentOperator,
                   state: StateDep, now: NowDep) -> ReleasePublic:
    """Verify against the vendor trust anchors (as the settings file names them now), then
    store."""
    state.live.refresh_and_audit(state.sessions, now)
    anchors = state.live.trust_anchors()
    release = releases.import_release(
        session, envelope=decode_b64("envelope_b64", body.envelope_b64),
        payload=decode_b64("payload_b64", body.payload_b64),
        sbom=decode_b64("sbom_b64", body.sbom_b64) if body.sbom_b64 is not None else None,
        notes=body.notes, trust_anchors=anchors, actor=operator,
        must_pass_through=body.must_pass_through, requires=body.requires, now=now,
        allow_missing_sbom=state.settings.allow_releases_without_sbom)
    return ReleasePublic.model_validate(release)


@router.get("", response_model=list[ReleasePublic], **needs(Permission.RELEASE_READ))
def list_releases(session: SessionDep, operator: CurrentOperator) -> list[ReleasePublic]:
    return [ReleasePublic.model_validate(r) for r in releases.list_releases(session)]


@router.get("/{release_id}", response_model=ReleasePublic, **needs(Permission.RELEASE_READ))
def show_release(release_id: ReleaseIdPath, session: SessionDep, operator: CurrentOperator
                 ) -> ReleasePublic:
    return ReleasePublic.model_validate(releases.get_release(session, release_id=release_id))


@router.get("/{release_id}/sbom", **needs(Permission.RELEASE_READ))
def show_release_sbom(release_id: ReleaseIdPath, session: SessionDep,
                      operator: CurrentOperator) -> dict[str, Any]:
    """The release's SBOM: digest (the one its signed manifest binds), components, licences."""
    return release_sboms.release_sbom(session, release_id=release_id, actor=operator)


@router.get("/{release_id}/sbom/diff", **needs(Permission.RELEASE_READ))
def diff_release_sbom(release_id: ReleaseIdPath, session: SessionDep,
                      operator: CurrentOperator,
                      against: Annotated[int, Query(ge=1, le=2**31 - 1,
                                                    description="the older release's id")]
                      ) -> dict[str, Any]:
    """What changed in the SBOM from release ``against`` to this one."""
    return release_sboms.release_sbom_diff(session, release_id=release_id, against=against,
                                           actor=operator)


@router.patch("/{release_id}", response_model=ReleasePublic,
              **needs(Permission.RELEASE_UPDATE))
def update_release(release_id: ReleaseIdPath, change: ReleaseUpdate, session: SessionDep,
                   operator: CurrentOperator, now: NowDep) -> ReleasePublic:
    """Mark must-pass-through, or set dependencies (``requires component >= version``)."""
    return ReleasePublic.model_validate(releases.update_release(
        session, release_id=release_id, change=change, actor=operator, now=now))


@router.post("/{release_id}/recall", response_model=ReleasePublic,
             **needs(Permission.RELEASE_RECALL))
def recall_release(release_id: ReleaseIdPath, body: RecallRequest, session: SessionDep,
                   operator: CurrentOperator, now: NowDep) -> ReleasePublic:
    """Withdraw a release: its rollouts abort (reverting installed devices if asked)."""
    return ReleasePublic.model_validate(releases.recall_release(
        session, release_id=release_id, revert=body.revert, actor=operator, now=now))
