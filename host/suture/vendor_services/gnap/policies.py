"""The vendor's rollout policy per hospital and release, kept in ``policies.json``.

The AS judges every grant request (and every change or poll of a grant) against the policy
that matches the client and the release, on top of the client's registered bounds::

    {"policies": [{"client": "st-mary", "release": "pump-app-2.*",
                   "max_devices": 200, "max_first_wave": 5, "classes": ["pump-v2"],
                   "not_before": 1800000000, "not_after": 1802000000,
                   "max_window_seconds": 1209600, "refuse": ""}]}

``client`` is a registered instance id, a hospital a scheduler the vendor runs plans for
(a right's ``rollout.hospital``, judged by that hospital's entries instead of the client's), or
``*``; ``release`` a shell-style pattern. Of the
entries that match, the one naming the client wins over ``*``, then the first in the file.
Every field but ``client`` and ``release`` is optional: ``max_devices`` bounds the rollout's
device count, ``max_first_wave`` its first wave, ``classes`` the device classes it may target,
``not_before``/``not_after`` its window (unix seconds), ``max_window_seconds`` the window's
length; a non-empty ``refuse`` refuses every rollout with that reason.
"""

from __future__ import annotations

import fnmatch
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from suture.vendor_services.errors import VendorServicesError
from suture.vendor_services.gnap.rights import rollout_count


class PolicyError(VendorServicesError, ValueError):
    """A policy file or entry that cannot be used."""


@dataclass
class RolloutPolicy:
    """What the vendor allows one hospital for the releases matching ``release``."""

    client: str
    release: str
    max_devices: int | None = None
    max_first_wave: int | None = None
    classes: list[str] = field(default_factory=list)
    not_before: int | None = None
    not_after: int | None = None
    max_window_seconds: int | None = None
    refuse: str = ""

    def check(self) -> None:
        """Raise ``PolicyError`` when the entry is not usable."""
        if not self.client or not self.release:
            raise PolicyError("a policy names a client (or *) and a release pattern")
        for name in ("max_devices", "max_first_wave", "max_window_seconds"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value < 1):
                raise PolicyError(f"{name} must be a positive integer")
        if (self.not_before is not None and self.not_after is not None
                and self.not_after <= self.not_before):
            raise PolicyError("not_after must be later than not_before")
        if not isinstance(self.classes, list) or not all(
                isinstance(c, str) and c for c in self.classes):
            raise PolicyError("classes must be a list of device class names")

    def judge(self, right: dict[str, Any]) -> str | None:
        """The vendor's reason to refuse ``right`` (a validated access right), or None."""
        release = right["identifier"]
        rollout = right["rollout"]
        if self.refuse:
            return f"the vendor refuses rollouts of {release}: {self.refuse}"
        count = rollout_count(rollout)
        if self.max_devices is not None and count > self.max_devices:
            return (f"{count} devices is more than the {self.max_devices} the vendor allows "
                    f"for {release}")
        sizes = rollout.get("waves")
        if self.max_first_wave is not None:
            first = sizes[0] if sizes else count
            if first > self.max_first_wave:
                return (f"a first wave of {first} devices is more than the "
                        f"{self.max_first_wave} the vendor allows for {release}")
        if self.classes:
            asked = rollout.get("classes")
            if asked is None:
                return f"the rollout must name its device classes ({release} supports " \
                       f"{', '.join(self.classes)})"
            other = sorted(set(asked) - set(self.classes))
            if other:
                return (f"device class {', '.join(other)} is not supported by {release} "
                        f"(supported: {', '.join(self.classes)})")
        window = rollout["window"]
        if self.not_before is not None and window["start"] < self.not_before:
            return f"{release} may not be installed before {self.not_before} (unix time)"
        if self.not_after is not None and window["end"] > self.not_after:
            return f"{release} may not be installed after {self.not_after} (unix time)"
        length = window["end"] - window["start"]
        if self.max_window_seconds is not None and length > self.max_window_seconds:
            return (f"a window of {length} s is longer than the {self.max_window_seconds} s "
                    f"the vendor allows for {release}")
        return None


@dataclass
class PolicyStore:
    """The policies file; re-read when it changes, so a running AS applies edits at once."""

    path: Path | None = None
    policies: list[RolloutPolicy] = field(default_factory=list)
    _mtime: int = -1

    @classmethod
    def load(cls, path: Path) -> PolicyStore:
        store = cls(path)
        store.refresh()
        return store

    def refresh(self) -> None:
        """Re-read the file if it changed (absent: no policies); raises ``PolicyError``."""
        if self.path is None:
            return
        if not self.path.exists():
            self.policies, self._mtime = [], -1
            return
        try:
            mtime = self.path.stat().st_mtime_ns
            if mtime == self._mtime:
                return
            data = json.loads(self.path.read_text())
            known = {f.name for f in fields(RolloutPolicy)}
            entries = []
            for entry in data.get("policies", []):
                if not isinstance(entry, dict) or set(entry) - known:
                    raise PolicyError(f"unknown fields in {entry!r}")
                policy = RolloutPolicy(**entry)
                policy.check()
                entries.append(policy)
        except (OSError, ValueError, TypeError, AttributeError) as e:
            raise PolicyError(f"{self.path}: not a valid policy file: {e}") from e
        self.policies, self._mtime = entries, mtime

    def match(self, client: str | None, release: str) -> RolloutPolicy | None:
        """The policy for ``client`` (None: an unregistered client) and ``release``."""
        candidates = [p for p in self.policies if fnmatch.fnmatchcase(release, p.release)]
        named = [p for p in candidates if client is not None and p.client == client]
        anyone = [p for p in candidates if p.client == "*"]
        found = named or anyone
        return found[0] if found else None

    def put(self, policy: RolloutPolicy) -> None:
        """Add, or replace the entry with the same client and release pattern; save."""
        policy.check()
        self.policies = [p for p in self.policies
                         if (p.client, p.release) != (policy.client, policy.release)]
        self.policies.append(policy)
        self.save()

    def remove(self, client: str, release: str) -> None:
        """Forget one entry and save; raises ``PolicyError`` if there is none."""
        kept = [p for p in self.policies if (p.client, p.release) != (client, release)]
        if len(kept) == len(self.policies):
            raise PolicyError(f"no policy for client {client!r} and release {release!r}")
        self.policies = kept
        self.save()

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".policies.")
        with os.fdopen(fd, "w") as f:
            json.dump({"policies": [asdict(p) for p in self.policies]}, f, indent=2)
        os.replace(tmp, self.path)
        self._mtime = self.path.stat().st_mtime_ns
