"""The scheduler's bounds on request bodies (``suture.bounded_body.BodyLimitMiddleware`` answers
``413`` as soon as a request's body passes its route's bound), per route class:

- device reports: ``max_report_bytes`` (4 KiB by default);
- release uploads (``POST /api/v1/releases``, a delta's ``POST /api/v1/releases/{id}/deltas``,
  and the UI's form ``POST /releases/import``): ``max_release_bytes`` in base64 plus 64 KiB;
- every other route (JSON operator API): ``JSON_BODY_LIMIT`` (1 MiB).
"""

from __future__ import annotations

import re
from typing import Final

from starlette.responses import JSONResponse, Response

from suture.scheduler.api.error_body import error_body
from suture.scheduler.config import Settings

#: Largest body of a JSON operator request.
JSON_BODY_LIMIT: Final = 1024 * 1024
_REPORTS = re.compile(r"^/api/v1/devices/[^/]+/(suit-)?reports/?$")
_RELEASES = re.compile(r"^(/api/v1/releases/?|/api/v1/releases/[0-9]+/deltas/?|/releases/import)$")


def release_upload_limit(settings: Settings) -> int:
    """A release upload: its files in base64 (4/3 of ``max_release_bytes``) and the JSON."""
    return settings.max_release_bytes * 4 // 3 + 64 * 1024


def body_limit(settings: Settings, method: str, path: str) -> int:
    """The bound of a request's body, by route class."""
    if _REPORTS.match(path):
        return settings.max_report_bytes
    if method == "POST" and _RELEASES.match(path):
        return release_upload_limit(settings)
    return JSON_BODY_LIMIT


def refusal(limit: int) -> Response:
    """The scheduler's 413: its error body, and the connection closed (the rest is unread)."""
    return JSONResponse(error_body("too_large", f"body larger than {limit} bytes", 413),
                        status_code=413, headers={"Connection": "close"})
