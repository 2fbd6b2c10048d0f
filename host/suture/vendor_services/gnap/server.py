"""HTTP routes of the authorization server: thin translations to :class:`AuthorizationServer`.

Paths (under the public URL): ``POST|OPTIONS /gnap`` (grant requests, discovery),
``POST|PATCH|DELETE /gnap/continue/{id}``, ``POST|DELETE /gnap/token/{id}``,
``POST /gnap/introspect``, ``GET /gnap/.well-known/gnap-as-rs`` (and the same at the root).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from suture.vendor_services.gnap.authorization import AuthorizationServer
from suture.vendor_services.gnap.authorization import Response as Answer
from suture.vendor_services.gnap.errors import GnapError
from suture.vendor_services.gnap.jsonbody import MAX_BODY


async def _body(request: Request) -> bytes:
    # The app's BodyLimitMiddleware stops a longer body as it streams in (413); this checks
    # again for an AS mounted without it.
    body = await request.body()
    if len(body) > MAX_BODY:
        raise GnapError("invalid_request", f"body larger than {MAX_BODY} bytes", 413)
    return body


def _json(status: int, body: dict[str, object] | None) -> Response:
    # RFC 9635 §3: grant responses are not to be cached.
    headers = {"Cache-Control": "no-store"}
    if body is None:
        return Response(status_code=status, headers=headers)
    return JSONResponse(body, status_code=status, headers=headers)


async def _answer(
    server: AuthorizationServer, request: Request, handler: Callable[..., Answer], *args: str
) -> Response:
    try:
        body = await _body(request)
        # RFC 9421 §2.2.2: @target-uri is the URI the client used, rebuilt from the public URL.
        url = server.settings.target_uri(request.url.path, request.url.query)
        status, data = handler(*args, request.method, url, request.headers, body)
    except GnapError as e:
        return _json(e.status, e.body())
    return _json(status, data)


def create_as_router(server: AuthorizationServer) -> APIRouter:
    """The AS's routes, bound to ``server``."""
    router = APIRouter(tags=["gnap"])

    @router.post("/gnap")
    async def grant(request: Request) -> Response:
        return await _answer(server, request, server.request_grant)

    @router.options("/gnap")
    async def discovery() -> Response:
        return _json(200, server.discovery())

    @router.api_route("/gnap/continue/{grant_id}", methods=["POST", "PATCH", "DELETE"])
    async def continuation(grant_id: str, request: Request) -> Response:
        return await _answer(server, request, server.continue_grant, grant_id)

    @router.api_route("/gnap/token/{token_id}", methods=["POST", "DELETE"])
    async def manage(token_id: str, request: Request) -> Response:
        return await _answer(server, request, server.manage_token, token_id)

    @router.post("/gnap/introspect")
    async def introspect(request: Request) -> Response:
        return await _answer(server, request, server.introspect)

    async def rs_discovery() -> Response:
        return _json(200, server.rs_discovery())

    handler: Callable[[], Awaitable[Response]] = rs_discovery
    router.add_api_route("/gnap/.well-known/gnap-as-rs", handler, methods=["GET"])
    router.add_api_route("/.well-known/gnap-as-rs", handler, methods=["GET"])
    return router
