"""The scheduler's operator API, as provisioning and decommissioning use it.

- :meth:`SchedulerClient.register` enrolls a device (``POST /api/v1/devices``), with the public
  key of the device key provisioning generated, and returns the device secret the scheduler
  issues once. A device that is already registered keeps its
  record; with ``rotate=True`` its credential is rotated instead and the new secret returned.
- :meth:`SchedulerClient.decommission` records a decommissioned device
  (``POST /api/v1/devices/{id}/decommission``, role device_manager): the scheduler revokes its
  credential, so the erased board's secret stops working, drops it from unfinished rollouts and
  never targets it again; the record and its history (the audit trail) stay.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import httpx

from suture.boardops.errors import BoardOpsError


class SchedulerError(BoardOpsError):
    """The scheduler refused a request or could not be reached."""


class DeviceExistsError(SchedulerError):
    """The device id is already registered."""


@dataclass(frozen=True)
class Credential:
    """A device secret as issued by the scheduler (shown once)."""

    device_id: str
    secret: bytes
    generation: int
    fingerprint: str


class SchedulerClient:
    """Operator calls to one scheduler; ``client`` may be any httpx.Client (tests pass the
    scheduler app's TestClient)."""

    def __init__(self, base_url: str, token: str, *, client: httpx.Client | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.client = client or httpx.Client(timeout=30.0)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        url = f"{self.base_url}{path}"
        try:
            response = self.client.request(
                method, url, json=body, headers={"Authorization": f"Bearer {self.token}"}
            )
        except httpx.HTTPError as exc:
            raise SchedulerError(f"cannot reach the scheduler at {self.base_url}: {exc}") from None
        if response.status_code == 409:
            raise DeviceExistsError(self._detail(response))
        if response.status_code >= 400:
            raise SchedulerError(
                f"the scheduler refused {method} {path} ({response.status_code}): "
                f"{self._detail(response)}"
            )
        return response.json()

    @staticmethod
    def _detail(response: httpx.Response) -> str:
        try:
            data = response.json()
        except ValueError:
            return response.text[:200]
        if isinstance(data, dict):
            for key in ("detail", "error", "message"):
                if key in data:
                    return str(data[key])[:300]
        return str(data)[:300]

    @staticmethod
    def _credential(data: dict[str, Any]) -> Credential:
        return Credential(
            device_id=str(data["device_id"]),
            secret=bytes.fromhex(str(data["secret_hex"])),
            generation=int(data["generation"]),
            fingerprint=str(data["fingerprint"]),
        )

    def register(
        self,
        *,
        device_id: str,
        board: str,
        vendor_id: str,
        class_id: str,
        installed: dict[str, int],
        groups: list[str] | None = None,
        rotate: bool = False,
        public_key: bytes | None = None,
        hospital_manifest: bool = False,
    ) -> Credential:
        """Enroll the device and return its secret; an existing record is an error unless
        ``rotate`` (then the credential is rotated and the new secret returned). With
        ``public_key`` (the 65-byte point of the key provisioning generated), the scheduler
        takes only reports signed by that key from the device."""
        body: dict[str, Any] = {
            "id": device_id,
            "board": board,
            "vendor_id": vendor_id,
            "class_id": class_id,
            "installed": installed,
            "groups": list(groups or []),
        }
        if public_key is not None:
            body["public_key"] = public_key.hex()
        if hospital_manifest:
            body["hospital_manifest"] = True
        try:
            data = self._call("POST", "/api/v1/devices", body)
        except DeviceExistsError as exc:
            if "decommissioned" in str(exc):
                raise SchedulerError(f"device {device_id}: {exc}") from None
            if not rotate:
                raise DeviceExistsError(
                    f"device {device_id} is already registered with the scheduler "
                    "(use --force to issue it a new credential)"
                ) from None
            return self.rotate_credential(device_id, public_key=public_key)
        return self._credential(data["credential"])

    def rotate_credential(self, device_id: str, public_key: bytes | None = None) -> Credential:
        """Issue a new secret; the previous one stops working. With ``public_key``, the
        device's new key is registered with it."""
        body = {"public_key": public_key.hex()} if public_key is not None else None
        return self._credential(self._call("POST", f"/api/v1/devices/{device_id}/credential",
                                           body))

    def device(self, device_id: str) -> dict[str, Any]:
        """The device record."""
        data = self._call("GET", f"/api/v1/devices/{device_id}")
        if not isinstance(data, dict):
            raise SchedulerError(f"unexpected answer for device {device_id}")
        return data

    def decommission(self, device_id: str, reason: str = "board erased",
                     record: bytes | None = None) -> dict[str, Any]:
        """Mark the device decommissioned at the scheduler (its credential revoked), with the
        signed decommission record when there is one; the device record."""
        body: dict[str, Any] = {"reason": reason}
        if record is not None:
            body["record"] = base64.b64encode(record).decode()
        updated = self._call("POST", f"/api/v1/devices/{device_id}/decommission", body)
        return dict(updated)
