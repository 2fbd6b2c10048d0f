"""Typed dependencies: a handler's signature lists what it needs. Those that do no I/O are
``async`` so that FastAPI runs them on the event loop rather than handing each to a thread."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Final

from fastapi import Depends, Header, Path, Request
from sqlalchemy.orm import Session, sessionmaker

from suture.scheduler import credentials
from suture.scheduler.api.serial import SerialWorker
from suture.scheduler.authn import DEFAULT_AUTHENTICATORS, Authenticator, authenticate
from suture.scheduler.authz import Principal
from suture.scheduler.clock import Clock
from suture.scheduler.config import Settings
from suture.scheduler.errors import ForbiddenError, PayloadTooLargeError
from suture.scheduler.live_config import LiveConfig
from suture.scheduler.services import devices
from suture.scheduler.services.audit import AuditKey
from suture.scheduler.services.schedules import ScheduleContext
from suture.scheduler.vendor_watch import VendorAuthorities


@dataclass
class AppState:
    settings: Settings
    sessions: sessionmaker[Session]
    clock: Clock
    schedule_ctx: ScheduleContext
    audit_key: AuditKey
    live: LiveConfig
    #: The one thread that runs the devices' polls and reports, with group commit
    #: (``serial.py``).
    poll_worker: SerialWorker
    authenticators: Sequence[Authenticator] = field(default=DEFAULT_AUTHENTICATORS)
    #: The vendors whose AS grants rollouts of their releases (``vendor_watch.py``; None: the
    #: scheduler names no vendors file).
    vendors: VendorAuthorities | None = None


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.scheduler
    return state


async def _state(request: Request) -> AppState:
    return get_state(request)


StateDep = Annotated[AppState, Depends(_state)]


def get_session(state: StateDep) -> Iterator[Session]:
    session = state.sessions()
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


async def get_now(state: StateDep) -> int:
    return state.clock.now()


NowDep = Annotated[int, Depends(get_now)]


def authenticate_operator(state: AppState, session: Session, authorization: str | None
                          ) -> Principal:
    """The operator an ``Authorization`` header proves (``authn.py``)."""
    return authenticate(state.authenticators, session, authorization, state.clock.now())


def current_operator(
    request: Request, session: SessionDep, state: StateDep,
    authorization: Annotated[str | None, Header(description="Bearer <operator token>")] = None,
) -> Principal:
    """The authenticated operator: already known when the route is an ``OperatorRoute``
    (checked, with the route's permission, before the body was read), checked here
    otherwise."""
    known = getattr(request.state, "operator", None)
    if isinstance(known, Principal):
        return known
    return authenticate_operator(state, session, authorization)


CurrentOperator = Annotated[Principal, Depends(current_operator)]


async def bounded_body(request: Request, state: StateDep) -> bytes:
    """The request body, refused with 413 past ``max_report_bytes`` (before reading it all)."""
    return await read_bounded(request, state.settings.max_report_bytes)


async def read_bounded(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (before reading it all)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise PayloadTooLargeError(f"body larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLargeError(f"body larger than {limit} bytes")
    return bytes(body)


BoundedBody = Annotated[bytes, Depends(bounded_body)]


def _signed_path(request: Request) -> str:
    raw = request.scope.get("raw_path") or request.url.path.encode()
    path = raw.decode("latin-1")
    query = request.scope.get("query_string", b"")
    return path + ("?" + query.decode("latin-1") if query else "")


def _proof(request: Request, body: bytes, state: AppState, device: str | None,
           time: str | None, counter: str | None, mac: str | None) -> devices.DeviceProof:
    req = credentials.parse_headers(device, time, counter, mac)
    path_id = request.path_params.get("device_id")
    if path_id is not None and path_id != req.device_id:
        raise ForbiddenError("a device may act only for itself")
    return devices.DeviceProof(
        req=req, method=request.method, path=_signed_path(request),
        body_digest_hex=hashlib.sha256(body).hexdigest(),
        root_secret=state.settings.root_secret_bytes(),
        skew_s=state.settings.device_clock_skew_s,
        signature=request.headers.get(credentials.HEADER_SIGNATURE))


_H_DEV = Header(alias=credentials.HEADER_DEVICE, description="device id")
_H_TIME = Header(alias=credentials.HEADER_TIME, description="unix seconds")
_H_CTR = Header(alias=credentials.HEADER_COUNTER, description="strictly increasing counter")
_H_MAC = Header(alias=credentials.HEADER_MAC, description="HMAC-SHA256, 64 hex digits")
def _header_parameter(name: str, description: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    if description is not None:
        schema["description"] = description
    schema["title"] = name.title()
    parameter: dict[str, Any] = {"name": name, "in": "header", "required": False,
                                 "schema": schema}
    if description is not None:
        parameter["description"] = description
    return parameter


#: The OpenAPI parameters of a route that reads the signature headers itself
#: (``device_proof_from_headers``): the four of ``device_proof``.
DEVICE_PARAMETERS: Final[list[dict[str, Any]]] = [
    _header_parameter(str(h.alias), h.description) for h in (_H_DEV, _H_TIME, _H_CTR, _H_MAC)]
#: ``DEVICE_PARAMETERS`` and ``If-None-Match``.
DEVICE_GET_PARAMETERS: Final[list[dict[str, Any]]] = [
    *DEVICE_PARAMETERS, _header_parameter("if-none-match")]
#: ``DEVICE_PARAMETERS`` and ``Suture-Signature``, which a device with a registered key sends
#: with each report (docs/formats/device-api.md, "The device key: signed reports").
REPORT_PARAMETERS: Final[list[dict[str, Any]]] = [
    *DEVICE_PARAMETERS,
    _header_parameter(credentials.HEADER_SIGNATURE,
                      "ES256 r || s, 128 hex digits; required of a device with a registered "
                      "key")]


def device_proof_from_headers(request: Request, body: bytes = b"") -> devices.DeviceProof:
    """``device_proof`` read straight from the request's headers (and over ``body``), for the
    hottest routes: what FastAPI would do per declared header parameter costs more than the
    rest of the route. Only the headers' shape is checked here; the service checks the MAC."""
    headers = request.headers
    return _proof(request, body, get_state(request), headers.get(credentials.HEADER_DEVICE),
                  headers.get(credentials.HEADER_TIME), headers.get(credentials.HEADER_COUNTER),
                  headers.get(credentials.HEADER_MAC))


def device_proof(
    request: Request, state: StateDep,
    device: Annotated[str | None, _H_DEV] = None,
    time: Annotated[str | None, _H_TIME] = None,
    counter: Annotated[str | None, _H_CTR] = None,
    mac: Annotated[str | None, _H_MAC] = None,
) -> devices.DeviceProof:
    """A device's GET request (empty body): its signature, checked by the service."""
    return _proof(request, b"", state, device, time, counter, mac)


def device_proof_with_body(
    request: Request, body: BoundedBody, state: StateDep, session: SessionDep, now: NowDep,
    device: Annotated[str | None, _H_DEV] = None,
    time: Annotated[str | None, _H_TIME] = None,
    counter: Annotated[str | None, _H_CTR] = None,
    mac: Annotated[str | None, _H_MAC] = None,
) -> devices.DeviceProof:
    """A device's request with a (bounded) body, which the MAC covers: the MAC, time and
    counter are checked here, before the route parses the body (401 before any 400 or 422)."""
    proof = _proof(request, body, state, device, time, counter, mac)
    devices.check_proof(session, proof=proof, now=now)
    return proof


DeviceRequest = Annotated[devices.DeviceProof, Depends(device_proof)]
DeviceRequestWithBody = Annotated[devices.DeviceProof, Depends(device_proof_with_body)]


ReleaseIdPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="release id")]
RolloutIdPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="rollout id")]
DeviceIdPath = Annotated[str, Path(min_length=1, max_length=64, description="device id")]
