"""The vendor's services' bound on request bodies: no vendor route takes more than a GNAP
request (``MAX_BODY``, 64 KiB); ``suture.bounded_body.BodyLimitMiddleware`` answers ``413`` with
a GNAP error (``invalid_request``) as soon as a body passes it, and the rest is never read."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from suture.vendor_services.gnap.errors import GnapError


def refusal(limit: int) -> Response:
    """The vendor's 413: a GNAP ``invalid_request``, not cached, the connection closed."""
    error = GnapError("invalid_request", f"body larger than {limit} bytes", 413)
    return JSONResponse(error.body(), status_code=error.status,
                        headers={"Cache-Control": "no-store", "Connection": "close"})
