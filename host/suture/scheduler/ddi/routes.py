"""The DDI routes (``/{tenant}/controller/v1/{controllerId}/...``, hawkBit's paths) and the
operator routes that issue DDI tokens. Bodies are bounded as device reports are
(``max_report_bytes``, before they are read: ``body_limit``) and parsed within the JSON depth
bound; downloads stream from the database with ``Range`` support, as suture's own."""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, TypeVar

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from suture.scheduler.api import jsonbody
from suture.scheduler.api.blob_response import DOWNLOAD_RESPONSES, blob_response
from suture.scheduler.api.deps import (
    AppState,
    CurrentOperator,
    DeviceIdPath,
    NowDep,
    SessionDep,
    StateDep,
    get_state,
    read_bounded,
)
from suture.scheduler.api.error_body import error_body
from suture.scheduler.api.operator_route import OperatorRoute, needs
from suture.scheduler.api.routes.device import (
    RETRY_AFTER_S,
    DeviceWork,
    PollGate,
    device_transaction,
)
from suture.scheduler.authz import Permission
from suture.scheduler.config import Settings
from suture.scheduler.ddi import schemas, service
from suture.scheduler.errors import InvalidInputError

#: Where every DDI path starts (hawkBit's DDI API, version 1).
_DDI_PATH: Final = re.compile(r"^/[^/]+/controller/v1/")

TenantPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$",
                                 description="DDI tenant")]
ControllerIdPath = Annotated[str, Path(min_length=1, max_length=64,
                                       description="the device's id (DDI controllerId)")]
ActionIdPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="DDI action id")]
ReleasePath = Annotated[int, Path(ge=1, le=2**31 - 1, description="release id")]
Authorization = Annotated[str | None, Header(
    description="TargetToken <device's token> or GatewayToken <tenant's token>")]
History = Annotated[int | None, Query(alias="actionHistory", ge=-1, le=1000,
                                      description="messages of the action's history to add "
                                                  "(-1: all kept)")]

router = APIRouter(prefix="/{tenant}/controller/v1/{controller_id}", tags=["device: DDI"])
tokens_router = APIRouter(prefix="/api/v1", tags=["operator: DDI"], route_class=OperatorRoute)

_AUTH: dict[int | str, dict[str, Any]] = {
    401: {"description": "no valid target or gateway token for this tenant and device"},
    404: {"description": "not this device's action, or nothing to show"},
}
_BODY: dict[int | str, dict[str, Any]] = {
    **_AUTH, 200: {"description": "recorded (no body)", "content": {}},
    400: {"description": "JSON nested too deep"},
    413: {"description": "body too large"}, 422: {"description": "malformed body"},
}


#: Largest DDI request body: DDI clients send their installer's log in a feedback's
#: ``details`` (SWUpdate sends it whole), more than a suture report ever holds.
DDI_BODY_LIMIT: Final = 64 * 1024


def body_limit(settings: Settings, path: str) -> int | None:
    """The bound of a DDI request's body (``max_report_bytes`` or ``DDI_BODY_LIMIT``, the
    larger); None: not a DDI path."""
    return max(settings.max_report_bytes, DDI_BODY_LIMIT) if _DDI_PATH.match(path) else None


def _links(request: Request, tenant: str, controller_id: str) -> service.Links:
    return service.Links(str(request.base_url).rstrip("/"), tenant, controller_id)


async def _bounded_body(request: Request, state: StateDep) -> bytes:
    """The request body, refused with 413 past the DDI bound (before reading it all)."""
    return await read_bounded(
        request, body_limit(state.settings, request.url.path) or state.settings.max_report_bytes)


BoundedBody = Annotated[bytes, Depends(_bounded_body)]
_M = TypeVar("_M", bound=BaseModel)


def _parse(model: type[_M], body: bytes) -> _M:
    try:
        return model.model_validate(jsonbody.loads(body))
    except (ValueError, ValidationError) as exc:
        if isinstance(exc, ValidationError):
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "body"
            raise InvalidInputError(f"malformed DDI body: {where}: "
                                    f"{first.get('msg', 'invalid')}") from None
        raise InvalidInputError(f"malformed DDI body: {str(exc).splitlines()[0][:200]}"
                                ) from None


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": model.model_json_schema(ref_template="#/components/schemas/{model}")}}}}


