"""The running scheduler itself: its trust anchors now, settings that wait for a restart."""

from __future__ import annotations

from fastapi import APIRouter

from suture.scheduler.api.deps import CurrentOperator, NowDep, StateDep
from suture.scheduler.api.operator_route import OperatorRoute, needs
from suture.scheduler.authz import Permission
from suture.scheduler.live_config import anchor_status
from suture.scheduler.schemas import SchedulerStatus, TrustAnchorPublic

router = APIRouter(prefix="/api/v1/scheduler", tags=["operator: scheduler"],
                   route_class=OperatorRoute)


@router.get("", response_model=SchedulerStatus, **needs(Permission.SCHEDULER_READ))
def status(state: StateDep, operator: CurrentOperator, now: NowDep) -> SchedulerStatus:
    """The trust anchors imports verify against now (a change in the settings file applies
    at once), and the settings changed in the file that apply only after a restart."""
    state.live.refresh_and_audit(state.sessions, now)
    return SchedulerStatus(
        trust_anchors=[TrustAnchorPublic(**a.__dict__) for a in anchor_status(
            state.live.anchor_paths)],
        restart_required=state.live.restart_required,
        settings_file_error=state.live.file_error,
        audit_checkpoint_key_id=state.audit_key.key_id,
        audit_keyed_from_seq=state.audit_key.keyed_from_seq)
