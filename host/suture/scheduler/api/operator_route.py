"""Operator routes authenticate, and check the route's permission, before FastAPI reads the body.

FastAPI reads and parses a route's JSON body before it solves any dependency, so a bearer
check written as a dependency comes after the parse. ``OperatorRoute`` checks the token first
(headers only), then the permission the route declares (``needs(...)``, published in the
OpenAPI document as ``x-suture-permission``), and keeps the ``Principal`` in
``request.state.operator`` for the ``CurrentOperator`` dependency: a request without a valid
token is answered ``401``, one whose operator lacks the role ``403``, with its body unread. A
route that declares no permission cannot be built.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Final

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from suture.scheduler.api.deps import authenticate_operator, get_state
from suture.scheduler.authz import Permission, Principal, require

#: The OpenAPI extension naming an operation's permission (or ``AUTHENTICATED``).
PERMISSION_KEY: Final = "x-suture-permission"
#: Any signed-in operator, whatever its roles (its own tokens, password, who it is).
AUTHENTICATED: Final = "authenticated"


def needs(permission: Permission | None) -> dict[str, Any]:
    """Keyword arguments of a route decorator: the permission the route checks (None: any
    signed-in operator)."""
    value = permission.value if permission is not None else AUTHENTICATED
    return {"openapi_extra": {PERMISSION_KEY: value},
            "responses": {401: {"description": "no valid operator token"},
                          403: {"description": f"the operator's roles do not grant {value}"}}}


def route_permission(route: APIRoute) -> Permission | None:
    value = (route.openapi_extra or {}).get(PERMISSION_KEY)
    if value is None:
        raise RuntimeError(f"operator route {route.path} declares no permission (needs(...))")
    return None if value == AUTHENTICATED else Permission(value)


def _operator_of(request: Request, permission: Permission | None) -> Principal:
    state = get_state(request)
    session = state.sessions()
    try:
        principal = authenticate_operator(state, session, request.headers.get("authorization"))
    finally:
        session.close()
    if permission is not None:
        require(principal, permission)
    return principal


class OperatorRoute(APIRoute):
    """An ``APIRoute`` whose handler first authenticates the operator and checks the route's
    permission."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        permission = route_permission(self)

        async def authenticated(request: Request) -> Response:
            request.state.operator = await run_in_threadpool(_operator_of, request, permission)
            return await handler(request)

        return authenticated
