"""The vendor's say on a rollout: a GNAP grant (RFC 9635) whose rights describe the rollout.

A rollout of a release mirrored from a vendor (``Release.vendor``) may start only while the
vendor's authorization server granted it: the scheduler asks for an access right naming the
vendor's release, the device classes (boards) and how many devices, the waves' sizes, the
rollout's window and its maintenance window, and in the vendor-run mode the hospital (the
rollout's tenant) (:func:`rollout_right`); the AS judges it against the vendor's policy for
this hospital and release and answers with a grant or a refusal and
its reason. The verdict is kept with the rollout (``RolloutGrant``), shown in its plan, cited
in each device's schedule (key 21) and checked again whenever the rollout would start or
resume: a rollout changed beyond its grant (more devices, other classes, a later window,
another release) needs the vendor's say again (:func:`ask_vendor` changes the grant, RFC 9635
§5.3, or records the refusal). A vendor's recall pauses the rollouts of the release.

The transport is the caller's (:class:`VendorAuthority`, implemented over HTTP by
``scheduler/vendor_authority.py``): nothing here talks to the network, and no database
transaction is open while the vendor is asked.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from suture.scheduler.authz import Permission, Principal, require
from suture.scheduler.errors import InvalidInputError
from suture.scheduler.models import (
    DEFAULT_TENANT,
    Device,
    DeviceBiscuit,
    Release,
    Rollout,
    RolloutDevice,
    RolloutGrant,
    RolloutState,
)
from suture.scheduler.policies import paths
from suture.scheduler.schedule_doc import Artifact, Grant
from suture.scheduler.services import audit, planning, tenants
from suture.vendor_services.gnap.rights import release_access, rollout_exceeds

GRANTED = "granted"
REFUSED = "refused"
#: The rollout's window when it has no deadline: this long from its creation.
DEFAULT_WINDOW_S = 7 * 86_400
#: After a deadline, devices still install in forced windows: the grant covers one more day.
AFTER_DEADLINE_S = 86_400
_UNFINISHED = (RolloutState.AWAITING_APPROVAL, RolloutState.APPROVED, RolloutState.RUNNING,
               RolloutState.PAUSED)


@dataclass(frozen=True)
class GrantAnswer:
    """What the vendor's AS answered: a grant (its reference, continuation token and the
    rights as granted) or a refusal (its reason; ``recall`` when the release was recalled)."""

    granted: bool
    reason: str = ""
    reference: str = ""
    continue_token: str = ""
    rights: dict[str, Any] | None = None
    recall: dict[str, Any] | None = None


@dataclass(frozen=True)
class IssuedBiscuit:
    token: str
    revocation_id: str


class VendorAuthority(Protocol):
    """One vendor's authorization server, as the scheduler's GNAP client sees it."""

    @property
    def name(self) -> str: ...

    @property
    def location(self) -> str:
        """The vendor's repository URL (the rights' ``locations``)."""

    @property
    def direct_url(self) -> str:
        """The vendor's ``/direct/`` base when devices download there with biscuits, else ""."""

    def request(self, right: dict[str, Any]) -> GrantAnswer: ...

    def modify(self, reference: str, continue_token: str,
               right: dict[str, Any]) -> GrantAnswer: ...

    def poll(self, reference: str, continue_token: str) -> GrantAnswer: ...

    def issue_biscuit(self, device_id: str, vendor_release: str, not_before: int,
                      expires_at: int) -> IssuedBiscuit: ...


@dataclass(frozen=True)
class VendorVerdict:
    """The vendor's verdict on a rollout as an operator sees it in the plan."""

    vendor: str
    verdict: str
    reason: str
    reference: str
    checked_at: int
    checked_by: str
    #: Why the rollout as it is now needs the vendor's say again ("" when the grant covers it).
    outdated: str
    rights: dict[str, Any]

    @property
    def allows_start(self) -> bool:
        return self.verdict == GRANTED and not self.outdated

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "allows_start": self.allows_start}

    def explain(self) -> str:
        if self.verdict != GRANTED:
            return f"vendor {self.vendor} refused: {self.reason}"
        if self.outdated:
            return (f"vendor {self.vendor} granted it, but the rollout changed since "
                    f"({self.outdated}): ask the vendor again")
        return f"vendor {self.vendor} granted it ({self.reference})"


