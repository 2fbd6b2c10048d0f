"""``mount_ui(app)``: the UI's pages at ``/``, its assets at ``/ui/static``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from suture.scheduler.errors import SchedulerError
from suture.scheduler.ui.context import SignInRequired, signin_url
from suture.scheduler.ui.render import render
from suture.scheduler.ui.session import signed_in

log = logging.getLogger("suture.scheduler.ui")

STATIC_DIR = Path(__file__).parent / "static"


class UiRoute(APIRoute):
    """A page: a missing session redirects to the sign-in page; a refusal of the scheduler
    (role, state, input) is shown as a page with its status and message."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired as exc:
                return RedirectResponse(signin_url(exc.next_path), status_code=303)
            except SchedulerError as exc:
                return render(request, "error.html", status_code=exc.status_code,
                              error=str(exc), code=exc.code, status=exc.status_code,
                              me=signed_in(request), nav=[], csrf="", tz="")

        return page


def mount_ui(app: FastAPI) -> None:
    from suture.scheduler.ui import (
        pages_audit,
        pages_auth,
        pages_fleet,
        pages_releases,
        pages_rollouts,
    )
    from suture.scheduler.ui.api_docs import mount_api_docs

    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
    if app.docs_url is None:
        mount_api_docs(app)
    for module in (pages_auth, pages_fleet, pages_releases, pages_rollouts, pages_audit):
        app.include_router(module.router)
