"""Registered clients (the hospitals' schedulers) and resource servers, kept in a JSON file.

A registered client is known by an ``instance_id`` and its public key (RFC 9635 §2.3.1: a
client instance "by reference"); the vendor bounds what it may ask for: which releases
(shell-style patterns), how many devices per rollout and how long a window. A scheduler the
vendor runs for several hospitals (the vendor-run mode) lists them in ``hospitals``: a rollout
right naming one of them (``rollout.hospital``) is judged by that hospital's policy.

``clients.json``::

    {"clients": [{"instance_id": "st-mary-scheduler", "name": "St Mary's",
                  "jwk": {...}, "releases": ["app-*"], "max_devices": 500,
                  "max_window_seconds": 1209600}],
     "resource_servers": [{"instance_id": "repository", "jwk": {...}}]}
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from suture.vendor_services.errors import VendorServicesError
from suture.vendor_services.httpsig import JwkError, PublicKey, load_jwk

INSTANCE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
DEFAULT_MAX_DEVICES = 1000
DEFAULT_MAX_WINDOW = 14 * 24 * 3600


class RegistryError(VendorServicesError, ValueError):
    """A registry file or entry that cannot be used."""


@dataclass
class RegisteredClient:
    """A client instance the vendor knows by reference."""

    instance_id: str
    jwk: dict[str, str]
    name: str = ""
    releases: list[str] = field(default_factory=lambda: ["*"])
    max_devices: int = DEFAULT_MAX_DEVICES
    max_window_seconds: int = DEFAULT_MAX_WINDOW
    #: The hospitals (tenants) this client plans rollouts for, when the vendor runs it.
    hospitals: list[str] = field(default_factory=list)

    @property
    def kid(self) -> str:
        return load_jwk(self.jwk)[0]

    @property
    def public_key(self) -> PublicKey:
        return load_jwk(self.jwk)[1]


@dataclass
class RegisteredResourceServer:
    """A resource server allowed to introspect tokens (RFC 9767 §3.2)."""

    instance_id: str
    jwk: dict[str, str]


@dataclass
class Registry:
    """Clients and resource servers; ``path`` None keeps it in memory only."""

    path: Path | None = None
    clients: dict[str, RegisteredClient] = field(default_factory=dict)
    resource_servers: dict[str, RegisteredResourceServer] = field(default_factory=dict)
    _mtime: int = -1
    _volatile: dict[str, RegisteredResourceServer] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Registry:
        """Read ``path`` (an absent file is an empty registry)."""
        registry = cls(path)
        registry.refresh()
        return registry

    def refresh(self) -> None:
        """Re-read the file if it changed since it was read, so ``suture vendor client add``
        takes effect on a running server. A file that does not parse leaves the registry as
        it was and raises ``RegistryError``."""
        if self.path is None or not self.path.exists():
            return
        try:
            mtime = self.path.stat().st_mtime_ns
            if mtime == self._mtime:
                return
            data = json.loads(self.path.read_text())
            fresh = Registry(None)
            for entry in data.get("clients", []):
                fresh._add_client(RegisteredClient(**entry))
            for entry in data.get("resource_servers", []):
                fresh._add_rs(RegisteredResourceServer(**entry))
        except (OSError, ValueError, TypeError, AttributeError) as e:
            raise RegistryError(f"{self.path}: not a valid registry: {e}") from e
        self.clients = fresh.clients
        self.resource_servers = {**fresh.resource_servers, **self._volatile}
        self._mtime = mtime

    def _check(self, instance_id: str, jwk: Any) -> None:
        if not INSTANCE_ID.match(instance_id):
            raise RegistryError(f"instance id {instance_id!r}: use 1-64 of A-Z a-z 0-9 . _ -")
        try:
            load_jwk(jwk)
        except JwkError as e:
            raise RegistryError(f"{instance_id}: {e}") from e

    def _add_client(self, client: RegisteredClient) -> None:
        self._check(client.instance_id, client.jwk)
        if client.max_devices < 1 or client.max_window_seconds < 1:
            raise RegistryError(f"{client.instance_id}: bounds must be positive")
        if not isinstance(client.hospitals, list) or not all(
                isinstance(h, str) and INSTANCE_ID.match(h) for h in client.hospitals):
            raise RegistryError(f"{client.instance_id}: hospitals are names of 1-64 of "
                                "A-Z a-z 0-9 . _ -")
        self.clients[client.instance_id] = client

    def _add_rs(self, rs: RegisteredResourceServer) -> None:
        self._check(rs.instance_id, rs.jwk)
        self.resource_servers[rs.instance_id] = rs

    def add_client(self, client: RegisteredClient) -> None:
        """Register (or replace) a client and save."""
        self._add_client(client)
        self.save()

    def add_resource_server(self, rs: RegisteredResourceServer, *, persist: bool = True) -> None:
        """Register (or replace) a resource server; ``persist`` False keeps it in memory
        (the repository served by the same process as the AS)."""
        self._add_rs(rs)
        if persist:
            self.save()
        else:
            self._volatile[rs.instance_id] = rs

    def remove_client(self, instance_id: str) -> None:
        """Forget a client and save; raises ``RegistryError`` if unknown."""
        if self.clients.pop(instance_id, None) is None:
            raise RegistryError(f"no client {instance_id!r}")
        self.save()

    def stamp(self) -> int:
        """Changes whenever the file does (its modification time; -1 without a file)."""
        try:
            return self.path.stat().st_mtime_ns if self.path is not None else -1
        except OSError:
            return -1

    def client_by_kid(self, kid: str) -> RegisteredClient | None:
        """The registered client whose key has this ``kid`` (a key presented by value)."""
        for client in self.clients.values():
            if client.kid == kid:
                return client
        return None

    def save(self) -> None:
        """Write the file atomically (temporary file, then ``os.replace``)."""
        if self.path is None:
            return
        data = {
            "clients": [asdict(c) for c in self.clients.values()],
            "resource_servers": [
                asdict(r) for r in self.resource_servers.values()
                if r.instance_id not in self._volatile
            ],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".clients.")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
        os.replace(tmp, self.path)
        self._mtime = self.path.stat().st_mtime_ns