def rollout_window(rollout: Rollout) -> tuple[int, int]:
    """The window the rollout asks the vendor for: from its creation to its deadline (and a
    day of forced windows after it), or ``DEFAULT_WINDOW_S`` without a deadline."""
    start = rollout.created_at
    end = (rollout.deadline + AFTER_DEADLINE_S if rollout.deadline is not None
           else start + DEFAULT_WINDOW_S)
    return start, max(end, start + 1)


def rollout_right(session: Session, rollout: Rollout, release: Release,
                  location: str | None = None) -> dict[str, Any]:
    """The access right describing ``rollout`` (inside the caller's transaction)."""
    if release.vendor_release is None:
        raise InvalidInputError(f"release {release.id} was not mirrored from a vendor")
    sizes = dict(session.execute(
        select(RolloutDevice.wave, func.count()).where(RolloutDevice.rollout_id == rollout.id)
        .group_by(RolloutDevice.wave)).tuples().all())
    classes = sorted(session.execute(
        select(Device.board).join(RolloutDevice, RolloutDevice.device_id == Device.id)
        .where(RolloutDevice.rollout_id == rollout.id).distinct()).scalars())
    count = sum(sizes.values())
    if count == 0:
        raise InvalidInputError(f"rollout {rollout.id} targets no device")
    start, end = rollout_window(rollout)
    right = release_access(release.vendor_release, devices=[], window_start=start,
                           window_end=end, location=location)
    right["rollout"] = {
        "count": count, "classes": classes,
        "waves": [sizes.get(w, 0) for w in range(max(sizes) + 1)],
        "window": {"start": start, "end": end},
    }
    if rollout.tenant != DEFAULT_TENANT:  # the vendor-run scheduler: the hospital's policy
        right["rollout"]["hospital"] = rollout.tenant
    if rollout.window_cron and rollout.window_duration_s:
        right["rollout"]["maintenance"] = {"cron": rollout.window_cron,
                                           "duration_s": rollout.window_duration_s,
                                           "tz": rollout.window_tz}
    return right


def _verdict(session: Session, rollout: Rollout, release: Release,
             row: RolloutGrant) -> VendorVerdict:
    outdated = ""
    if row.verdict == GRANTED:
        outdated = rollout_exceeds(row.rights, rollout_right(session, rollout, release)) or ""
    return VendorVerdict(row.vendor, row.verdict, row.reason, row.reference, row.checked_at,
                         row.checked_by, outdated, dict(row.rights))


def verdict_of(session: Session, rollout: Rollout) -> VendorVerdict | None:
    """The vendor's verdict on ``rollout`` (None: not a vendor's release, or not asked yet)."""
    row = session.get(RolloutGrant, rollout.id)
    release = session.get(Release, rollout.release_id)
    if row is None or release is None or release.vendor is None:
        return None
    return _verdict(session, rollout, release, row)


def public_verdict(session: Session, rollout: Rollout) -> dict[str, Any] | None:
    """For the rollout's public view: the verdict, or what is missing."""
    release = session.get(Release, rollout.release_id)
    if release is None or release.vendor is None:
        return None
    verdict = verdict_of(session, rollout)
    if verdict is None:
        return {"vendor": release.vendor, "verdict": "not asked", "allows_start": False,
                "reason": f"ask vendor {release.vendor} (suture scheduler rollout grant "
                          f"{rollout.id}, or POST /api/v1/rollouts/{rollout.id}/vendor-grant)"}
    return verdict.to_json()


def start_refusal(session: Session, rollout: Rollout) -> str | None:
    """Why the vendor does not let ``rollout`` start or resume (None: it does, or the release
    is not a vendor's)."""
    release = session.get(Release, rollout.release_id)
    if release is None or release.vendor is None:
        return None
    if release.vendor_recall is not None:
        return (f"vendor {release.vendor} recalled release {release.id}: "
                f"{release.vendor_recall.get('reason', '')}")
    verdict = verdict_of(session, rollout)
    if verdict is None:
        return (f"rollout {rollout.id} has no grant from vendor {release.vendor}: ask for one "
                f"(suture scheduler rollout grant {rollout.id})")
    return None if verdict.allows_start else verdict.explain()


