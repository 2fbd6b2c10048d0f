"""Roles and permissions of the scheduler's operators (least privilege), and the authenticated
identity every operator action carries.

An operator account holds one or more roles; a role grants a fixed set of permissions. The
table is the single source of truth: the API checks a route's permission before it reads the
body (``api/operator_route.py``), every service that changes something checks it again
(``require``), and the CLI goes through the same services, so a command and the equivalent
HTTP request are allowed or refused alike.

A ``Principal`` is what authentication produced (an API token, a password sign-in, later an
OIDC identity): the account's name and its roles *as the database holds them at that moment*,
so a role withdrawn takes effect at the next request.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from suture.scheduler.errors import ForbiddenError, InvalidInputError
from suture.scheduler.models import DEFAULT_TENANT


class Role(enum.StrEnum):
    VIEWER = "viewer"
    DEVICE_MANAGER = "device_manager"
    RELEASE_MANAGER = "release_manager"
    ROLLOUT_OPERATOR = "rollout_operator"
    APPROVER = "approver"
    AUDITOR = "auditor"
    ADMINISTRATOR = "administrator"


class Permission(enum.StrEnum):
    DEVICE_READ = "device:read"
    DEVICE_WRITE = "device:write"  # register, change ward/criticality/tags/groups/busy
    DEVICE_CREDENTIAL = "device:credential"  # issue a new device secret
    DEVICE_DECOMMISSION = "device:decommission"
    RELEASE_READ = "release:read"
    RELEASE_IMPORT = "release:import"
    RELEASE_UPDATE = "release:update"  # must-pass-through, requirements
    RELEASE_RECALL = "release:recall"
    ROLLOUT_READ = "rollout:read"
    ROLLOUT_PLAN = "rollout:plan"  # create, change targets or policy
    ROLLOUT_APPROVE = "rollout:approve"
    ROLLOUT_OPERATE = "rollout:operate"  # start, pause, resume, abort, advance
    AUDIT_READ = "audit:read"  # list, verify, export, checkpoint
    OPERATOR_READ = "operator:read"  # accounts, their roles and tokens (never a secret)
    OPERATOR_MANAGE = "operator:manage"  # add, roles, disable, reset password, tokens
    SCHEDULER_READ = "scheduler:read"  # trust anchors, settings awaiting a restart


_VIEW = frozenset({Permission.DEVICE_READ, Permission.RELEASE_READ, Permission.ROLLOUT_READ,
                   Permission.SCHEDULER_READ})

#: What each role may do. Every role but the administrator sees the fleet, its releases and its
#: rollouts; the administrator manages accounts and sees nothing else (it grants roles, so what
#: it does is audited and an auditor reviews it).
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: _VIEW,
    Role.DEVICE_MANAGER: _VIEW | {Permission.DEVICE_WRITE, Permission.DEVICE_CREDENTIAL,
                                  Permission.DEVICE_DECOMMISSION},
    Role.RELEASE_MANAGER: _VIEW | {Permission.RELEASE_IMPORT, Permission.RELEASE_UPDATE,
                                   Permission.RELEASE_RECALL},
    Role.ROLLOUT_OPERATOR: _VIEW | {Permission.ROLLOUT_PLAN, Permission.ROLLOUT_OPERATE},
    Role.APPROVER: _VIEW | {Permission.ROLLOUT_APPROVE},
    Role.AUDITOR: _VIEW | {Permission.AUDIT_READ, Permission.OPERATOR_READ},
    Role.ADMINISTRATOR: frozenset({Permission.OPERATOR_READ, Permission.OPERATOR_MANAGE}),
}


def parse_roles(names: Iterable[str]) -> frozenset[Role]:
    """Role names as given by an operator; an unknown name is refused, naming the valid ones."""
    roles = set()
    for name in names:
        try:
            roles.add(Role(name.strip().lower().replace("-", "_")))
        except ValueError:
            valid = ", ".join(r.value for r in Role)
            raise InvalidInputError(f"unknown role {name!r} (roles: {valid})") from None
    return frozenset(roles)


def permissions_of(roles: Iterable[Role]) -> frozenset[Permission]:
    out: set[Permission] = set()
    for role in roles:
        out |= ROLE_PERMISSIONS[role]
    return frozenset(out)


def roles_granting(permission: Permission) -> frozenset[Role]:
    return frozenset(r for r, perms in ROLE_PERMISSIONS.items() if permission in perms)


@dataclass(frozen=True)
class Principal:
    """An authenticated operator: account name, roles, and how it proved who it is
    (``token:<id>``, ``password``, ``local:init``)."""

    name: str
    roles: frozenset[Role]
    via: str
    #: The API token this request came with (None for a password sign-in).
    token_id: int | None = None
    #: The account's tenant: everything the operator sees and does is scoped to it
    #: (``services/tenants.py``).
    tenant: str = DEFAULT_TENANT

    def can(self, permission: Permission) -> bool:
        return permission in permissions_of(self.roles)

    @property
    def is_administrator(self) -> bool:
        return Role.ADMINISTRATOR in self.roles


def require(principal: Principal, permission: Permission) -> None:
    """Refuse (403) unless ``principal`` holds a role that grants ``permission``."""
    if not principal.can(permission):
        needed = ", ".join(sorted(r.value for r in roles_granting(permission)))
        held = ", ".join(sorted(r.value for r in principal.roles)) or "no role"
        raise ForbiddenError(
            f"{principal.name} ({held}) may not do this: it needs {permission.value}, "
            f"granted by {needed}")
