"""Request bodies bounded before they are read.

An ASGI middleware counts the bytes each request streams in, whether it declared a
``Content-Length`` or not (chunked), and answers ``413`` as soon as its route's bound is crossed:
a declared length over the bound is refused before any byte is read, a streamed body as soon as
the bound is passed, and the rest is never read. The bounds, per route class:

- device reports: ``max_report_bytes`` (4 KiB by default);
- release uploads (``POST /api/v1/releases``, and the UI's form ``POST /releases/import``):
  ``max_release_bytes`` in base64 plus 64 KiB;
- every other route (JSON operator API): ``JSON_BODY_LIMIT`` (1 MiB).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from suture.scheduler.api.error_body import error_body
from suture.scheduler.config import Settings
from suture.scheduler.errors import PayloadTooLargeError

#: Largest body of a JSON operator request.
JSON_BODY_LIMIT: Final = 1024 * 1024
_REPORTS = re.compile(r"^/api/v1/devices/[^/]+/(suit-)?reports/?$")
_RELEASES = re.compile(r"^(/api/v1/releases/?|/releases/import)$")


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


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else -1
    return None


def _may_have_body(scope: Scope) -> bool:
    """HTTP/1.1: a request with neither ``Content-Length`` nor ``Transfer-Encoding`` has no
    body (RFC 9112 6.3), so there is nothing to count (e.g. every device poll)."""
    return any(name in (b"content-length", b"transfer-encoding")
               for name, _ in scope.get("headers", ()))


class BodyLimitMiddleware:
    """Answers ``413`` once a request's body passes ``limit_for(scope)`` bytes; the app then
    reads nothing more and anything it tries to answer is dropped."""

    def __init__(self, app: ASGIApp, *, limit_for: Callable[[Scope], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (
                scope.get("http_version") in ("1.0", "1.1") and not _may_have_body(scope)):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = _declared_length(scope)
        if declared is not None and not 0 <= declared <= limit:
            await _refuse(limit, scope, receive, send)
            return
        received = 0
        started = refused = False

        async def bounded_receive() -> Message:
            nonlocal received, refused
            if refused:
                raise PayloadTooLargeError(f"body larger than {limit} bytes")
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not started:
                        await _refuse(limit, scope, receive, send)
                    raise PayloadTooLargeError(f"body larger than {limit} bytes")
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 is the answer
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, bounded_receive, tracked_send)
        except PayloadTooLargeError:
            if not refused:
                raise


async def _refuse(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    response = JSONResponse(error_body("too_large", f"body larger than {limit} bytes", 413),
                            status_code=413, headers={"Connection": "close"})
    await response(scope, receive, send)
