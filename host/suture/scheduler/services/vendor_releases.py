"""The vendor's metadata of a mirrored release, and what the planner does with it.

The metadata (``vendor_services/repository/release_meta.py``) comes with the release's
listing when the scheduler mirrors it; :func:`apply_metadata` records it with the release
and turns it into the planner's own terms: ``requires`` become the release's requirements
(a device below them is given the required release first, or held), ``pass_through`` marks
those earlier releases of the component must-pass-through (devices on an older version
install them on the way), ``device_classes`` bound the devices a rollout of the release may
target (:func:`check_targets` refuses a plan that reaches another class), and a recall found
at import is kept (no rollout of the release can start).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from suture.scheduler.errors import ConflictError, InvalidInputError
from suture.scheduler.models import Device, Release, Rollout, RolloutDevice
from suture.scheduler.services import audit
from suture.vendor_services.repository.release_meta import (
    MetadataError,
    validate_metadata,
    validate_recall,
)

#: Devices named in a refusal, at most.
_NAMED = 10


def check_metadata(listing: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The metadata and recall of a vendor's release listing, validated; raises
    ``InvalidInputError`` (nothing is imported) when they do not follow the format."""
    if not isinstance(listing, dict):
        raise InvalidInputError("the vendor's release listing is not an object")
    try:
        return validate_metadata(listing.get("vendor", {})), validate_recall(
            listing.get("recall"))
    except MetadataError as e:
        raise InvalidInputError(f"the vendor's release metadata: {e}") from None


def _merge_requires(own: list[dict[str, Any]], vendor: list[dict[str, Any]]
                    ) -> list[dict[str, Any]]:
    merged: dict[str, int] = {}
    for req in [*own, *vendor]:
        component = str(req["component"])
        merged[component] = max(merged.get(component, 0), int(req["min_version"]))
    return [{"component": c, "min_version": v} for c, v in sorted(merged.items())]


def apply_metadata(session: Session, *, release_id: int, vendor: str, vendor_release: str,
                   metadata: dict[str, Any], recall: dict[str, Any] | None, actor: str,
                   now: int) -> Release:
    """Record where the release came from and the vendor's metadata (already validated)."""
    with session.begin():
        release = session.get(Release, release_id)
        if release is None:
            raise InvalidInputError(f"no release {release_id}")
        release.vendor, release.vendor_release = vendor, vendor_release
        release.vendor_metadata = metadata
        release.requires = _merge_requires(release.requires or [], metadata["requires"])
        release.vendor_recall = recall
        same = (Release.vendor_id == release.vendor_id, Release.class_id == release.class_id,
                Release.component == release.component)
        through = [int(n) for n in metadata["pass_through"]]
        marked = list(session.execute(
            select(Release.id).where(*same, Release.sequence_number.in_(through))
            .order_by(Release.id)).scalars()) if through else []
        if marked:
            session.execute(update(Release).where(Release.id.in_(marked))
                            .values(must_pass_through=True)
                            .execution_options(synchronize_session=False))
        # A later release of the vendor may already name this one as a version to pass through.
        later = session.execute(
            select(Release.vendor_metadata).where(*same, Release.id != release.id,
                                                  Release.vendor.is_not(None))).scalars()
        if any(release.sequence_number in (m or {}).get("pass_through", []) for m in later):
            release.must_pass_through = True
        audit.append(session, at=now, actor=actor, action="release.vendor_metadata",
                     subject=f"release:{release_id}",
                     detail={"vendor": vendor, "vendor_release": vendor_release,
                             "metadata": metadata, "recall": recall,
                             "must_pass_through_marked": marked,
                             "requires": release.requires})
    return release


def check_targets(session: Session, rollout: Rollout, release: Release) -> None:
    """Inside planning: refuse a rollout of a vendor's release that the vendor recalled, or
    whose targets include devices of a class (board) the vendor does not support."""
    if release.vendor is None:
        return
    if release.vendor_recall is not None:
        raise ConflictError(f"vendor {release.vendor} recalled release {release.id}: "
                            f"{release.vendor_recall.get('reason', '')}")
    supported = (release.vendor_metadata or {}).get("device_classes") or []
    if not supported:
        return
    rows = session.execute(
        select(Device.id, Device.board).join(RolloutDevice, RolloutDevice.device_id == Device.id)
        .where(RolloutDevice.rollout_id == rollout.id, Device.board.not_in(supported))
        .order_by(Device.id)).all()
    if rows:
        named = ", ".join(f"{d} ({b})" for d, b in rows[:_NAMED]) + (
            ", ..." if len(rows) > _NAMED else "")
        raise InvalidInputError(
            f"vendor {release.vendor} supports release {release.id} on "
            f"{', '.join(supported)} only; {len(rows)} targeted device(s) are not: {named}. "
            f"Narrow the target (e.g. a filter on board)")
