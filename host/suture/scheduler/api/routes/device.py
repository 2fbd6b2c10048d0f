"""Device-facing routes: schedule, reports, envelope and payload downloads."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from suture.scheduler.api import jsonbody
from suture.scheduler.api.blob_response import DOWNLOAD_RESPONSES, blob_response
from suture.scheduler.api.deps import (
    DEVICE_GET_PARAMETERS,
    REPORT_PARAMETERS,
    AppState,
    DeviceIdPath,
    DeviceRequest,
    NowDep,
    ReleaseIdPath,
    SessionDep,
    StateDep,
    device_proof_from_headers,
    get_state,
    read_bounded,
)
from suture.scheduler.api.error_body import error_body
from suture.scheduler.db import sqlite_writer_turn
from suture.scheduler.errors import InvalidInputError
from suture.scheduler.schemas import ReportAck, ReportIn
from suture.scheduler.services import releases, reports, schedules
from suture.scheduler.services.audit import AuditKey
from suture.scheduler.services.devices import DeviceProof, check_proof

T = TypeVar("T")

#: The poll and the report: the app includes this router first, so the requests every device
#: sends often are matched against two routes, not after every operator route.
router = APIRouter(prefix="/api/v1", tags=["device"])
#: The downloads, included after the operator's release routes (whose ``/releases/{id}/sbom``
#: and ``/releases/{id}/deltas`` must not be taken for ``/releases/{id}/{envelope|payload}``).
downloads_router = APIRouter(prefix="/api/v1", tags=["device"])

COSE_SIGN1_TYPE = 'application/cose; cose-type="cose-sign1"'
_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "bad or replayed device credential"},
    403: {"description": "another device's resource"},
}


@router.get(
    "/devices/{device_id}/schedule",
    responses={200: {"content": {COSE_SIGN1_TYPE: {}},
                     "description": "the signed schedule (docs/formats/schedule.md)"},
               304: {"description": "unchanged since the ETag given in If-None-Match"},
               503: {"description": "too many polls in progress: poll again after Retry-After "
                                    "seconds (plus jitter)"},
               **_AUTH_ERRORS},
    response_class=Response,
    openapi_extra={"parameters": DEVICE_GET_PARAMETERS},
)
async def get_schedule(request: Request, device_id: DeviceIdPath) -> Response:
    """The device's signed schedule; ``If-None-Match`` with the last ETag gives 304. With
    ``max_polls_in_flight`` (a setting) polls already in progress in this process, 503 with
    ``Retry-After`` at once (nothing read, nothing written: the device's counter is not used)."""
    gate = _gate(request)
    if gate.in_flight >= gate.limit:
        gate.refused += 1
        return JSONResponse(
            error_body("busy", f"{gate.in_flight} polls in progress: poll again after "
                               f"{RETRY_AFTER_S} s", 503),
            status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})
    gate.in_flight += 1
    try:
        result = await _answer(request)
    finally:
        gate.in_flight -= 1
    if_none_match = request.headers.get("if-none-match")
    headers = {"ETag": result.etag, "Cache-Control": "no-cache",
               "Suture-Schedule-Number": str(result.number)}
    if if_none_match is not None and result.etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(result.document, media_type=COSE_SIGN1_TYPE, headers=headers)


#: Polls one process works on at once unless the setting ``max_polls_in_flight`` says
#: otherwise; more are refused with 503 and ``Retry-After`` (a burst after a network outage is
#: spread by the devices' jitter instead of queueing into timeouts).
MAX_POLLS_IN_FLIGHT = 128
RETRY_AFTER_S = 5


@dataclass
class PollGate:
    """The polls in progress in one app (event-loop state: no lock needed), and how many it
    admits at once (``limit``)."""

    in_flight: int = 0
    refused: int = 0
    limit: int = MAX_POLLS_IN_FLIGHT


def _gate(request: Request) -> PollGate:
    gate: PollGate | None = getattr(request.app.state, "poll_gate", None)
    if gate is None:
        gate = request.app.state.poll_gate = PollGate(
            limit=get_state(request).settings.max_polls_in_flight)
    return gate


async def _answer(request: Request) -> schedules.ScheduleResult:
    proof = device_proof_from_headers(request)
    state = get_state(request)
    now = state.clock.now()
    # polls and reports share commits (api/serial.py)
    return await state.poll_worker.run_grouped(device_transaction(state), _poll_in, state,
                                               proof, now)


@dataclass
class DeviceWork:
    """What each device request of a group works on: the group's session (in its transaction)
    and the common reports' writes still to make (``reports.ReportWrites``)."""

    session: Session
    writes: reports.ReportWrites

    def in_order(self, call: Callable[[Session], T]) -> T:
        """``call(session)``, for anything but a common report: the reports' writes so far
        made first and its own right after (the session flushed), so the history and the
        audit log keep the group's order."""
        self.writes.flush()
        result = call(self.session)
        self.session.flush()
        return result


@dataclass(frozen=True)
class DeviceTransaction:
    """A transaction for a group of device requests (``SerialWorker.run_grouped``): polls,
    DDI base polls and reports alike. Equal for every request of one app, so those waiting
    together share it, whatever their kinds: one commit for the group. Each runs on it in turn,
    doing what it does alone, in the same order and with the same checks; the history events
    and audit records of the common reports are written together before the commit (or before
    any other request of the group that follows them); any request refused rolls the group
    back, and each runs again alone (``serial.py``)."""

    sessions: sessionmaker[Session]
    audit_key: AuditKey

    @contextlib.contextmanager
    def __call__(self) -> Iterator[DeviceWork]:
        with self.sessions() as session, sqlite_writer_turn(session), session.begin():
            work = DeviceWork(session, reports.ReportWrites(session.connection(),
                                                            self.audit_key))
            yield work
            work.writes.flush()


