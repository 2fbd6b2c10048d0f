"""Resource access rights for releases (RFC 9635 §8), and the rollout they carry.

A right to fetch a release, as the scheduler requests it and as the token carries it::

    {"type": "suture-release", "actions": ["fetch"], "identifier": "app-1.4.0",
     "locations": ["https://vendor.example/releases/"],
     "rollout": {"devices": ["pump-0017", "pump-0018"],
                 "window": {"start": 1800000000, "end": 1800604800}}}

``type``, ``actions``, ``locations`` and ``identifier`` are the common fields of §8;
``rollout`` is this API's own field (§8 lets an API define its own): which devices the release
is for and the installation window, so the vendor sees and bounds what is being installed and a
device's schedule can cite the grant.
"""

from __future__ import annotations

from typing import Any

from suture.vendor_services.gnap.errors import GnapError

RELEASE_TYPE = "suture-release"
FETCH = "fetch"
ACTIONS = frozenset({FETCH})
MAX_RIGHTS = 16
MAX_DEVICES = 10_000
MAX_STRING = 256


def release_access(
    release_id: str,
    *,
    devices: list[str],
    window_start: int,
    window_end: int,
    location: str | None = None,
) -> dict[str, Any]:
    """The access right to fetch one release for one rollout."""
    right: dict[str, Any] = {
        "type": RELEASE_TYPE,
        "actions": [FETCH],
        "identifier": release_id,
        "rollout": {"devices": list(devices), "window": {"start": window_start, "end": window_end}},
    }
    if location is not None:
        right["locations"] = [location]
    return right


def _short_string(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_STRING:
        raise GnapError("invalid_request", f"{what} must be a non-empty string")
    return value


def validate_access(access: Any) -> list[dict[str, Any]]:
    """Check the shape of an ``access`` array (RFC 9635 §8); returns it normalised."""
    # RFC 9635 §2.1.1: "access" is REQUIRED, an array of rights.
    if not isinstance(access, list) or not access or len(access) > MAX_RIGHTS:
        raise GnapError("invalid_request", f"access must be an array of 1..{MAX_RIGHTS} rights")
    out = []
    for right in access:
        # §8.1 string references are not offered by this AS: every right is an object.
        if not isinstance(right, dict):
            raise GnapError("invalid_request", "each access right must be an object")
        # §8: "type" is REQUIRED and compared by exact match.
        if right.get("type") != RELEASE_TYPE:
            raise GnapError("invalid_request", f"access type must be {RELEASE_TYPE!r}")
        actions = right.get("actions", [FETCH])
        if (
            not isinstance(actions, list)
            or not actions
            or not all(isinstance(a, str) for a in actions)
            or not set(actions) <= ACTIONS
        ):
            raise GnapError("invalid_request", f"actions must be a subset of {sorted(ACTIONS)}")
        identifier = _short_string(right.get("identifier"), "identifier (the release id)")
        locations = right.get("locations")
        if locations is not None and (
            not isinstance(locations, list)
            or not all(isinstance(u, str) and len(u) <= MAX_STRING for u in locations)
        ):
            raise GnapError("invalid_request", "locations must be an array of URIs")
        rollout = right.get("rollout")
        if not isinstance(rollout, dict):
            raise GnapError("invalid_request", "rollout (devices and window) is required")
        devices = rollout.get("devices")
        if not isinstance(devices, list) or not devices or len(devices) > MAX_DEVICES:
            raise GnapError("invalid_request", "rollout.devices must be a non-empty array")
        for device in devices:
            _short_string(device, "each device id")
        window = rollout.get("window")
        start = window.get("start") if isinstance(window, dict) else None
        end = window.get("end") if isinstance(window, dict) else None
        if type(start) is not int or type(end) is not int or end <= start:
            raise GnapError("invalid_request", "rollout.window needs integer start < end")
        normalised: dict[str, Any] = {
            "type": RELEASE_TYPE,
            "actions": sorted(set(actions)),
            "identifier": identifier,
            "rollout": {"devices": list(devices), "window": {"start": start, "end": end}},
        }
        if locations is not None:
            normalised["locations"] = list(locations)
        out.append(normalised)
    return out


def covers(granted: list[dict[str, Any]], release_id: str, action: str, location: str) -> bool:
    """Whether the granted rights allow ``action`` on ``release_id`` at ``location``.

    RFC 9635 §8: an object grants the cross-product of its fields, and the token's access is
    the union of its objects. A right without ``locations`` is valid at every location.
    """
    for right in granted:
        if not isinstance(right, dict) or right.get("type") != RELEASE_TYPE:
            continue
        if right.get("identifier") != release_id:
            continue
        if action not in right.get("actions", []):
            continue
        locations = right.get("locations")
        if locations is not None and not any(location.startswith(u) for u in locations):
            continue
        return True
    return False


def covers_request(granted: list[dict[str, Any]], wanted: Any, default_location: str) -> bool:
    """RFC 9767 §3.3: whether a token is "appropriate for the access indicated" by an RS.

    Anything this AS does not understand in ``wanted`` counts as not covered: "the AS MUST NOT
    indicate the token as active" when it cannot process part of the request.
    """
    if not isinstance(wanted, list) or not wanted:
        return False
    for right in wanted:
        if not isinstance(right, dict) or right.get("type", RELEASE_TYPE) != RELEASE_TYPE:
            return False
        identifier = right.get("identifier")
        actions = right.get("actions", [FETCH])
        locations = right.get("locations") or [default_location]
        if not isinstance(identifier, str) or not isinstance(actions, list):
            return False
        if not isinstance(locations, list):
            return False
        for action in actions:
            for location in locations:
                if not isinstance(action, str) or not isinstance(location, str):
                    return False
                if not covers(granted, identifier, action, location):
                    return False
    return True
