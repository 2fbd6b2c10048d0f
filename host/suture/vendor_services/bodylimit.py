"""Request bodies bounded before they are read, for the AS and the repository alike.

An ASGI middleware counts the bytes each request streams in, whether it declared a
``Content-Length`` or not (chunked), and answers ``413`` with a GNAP error
(``invalid_request``) as soon as the bound is crossed: a declared length over the bound is
refused before any byte is read, a streamed body as soon as the bound is passed, and the rest
is never read. No vendor route takes more than a GNAP request (``MAX_BODY``, 64 KiB).
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from suture.vendor_services.gnap.errors import GnapError


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else -1
    return None


def _too_large(limit: int) -> GnapError:
    return GnapError("invalid_request", f"body larger than {limit} bytes", 413)


class BodyLimitMiddleware:
    """Answers ``413`` once a request's body passes ``limit`` bytes; the app then reads nothing
    more and anything it tries to answer is dropped."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and not 0 <= declared <= self.limit:
            await _refuse(self.limit, scope, receive, send)
            return
        received = 0
        started = refused = False

        async def bounded_receive() -> Message:
            nonlocal received, refused
            if refused:
                raise _too_large(self.limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    refused = True
                    if not started:
                        await _refuse(self.limit, scope, receive, send)
                    raise _too_large(self.limit)
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
        except GnapError:
            if not refused:
                raise


async def _refuse(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    error = _too_large(limit)
    response = JSONResponse(error.body(), status_code=error.status,
                            headers={"Cache-Control": "no-store", "Connection": "close"})
    await response(scope, receive, send)