#: The base poll reads ``Authorization`` itself (a declared header parameter costs FastAPI
#: more than the rest of the poll); the OpenAPI document still names it.
_AUTHORIZATION_PARAMETER: Final[dict[str, Any]] = {
    "name": "authorization", "in": "header", "required": False,
    "description": "TargetToken <device's token> or GatewayToken <tenant's token>",
    "schema": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "Authorization"}}


@router.get("", response_class=JSONResponse,
            responses={200: {"model": schemas.BasePoll, "description": "when to poll again, "
                             "and what to fetch now"}, **_AUTH,
                       503: {"description": "too many polls in progress (suture's and DDI's "
                                            "together): poll again after Retry-After"}},
            openapi_extra={"parameters": [_AUTHORIZATION_PARAMETER]})
async def base_poll(request: Request, tenant: TenantPath,
                    controller_id: ControllerIdPath) -> JSONResponse:
    """The base poll: when to poll again (``config.polling.sleep``, the scheduler's polling
    policy) and links to what the device should fetch now. Admitted as suture's own polls
    are: past ``max_polls_in_flight`` (a setting) polls of either kind in progress, 503 at once."""
    gate: PollGate | None = getattr(request.app.state, "poll_gate", None)
    if gate is None:
        gate = request.app.state.poll_gate = PollGate(
            limit=request.app.state.scheduler.settings.max_polls_in_flight)
    if gate.in_flight >= gate.limit:  # the same admission as suture's own polls
        gate.refused += 1
        return JSONResponse(
            error_body("busy", f"{gate.in_flight} polls in progress: poll again after "
                               f"{RETRY_AFTER_S} s", 503),
            status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})
    gate.in_flight += 1
    try:
        return await _answer_poll(request, tenant, controller_id)
    finally:
        gate.in_flight -= 1


async def _answer_poll(request: Request, tenant: str, controller_id: str) -> JSONResponse:
    authorization = request.headers.get("authorization")
    state = get_state(request)
    links = _links(request, tenant, controller_id)
    now = state.clock.now()
    # polls share commits with suture's own (api/serial.py)
    poll = await state.poll_worker.run_grouped(device_transaction(state), _poll_in, state,
                                               tenant, controller_id, authorization, now, links)
    # Answered as it is: the model was built by the service (no second validation).
    return JSONResponse(poll.model_dump(by_alias=True, exclude_none=True))


def _poll_in(work: DeviceWork, state: AppState, tenant: str, controller_id: str,
             authorization: str | None, now: int, links: service.Links) -> schemas.BasePoll:
    """One base poll inside a group's transaction (``DeviceTransaction``), shared with the
    devices' own polls and reports waiting with it."""
    return work.in_order(lambda session: service.base_poll_in_transaction(
        session, tenant=tenant, device_id=controller_id, authorization=authorization, now=now,
        ctx=state.schedule_ctx, links=links))


def _deployment_view(state: AppState, session: Session, request: Request, tenant: str,
                     controller_id: str, authorization: str | None, action_id: int, now: int,
                     history: int | None, *, installed: bool = False
                     ) -> tuple[service.ActionView, schemas.Deployment]:
    view = service.action_view(session, tenant=tenant, device_id=controller_id,
                               authorization=authorization, action_id=action_id, now=now,
                               ctx=state.schedule_ctx, history=history, installed=installed)
    info = service.artefact_info(state.sessions, view.payload)
    links = _links(request, tenant, controller_id)
    return view, service.deployment(view, info, links, now=now)


@router.get("/deploymentBase/{action_id}", response_model=schemas.DeploymentBase,
            response_model_exclude_none=True, responses=_AUTH)
def deployment_base(request: Request, tenant: TenantPath, controller_id: ControllerIdPath,
                    action_id: ActionIdPath, session: SessionDep, state: StateDep,
                    now: NowDep, authorization: Authorization = None,
                    history: History = None) -> schemas.DeploymentBase:
    """The deployment of an action: the release's artefact (the payload its SUIT envelope
    verified), its hashes and size, and whether to download and install it now."""
    view, deployment = _deployment_view(state, session, request, tenant, controller_id,
                                        authorization, action_id, now, history)
    return schemas.DeploymentBase(id=str(view.action_id), deployment=deployment,
                                  actionHistory=view.history)