def refuse_start(session: Session, rollout: Rollout, *, actor: str, action: str,
                 now: int) -> str | None:
    """Inside a start or resume (rollout locked): the vendor's refusal, recorded on the
    rollout and audited; None when the vendor lets it run."""
    refusal = start_refusal(session, rollout)
    if refusal is not None:
        rollout.status_reason = refusal
        audit.append(session, at=now, tenant=rollout.tenant, actor=actor,
                     action=f"rollout.{action}_refused", subject=f"rollout:{rollout.id}",
                     detail={"vendor": refusal})
    return refusal


def vendor_of(session: Session, *, rollout_id: int, tenant: str) -> str:
    """The vendor of the release of ``tenant``'s rollout (``InvalidInputError``: an uploaded
    release, no vendor's to ask)."""
    with session.begin():
        rollout = tenants.rollout_of(session, rollout_id, tenant)
        release = session.get(Release, rollout.release_id)
        if release is None or release.vendor is None:
            raise InvalidInputError(f"the release of rollout {rollout_id} was uploaded, not "
                                    "mirrored from a vendor: no vendor grants it")
        return release.vendor


def ask_vendor(session: Session, *, rollout_id: int, authority: VendorAuthority,
               actor: Principal, now: int) -> VendorVerdict:
    """Ask the vendor to grant the rollout as it is now; record and audit the verdict.

    A grant that already covers the rollout is kept as it is; one that does not is changed
    (RFC 9635 §5.3) and the vendor judges the new rights; without a grant, one is requested.
    A refusal keeps the earlier grant's reference (a later change may still fit it) but the
    rollout cannot start; a running one is paused. In direct-download mode each targeted
    device gets a biscuit for the release and the window.
    """
    require(actor, Permission.ROLLOUT_PLAN)
    with session.begin():
        rollout = tenants.rollout_of(session, rollout_id, actor.tenant)
        release = session.get(Release, rollout.release_id)
        assert release is not None
        if release.vendor != authority.name:
            origin = "uploaded" if release.vendor is None else f"from {release.vendor}"
            raise InvalidInputError(f"release {release.id} of rollout {rollout_id} is not from "
                                    f"vendor {authority.name} ({origin})")
        right = rollout_right(session, rollout, release, authority.location)
        row = session.get(RolloutGrant, rollout_id)
        held = (row.reference, row.continue_token) if row is not None and row.reference else None
        covered = (row is not None and row.verdict == GRANTED
                   and rollout_exceeds(row.rights, right) is None)
    if covered:
        assert row is not None
        answer = GrantAnswer(True, reference=row.reference, continue_token=row.continue_token,
                             rights=row.rights)
    elif held is not None:
        answer = authority.modify(held[0], held[1], right)
    else:
        answer = authority.request(right)
    return _record(session, rollout_id, authority, answer, right, actor.name, now,
                   changed=not covered)


def check_grants(session: Session, *, authority: VendorAuthority, actor: str,
                 now: int) -> list[VendorVerdict]:
    """Poll the vendor about the granted, unfinished rollouts of its releases (RFC 9635 §5.2):
    a grant the vendor withdrew (a recall, a changed policy) becomes a refusal and pauses
    the rollout; a recall is recorded on the release and pauses every rollout of it."""
    with session.begin():
        rows = session.execute(
            select(RolloutGrant.rollout_id, RolloutGrant.reference, RolloutGrant.continue_token,
                   RolloutGrant.rights)
            .join(Rollout, Rollout.id == RolloutGrant.rollout_id)
            .where(RolloutGrant.vendor == authority.name, RolloutGrant.verdict == GRANTED,
                   Rollout.state.in_([s.value for s in _UNFINISHED]))
            .order_by(RolloutGrant.rollout_id)).all()
    verdicts = []
    for rollout_id, reference, token, rights in rows:
        answer = authority.poll(reference, token)
        if answer.granted:
            continue
        verdicts.append(_record(session, rollout_id, authority, answer, rights, actor, now,
                                changed=True))
    return verdicts


