"""Releases: the list, the import of an uploaded release (envelope, payload, SBOM) or of one
mirrored from a vendor of the vendors file, one release's SUIT manifest, verification and SBOM,
and its recall."""

from __future__ import annotations

from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from suture.scheduler.errors import InvalidInputError, PayloadTooLargeError, SchedulerError
from suture.scheduler.services import releases
from suture.scheduler.ui import readmodel
from suture.scheduler.ui.context import CheckedForm, Ui, UiContext
from suture.scheduler.ui.mount import UiRoute
from suture.scheduler.ui.session import CSRF_FIELD, check_csrf
from suture.scheduler.vendor_mirror import (
    MirrorError,
    VendorEntry,
    load_vendors,
    mirror_vendor_release,
)

router = APIRouter(route_class=UiRoute, include_in_schema=False)

#: The import form's files: (field, what it is, required).
FILES: Final = (("envelope", "SUIT envelope", True), ("payload", "payload", True),
                ("sbom", "CycloneDX SBOM", False))
#: Longest release notes (as the API's ``ReleaseImport`` bounds them).
MAX_NOTES: Final = 65536
#: The mirror form's rollout window when the operator leaves it as offered: a week from now.
MIRROR_WINDOW_S: Final = 7 * 86_400
#: The local date-and-time format of ``<input type="datetime-local">``.
LOCAL_FORMAT: Final = "%Y-%m-%dT%H:%M"


@router.get("/releases")
def release_list(ui: Ui) -> HTMLResponse:
    ui.require("GET", "/api/v1/releases")
    with ui.session() as session:
        rows = releases.list_releases(session)
    return ui.page("releases.html", releases=rows)


def _vendors(ui: UiContext) -> tuple[dict[str, VendorEntry], str]:
    """The vendors of the scheduler's vendors file, or why there are none to mirror from."""
    path = ui.state.settings.vendors_path
    if path is None:
        return {}, "This scheduler names no vendors file (setting vendors_path)."
    try:
        entries = load_vendors(path)
    except MirrorError as exc:
        return {}, str(exc)
    return entries, "" if entries else f"The vendors file {path} names no vendor yet."


def _local(ts: int, zone: str) -> str:
    return datetime.fromtimestamp(ts, ZoneInfo(zone)).strftime(LOCAL_FORMAT)


def _parse_local(raw: str, label: str, zone: str) -> int:
    try:
        local = datetime.strptime(raw.strip(), LOCAL_FORMAT)
    except ValueError:
        raise MirrorError(f"{label}: {raw!r} is not a date and time (YYYY-MM-DDTHH:MM)"
                          ) from None
    return int(local.replace(tzinfo=ZoneInfo(zone)).timestamp())


def _import_page(ui: UiContext, *, error: str = "", notes: str = "",
                 mirror_error: str = "", mirror: dict[str, str] | None = None,
                 status_code: int = 200) -> HTMLResponse:
    vendors, no_vendors = _vendors(ui)
    zone = ui.state.settings.time_zone
    fields = {"vendor": next(iter(vendors), ""), "release": "", "devices": "",
              "start": _local(ui.now, zone), "end": _local(ui.now + MIRROR_WINDOW_S, zone),
              **(mirror or {})}
    return ui.page("release_import.html", error=error, notes=notes, files=FILES,
                   max_mib=ui.state.settings.max_release_bytes // (1024 * 1024),
                   sbom_optional=ui.state.settings.allow_releases_without_sbom,
                   vendors=vendors, no_vendors=no_vendors, mirror_error=mirror_error,
                   mirror=fields, status_code=status_code)


@router.get("/releases/import")
def import_form(ui: Ui) -> HTMLResponse:
    ui.require("POST", "/api/v1/releases")
    return _import_page(ui)


async def _file(form: FormData, name: str, label: str, required: bool, limit: int
                ) -> bytes | None:
    item = form.get(name)
    if not isinstance(item, UploadFile) or not item.filename:
        if required:
            raise InvalidInputError(f"choose the {label} file")
        return None
    data = await item.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLargeError(f"the {label} is larger than {limit} bytes")
    if not data:
        raise InvalidInputError(f"the {label} file is empty")
    return data


@router.post("/releases/import")
async def import_upload(request: Request, ui: Ui) -> Response:
    """The release as ``POST /api/v1/releases`` imports it: verified against the trust anchors
    in force, its payload against the manifest's digest, its SBOM against the manifest. A
    refused import changes nothing and is shown on the form with the scheduler's reason."""
    ui.require("POST", "/api/v1/releases")
    limit = ui.state.settings.max_release_bytes
    async with request.form(max_files=len(FILES), max_fields=8) as form:
        check_csrf(ui.token, str(form.get(CSRF_FIELD) or ""))
        notes = str(form.get("notes") or "")
        try:
            if len(notes) > MAX_NOTES:
                raise InvalidInputError(f"the notes are longer than {MAX_NOTES} characters")
            data = {name: await _file(form, name, label, required, limit)
                    for name, label, required in FILES}
            ui.state.live.refresh_and_audit(ui.state.sessions, ui.now)
            anchors = ui.state.live.trust_anchors()
            envelope, payload = data["envelope"] or b"", data["payload"] or b""  # required
            with ui.session() as session:
                release = releases.import_release(
                    session, envelope=envelope, payload=payload, sbom=data["sbom"],
                    notes=notes or None, trust_anchors=anchors, actor=ui.principal,
                    must_pass_through=form.get("must_pass_through") == "true", now=ui.now,
                    allow_missing_sbom=ui.state.settings.allow_releases_without_sbom)
        except SchedulerError as exc:
            return _import_page(ui, error=str(exc), notes=notes, status_code=exc.status_code)
    return RedirectResponse(f"/releases/{release.id}", status_code=303)


@router.post("/releases/mirror")
def mirror_from_vendor_form(ui: Ui, form: CheckedForm) -> Response:
    """The release as ``suture scheduler vendor mirror`` mirrors it (the same service): a GNAP
    grant naming the release, the rollout's devices and window, the files fetched, verified
    against the vendor's trust anchors and imported, the grant revoked. A refusal (the vendor's,
    an unknown release, a release that does not verify) keeps nothing and is shown on the form
    with its reason."""
    ui.require("POST", "/api/v1/releases")
    fields = {name: form.get(name, "").strip()
              for name in ("vendor", "release", "devices", "start", "end")}
    zone = ui.state.settings.time_zone
    try:
        vendors, no_vendors = _vendors(ui)
        entry = vendors.get(fields["vendor"])
        if entry is None:
            raise MirrorError(no_vendors or f"no vendor {fields['vendor']!r} in the vendors file")
        if not fields["release"]:
            raise MirrorError("name the vendor's release to mirror")
        devices = [d.strip() for d in fields["devices"].replace("\n", ",").split(",")
                   if d.strip()]
        start = _parse_local(fields["start"], "window start", zone)
        end = _parse_local(fields["end"], "window end", zone)
        with httpx.Client(timeout=30.0) as http, ui.session() as session:
            mirrored, _grant = mirror_vendor_release(
                session, http=http, entry=entry, release_id=fields["release"], devices=devices,
                window_start=start, window_end=end, actor=ui.principal,
                allow_missing_sbom=ui.state.settings.allow_releases_without_sbom, now=ui.now)
    except SchedulerError as exc:
        return _import_page(ui, mirror_error=str(exc), mirror=fields,
                            status_code=exc.status_code)
    return RedirectResponse(f"/releases/{mirrored.release.id}", status_code=303)


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