@router.get("/installedBase/{action_id}", response_model=schemas.DeploymentBase,
            response_model_exclude_none=True, responses=_AUTH)
def installed_base(request: Request, tenant: TenantPath, controller_id: ControllerIdPath,
                   action_id: ActionIdPath, session: SessionDep, state: StateDep,
                   now: NowDep, authorization: Authorization = None,
                   history: History = None) -> schemas.DeploymentBase:
    """The deployment the device last installed (an action it closed with success)."""
    view, deployment = _deployment_view(state, session, request, tenant, controller_id,
                                        authorization, action_id, now, history, installed=True)
    return schemas.DeploymentBase(id=str(view.action_id), deployment=deployment,
                                  actionHistory=view.history)


@router.post("/deploymentBase/{action_id}/feedback", responses=_BODY, response_class=Response,
             openapi_extra=_body_schema(schemas.Feedback))
def deployment_feedback(tenant: TenantPath, controller_id: ControllerIdPath,
                        action_id: ActionIdPath, body: BoundedBody, session: SessionDep,
                        now: NowDep, authorization: Authorization = None) -> Response:
    """The device's progress and result: its state, installed version, rollout entry (a
    failure counts towards the rollout's error threshold) and history."""
    service.authenticate_only(session, tenant=tenant, device_id=controller_id,
                              authorization=authorization)
    feedback = _parse(schemas.Feedback, body)
    service.record_feedback(session, tenant=tenant, device_id=controller_id,
                            authorization=authorization, action_id=action_id,
                            feedback=feedback, now=now)
    return Response(status_code=200)


@router.get("/cancelAction/{action_id}", response_model=schemas.CancelAction, responses=_AUTH)
def cancel_action(tenant: TenantPath, controller_id: ControllerIdPath, action_id: ActionIdPath,
                  session: SessionDep, state: StateDep, now: NowDep,
                  authorization: Authorization = None) -> schemas.CancelAction:
    """The scheduler asks the device to stop an action (its rollout was aborted)."""
    return service.cancel_action(session, tenant=tenant, device_id=controller_id,
                                 authorization=authorization, action_id=action_id, now=now,
                                 ctx=state.schedule_ctx)


@router.post("/cancelAction/{action_id}/feedback", responses=_BODY, response_class=Response,
             openapi_extra=_body_schema(schemas.Feedback))
def cancel_feedback(tenant: TenantPath, controller_id: ControllerIdPath,
                    action_id: ActionIdPath, body: BoundedBody, session: SessionDep,
                    now: NowDep, authorization: Authorization = None) -> Response:
    """Whether the device stopped the action (``canceled``) or could not (``rejected``)."""
    service.authenticate_only(session, tenant=tenant, device_id=controller_id,
                              authorization=authorization)
    feedback = _parse(schemas.Feedback, body)
    service.record_feedback(session, tenant=tenant, device_id=controller_id,
                            authorization=authorization, action_id=action_id,
                            feedback=feedback, now=now, cancel=True)
    return Response(status_code=200)


@router.put("/configData", responses=_BODY, response_class=Response,
            openapi_extra=_body_schema(schemas.ConfigData))
def config_data(tenant: TenantPath, controller_id: ControllerIdPath, body: BoundedBody,
                session: SessionDep, now: NowDep,
                authorization: Authorization = None) -> Response:
    """The device's attributes (hardware revision, serial number...) into the registry."""
    service.authenticate_only(session, tenant=tenant, device_id=controller_id,
                              authorization=authorization)
    config = _parse(schemas.ConfigData, body)
    service.put_config_data(session, tenant=tenant, device_id=controller_id,
                            authorization=authorization, config=config, now=now)
    return Response(status_code=200)


@router.get("/confirmationBase", response_model=schemas.ConfirmationBase,
            response_model_exclude_none=True, responses=_AUTH)
def confirmation_base(request: Request, tenant: TenantPath, controller_id: ControllerIdPath,
                      session: SessionDep, state: StateDep, now: NowDep,
                      authorization: Authorization = None) -> schemas.ConfirmationBase:
    """Auto-confirm is active while the device is not busy; otherwise the action due waits
    for the device's consent."""
    return service.confirmation_base(session, tenant=tenant, device_id=controller_id,
                                     authorization=authorization, now=now,
                                     ctx=state.schedule_ctx,
                                     links=_links(request, tenant, controller_id))


