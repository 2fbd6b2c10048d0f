"""What the pages read that no service returns as one piece: the fleet through a filter of
the CLI's language, a rollout's entries device by device, a release's manifest, verification
and SBOM. Read-only: every change goes through ``services/``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from suture.keys import PublicKey
from suture.scheduler.authz import Principal
from suture.scheduler.errors import FilterSyntaxError
from suture.scheduler.filterexpr import compile_filter
from suture.scheduler.models import (
    DEFAULT_TENANT,
    AuditRecord,
    Delta,
    Device,
    Release,
    Rollout,
    RolloutDevice,
    RolloutState,
)
from suture.scheduler.services import audit, blobs, deltas, tenants

#: Rows a page shows at most.
MAX_ROWS: Final = 500
#: The device fields a filter sees (those of ``services/planning.py``).
_FILTER_KEYS: Final = ("id", "board", "vendor_id", "class_id", "ward", "location",
                       "criticality", "tags", "groups", "installed", "state", "busy",
                       "last_seen", "created_at")


@dataclass
class FleetView:
    devices: list[Device]
    matched: int
    total: int
    error: str = ""


#: The UI serves the scheduler's own tenant (``services/tenants.py``): its devices and
#: rollouts only, in the vendor-run mode as in a hospital's own scheduler (where every device
#: and rollout is its own).
_OWN_DEVICES = tenants.device_scope(DEFAULT_TENANT)
_OWN_ROLLOUTS = Rollout.tenant == DEFAULT_TENANT


def fleet(session: Session, expression: str) -> FleetView:
    """The devices the filter expression selects (all when empty), at most ``MAX_ROWS``."""
    predicate = None
    error = ""
    if expression.strip():
        try:
            predicate = compile_filter(expression)
        except FilterSyntaxError as exc:
            error = str(exc)
    with session.begin():
        rows = list(session.execute(select(Device).where(_OWN_DEVICES)
                                    .order_by(Device.id)).scalars())
    if error:
        return FleetView([], 0, len(rows), error)
    chosen = [d for d in rows if predicate is None or predicate(
        {k: getattr(d, k) for k in _FILTER_KEYS})]
    return FleetView(chosen[:MAX_ROWS], len(chosen), len(rows))


#: The fleet page's "last seen" choices: value -> (label, seconds, seen within them or not).
#: A device never seen is "not seen" for any span; "never" selects those alone.
LAST_SEEN: Final[dict[str, tuple[str, int | None, bool]]] = {
    "1h": ("within the last hour", 3600, True),
    "24h": ("within the last day", 86_400, True),
    "over-24h": ("not for a day or more", 86_400, False),
    "over-7d": ("not for a week or more", 7 * 86_400, False),
    "never": ("never", None, False),
}


def filter_expression(text: str, quick: dict[str, str], now: int) -> str:
    """The filter of the fleet page: the typed expression and the quick filters, joined with
    ``and`` (each quick value quoted as the language wants; "last seen" as a comparison of
    ``last_seen`` with the Unix time ``now`` less the span). A quick value the page does not
    offer is refused (``FilterSyntaxError``), never dropped."""
    parts = [f"({text.strip()})"] if text.strip() else []
    for name in ("group", "board", "ward", "state"):
        value = quick.get(name, "").strip()
        if value:
            field_name = "groups" if name == "group" else name
            op = "has" if name == "group" else "=="
            parts.append(f"{field_name} {op} {_quote(value)}")
    criticality = quick.get("criticality", "").strip()
    if criticality:
        if criticality not in ("1", "2", "3", "4"):
            raise FilterSyntaxError(f"criticality at least: {criticality[:20]!r} is not 1 to 4")
        parts.append(f"criticality >= {criticality}")
    busy = quick.get("busy", "").strip()
    if busy:
        if busy not in ("true", "false"):
            raise FilterSyntaxError(f"in clinical use: {busy[:20]!r} is neither true nor false")
        parts.append(f"busy == {busy}")
    below = quick.get("installed_below", "").strip()
    if below:
        component, _, version = below.partition("<")
        if not (version.strip().isdigit() and component.strip().isidentifier()):
            raise FilterSyntaxError(f"installed below: {below[:40]!r} is not a component, "
                                    "'<' and a sequence number (app<5)")
        parts.append(f"installed.{component.strip()} < {int(version)}")
    seen_choice = quick.get("last_seen", "").strip()
    if seen_choice:
        if seen_choice not in LAST_SEEN:
            raise FilterSyntaxError(f"last seen: {seen_choice[:20]!r} is not one of "
                                    f"{', '.join(LAST_SEEN)}")
        _, span, within = LAST_SEEN[seen_choice]
        since = 0 if span is None else now - span
        parts.append(f"last_seen >= {since}" if within else f"not last_seen >= {since}")
    return " and ".join(parts)


def fleet_page(session: Session, text: str, quick: dict[str, str], now: int
               ) -> tuple[FleetView, str]:
    """The fleet page's devices and the expression that chose them; a refused quick value
    shows no device and says why, as a refused expression does."""
    try:
        expression = filter_expression(text, quick, now)
    except FilterSyntaxError as exc:
        return FleetView([], 0, fleet(session, "").total, str(exc)), ""
    return fleet(session, expression), expression


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class EntryView:
    device_id: str
    wave: int
    state: str
    step_release_id: int | None
    busy_skips: int
    detail: str
    updated_at: int
    criticality: int
    busy: bool
    installed: dict[str, int]


def rollout_entries(session: Session, rollout_id: int) -> list[EntryView]:
    with session.begin():
        rows = session.execute(
            select(RolloutDevice, Device).join(Device, Device.id == RolloutDevice.device_id)
            .where(RolloutDevice.rollout_id == rollout_id)
            .order_by(RolloutDevice.wave, RolloutDevice.position).limit(MAX_ROWS)).all()
        return [EntryView(e.device_id, e.wave, e.state, e.step_release_id, e.busy_skips,
                          e.detail, e.updated_at, d.criticality, d.busy, dict(d.installed or {}))
                for e, d in rows]


def device_entries(session: Session, device_id: str) -> list[tuple[RolloutDevice, Rollout]]:
    with session.begin():
        return [(e, r) for e, r in session.execute(
            select(RolloutDevice, Rollout).join(Rollout, Rollout.id == RolloutDevice.rollout_id)
            .where(RolloutDevice.device_id == device_id)
            .order_by(Rollout.id.desc()).limit(50)).all()]


def release_paths(session: Session, release_ids: Sequence[int]) -> dict[int, str]:
    """Each release's label (component #sequence) by id."""
    if not release_ids:
        return {}
    with session.begin():
        rows = session.execute(select(Release.id, Release.component, Release.sequence_number)
                               .where(Release.id.in_(set(release_ids)))).all()
    return {rid: f"{comp} #{seq}" for rid, comp, seq in rows}


