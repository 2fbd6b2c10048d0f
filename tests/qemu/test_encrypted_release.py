"""An encrypted release on the QEMU firmware. MicroPython's ports/qemu has no AES for
`cryptolib` (axTLS and mbedTLS are not in the release tarball the firmware is built from: see
docs/formats/suit-encryption.md), so the loader there cannot decrypt: it refuses the release
with EncryptionUnsupported (81) before anything is written, and the application stays."""

from __future__ import annotations

import pytest
from suture.cose.mac0 import SymmetricKey
from suture.qemu import QemuDevice, QemuError
from suture.sim.testing import encrypt_payload, example_app

from .conftest import Firmware

pytestmark = pytest.mark.qemu


def test_firmware_without_cryptolib_refuses_an_encrypted_release(firmware: Firmware,
                                                                 device: QemuDevice) -> None:
    assert "cryptolib" not in device.exec("help('modules')")
    before = device.report()
    envelope, ciphertext = encrypt_payload(example_app(2), 2, firmware.vendor_key,
                                           [SymmetricKey(bytes(16), b"ward-3")])
    with pytest.raises(QemuError, match="EncryptionUnsupported"):
        device.stage(envelope, ciphertext)
    after = device.report()
    assert after == before
    assert (after["state"], after["installed_version"]) == ("CONFIRMED", 1)
