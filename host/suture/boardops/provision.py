"""Provisioning a board over its REPL.

Provisioning (the factory step, after the firmware is flashed) installs a first application
bundle through the loader (recorded as confirmed) and writes the device identity into the NVM
store: a device key generated on the host, the device id, the scheduler's URL, the credential
the scheduler issued when the device was registered, and the trust anchors (vendor and
scheduler public keys). It is idempotent: a board that already has an identity is left alone,
and is only given a new one with ``force``.

Decommissioning, their undoing, is :mod:`suture.boardops.decommission`.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import ec

from suture import keys
from suture.boardops.errors import BoardOpsError
from suture.boardops.scheduler_client import Credential, SchedulerClient
from suture.boards.schema import Board
from suture.devicectl import device_ops
from suture.devicectl.repl import DeviceError, MicroPythonLink, Progress
from suture.formats import identity
from suture.formats.identity import NET_LINK


class ConnectedBoard(Protocol):
    """A booted board with its REPL: a `BoardSession` (CLI) or a `MicroPythonDut` (HIL)."""

    @property
    def board(self) -> Board: ...

    @property
    def repl(self) -> MicroPythonLink: ...

    @property
    def boot_state(self) -> str: ...




def set_link(session: ConnectedBoard, link: str | None) -> str | None:
    """Write the agent's transport: ``link``, or the board's default when the board has no
    net.link record yet; what was written (None: the board's record was kept)."""
    if link is None:
        keys = device_ops.status(session.repl).get("nvm_keys") or []
        if NET_LINK in keys:
            return None
        link = session.board.default_link
    device_ops.put_nvm(session.repl, [(NET_LINK, link.encode())])
    return link


def set_decryption_keys(session: ConnectedBoard, record: bytes) -> None:
    """Write the keys that open encrypted releases (the whole ``enc.keys`` record: a rotation
    gives the new key and keeps the old one until every release encrypted for it is
    installed)."""
    device_ops.put_nvm(session.repl, [(identity.ENC_KEYS, record)])


class ProvisionError(BoardOpsError):
    """Provisioning was refused or failed; nothing was overwritten."""


@dataclass(frozen=True)
class ProvisionRequest:
    """What to put on the board."""

    app_bundle: bytes
    app_version: int
    vendor_keys: Sequence[bytes]  # 65-byte SEC1 points
    vendor_id: uuid.UUID
    class_id: uuid.UUID
    scheduler_url: str | None = None
    scheduler_keys: Sequence[bytes] = ()
    device_id: str | None = None
    groups: Sequence[str] = ()  # scheduler device groups (rollouts target groups)
    force: bool = False
    link: str | None = None  # the agent's transport (net.link); None: the board's default
    tls_ca: bytes | None = None  # DER CA the https scheduler's certificate chains to (net.ca)
    #: the enc.keys record (suture.formats.identity.encryption_keys): the keys that open
    #: encrypted releases; None: the board's record is left as it is
    decryption_keys: bytes | None = None
    #: install only under the hospital's manifest over the vendor's (NVM trust.hospital); the
    #: scheduler is told the loader processes it (docs/formats/suit-extensions.md)
    require_hospital_manifest: bool = False


@dataclass(frozen=True)
class ProvisionResult:
    """What provisioning did."""

    device_id: str
    changed: bool  # False: the board already had this identity and was left alone
    installed_version: int
    device_key_id: str | None  # SHA-256 of the device public key (hex); None when unchanged
    credential: Credential | None


def _status_or_none(session: ConnectedBoard) -> dict[str, object] | None:
    if session.boot_state == "BLANK":
        return None
    try:
        return device_ops.status(session.repl)
    except DeviceError:
        return None


def _installed(status: dict[str, object] | None) -> int:
    value = status.get("installed_version") if status else 0
    return value if isinstance(value, int) else 0


def new_device_id(board_name: str) -> str:
    """A fresh device id: the board name and 8 random hex digits."""
    return f"{board_name}-{secrets.token_hex(4)}"


def provision(
    session: ConnectedBoard,
    request: ProvisionRequest,
    *,
    scheduler: SchedulerClient | None = None,
    progress: Progress | None = None,
) -> ProvisionResult:
    """Provision the board of ``session`` (see the module's docstring)."""
    status = _status_or_none(session)
    existing = str(status["device_id"]) if status and status.get("device_id") else None
    if existing and not request.force:
        if request.device_id not in (None, existing):
            raise ProvisionError(
                f"the board is already provisioned as {existing}; use --force to give it "
                f"the identity {request.device_id} (its old key and credential are lost)"
            )
        return ProvisionResult(
            device_id=existing,
            changed=False,
            installed_version=_installed(status),
            device_key_id=None,
            credential=None,
        )
    installed = _installed(status)
    if installed == 0 or request.force:
        installed = device_ops.provision_app(
            session.repl,
            request.app_bundle,
            request.app_version,
            blank=session.boot_state == "BLANK",
            progress=progress,
        )
    device_id = request.device_id or existing or new_device_id(session.board.name)
    key = keys.generate_private_key("ES256")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    credential = None
    if scheduler is not None:
        credential = scheduler.register(
            device_id=device_id,
            board=session.board.name,
            vendor_id=str(request.vendor_id),
            class_id=str(request.class_id),
            installed={"app": installed},
            groups=list(request.groups),
            rotate=request.force,
            public_key=keys.public_key_bytes(key.public_key()),
            hospital_manifest=request.require_hospital_manifest,
        )
    records: list[tuple[str, bytes]] = [
        (identity.ID_DEVICE, device_id.encode()),
        (identity.ID_KEY, key.private_numbers().private_value.to_bytes(32, "big")),
        (identity.TRUST_VENDOR, b"".join(request.vendor_keys)),
    ]
    if request.scheduler_url:
        records.append((identity.ID_SCHEDULER_URL, request.scheduler_url.encode()))
    if request.scheduler_keys:
        records.append((identity.TRUST_SCHEDULER, b"".join(request.scheduler_keys)))
    if request.tls_ca is not None:
        records.append((identity.NET_CA, request.tls_ca))
    if credential is not None:
        records.append((identity.ID_CREDENTIAL, credential.secret))
    records.append((NET_LINK, (request.link or session.board.default_link).encode()))
    if request.decryption_keys is not None:
        records.append((identity.ENC_KEYS, request.decryption_keys))
    if request.require_hospital_manifest:
        records.append((identity.TRUST_HOSPITAL, b"\x01"))
    device_ops.put_nvm(session.repl, records)
    return ProvisionResult(
        device_id=device_id,
        changed=True,
        installed_version=installed,
        device_key_id=keys.key_id(key.public_key()).hex(),
        credential=credential,
    )

