"""Operator routes for rollouts."""

from __future__ import annotations

import httpx
from fastapi import APIRouter

from suture.scheduler.api.deps import (
    CurrentOperator,
    NowDep,
    RolloutIdPath,
    SessionDep,
    StateDep,
)
from suture.scheduler.api.operator_route import OperatorRoute, needs
from suture.scheduler.authz import Permission
from suture.scheduler.errors import ConflictError
from suture.scheduler.schemas import (
    AbortRequest,
    ApprovalRequest,
    DenialRequest,
    RolloutCreate,
    RolloutPublic,
    RolloutStatus,
    RolloutUpdate,
)
from suture.scheduler.services import rollouts, vendor_grants
from suture.scheduler.vendor_authority import VendorAuthorityError

router = APIRouter(prefix="/api/v1/rollouts", tags=["operator: rollouts"],
                   route_class=OperatorRoute)


@router.get("", response_model=list[RolloutPublic], **needs(Permission.ROLLOUT_READ))
def list_rollouts(session: SessionDep, operator: CurrentOperator) -> list[RolloutPublic]:
    return rollouts.list_rollouts(session, tenant=operator.tenant)


@router.post("", response_model=RolloutStatus, status_code=201,
             **needs(Permission.ROLLOUT_PLAN))
def create_rollout(spec: RolloutCreate, session: SessionDep, operator: CurrentOperator,
                   now: NowDep) -> RolloutStatus:
    """Plan a rollout; it waits for approval (two approvers, neither its creator, if it reaches
    critical devices)."""
    rollout = rollouts.create_rollout(session, spec=spec, actor=operator, now=now)
    return rollouts.rollout_status(session, rollout_id=rollout.id, tenant=operator.tenant)


@router.get("/{rollout_id}", response_model=RolloutStatus, **needs(Permission.ROLLOUT_READ))
def rollout_status(rollout_id: RolloutIdPath, session: SessionDep, operator: CurrentOperator
                   ) -> RolloutStatus:
    return rollouts.rollout_status(session, rollout_id=rollout_id, tenant=operator.tenant)


@router.patch("/{rollout_id}", response_model=RolloutStatus, **needs(Permission.ROLLOUT_PLAN))
def update(rollout_id: RolloutIdPath, change: RolloutUpdate, session: SessionDep,
           operator: CurrentOperator, now: NowDep) -> RolloutStatus:
    """Change targets or waves (before start) or policy (also while paused); every approval is
    reset and the changer can no longer approve it."""
    rollouts.update_rollout(session, rollout_id=rollout_id, change=change, actor=operator,
                            now=now)
    return _status(session, rollout_id, operator.tenant)


def _status(session: SessionDep, rollout_id: RolloutIdPath, tenant: str) -> RolloutStatus:
    return rollouts.rollout_status(session, rollout_id=rollout_id, tenant=tenant)


@router.post("/{rollout_id}/approve", response_model=RolloutStatus,
             **needs(Permission.ROLLOUT_APPROVE))
def approve(rollout_id: RolloutIdPath, session: SessionDep, operator: CurrentOperator, now: NowDep,
            body: ApprovalRequest | None = None) -> RolloutStatus:
    """Approve the rollout as it is now, with an optional reason (audited). Refused while a
    denial stands."""
    rollouts.approve_rollout(session, rollout_id=rollout_id, actor=operator, now=now,
                             reason=body.reason if body else "")
    return _status(session, rollout_id, operator.tenant)


@router.post("/{rollout_id}/deny", response_model=RolloutStatus,
             **needs(Permission.ROLLOUT_APPROVE))
def deny(rollout_id: RolloutIdPath, body: DenialRequest, session: SessionDep,
         operator: CurrentOperator, now: NowDep) -> RolloutStatus:
    """Deny the rollout as it is now, with a reason (audited): it is neither approved further
    nor started until it is changed (which clears the denial) or aborted."""
    rollouts.deny_rollout(session, rollout_id=rollout_id, actor=operator, now=now,
                          reason=body.reason)
    return _status(session, rollout_id, operator.tenant)