def rollouts_waiting(session: Session) -> list[Rollout]:
    """Rollouts an approver may act on: awaiting approval, approved (not started), paused."""
    states = [RolloutState.AWAITING_APPROVAL.value, RolloutState.APPROVED.value,
              RolloutState.PAUSED.value]
    with session.begin():
        return list(session.execute(select(Rollout).where(Rollout.state.in_(states),
                                                          _OWN_ROLLOUTS)
                                    .order_by(Rollout.id)).scalars())


def active_rollouts_of(session: Session, release_id: int) -> list[Rollout]:
    """The rollouts of the release a recall would abort."""
    states = [RolloutState.AWAITING_APPROVAL.value, RolloutState.APPROVED.value,
              RolloutState.RUNNING.value, RolloutState.PAUSED.value]
    with session.begin():
        return list(session.execute(select(Rollout).where(Rollout.release_id == release_id,
                                                          Rollout.state.in_(states))
                                    .order_by(Rollout.id)).scalars())


@dataclass
class ReleaseView:
    release: Release
    manifest: dict[str, Any] | None
    verification: str
    verified: bool
    sbom: dict[str, Any] | None = None
    sbom_error: str = ""
    previous: Release | None = None
    sbom_diff: dict[str, Any] | None = None
    rollouts: list[Rollout] = field(default_factory=list)
    #: The release's deltas: (delta, its source release's sequence number).
    deltas: list[tuple[Delta, int]] = field(default_factory=list)
    #: The vendor's deltas of it not imported when it was mirrored (skipped or refused, with
    #: the reason), from the audit log: (when, status, the vendor's source, reason).
    deltas_not_imported: list[tuple[int, str, str, str]] = field(default_factory=list)


