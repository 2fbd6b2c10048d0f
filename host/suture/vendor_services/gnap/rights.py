"""Resource access rights for releases (RFC 9635 §8), and the rollout they carry.

A right to fetch a release, as the scheduler requests it and as the token carries it::

    {"type": "suture-release", "actions": ["fetch"], "identifier": "app-1.4.0",
     "locations": ["https://vendor.example/releases/"],
     "rollout": {"devices": ["pump-0017", "pump-0018"],
                 "window": {"start": 1800000000, "end": 1800604800}}}

``type``, ``actions``, ``locations`` and ``identifier`` are the common fields of §8;
``rollout`` is this API's own field (§8 lets an API define its own): which devices the release
is for and the installation window, so the vendor sees and bounds what is being installed and a
device's schedule can cite the grant. A scheduler that plans a rollout describes it whole::

    "rollout": {"count": 120, "classes": ["pump-v2"], "waves": [1, 12, 107],
                "window": {"start": 1800000000, "end": 1801209600},
                "maintenance": {"cron": "0 22 * * *", "duration_s": 28800, "tz": "UTC"}}

``devices`` (the ids) or ``count`` (how many) is required; with both, ``count`` is the
length of ``devices``. ``classes`` are the device classes (boards) targeted, ``waves`` the
wave sizes (summing to ``count``), ``maintenance`` the install window every wave keeps inside
``window``, ``hospital`` the hospital (tenant) a scheduler the vendor runs plans the rollout
for (the AS then judges it by that hospital's policy).
"""

from __future__ import annotations

from typing import Any

from suture.vendor_services.gnap.errors import GnapError

RELEASE_TYPE = "suture-release"
FETCH = "fetch"
ACTIONS = frozenset({FETCH})
MAX_RIGHTS = 16
MAX_DEVICES = 10_000
MAX_DEVICE_COUNT = 10_000_000
MAX_STRING = 256
MAX_CLASSES = 64
MAX_WAVES = 64


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
        normalised: dict[str, Any] = {
            "type": RELEASE_TYPE,
            "actions": sorted(set(actions)),
            "identifier": identifier,
            "rollout": _validate_rollout(rollout),
        }
        if locations is not None:
            normalised["locations"] = list(locations)
        out.append(normalised)
    return out


def _validate_rollout(rollout: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    devices = rollout.get("devices")
    count = rollout.get("count")
    if devices is None and count is None:
        raise GnapError("invalid_request", "rollout needs devices or count")
    if devices is not None:
        if not isinstance(devices, list) or not devices or len(devices) > MAX_DEVICES:
            raise GnapError("invalid_request", "rollout.devices must be a non-empty array")
        for device in devices:
            _short_string(device, "each device id")
        out["devices"] = list(devices)
    if count is not None:
        if type(count) is not int or not 1 <= count <= MAX_DEVICE_COUNT:
            raise GnapError("invalid_request", "rollout.count must be a positive integer")
        if devices is not None and count != len(devices):
            raise GnapError("invalid_request", "rollout.count is not the number of devices")
        out["count"] = count
    window = rollout.get("window")
    start = window.get("start") if isinstance(window, dict) else None
    end = window.get("end") if isinstance(window, dict) else None
    if type(start) is not int or type(end) is not int or end <= start:
        raise GnapError("invalid_request", "rollout.window needs integer start < end")
    out["window"] = {"start": start, "end": end}
    hospital = rollout.get("hospital")
    if hospital is not None:
        out["hospital"] = _short_string(hospital, "rollout.hospital")
    classes = rollout.get("classes")
    if classes is not None:
        if not isinstance(classes, list) or not classes or len(classes) > MAX_CLASSES:
            raise GnapError("invalid_request", f"rollout.classes: 1..{MAX_CLASSES} strings")
        out["classes"] = sorted({_short_string(c, "each device class") for c in classes})
    sizes = rollout.get("waves")
    if sizes is not None:
        if (not isinstance(sizes, list) or not sizes or len(sizes) > MAX_WAVES
                or not all(type(n) is int and n >= 0 for n in sizes)):
            raise GnapError("invalid_request", f"rollout.waves: 1..{MAX_WAVES} wave sizes")
        if sum(sizes) != rollout_count(out):
            raise GnapError("invalid_request", "rollout.waves do not add up to its devices")
        out["waves"] = list(sizes)
    maintenance = rollout.get("maintenance")
    if maintenance is not None:
        if not isinstance(maintenance, dict) or set(maintenance) - {"cron", "duration_s", "tz"}:
            raise GnapError("invalid_request", "rollout.maintenance: cron, duration_s, tz")
        cron = _short_string(maintenance.get("cron"), "rollout.maintenance.cron")
        duration = maintenance.get("duration_s")
        if type(duration) is not int or duration <= 0:
            raise GnapError("invalid_request", "rollout.maintenance.duration_s must be > 0")
        tz = _short_string(maintenance.get("tz", "UTC"), "rollout.maintenance.tz")
        out["maintenance"] = {"cron": cron, "duration_s": duration, "tz": tz}
    return out


def rollout_count(rollout: dict[str, Any]) -> int:
    """How many devices a validated ``rollout`` object names."""
    if "count" in rollout:
        return int(rollout["count"])
    return len(rollout["devices"])


def rollout_exceeds(granted: dict[str, Any], wanted: dict[str, Any]) -> str | None:
    """Why the access right ``wanted`` asks for more than ``granted`` (None: it does not).

    Fewer devices, a subset of the named devices and classes, a window inside the granted
    one, the same release: covered. Anything else needs the vendor's say again.
    """
    if granted.get("identifier") != wanted.get("identifier"):
        return (f"another release ({wanted.get('identifier')!r}, granted "
                f"{granted.get('identifier')!r})")
    if not set(wanted.get("actions", [FETCH])) <= set(granted.get("actions", [FETCH])):
        return "other actions"
    g, w = granted["rollout"], wanted["rollout"]
    if g.get("hospital") != w.get("hospital"):
        return f"another hospital ({w.get('hospital')!r}, granted {g.get('hospital')!r})"
    if rollout_count(w) > rollout_count(g):
        return f"more devices ({rollout_count(w)}, granted {rollout_count(g)})"
    if "devices" in g and not set(w.get("devices", ())) <= set(g["devices"]):
        return "devices the grant does not name"
    if "devices" in g and "devices" not in w:
        return "devices the grant does not name"
    if "classes" in g and not set(w.get("classes", ["*"])) <= set(g["classes"]):
        return f"other device classes ({', '.join(w.get('classes', ['any']))})"
    if g.get("waves") and w.get("waves") and w["waves"][0] > g["waves"][0]:
        return f"a larger first wave ({w['waves'][0]}, granted {g['waves'][0]})"
    gw, ww = g["window"], w["window"]
    if ww["start"] < gw["start"]:
        return "an earlier window start"
    if ww["end"] > gw["end"]:
        return "a later window end"
    if g.get("maintenance") is not None and w.get("maintenance") != g.get("maintenance"):
        return "another maintenance window"
    return None


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
