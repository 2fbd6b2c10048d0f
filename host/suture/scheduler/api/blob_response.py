"""The response of every download route (a release's envelope or payload, a delta, a DDI
artefact): a strong ETag (the blob's SHA-256), ``If-None-Match`` (304), ``Range`` with
``If-Range`` (206, 416), the bytes streamed from the database a chunk at a time."""

from __future__ import annotations

from fastapi import Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

from suture.scheduler.api.ranges import ByteRange, UnsatisfiableRangeError, parse_range
from suture.scheduler.services.blobs import BlobRef, iter_range

#: The OpenAPI responses a download route declares (beside its authentication errors).
DOWNLOAD_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {"application/octet-stream": {}}},
    206: {"description": "the requested byte range"},
    304: {"description": "unchanged"},
    416: {"description": "range not satisfiable"},
}


def blob_response(sessions: sessionmaker[Session], ref: BlobRef, *, range_: str | None,
                  if_range: str | None, if_none_match: str | None) -> Response:
    """``ref``'s bytes as the request's conditional and range headers ask."""
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
    if byte_range.length <= 0:  # an empty file
        return Response(b"", media_type="application/octet-stream", headers=headers)
    headers["Content-Length"] = str(byte_range.length)
    return StreamingResponse(
        iter_range(sessions, ref, byte_range.start, byte_range.end), status_code=status,
        media_type="application/octet-stream", headers=headers)