@router.get("/confirmationBase/{action_id}", response_model=schemas.ConfirmationBaseAction,
            response_model_exclude_none=True, responses=_AUTH)
def confirmation_action(request: Request, tenant: TenantPath, controller_id: ControllerIdPath,
                        action_id: ActionIdPath, session: SessionDep, state: StateDep,
                        now: NowDep, authorization: Authorization = None,
                        history: History = None) -> schemas.ConfirmationBaseAction:
    """The deployment that waits for the device's consent."""
    view, deployment = _deployment_view(state, session, request, tenant, controller_id,
                                        authorization, action_id, now, history)
    return schemas.ConfirmationBaseAction(id=str(view.action_id), confirmation=deployment,
                                          actionHistory=view.history)


@router.post("/confirmationBase/{action_id}/feedback", response_class=Response, responses={
    **_BODY, 409: {"description": "the action is over"}},
    openapi_extra=_body_schema(schemas.ConfirmationFeedback))
def confirmation_feedback(tenant: TenantPath, controller_id: ControllerIdPath,
                          action_id: ActionIdPath, body: BoundedBody, session: SessionDep,
                          now: NowDep, authorization: Authorization = None) -> Response:
    """``confirmed``: the device is no longer busy, the install may proceed; ``denied``: it
    stays busy and the install is deferred."""
    service.authenticate_only(session, tenant=tenant, device_id=controller_id,
                              authorization=authorization)
    answer = _parse(schemas.ConfirmationFeedback, body)
    service.record_confirmation(session, tenant=tenant, device_id=controller_id,
                                authorization=authorization, action_id=action_id,
                                answer=answer, now=now)
    return Response(status_code=200)


@router.get(
    "/softwaremodules/{release_id}/artifacts/{filename}",
    responses={**DOWNLOAD_RESPONSES, **_AUTH},
    response_class=Response,
)
def download(
    tenant: TenantPath, controller_id: ControllerIdPath, release_id: ReleasePath,
    filename: Annotated[str, Path(min_length=1, max_length=160)], session: SessionDep,
    state: StateDep, now: NowDep, authorization: Authorization = None,
    range_: Annotated[str | None, Header(alias="Range")] = None,
    if_range: Annotated[str | None, Header()] = None,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """An artefact of one of the device's actions; resumable with ``Range`` (206), strong
    ETag (its SHA-256). The bytes stream from the database a chunk at a time."""
    ref = service.download_ref(session, state.sessions, tenant=tenant, device_id=controller_id,
                               authorization=authorization, release_id=release_id,
                               filename=filename, now=now)
    return blob_response(state.sessions, ref, range_=range_, if_range=if_range,
                         if_none_match=if_none_match)


# --- operators: tokens ---------------------------------------------------------------------

@tokens_router.post("/devices/{device_id}/ddi-token", response_model=schemas.TargetTokenIssued,
                    status_code=201, **needs(Permission.DEVICE_CREDENTIAL))
def issue_target_token(device_id: DeviceIdPath, request_: schemas.TargetTokenRequest,
                       session: SessionDep, operator: CurrentOperator,
                       now: NowDep) -> schemas.TargetTokenIssued:
    """A new DDI target token for the device (the previous one stops working), which then
    answers under ``/{tenant}/controller/v1/{device id}``; shown this once."""
    token = service.issue_target_token(session, device_id=device_id, tenant=request_.tenant,
                                       kind=request_.kind, actor=operator, now=now)
    return schemas.TargetTokenIssued(device_id=device_id, tenant=request_.tenant,
                                     kind=request_.kind, token=token)


@tokens_router.post("/ddi/tenants/{tenant}/gateway-token",
                    response_model=schemas.GatewayTokenIssued, status_code=201,
                    **needs(Permission.DEVICE_CREDENTIAL))
def issue_gateway_token(tenant: TenantPath, session: SessionDep, operator: CurrentOperator,
                        now: NowDep) -> schemas.GatewayTokenIssued:
    """A new gateway token of the tenant (the previous one stops working): it authenticates
    every device of the tenant; shown this once."""
    token = service.issue_gateway_token(session, tenant=tenant, actor=operator, now=now)
    return schemas.GatewayTokenIssued(tenant=tenant, token=token)
