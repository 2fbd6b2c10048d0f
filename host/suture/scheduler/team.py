"""Operator accounts for a scheduler that runs unattended: the ward simulator, benchmarks, test
rigs. A bootstrap administrator makes one account per role, each signed in with an API token
of its own, through the same services and rules as people: two distinct approvers, neither of
them the rollout's creator, approve a rollout of critical devices."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from suture.scheduler.authz import Principal, Role
from suture.scheduler.models import Rollout
from suture.scheduler.services import operators, rollouts

#: How long the team's tokens live.
TEAM_TOKEN_TTL_S = 24 * 3600


@dataclass(frozen=True)
class Team:
    administrator: Principal
    device_manager: Principal
    release_manager: Principal
    rollout_operator: Principal
    approvers: tuple[Principal, ...]
    auditor: Principal
    #: Each account's API token (for the HTTP API), by account name.
    tokens: dict[str, str] = field(default_factory=dict)


def sign_in_team(sessions: sessionmaker[Session], *, prefix: str, now: int,
                 approvers: int = 2) -> Team:
    """Make the accounts (the scheduler must have no administrator yet) and sign each in."""
    boot = operators.bootstrap_administrator(sessions(), name=f"{prefix}-admin", password=None,
                                             now=now)
    assert boot is not None  # a password-less administrator gets a token
    admin = operators.authenticate_token(sessions(), token=boot.token, now=now)
    tokens = {admin.name: boot.token}

    def member(suffix: str, role: Role) -> Principal:
        name = f"{prefix}-{suffix}"
        operators.add_operator(sessions(), name=name, roles=[role.value], password=None,
                               actor=admin, now=now)
        issued = operators.issue_token(sessions(), operator=name, name=prefix,
                                       ttl_s=TEAM_TOKEN_TTL_S, actor=admin, now=now)
        tokens[name] = issued.token
        return operators.authenticate_token(sessions(), token=issued.token, now=now)

    return Team(
        administrator=admin,
        device_manager=member("devices", Role.DEVICE_MANAGER),
        release_manager=member("releases", Role.RELEASE_MANAGER),
        rollout_operator=member("rollouts", Role.ROLLOUT_OPERATOR),
        approvers=tuple(member(f"approver-{i + 1}", Role.APPROVER) for i in range(approvers)),
        auditor=member("auditor", Role.AUDITOR),
        tokens=tokens,
    )


def approve_and_start(sessions: sessionmaker[Session], team: Team, rollout_id: int, *,
                      now: int) -> Rollout:
    """As many of the team's approvers as the rollout needs approve it, then its rollout
    operator starts it."""
    rollout = rollouts.approve_rollout(sessions(), rollout_id=rollout_id,
                                       actor=team.approvers[0], now=now)
    for approver in team.approvers[1:rollout.required_approvals]:
        rollout = rollouts.approve_rollout(sessions(), rollout_id=rollout_id, actor=approver,
                                           now=now)
    return rollouts.start_rollout(sessions(), rollout_id=rollout_id,
                                  actor=team.rollout_operator, now=now)