def _record(session: Session, rollout_id: int, authority: VendorAuthority,
            answer: GrantAnswer, right: dict[str, Any], actor: str, now: int, *,
            changed: bool) -> VendorVerdict:
    with session.begin():
        rollout = session.execute(
            select(Rollout).where(Rollout.id == rollout_id).with_for_update()).scalar_one()
        release = session.get(Release, rollout.release_id)
        assert release is not None
        row = session.get(RolloutGrant, rollout_id)
        if row is None:
            row = RolloutGrant(rollout_id=rollout_id, vendor=authority.name, reference="",
                               continue_token="", direct_url="")
            session.add(row)
        row.verdict = GRANTED if answer.granted else REFUSED
        row.reason = answer.reason
        row.rights = answer.rights if answer.granted and answer.rights else right
        if answer.reference:
            row.reference, row.continue_token = answer.reference, answer.continue_token
        row.checked_at, row.checked_by = now, actor
        paused: list[int] = []
        if answer.recall is not None and release.vendor_recall is None:
            paused = _apply_recall(session, release, answer.recall, actor, now)
        elif not answer.granted and rollout.state == RolloutState.RUNNING:
            rollout.state = RolloutState.PAUSED.value
            rollout.status_reason = f"vendor {authority.name} refused: {answer.reason}"
            paused = [rollout.id]
        issued = 0
        if answer.granted and changed:
            issued = _issue_biscuits(session, rollout, release, row, authority, now)
        elif not answer.granted:
            session.execute(delete(DeviceBiscuit).where(DeviceBiscuit.rollout_id == rollout_id))
        session.flush()
        verdict = _verdict(session, rollout, release, row)
        if changed:
            audit.append(session, at=now, tenant=rollout.tenant, actor=actor,
                         action="rollout.vendor_grant",
                         subject=f"rollout:{rollout_id}",
                         detail={"vendor": authority.name, "verdict": row.verdict,
                                 "reason": row.reason, "reference": row.reference,
                                 "rights": row.rights, "paused": paused, "biscuits": issued})
    return verdict


def _apply_recall(session: Session, release: Release, recall: dict[str, Any], actor: str,
                  now: int) -> list[int]:
    """Record the vendor's recall and pause the release's running rollouts (audited: the
    release's record, and one per rollout it stopped in the rollout's tenant's log)."""
    release.vendor_recall = {"recalled_at": int(recall.get("recalled_at", now)),
                             "reason": str(recall.get("reason", ""))}
    why = (f"vendor {release.vendor} recalled release {release.id}: "
           f"{release.vendor_recall['reason']}")
    rollouts = session.execute(
        select(Rollout).where(Rollout.release_id == release.id,
                              Rollout.state.in_([s.value for s in _UNFINISHED]))
        .order_by(Rollout.id).with_for_update()).scalars().all()
    paused = []
    for rollout in rollouts:
        if rollout.state == RolloutState.RUNNING:
            rollout.state = RolloutState.PAUSED.value
            paused.append(rollout.id)
        rollout.status_reason = why
    audit.append(session, at=now, actor=actor, action="release.vendor_recall",
                 subject=f"release:{release.id}",
                 detail={"vendor": release.vendor, "vendor_release": release.vendor_release,
                         **release.vendor_recall, "rollouts_paused": paused,
                         "rollouts_held": [r.id for r in rollouts if r.id not in paused]})
    for rollout in rollouts:
        audit.append(session, at=now, tenant=rollout.tenant, actor=actor,
                     action="rollout.vendor_recall", subject=f"rollout:{rollout.id}",
                     detail={"vendor": release.vendor, "release": release.id,
                             **release.vendor_recall, "paused": rollout.id in paused})
    return paused


def path_releases(session: Session, release: Release, installed: dict[str, int]
                  ) -> list[Release]:
    """The releases a device with ``installed`` downloads on its way to ``release``: the
    must-pass-through and required releases the planner sends it through, then the release
    (inside the caller's transaction)."""
    step = paths.next_step(installed, planning.release_node(release),
                           planning.load_graph(session, release))
    ids = [*dict.fromkeys([*step.path, release.id])]
    rows = {r.id: r for r in session.execute(select(Release).where(Release.id.in_(ids)))
            .scalars()}
    return [rows[i] for i in ids if i in rows]


