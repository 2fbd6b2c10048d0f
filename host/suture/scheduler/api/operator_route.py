"""Operator routes authenticate before FastAPI reads the body.

FastAPI reads and parses a route's JSON body before it solves any dependency, so a bearer
check written as a dependency comes after the parse. ``OperatorRoute`` checks the token first
(headers only) and keeps the operator's name in ``request.state.operator`` for the
``CurrentOperator`` dependency: a request without a valid token is answered ``401`` with its
body unread.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from suture.scheduler.api.deps import authenticate_operator, get_state


def _operator_of(request: Request) -> str:
    session = get_state(request).sessions()
    try:
        return authenticate_operator(session, request.headers.get("authorization"))
    finally:
        session.close()


class OperatorRoute(APIRoute):
    """An ``APIRoute`` whose handler first authenticates the operator."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def authenticated(request: Request) -> Response:
            request.state.operator = await run_in_threadpool(_operator_of, request)
            return await handler(request)

        return authenticated
