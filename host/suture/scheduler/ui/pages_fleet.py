"""The fleet: devices through a filter of the CLI's language, and one device's page with its
actions: busy or free, credential rotation (the new secret shown once) and decommission, each
destructive one confirmed first."""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from suture.scheduler.errors import InvalidInputError, NotFoundError
from suture.scheduler.filterexpr import CRITICALITY_NAMES, SCALAR_FIELDS, SET_FIELDS
from suture.scheduler.live_config import anchor_status
from suture.scheduler.models import DeviceState
from suture.scheduler.schemas import DeviceUpdate
from suture.scheduler.services import devices, suit_reports
from suture.scheduler.ui import error_explain, readmodel
from suture.scheduler.ui.context import CheckedForm, Ui
from suture.scheduler.ui.mount import UiRoute

router = APIRouter(route_class=UiRoute, include_in_schema=False)

QUICK = ("group", "board", "ward", "state", "criticality", "busy", "installed_below",
         "last_seen")
FIELDS = sorted([*SCALAR_FIELDS, *SET_FIELDS, "installed.<component>"])
#: Longest decommission reason (as ``DecommissionRequest`` bounds it).
MAX_DECOMMISSION_REASON: Final = 256
#: The newest SUIT reports a device page shows (the CLI and API show more).
SUIT_SHOWN: Final = 10

#: Each device action: the API operation it mirrors, its title, what the confirmation says.
ACTIONS: Final = {
    "rotate": ("POST", "/api/v1/devices/{device_id}/credential", "Rotate the credential of",
               "A new device secret is issued and shown once; the previous one stops working "
               "at once: the device authenticates again only once it is given the new one."),
    "decommission": ("POST", "/api/v1/devices/{device_id}/decommission", "Decommission",
                     "The device leaves service for good: its credential stops working, its "
                     "unfinished rollout entries are cancelled and no rollout targets it "
                     "again. Its record and history stay."),
}


@router.get("/fleet")
def fleet(request: Request, ui: Ui, q: str = "") -> HTMLResponse:
    ui.require("GET", "/api/v1/devices")
    quick = {k: request.query_params.get(k, "") for k in QUICK}
    with ui.session() as session:
        view, expression = readmodel.fleet_page(session, q[:1000], quick, ui.now)
    return ui.page("fleet.html", view=view, q=q, quick=quick, expression=expression,
                   fields=FIELDS, states=[s.value for s in DeviceState],
                   criticality_names=CRITICALITY_NAMES, last_seen=readmodel.LAST_SEEN)


@router.get("/fleet/live")
def fleet_live(request: Request, ui: Ui, q: str = "") -> HTMLResponse:
    """The fleet table alone, for the page's live refresh."""
    ui.require("GET", "/api/v1/devices")
    quick = {k: request.query_params.get(k, "") for k in QUICK}
    with ui.session() as session:
        view, _ = readmodel.fleet_page(session, q[:1000], quick, ui.now)
    return ui.page("fleet_table.html", view=view)


@router.get("/fleet/{device_id}")
def device_page(device_id: str, ui: Ui) -> HTMLResponse:
    ui.require("GET", "/api/v1/devices/{device_id}")
    with ui.session() as session:
        device, events = devices.get_device(session, device_id=device_id[:64])
        entries = readmodel.device_entries(session, device.id)
    reports = None
    if ui.may("GET", "/api/v1/devices/{device_id}/suit-reports"):
        with ui.session() as session:
            reports = suit_reports.list_suit_reports(session, device_id=device.id,
                                                     limit=SUIT_SHOWN)
    anchors = anchor_status(ui.state.live.anchor_paths) if ui.may(
        "GET", "/api/v1/scheduler") else []
    return ui.page("device.html", device=device,
                   events=[(ev, error_explain.in_detail(ev.detail)) for ev in reversed(events)],
                   entries=[(e, r, error_explain.in_text(e.detail)) for e, r in entries],
                   anchors=anchors, actions=ACTIONS, suit_reports=[
                       (r, suit_reports.failed_at((r.get("result") or {}).get("record")),
                        suit_reports.installed_text(r.get("claims") or []))
                       for r in reports or []], suit_shown=reports is not None)


@router.get("/fleet/{device_id}/confirm/{action}")
def device_confirm(device_id: str, action: str, ui: Ui) -> HTMLResponse:
    """What the action would do to the device, and the button that does it."""
    if action not in ACTIONS:
        raise NotFoundError(f"no action {action!r} (actions: {', '.join(ACTIONS)})")
    method, path, title, effect = ACTIONS[action]
    ui.require(method, path)
    with ui.session() as session:
        device, _ = devices.get_device(session, device_id=device_id[:64])
        entries = readmodel.device_entries(session, device.id)
    lines = [f"device {device.id} ({device.board}, ward {device.ward or '—'}, criticality "
             f"{device.criticality}), credential generation {device.credential_generation}",
             effect]
    unfinished = [r.id for e, r in entries if e.state not in
                  ("succeeded", "failed", "reverted", "cancelled")]
    if action == "decommission" and unfinished:
        lines.append("its entries in rollout(s) " + ", ".join(map(str, unfinished))
                     + " would be cancelled")
    return ui.page("confirm.html", title=f"{title} {device.id}?", lines=lines,
                   action=f"/fleet/{device.id}/{action}", fields={},
                   reason_field=MAX_DECOMMISSION_REASON if action == "decommission" else 0,
                   button=f"{title} {device.id}", back=f"/fleet/{device.id}")


@router.post("/fleet/{device_id}/rotate")
def rotate_credential(device_id: str, ui: Ui, form: CheckedForm) -> HTMLResponse:
    """Issue the new credential and show its secret, this once (the page is not cached)."""
    ui.require(*ACTIONS["rotate"][:2])
    with ui.session() as session:
        issued = devices.rotate_credential(session, device_id=device_id[:64],
                                           root_secret=ui.state.settings.root_secret_bytes(),
                                           actor=ui.principal, now=ui.now)
    return ui.page("credential.html", issued=issued)


@router.post("/fleet/{device_id}/decommission")
def decommission(device_id: str, ui: Ui, form: CheckedForm) -> Response:
    ui.require(*ACTIONS["decommission"][:2])
    reason = form.get("reason", "").strip()
    if len(reason) > MAX_DECOMMISSION_REASON:
        raise InvalidInputError(f"the reason is {len(reason)} characters long; at most "
                                f"{MAX_DECOMMISSION_REASON}")
    with ui.session() as session:
        devices.decommission_device(session, device_id=device_id[:64], actor=ui.principal,
                                    now=ui.now, reason=reason)
    return RedirectResponse(f"/fleet/{device_id}", status_code=303)


@router.post("/fleet/{device_id}/busy")
def set_busy(device_id: str, ui: Ui, form: CheckedForm) -> Response:
    """Mark the device in clinical use (busy) or free, as ``PATCH /api/v1/devices/{id}``."""
    ui.require("PATCH", "/api/v1/devices/{device_id}")
    with ui.session() as session:
        devices.update_device(session, device_id=device_id[:64],
                              change=DeviceUpdate(busy=form.get("busy") == "true"),
                              actor=ui.principal, now=ui.now)
    return RedirectResponse(f"/fleet/{device_id}", status_code=303)
