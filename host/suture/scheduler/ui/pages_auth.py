"""Sign-in and sign-out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from suture.scheduler.api.deps import get_state
from suture.scheduler.errors import AuthenticationError, ForbiddenError, SchedulerError
from suture.scheduler.models import DEFAULT_TENANT
from suture.scheduler.services import operators
from suture.scheduler.ui.context import CheckedForm, FormFields, Ui
from suture.scheduler.ui.mount import UiRoute
from suture.scheduler.ui.render import render
from suture.scheduler.ui.session import (
    check_signin_token,
    clear_session,
    set_session,
    set_signin_cookie,
    signed_in,
    signin_token,
)

router = APIRouter(route_class=UiRoute, include_in_schema=False)


def _safe_next(value: str | None) -> str:
    """Only a path of this site (``/x``, never ``//host`` or a URL)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/fleet"


@router.get("/")
def home(request: Request) -> Response:
    return RedirectResponse("/fleet" if signed_in(request) else "/signin", status_code=303)


def _signin_page(request: Request, *, error: str = "", name: str = "", next_path: str = "/fleet",
                 status_code: int = 200) -> HTMLResponse:
    token = signin_token(request)
    response = render(request, "signin.html", status_code=status_code, error=error, name=name,
                      next_path=next_path, signin_token=token, me=None, nav=[], csrf="",
                      tz=get_state(request).settings.time_zone)
    set_signin_cookie(response, request, token)
    return response


@router.get("/signin")
def signin_form(request: Request, next: str | None = None) -> Response:
    return _signin_page(request, next_path=_safe_next(next))


@router.post("/signin")
def signin(request: Request, form: FormFields) -> Response:
    next_path = _safe_next(form.get("next"))
    name = form.get("name", "").strip()
    try:
        check_signin_token(request, form.get("signin_token"))
        state = get_state(request)
        session = state.sessions()
        try:
            issued = operators.login(session, name=name, password=form.get("password", ""),
                                     now=state.clock.now(), token_name="ui")  # noqa: S106
            who = operators.authenticate_token(session, token=issued.token,
                                               now=state.clock.now())
            if who.tenant != DEFAULT_TENANT:  # the UI serves the scheduler's own tenant
                operators.revoke_token(session, token_id=issued.id, actor=who,
                                       now=state.clock.now())
                raise ForbiddenError(f"{name} is an operator of tenant {who.tenant}: a "
                                     "tenant's operators work through the API and the CLI")
        finally:
            session.close()
    except (AuthenticationError, SchedulerError) as exc:
        return _signin_page(request, error=str(exc), name=name, next_path=next_path,
                            status_code=exc.status_code)
    response = RedirectResponse(next_path, status_code=303)
    set_session(response, request, issued.token, max_age=issued.expires_at - state.clock.now())
    return response


@router.post("/signout")
def signout(ui: Ui, form: CheckedForm) -> Response:
    if ui.principal.token_id is not None:
        with ui.session() as session:
            operators.revoke_token(session, token_id=ui.principal.token_id, actor=ui.principal,
                                   now=ui.now)
    response = RedirectResponse("/signin", status_code=303)
    clear_session(response)
    return response
