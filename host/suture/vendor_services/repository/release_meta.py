"""The vendor's metadata of a release: what the vendor says about where and how it may go.

Published with the release (``release.json``'s ``vendor`` object, from ``suture vendor publish
--metadata FILE``), served with the release's listing and imported by the scheduler with the
release (:mod:`suture.scheduler.vendor_mirror`); a recall is added later (``recall``)::

    {"device_classes": ["pump-v2"],
     "requires": [{"component": "loader", "min_version": 3}],
     "pass_through": [200],
     "criticality": "urgent",
     "criticality_note": "fixes an occlusion alarm that may not sound"}

``device_classes``: the device classes (boards) the release supports (empty: every one);
``requires``: component versions a device must run before it installs the release;
``pass_through``: sequence numbers of earlier releases of the same component that a device
on an older version must install first (each becomes must-pass-through); ``criticality``: one
of :data:`CRITICALITIES`, and a note for the operators. This module is the one definition of
the object; both the vendor (at publication) and the scheduler (at import) validate with it.
"""

from __future__ import annotations

import re
from typing import Any, Final

from suture.vendor_services.errors import VendorServicesError

CRITICALITIES: Final = ("routine", "recommended", "urgent", "safety")
FIELDS: Final = frozenset({"device_classes", "requires", "pass_through", "criticality",
                           "criticality_note"})
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/+-]{0,63}$")
MAX_ITEMS: Final = 64
MAX_NOTE: Final = 2048
MAX_SEQUENCE: Final = 0xFFFFFFFF


class MetadataError(VendorServicesError, ValueError):
    """Vendor release metadata that does not follow the format."""


def validate_metadata(data: Any) -> dict[str, Any]:
    """Check a metadata object; returns it normalised (every field present)."""
    if not isinstance(data, dict):
        raise MetadataError("vendor metadata must be a JSON object")
    unknown = set(data) - FIELDS
    if unknown:
        raise MetadataError(f"unknown vendor metadata fields: {', '.join(sorted(unknown))}")
    classes = data.get("device_classes", [])
    if not isinstance(classes, list) or len(classes) > MAX_ITEMS or not all(
            isinstance(c, str) and NAME.match(c) for c in classes):
        raise MetadataError("device_classes must be a list of device class names")
    requires = data.get("requires", [])
    if not isinstance(requires, list) or len(requires) > MAX_ITEMS:
        raise MetadataError("requires must be a list of {component, min_version}")
    reqs = []
    for req in requires:
        if not isinstance(req, dict) or set(req) != {"component", "min_version"}:
            raise MetadataError("each requirement is {component, min_version}")
        component, minimum = req["component"], req["min_version"]
        if not isinstance(component, str) or not NAME.match(component):
            raise MetadataError(f"requirement component {component!r} is not a name")
        if type(minimum) is not int or not 0 < minimum <= MAX_SEQUENCE:
            raise MetadataError(f"requirement {component}: min_version must be 1..2^32-1")
        reqs.append({"component": component, "min_version": minimum})
    through = data.get("pass_through", [])
    if not isinstance(through, list) or len(through) > MAX_ITEMS or not all(
            type(n) is int and 0 < n <= MAX_SEQUENCE for n in through):
        raise MetadataError("pass_through must be a list of sequence numbers")
    criticality = data.get("criticality", "routine")
    if criticality not in CRITICALITIES:
        raise MetadataError(f"criticality must be one of {', '.join(CRITICALITIES)}")
    note = data.get("criticality_note", "")
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise MetadataError(f"criticality_note must be text of at most {MAX_NOTE} characters")
    return {"device_classes": sorted(set(classes)), "requires": reqs,
            "pass_through": sorted(set(through)), "criticality": criticality,
            "criticality_note": note}


def validate_recall(data: Any) -> dict[str, Any] | None:
    """A release listing's ``recall`` (None: not recalled)."""
    if data is None:
        return None
    if not isinstance(data, dict) or set(data) != {"recalled_at", "reason"}:
        raise MetadataError("recall must be {recalled_at, reason}")
    if type(data["recalled_at"]) is not int or data["recalled_at"] < 0:
        raise MetadataError("recall.recalled_at must be unix seconds")
    if not isinstance(data["reason"], str) or not 0 < len(data["reason"]) <= MAX_NOTE:
        raise MetadataError("recall.reason must be a non-empty text")
    return {"recalled_at": data["recalled_at"], "reason": data["reason"]}
