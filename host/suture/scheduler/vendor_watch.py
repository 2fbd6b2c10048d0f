"""The scheduler's service asks its vendors, on a timer, about the granted rollouts of their
releases (GNAP grant polling, RFC 9635 §5.2): a vendor's recall or a withdrawn grant pauses
the rollouts it concerns, with the vendor's reason, audited (``services/vendor_grants.py``),
without anyone running ``suture scheduler vendor check``.

The vendors are those of the vendors file (``vendors_path``, written by ``suture scheduler
vendor add``), read again at every pass; the interval is ``vendor_check_interval_s``. A vendor
that cannot be reached is logged and asked again at the next pass: its rollouts keep the
state they have.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from suture.scheduler.errors import SchedulerError
from suture.scheduler.services import vendor_grants
from suture.scheduler.vendor_authority import authority_for
from suture.scheduler.vendor_mirror import load_vendors

log = logging.getLogger("suture.scheduler.vendors")

#: The vendors to ask, for the length of one pass.
VendorAuthorities = Callable[
    [], contextlib.AbstractContextManager[Sequence[vendor_grants.VendorAuthority]]]

#: The actor of what a pass changes, in the audit log.
ACTOR = "scheduler:vendor-check"


def from_vendors_file(path: Path, *, timeout_s: float = 30.0) -> VendorAuthorities:
    """The vendors of the scheduler's vendors file, over HTTP."""

    @contextlib.contextmanager
    def authorities() -> Iterator[Sequence[vendor_grants.VendorAuthority]]:
        entries = load_vendors(path)
        with httpx.Client(timeout=timeout_s) as http:
            yield [authority_for(entry, http) for entry in entries.values()]

    return authorities


def check_once(sessions: sessionmaker[Session], authorities: VendorAuthorities,
               now: int) -> list[vendor_grants.VendorVerdict]:
    """One pass: every vendor asked about its granted, unfinished rollouts; the verdicts
    that changed (each paused rollout is audited by ``check_grants``)."""
    changed: list[vendor_grants.VendorVerdict] = []
    with authorities() as vendors:
        for authority in vendors:
            session = sessions()
            try:
                changed += vendor_grants.check_grants(session, authority=authority,
                                                      actor=ACTOR, now=now)
            except (SchedulerError, SQLAlchemyError, httpx.HTTPError) as e:
                log.warning("vendor %s could not be asked about its grants: %s",
                            authority.name, e)
            finally:
                session.close()
    for verdict in changed:
        log.warning("%s", verdict.explain())
    return changed
