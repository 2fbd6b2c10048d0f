"""Device-facing route of the hospital's manifests: a rollout's hospital envelope (its manifest
over the vendor's, the vendor's integrated; docs/formats/suit-extensions.md), served like a
release's envelope (Range, strong ETag) to a device the rollout targets."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Response

from suture.scheduler.api.blob_response import blob_response
from suture.scheduler.api.deps import DeviceRequest, NowDep, SessionDep, StateDep
from suture.scheduler.services import hospital_manifests

router = APIRouter(prefix="/api/v1", tags=["device"])
RolloutIdPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="the rollout's id")]


@router.get(
    "/rollouts/{rollout_id}/hospital-envelope",
    responses={200: {"content": {"application/octet-stream": {}}},
               206: {"description": "the requested byte range"},
               304: {"description": "unchanged"},
               401: {"description": "bad or replayed device credential"},
               403: {"description": "a rollout that does not target this device"},
               404: {"description": "no hospital manifest issued for this rollout"},
               416: {"description": "range not satisfiable"}},
    response_class=Response,
)
def download_hospital_envelope(
    rollout_id: RolloutIdPath, proof: DeviceRequest, session: SessionDep, now: NowDep,
    state: StateDep,
    range_: Annotated[str | None, Header(alias="Range")] = None,
    if_range: Annotated[str | None, Header()] = None,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The rollout's hospital envelope; resumable with ``Range`` (206), strong ETag."""
    ref = hospital_manifests.device_download(
        session, rollout_id=rollout_id, device_id=proof.req.device_id,
        counter=proof.req.counter, now=now, proof=proof)
    return blob_response(state.sessions, ref, range_=range_, if_range=if_range,
                         if_none_match=if_none_match)