@router.post("/{rollout_id}/start", response_model=RolloutStatus,
             **needs(Permission.ROLLOUT_OPERATE))
def start(rollout_id: RolloutIdPath, session: SessionDep, operator: CurrentOperator, now: NowDep
          ) -> RolloutStatus:
    rollouts.start_rollout(session, rollout_id=rollout_id, actor=operator, now=now)
    return _status(session, rollout_id, operator.tenant)


@router.post("/{rollout_id}/pause", response_model=RolloutStatus,
             **needs(Permission.ROLLOUT_OPERATE))
def pause(rollout_id: RolloutIdPath, session: SessionDep, operator: CurrentOperator, now: NowDep
          ) -> RolloutStatus:
    rollouts.pause_rollout(session, rollout_id=rollout_id, actor=operator, now=now)
    return _status(session, rollout_id, operator.tenant)


@router.post("/{rollout_id}/resume", response_model=RolloutStatus,
             **needs(Permission.ROLLOUT_OPERATE))
def resume(rollout_id: RolloutIdPath, session: SessionDep, operator: CurrentOperator, now: NowDep
           ) -> RolloutStatus:
    rollouts.resume_rollout(session, rollout_id=rollout_id, actor=operator, now=now)
    return _status(session, rollout_id, operator.tenant)


@router.post("/{rollout_id}/vendor-grant", response_model=RolloutStatus,
             **needs(Permission.ROLLOUT_PLAN))
def vendor_grant(rollout_id: RolloutIdPath, session: SessionDep, operator: CurrentOperator,
                 now: NowDep, state: StateDep) -> RolloutStatus:
    """Ask the vendor of the rollout's release (one of the scheduler's vendors file) to grant
    the rollout as it is planned now; the vendor's verdict (granted, or refused with its
    reason) is recorded, audited and answered in ``rollout.vendor``. A refusal is an answer,
    not an error; the rollout then cannot start (a running one pauses)."""
    name = vendor_grants.vendor_of(session, rollout_id=rollout_id, tenant=operator.tenant)
    if state.vendors is None:
        raise ConflictError("this scheduler names no vendors file (setting vendors_path): "
                            f"it cannot ask vendor {name}")
    with state.vendors() as authorities:
        authority = next((a for a in authorities if a.name == name), None)
        if authority is None:
            raise ConflictError(f"vendor {name} is not in the scheduler's vendors file "
                                "(suture scheduler vendor add)")
        try:
            vendor_grants.ask_vendor(session, rollout_id=rollout_id, authority=authority,
                                     actor=operator, now=now)
        except httpx.HTTPError as e:
            raise VendorAuthorityError(f"vendor {name} could not be reached: {e}") from None
    return _status(session, rollout_id, operator.tenant)


@router.post("/{rollout_id}/abort", response_model=RolloutStatus,
             **needs(Permission.ROLLOUT_OPERATE))
def abort(rollout_id: RolloutIdPath, body: AbortRequest, session: SessionDep,
          operator: CurrentOperator, now: NowDep) -> RolloutStatus:
    """Stop the rollout; with ``revert`` the devices that installed go back."""
    rollouts.abort_rollout(session, rollout_id=rollout_id, revert=body.revert, actor=operator,
                           now=now)
    return _status(session, rollout_id, operator.tenant)


@router.post("/advance", response_model=list[str], **needs(Permission.ROLLOUT_OPERATE))
def advance(session: SessionDep, operator: CurrentOperator, now: NowDep, state: StateDep
            ) -> list[str]:
    """Run one advancement pass now (nodes also run it on a timer): timed-out deployments
    end as failed, waves open, thresholds pause or abort, rollouts complete."""
    return [f"rollout {c.rollout_id}: {c.change}"
            for c in rollouts.advance(session, now=now, actor=operator.name,
                                      deployment_timeout_s=state.settings.deployment_timeout_s,
                                      tenant=operator.tenant)]