def device_transaction(state: AppState) -> DeviceTransaction:
    return DeviceTransaction(state.sessions, state.audit_key)


def _poll_in(work: DeviceWork, state: AppState, proof: DeviceProof, now: int
             ) -> schedules.ScheduleResult:
    """One poll inside a group's transaction (``DeviceTransaction``)."""
    return work.in_order(lambda session: schedules.poll_in_transaction(
        session, device_id=proof.req.device_id, counter=proof.req.counter, now=now,
        ctx=state.schedule_ctx, proof=proof))


REPORT_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": ReportIn.model_json_schema(
            ref_template="#/components/schemas/{model}")}},
    }
}


@router.post(
    "/devices/{device_id}/reports",
    response_model=ReportAck,
    responses={400: {"description": "JSON nested too deep"},
               413: {"description": "report body too large"}, **_AUTH_ERRORS},
    openapi_extra={**REPORT_SCHEMA, "parameters": REPORT_PARAMETERS},
)
async def post_report(request: Request, device_id: DeviceIdPath) -> Response:
    """Progress, state changes, errors and installed versions (JSON, bounded size and depth).
    The MAC, time and counter are checked before the body is parsed (401 before any 400 or
    422), in the transaction that records the report. Acknowledged once the report is
    committed, together with the requests waiting with it (``DeviceTransaction``), on the
    poll thread (whose writes no other thread of the process then waits for). Like the
    poll, the route reads what it needs straight from the request (no dependency to solve
    per request) and writes its answer (``ReportAck``) itself."""
    state = get_state(request)
    body = await read_bounded(request, state.settings.max_report_bytes)
    proof = device_proof_from_headers(request, body)
    now = state.clock.now()
    # reports share commits with the polls (api/serial.py)
    outcome = await state.poll_worker.run_grouped(device_transaction(state), _record, state,
                                                  proof, body, now)
    ack = ReportAck(accepted=True, schedule_number=outcome.schedule_number,
                    schedule_changed=outcome.schedule_changed)
    return Response(ack.model_dump_json(), media_type="application/json")


def _record(work: DeviceWork, state: AppState, proof: DeviceProof, body: bytes,
            now: int) -> reports.ReportOutcome:
    """Inside the caller's transaction: the MAC, time and counter checked first (the counter
    taken by the conditional UPDATE that also reads what the report needs), then the body
    parsed, then the report recorded; the common report by Core statements on ``conn``, any
    other in a session joined to it (its own savepoint). A request refused by that UPDATE
    (replayed, time off, unknown device) changed nothing: it is checked again the general way
    (``check_proof``, nothing consumed), which raises the exact refusal with its resync
    headers."""
    writes = work.writes
    conn = writes.conn
    consumed = reports.consume_report_counter(conn, proof=proof, now=now)
    if consumed is None:
        writes.flush()  # the general path appends to the history and audit log after them
        with state.sessions(bind=conn, join_transaction_mode="create_savepoint") as session:
            check_proof(session, proof=proof, now=now)
            return reports.record_report(session, device_id=proof.req.device_id,
                                         counter=proof.req.counter, report=_parse(body),
                                         now=now, ctx=state.schedule_ctx, proof=proof)
    report = _parse(body)
    reports.check_report_signature(consumed, proof)
    outcome = reports.record_common(writes, device_id=proof.req.device_id, consumed=consumed,
                                    report=report, now=now, ctx=state.schedule_ctx)
    if outcome is not None:
        return outcome
    writes.flush()
    with state.sessions(bind=conn, join_transaction_mode="create_savepoint") as session, \
            session.begin():
        return reports.record_consumed(session, device_id=proof.req.device_id, report=report,
                                       now=now, ctx=state.schedule_ctx)


def _parse(body: bytes) -> ReportIn:
    try:
        return ReportIn.model_validate(jsonbody.loads(body))
    except (ValueError, ValidationError) as exc:
        raise InvalidInputError(f"malformed report: {_short(exc)}") from None


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        return f"{where}: {first.get('msg', 'invalid')}"
    return str(exc).splitlines()[0][:200]


@downloads_router.get(
    "/releases/{release_id}/{kind}",
    responses={**DOWNLOAD_RESPONSES, **_AUTH_ERRORS},
    response_class=Response,
)
def download(
    release_id: ReleaseIdPath, kind: Literal["envelope", "payload"], proof: DeviceRequest,
    session: SessionDep, now: NowDep, state: StateDep,
    range_: Annotated[str | None, Header(alias="Range")] = None,
    if_range: Annotated[str | None, Header()] = None,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """A release's SUIT envelope or payload; resumable with ``Range`` (206), strong ETag.
    The bytes stream from the database a chunk at a time."""
    ref = releases.device_download(
        session, release_id=release_id, kind=kind, device_id=proof.req.device_id,
        counter=proof.req.counter, now=now, proof=proof)
    return blob_response(state.sessions, ref, range_=range_, if_range=if_range,
                         if_none_match=if_none_match)
