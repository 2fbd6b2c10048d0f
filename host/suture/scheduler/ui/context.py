"""What every UI page handler gets: the signed-in operator, its CSRF token, a database session,
the permission checks of the API operations the page mirrors, and rendering with the page
frame's context."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Final
from urllib.parse import parse_qsl, quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from suture.scheduler.api.deps import AppState, get_state
from suture.scheduler.authz import Principal
from suture.scheduler.errors import AuthenticationError, PayloadTooLargeError
from suture.scheduler.ui import permissions
from suture.scheduler.ui.render import LocalTime, render
from suture.scheduler.ui.session import (
    CSRF_FIELD,
    check_csrf,
    csrf_token,
    session_token,
    signed_in,
)

#: Largest form body the UI reads.
MAX_FORM_BYTES: Final = 64 * 1024

#: The navigation: (label, path, the API operation whose permission shows the entry).
NAV: Final = (
    ("Fleet", "/fleet", ("GET", "/api/v1/devices")),
    ("Releases", "/releases", ("GET", "/api/v1/releases")),
    ("Rollouts", "/rollouts", ("GET", "/api/v1/rollouts")),
    ("Approvals", "/approvals", ("POST", "/api/v1/rollouts/{rollout_id}/approve")),
    ("Audit", "/audit", ("GET", "/api/v1/audit")),
)


class SignInRequired(AuthenticationError):  # noqa: N818 (a redirect, not a failure)
    """No session, or it ended: the browser goes to the sign-in page and back."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


@dataclass
class UiContext:
    request: Request
    state: AppState
    principal: Principal
    token: str

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)

    @property
    def now(self) -> int:
        return self.state.clock.now()

    @property
    def localtime(self) -> LocalTime:
        return LocalTime(self.state.settings.time_zone)

    def require(self, method: str, path: str) -> None:
        """Refuse as the API operation ``method path`` would refuse this operator."""
        permissions.require_operation(self.request.app, self.principal, method, path)

    def may(self, method: str, path: str) -> bool:
        return permissions.may(self.request.app, self.principal, method, path)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        session = self.state.sessions()
        try:
            yield session
        finally:
            session.close()

    def page(self, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
        nav = [(label, path) for label, path, (m, p) in NAV if self.may(m, p)]
        return render(self.request, template, status_code=status_code, me=self.principal,
                      csrf=self.csrf, csrf_field=CSRF_FIELD, nav=nav, t=self.localtime,
                      tz=self.state.settings.time_zone, may=self.may, **context)


def ui_context(request: Request) -> UiContext:
    """The signed-in operator's context; ``SignInRequired`` otherwise."""
    principal = signed_in(request)
    token = session_token(request)
    if principal is None or token is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target)
    return UiContext(request, get_state(request), principal, token)


Ui = Annotated[UiContext, Depends(ui_context)]


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (at most ``MAX_FORM_BYTES``); a field
    given twice keeps its values joined by newlines (multi-selects)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise PayloadTooLargeError(f"form larger than {MAX_FORM_BYTES} bytes")
    fields: dict[str, str] = {}
    for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True,
                                max_num_fields=200):
        fields[key] = f"{fields[key]}\n{value}" if key in fields else value
    return fields


FormFields = Annotated[dict[str, str], Depends(read_form)]


def checked_form(ui: Ui, form: FormFields) -> dict[str, str]:
    """The form of a signed-in operator, refused without the session's CSRF token."""
    check_csrf(ui.token, form.get(CSRF_FIELD))
    return form


CheckedForm = Annotated[dict[str, str], Depends(checked_form)]


def signin_url(next_path: str) -> str:
    return "/signin?next=" + quote(next_path, safe="/")
