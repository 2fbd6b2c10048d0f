"""The permission of an API operation, read from the app's routes (``x-suture-permission``):
a UI page or action names the API operation it mirrors and is checked against the same
permission."""

from __future__ import annotations

from typing import Final

from fastapi import FastAPI

from suture.scheduler.api.operator_route import AUTHENTICATED, PERMISSION_KEY
from suture.scheduler.authz import Permission, Principal, require
from suture.scheduler.errors import SchedulerError

#: The app state attribute caching ``(method, path) -> permission``.
_CACHE: Final = "suture_ui_permissions"


class UnknownOperationError(SchedulerError, LookupError):
    """The UI names an API operation the app does not have (a programming error)."""


def api_permission(app: FastAPI, method: str, path: str) -> Permission | None:
    """The permission the API operation ``method path`` checks, as the OpenAPI document
    publishes it (None: any signed-in operator)."""
    cache: dict[tuple[str, str], Permission | None] | None = getattr(app.state, _CACHE, None)
    if cache is None:
        cache = {}
        for route_path, operations in app.openapi().get("paths", {}).items():
            for route_method, operation in operations.items():
                value = operation.get(PERMISSION_KEY) if isinstance(operation, dict) else None
                if value is not None:
                    cache[(route_method.upper(), route_path)] = (
                        None if value == AUTHENTICATED else Permission(value))
        setattr(app.state, _CACHE, cache)
    key = (method.upper(), path)
    if key not in cache:
        raise UnknownOperationError(f"no API operation {method} {path}")
    return cache[key]


def require_operation(app: FastAPI, principal: Principal, method: str, path: str) -> None:
    """Refuse (403, ``ForbiddenError``) as the API operation would."""
    permission = api_permission(app, method, path)
    if permission is not None:
        require(principal, permission)


def may(app: FastAPI, principal: Principal, method: str, path: str) -> bool:
    permission = api_permission(app, method, path)
    return permission is None or principal.can(permission)
