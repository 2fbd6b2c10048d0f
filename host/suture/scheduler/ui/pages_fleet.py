"""The fleet: devices through a filter of the CLI's language, and one device's page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from suture.scheduler.filterexpr import CRITICALITY_NAMES, SCALAR_FIELDS, SET_FIELDS
from suture.scheduler.live_config import anchor_status
from suture.scheduler.models import DeviceState
from suture.scheduler.schemas import DeviceUpdate
from suture.scheduler.services import devices
from suture.scheduler.ui import readmodel
from suture.scheduler.ui.context import CheckedForm, Ui
from suture.scheduler.ui.mount import UiRoute

router = APIRouter(route_class=UiRoute, include_in_schema=False)

QUICK = ("group", "board", "ward", "state", "criticality", "busy", "installed_below")
FIELDS = sorted([*SCALAR_FIELDS, *SET_FIELDS, "installed.<component>"])


@router.get("/fleet")
def fleet(request: Request, ui: Ui, q: str = "") -> HTMLResponse:
    ui.require("GET", "/api/v1/devices")
    quick = {k: request.query_params.get(k, "") for k in QUICK}
    expression = readmodel.filter_expression(q[:1000], quick)
    with ui.session() as session:
        view = readmodel.fleet(session, expression)
    return ui.page("fleet.html", view=view, q=q, quick=quick, expression=expression,
                   fields=FIELDS, states=[s.value for s in DeviceState],
                   criticality_names=CRITICALITY_NAMES)


@router.get("/fleet/live")
def fleet_live(request: Request, ui: Ui, q: str = "") -> HTMLResponse:
    """The fleet table alone, for the page's live refresh."""
    ui.require("GET", "/api/v1/devices")
    quick = {k: request.query_params.get(k, "") for k in QUICK}
    with ui.session() as session:
        view = readmodel.fleet(session, readmodel.filter_expression(q[:1000], quick))
    return ui.page("fleet_table.html", view=view)


@router.get("/fleet/{device_id}")
def device_page(device_id: str, ui: Ui) -> HTMLResponse:
    ui.require("GET", "/api/v1/devices/{device_id}")
    with ui.session() as session:
        device, events = devices.get_device(session, device_id=device_id[:64])
        entries = readmodel.device_entries(session, device.id)
    anchors = anchor_status(ui.state.live.anchor_paths) if ui.may(
        "GET", "/api/v1/scheduler") else []
    return ui.page("device.html", device=device, events=list(reversed(events)), entries=entries,
                   anchors=anchors)


@router.post("/fleet/{device_id}/busy")
def set_busy(device_id: str, ui: Ui, form: CheckedForm) -> Response:
    """Mark the device in clinical use (busy) or free, as ``PATCH /api/v1/devices/{id}``."""
    ui.require("PATCH", "/api/v1/devices/{device_id}")
    with ui.session() as session:
        devices.update_device(session, device_id=device_id[:64],
                              change=DeviceUpdate(busy=form.get("busy") == "true"),
                              actor=ui.principal, now=ui.now)
    return RedirectResponse(f"/fleet/{device_id}", status_code=303)
