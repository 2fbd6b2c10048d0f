"""Releases: the list, one release's SUIT manifest, verification and SBOM, and its recall."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from suture.scheduler.services import releases
from suture.scheduler.ui import readmodel
from suture.scheduler.ui.context import CheckedForm, Ui
from suture.scheduler.ui.mount import UiRoute

router = APIRouter(route_class=UiRoute, include_in_schema=False)


@router.get("/releases")
def release_list(ui: Ui) -> HTMLResponse:
    ui.require("GET", "/api/v1/releases")
    with ui.session() as session:
        rows = releases.list_releases(session)
    return ui.page("releases.html", releases=rows)


@router.get("/releases/{release_id}")
def release_page(release_id: int, ui: Ui) -> HTMLResponse:
    ui.require("GET", "/api/v1/releases/{release_id}")
    anchors = ui.state.live.trust_anchors()
    with ui.session() as session:
        view = readmodel.release_view(session, release_id, anchors, ui.principal)
    return ui.page("release.html", view=view, r=view.release)


@router.get("/releases/{release_id}/recall")
def recall_confirm(release_id: int, ui: Ui, revert: bool = False) -> HTMLResponse:
    """What the recall would do, and the button that does it."""
    ui.require("POST", "/api/v1/releases/{release_id}/recall")
    with ui.session() as session:
        going = readmodel.active_rollouts_of(session, release_id)
    lines = [f"rollout {r.id} ({r.name}, {r.state.replace('_', ' ')}) would be aborted"
             + ("; its devices in trial would revert" if revert else "") for r in going]
    return ui.page("confirm.html", title=f"Recall release {release_id}?",
                   lines=lines or ["no rollout of this release is going on"],
                   action=f"/releases/{release_id}/recall",
                   fields={"revert": "true" if revert else "false"},
                   button="Recall the release", back=f"/releases/{release_id}")


@router.post("/releases/{release_id}/recall")
def recall(release_id: int, ui: Ui, form: CheckedForm) -> Response:
    ui.require("POST", "/api/v1/releases/{release_id}/recall")
    with ui.session() as session:
        releases.recall_release(session, release_id=release_id,
                                revert=form.get("revert") == "true", actor=ui.principal,
                                now=ui.now)
    return RedirectResponse(f"/releases/{release_id}", status_code=303)
