"""Device-facing route of delta releases: a delta's envelope or patch (docs/formats/delta.md),
served like a release's (Range, strong ETag) to a device the release is scheduled for."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Response
from fastapi.responses import StreamingResponse

from suture.scheduler.api.deps import DeviceRequest, NowDep, ReleaseIdPath, SessionDep, StateDep
from suture.scheduler.api.ranges import ByteRange, UnsatisfiableRangeError, parse_range
from suture.scheduler.services import deltas
from suture.scheduler.services.blobs import iter_range

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
    etag = f'"{ref.digest}"'
    headers = {"ETag": etag, "Accept-Ranges": "bytes", "Cache-Control": "private, max-age=0"}
    if if_none_match is not None and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)
    wanted = range_ if (if_range is None or if_range.strip() == etag) else None
    try:
        byte_range = parse_range(wanted, ref.size)
    except UnsatisfiableRangeError:
        return Response(status_code=416, headers={**headers,
                                                  "Content-Range": f"bytes */{ref.size}"})
    status = 200
    if byte_range is None:
        byte_range = ByteRange(0, ref.size - 1)
    else:
        status = 206
        headers["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end}/{ref.size}"
    headers["Content-Length"] = str(byte_range.length)
    return StreamingResponse(
        iter_range(state.sessions, ref, byte_range.start, byte_range.end), status_code=status,
        media_type="application/octet-stream", headers=headers)