def _issue_biscuits(session: Session, rollout: Rollout, release: Release, row: RolloutGrant,
                    authority: VendorAuthority, now: int) -> int:
    """Direct-download mode: for each targeted device, one biscuit per release of the
    vendor's on its path (the must-pass-through and required releases before the rollout's,
    and the rollout's), each attenuated to that device, that release and the granted window
    (the earlier ones are replaced). Returns how many were issued."""
    session.execute(delete(DeviceBiscuit).where(DeviceBiscuit.rollout_id == rollout.id))
    row.direct_url = authority.direct_url
    if not authority.direct_url or release.vendor_release is None:
        return 0
    window = row.rights["rollout"]["window"]
    devices: list[tuple[str, dict[str, int] | None]] = [
        (device_id, installed) for device_id, installed in session.execute(
            select(RolloutDevice.device_id, Device.installed)
            .join(Device, Device.id == RolloutDevice.device_id)
            .where(RolloutDevice.rollout_id == rollout.id)
            .order_by(RolloutDevice.device_id))]
    #: installed versions -> the vendor's releases on the path (few distinct values)
    planned: dict[str, list[Release]] = {}
    issued_count = 0
    for device_id, installed in devices:
        key = json.dumps(installed or {}, sort_keys=True)
        if key not in planned:
            planned[key] = [r for r in path_releases(session, release, dict(installed or {}))
                            if r.vendor == authority.name and r.vendor_release is not None]
        for step in planned[key]:
            assert step.vendor_release is not None
            issued = authority.issue_biscuit(device_id, step.vendor_release, window["start"],
                                             window["end"])
            session.add(DeviceBiscuit(rollout_id=rollout.id, device_id=device_id,
                                      release_id=step.id, token=issued.token,
                                      revocation_id=issued.revocation_id,
                                      not_before=window["start"], expires_at=window["end"],
                                      issued_at=now))
            issued_count += 1
    return issued_count


def in_schedule(session: Session, rollout_id: int | None, device_id: str,
                artifact: Artifact | None) -> tuple[Artifact | None, Grant | None]:
    """What a device's schedule carries of the vendor's grant (key 21): the reference, and in
    direct-download mode the device's biscuit for the release it downloads now (the
    rollout's, or a release on the way to it), with the artifact's URIs moved to the vendor's
    ``/direct/`` path. A release it holds no biscuit for, and a delta (the vendor serves
    whole releases), come from here."""
    if rollout_id is None or artifact is None:
        return artifact, None
    row = session.get(RolloutGrant, rollout_id)
    if row is None or row.verdict != GRANTED or not row.reference:
        return artifact, None
    biscuit = session.get(DeviceBiscuit, (rollout_id, device_id, artifact.release_id))
    release = session.get(Release, artifact.release_id)
    if biscuit is None or not row.direct_url or release is None \
            or artifact.payload_digest != bytes.fromhex(release.payload_digest):
        return artifact, Grant(row.reference)
    base = f"{row.direct_url.rstrip('/')}/{device_id}/releases/{release.vendor_release}"
    moved = dataclasses.replace(artifact, envelope_uri=f"{base}/envelope",
                                payload_uri=f"{base}/payload")
    return moved, Grant(row.reference, biscuit.token)


def device_biscuits(session: Session, rollout_id: int, *, tenant: str = DEFAULT_TENANT
                    ) -> list[DeviceBiscuit]:
    """The biscuits issued for a rollout of ``tenant``'s devices (per device, one per release
    on its path); another tenant's rollout is absent."""
    with session.begin():
        tenants.rollout_of(session, rollout_id, tenant)  # another tenant's: absent
        return list(session.execute(
            select(DeviceBiscuit).where(DeviceBiscuit.rollout_id == rollout_id)
            .order_by(DeviceBiscuit.device_id, DeviceBiscuit.release_id)).scalars())
