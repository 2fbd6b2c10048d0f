"""Tenants of the vendor-run scheduler (the scheduler as a service): each hospital the vendor
serves is a tenant, isolated in the database and the API.

Every operator account belongs to one tenant (``DEFAULT`` for a hospital's own scheduler, and
for the vendor's staff in the vendor-run mode); its ``Principal`` carries it, and every
operator query and action is scoped to it:

- a **device** belongs to the registered tenant its ``tenant`` column names (the DDI tenant
  it answers under); a device whose tenant is not registered belongs to ``DEFAULT``, so a
  hospital's own scheduler, which registers none, sees every device as before;
- a **rollout** belongs to the tenant of the operator who planned it: it targets that
  tenant's devices only, and only that tenant's approvers count;
- an **operator account** and an **audit record** carry their tenant.

Something of another tenant is answered as absent (404), never as forbidden, so that its
existence does not leak. Releases are the vendor's and seen by every tenant; importing,
changing and recalling them is the ``DEFAULT`` tenant's (the vendor's staff, or the hospital
itself when it runs its own scheduler).

Tenants are registered by an administrator of ``DEFAULT``, and only in the vendor-run mode
(setting ``mode = vendor-run``).
"""

from __future__ import annotations

import re
from typing import Final

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from suture.scheduler.authz import Permission, Principal, require
from suture.scheduler.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
)
from suture.scheduler.models import DEFAULT_TENANT, Device, Rollout, Tenant
from suture.scheduler.services import audit

__all__ = ["DEFAULT_TENANT", "HOSPITAL_MODE", "VENDOR_RUN_MODE"]

#: The scheduler's modes (setting ``mode``): one hospital's own, or run by the vendor for
#: several hospitals (tenants).
HOSPITAL_MODE: Final = "hospital"
VENDOR_RUN_MODE: Final = "vendor-run"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidInputError("tenant names are 1-64 letters, digits, '.', '_' or '-', "
                                "starting with a letter or digit")
    return name


def device_scope(tenant: str) -> ColumnElement[bool]:
    """The devices of ``tenant``: those naming it once registered; for ``DEFAULT``, every
    device whose tenant is not registered."""
    if tenant == DEFAULT_TENANT:
        return Device.tenant.not_in(select(Tenant.name).scalar_subquery())
    return Device.tenant == tenant


def device_in_scope(session: Session, device: Device, tenant: str) -> bool:
    """Whether ``device`` belongs to ``tenant`` (inside the caller's transaction)."""
    if tenant != DEFAULT_TENANT:
        return device.tenant == tenant
    return device.tenant == DEFAULT_TENANT or session.get(Tenant, device.tenant) is None


def rollout_of(session: Session, rollout_id: int, tenant: str) -> Rollout:
    """Rollout ``rollout_id`` when it is ``tenant``'s (inside the caller's transaction);
    another tenant's is answered as absent (``NotFoundError``)."""
    rollout = session.get(Rollout, rollout_id)
    if rollout is None or rollout.tenant != tenant:
        raise NotFoundError(f"no rollout {rollout_id}")
    return rollout


def require_provider(actor: Principal, what: str) -> None:
    """Refuse (403) ``what`` to an operator of a tenant other than ``DEFAULT``."""
    if actor.tenant != DEFAULT_TENANT:
        raise ForbiddenError(f"{what} is for the scheduler's own operators (tenant "
                             f"{DEFAULT_TENANT}), not tenant {actor.tenant}'s")


def check_mode(mode: str, tenant: str) -> None:
    """A tenant other than ``DEFAULT`` exists only in the vendor-run mode."""
    if tenant != DEFAULT_TENANT and mode != VENDOR_RUN_MODE:
        raise ConflictError(f"tenant {tenant!r}: tenants are for the vendor-run scheduler "
                            f"(setting mode = {VENDOR_RUN_MODE}; this one is {mode})")


def add_tenant(session: Session, *, name: str, display_name: str, mode: str,
               actor: Principal, now: int) -> Tenant:
    """Register a tenant (an administrator of ``DEFAULT``, in the vendor-run mode)."""
    require(actor, Permission.OPERATOR_MANAGE)
    require_provider(actor, "registering a tenant")
    check_name(name)
    if name == DEFAULT_TENANT:
        raise InvalidInputError(f"{DEFAULT_TENANT} is the scheduler's own tenant")
    check_mode(mode, name)
    with session.begin():
        if session.get(Tenant, name) is not None:
            raise ConflictError(f"tenant {name!r} exists")
        row = Tenant(name=name, display_name=display_name[:128] or name, created_at=now,
                     created_by=actor.name)
        session.add(row)
        audit.append(session, at=now, actor=actor.name, action="tenant.add", subject=name,
                     detail={"display_name": row.display_name})
    return row


def list_tenants(session: Session, *, actor: Principal) -> list[Tenant]:
    """The registered tenants (for the ``DEFAULT`` tenant's operators; a tenant sees its own)."""
    require(actor, Permission.OPERATOR_READ)
    with session.begin():
        query = select(Tenant).order_by(Tenant.name)
        if actor.tenant != DEFAULT_TENANT:
            query = query.where(Tenant.name == actor.tenant)
        return list(session.execute(query).scalars())


def exists(session: Session, name: str) -> bool:
    """Inside the caller's transaction: ``DEFAULT`` or a registered tenant."""
    return name == DEFAULT_TENANT or session.get(Tenant, name) is not None
