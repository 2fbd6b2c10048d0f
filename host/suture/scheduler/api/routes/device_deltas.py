"""Device-facing route of delta releases: a delta's envelope or patch (docs/formats/delta.md),
served like a release's (Range, strong ETag) to a device the release is scheduled for."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Response

from suture.scheduler.api.blob_response import blob_response
from suture.scheduler.api.deps import DeviceRequest, NowDep, ReleaseIdPath, SessionDep, StateDep
from suture.scheduler.services import deltas

router = APIRouter(prefix="/api/v1", tags=["device"])
DeltaIdPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="the delta's id")]


@router.get(
    "/releases/{release_id}/deltas/{delta_id}/{kind}",
    responses={200: {"content": {"application/octet-stream": {}}},
               206: {"description": "the requested byte range"},
               304: {"description": "unchanged"},
               401: {"description": "bad or replayed device credential"},
               403: {"description": "a release not scheduled for this device"},
               404: {"description": "no such delta of this release"},
               416: {"description": "range not satisfiable"}},
    response_class=Response,
)
def download_delta(
    release_id: ReleaseIdPath, delta_id: DeltaIdPath, kind: Literal["envelope", "payload"],
    proof: DeviceRequest, session: SessionDep, now: NowDep, state: StateDep,
    range_: Annotated[str | None, Header(alias="Range")] = None,
    if_range: Annotated[str | None, Header()] = None,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """A delta's SUIT envelope or patch; resumable with ``Range`` (206), strong ETag."""
    ref = deltas.device_download(
        session, release_id=release_id, delta_id=delta_id, kind=kind,
        device_id=proof.req.device_id, counter=proof.req.counter, now=now, proof=proof)
    return blob_response(state.sessions, ref, range_=range_, if_range=if_range,
                         if_none_match=if_none_match)