def release_view(session: Session, release_id: int, anchors: Sequence[PublicKey],
                 actor: Principal) -> ReleaseView:
    """The release with its manifest read from the stored envelope, the envelope verified
    again against the trust anchors in force now, its SBOM and the difference from the
    previous release of the same component's SBOM (``services/release_sboms.py``)."""
    from suture import suit
    from suture.scheduler.errors import NotFoundError
    from suture.scheduler.services import release_sboms

    with session.begin():
        release = session.get(Release, release_id)
        if release is None:
            raise NotFoundError(f"no release {release_id}")
        envelope = blobs.read_blob_bytes(session, blobs.blob_ref(
            session, release.envelope_digest, f"release {release_id}: envelope"))
        previous = session.execute(
            select(Release).where(Release.vendor_id == release.vendor_id,
                                  Release.class_id == release.class_id,
                                  Release.component == release.component,
                                  Release.sequence_number < release.sequence_number)
            .order_by(Release.sequence_number.desc()).limit(1)).scalar_one_or_none()
        used_by = list(session.execute(select(Rollout).where(Rollout.release_id == release_id,
                                                             _OWN_ROLLOUTS)
                                       .order_by(Rollout.id)).scalars())
        source = aliased(Release)
        delta_rows = [(d, int(seq)) for d, seq in session.execute(
            select(Delta, source.sequence_number)
            .join(source, source.id == Delta.source_release_id)
            .where(Delta.release_id == release_id).order_by(source.sequence_number))]
        not_imported = []
        for record in session.execute(
                select(AuditRecord).where(
                    AuditRecord.subject == f"release:{release_id}",
                    AuditRecord.action.in_(deltas.NOT_IMPORTED_ACTIONS.values()))
                .order_by(AuditRecord.seq)).scalars():
            detail = audit.detail_of(record)
            detail = detail if isinstance(detail, dict) else {}
            not_imported.append((record.at, record.action.rsplit(".", 1)[1],
                                 str(detail.get("vendor_source", "")),
                                 str(detail.get("reason", ""))))
    manifest: dict[str, Any] | None = None
    try:
        env = suit.verify_envelope(envelope, list(anchors))
        verified, verification = True, (
            f"the envelope verifies against the trust anchors in force "
            f"({len(anchors)} key(s)); the payload matched its digest at import")
        manifest = suit.envelope_summary(env)
    except suit.SuitError as exc:
        verified, verification = False, f"does not verify against the trust anchors now: {exc}"
        try:
            manifest = suit.envelope_summary(suit.decode_envelope(envelope))
        except suit.SuitError:
            manifest = None
    view = ReleaseView(release, manifest, verification, verified, previous=previous,
                       rollouts=used_by, deltas=delta_rows, deltas_not_imported=not_imported)
    if release.sbom_digest is not None:
        try:
            view.sbom = release_sboms.release_sbom(session, release_id=release_id, actor=actor)
            if previous is not None and previous.sbom_digest is not None:
                view.sbom_diff = release_sboms.release_sbom_diff(
                    session, release_id=release_id, against=previous.id, actor=actor)
        except suit.SuitError as exc:
            view.sbom_error = str(exc)
    return view


def device_paths(session: Session, release_id: int, entries: Sequence[EntryView]
                 ) -> dict[str, list[int]]:
    """The releases each device installs in turn to reach the rollout's release (its
    must-pass-through steps first), by device."""
    from suture.scheduler.policies import paths
    from suture.scheduler.services import planning

    with session.begin():
        release = session.get(Release, release_id)
        if release is None:
            return {}
        graph = planning.load_graph(session, release)
        target = planning.release_node(release)
    out: dict[str, list[int]] = {}
    cache: dict[tuple[tuple[str, int], ...], list[int]] = {}
    for entry in entries:
        key = tuple(sorted(entry.installed.items()))
        if key not in cache:
            cache[key] = list(paths.next_step(dict(key), target, graph).path)
        out[entry.device_id] = cache[key]
    return out


def next_windows(cron: str | None, duration_s: int | None, tz: str, now: int, count: int = 3
                 ) -> list[tuple[int, int]]:
    """The next maintenance windows ``[start, end)`` of a rollout's policy (none: always
    open)."""
    from suture.scheduler.policies.windows import WindowPolicy

    if not cron or not duration_s:
        return []
    policy = WindowPolicy(cron, duration_s, tz)
    out: list[tuple[int, int]] = []
    when = now
    for _ in range(count):
        window = policy.window_at(when)
        out.append((window.not_before, window.not_after))
        when = window.not_after
    return out
