"""Request bodies read only within bounds, for every HTTP service of suture (the scheduler, the
vendor's authorization server and repository).

``BodyLimitMiddleware`` counts the bytes each request streams in, whether it declared a
``Content-Length`` or not (chunked), and answers ``413`` as soon as its route's bound is
crossed: a declared length over the bound is refused before any byte is read, a streamed body as
soon as the bound is passed, and the rest is never read. ``nesting_exceeds`` checks a JSON
body's nesting on the raw bytes before a parser runs, so no body can drive the parser's
recursion. Each service says its bounds and how its 413 reads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from suture.errors import SutureError

#: Deepest nesting of arrays and objects accepted in a JSON body.
MAX_JSON_DEPTH: Final = 32
_QUOTE, _BACKSLASH = 0x22, 0x5C
_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")


class BodyTooLargeError(SutureError):
    """What the app's ``receive`` raises once its request's body passed the bound."""


def nesting_exceeds(data: bytes, limit: int) -> bool:
    """Whether arrays and objects in ``data`` (outside strings) nest deeper than ``limit``."""
    depth = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            if depth > limit:
                return True
        elif byte in _CLOSE:
            depth -= 1
    return False


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else -1
    return None


def _may_have_body(scope: Scope) -> bool:
    """HTTP/1.1: a request with neither ``Content-Length`` nor ``Transfer-Encoding`` has no
    body (RFC 9112 6.3), so there is nothing to count (e.g. every device poll)."""
    if scope.get("http_version") not in ("1.0", "1.1"):
        return True
    return any(name in (b"content-length", b"transfer-encoding")
               for name, _ in scope.get("headers", ()))


class BodyLimitMiddleware:
    """Answers ``refusal(limit)`` (a 413) once a request's body passes ``limit_for(scope)``
    bytes; the app then reads nothing more (its ``receive`` raises ``BodyTooLargeError``) and
    anything it tries to answer is dropped."""

    def __init__(self, app: ASGIApp, *, limit_for: Callable[[Scope], int],
                 refusal: Callable[[int], Response]) -> None:
        self.app = app
        self.limit_for = limit_for
        self.refusal = refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _may_have_body(scope):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = _declared_length(scope)
        if declared is not None and not 0 <= declared <= limit:
            await self.refusal(limit)(scope, receive, send)
            return
        received = 0
        started = refused = False

        async def bounded_receive() -> Message:
            nonlocal received, refused
            if refused:
                raise BodyTooLargeError(f"body larger than {limit} bytes")
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not started:
                        await self.refusal(limit)(scope, receive, send)
                    raise BodyTooLargeError(f"body larger than {limit} bytes")
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
        except Exception:
            if not refused:
                raise
            # the app failed reading a body it was refused: the 413 has answered it
