"""Encrypted releases on the QEMU firmware: its `cryptolib` is MicroPython's, over mbed TLS's
AES (Debian's source of mbed TLS 2.28.3: suture.firmware.mbedtls), so the frozen loader
decrypts the ciphertext while it stages it, with the key-encryption key provisioned in NVM, and
installs the plaintext; a release no provisioned key opens is refused before anything is
written (docs/formats/suit-encryption.md)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from suture.cose.mac0 import SymmetricKey
from suture.formats import identity
from suture.qemu import QemuDevice, QemuError
from suture.sim.testing import encrypt_payload, example_app

from .conftest import Firmware

pytestmark = pytest.mark.qemu
KEK = bytes(range(16))
KEK256 = bytes(range(32, 64))


def _enrol_keys(device: QemuDevice, *entries: tuple[int, bytes, bytes]) -> None:
    device.enrol({identity.ENC_KEYS: identity.encryption_keys(entries)})


def _staging(device: QemuDevice) -> bytes:
    for r in device.board.external_flash.regions:
        if r.name == "staging":
            return device.external(int(r.offset), int(r.size))
    raise AssertionError("the board has no staging region")


def test_encrypted_releases_install_their_plaintext(firmware: Firmware,
                                                    device: QemuDevice) -> None:
    # cryptolib's AES agrees with the host's (its CTR mode too, though the loader runs its own
    # counter mode and GHASH over AES-ECB blocks: loader/loader/aesstream.py)
    iv = bytes(range(100, 116))
    data = bytes(range(256)) * 3
    want = Cipher(algorithms.AES(KEK256), modes.CTR(iv)).encryptor().update(data)
    got = device.exec(f"import cryptolib\nprint(cryptolib.aes({KEK256!r}, cryptolib.MODE_CTR, "
                      f"{iv!r}).encrypt({data!r}).hex())")
    assert got.strip() == want.hex()
    _enrol_keys(device, (identity.ENC_KIND_KEK, b"ward-3", KEK),
                (identity.ENC_KIND_KEK, b"ward-4", KEK256))
    for version, alg, kek, kid in ((2, "A128CTR", KEK, b"ward-3"),
                                   (3, "A256GCM", KEK256, b"ward-4")):
        app = example_app(version, filler=6000)
        envelope, ciphertext = encrypt_payload(app, version, firmware.vendor_key,
                                               [SymmetricKey(kek, kid)], alg=alg)
        assert app[:64] not in ciphertext
        device.stage(envelope, ciphertext)
        report = device.report()
        assert (report["state"], report["version"]) == ("STAGED", version), (alg, report)
        assert _staging(device)[: len(app)] == app  # the plaintext, decrypted while staged
        boots = device.reset()
        assert f"APP {version}" in boots[-1].console, alg
        report = device.report()
        assert (report["state"], report["installed_version"]) == ("TRIAL", version)
        device.exec("from loader import api\napi.confirm()")


def test_a_release_no_provisioned_key_opens_is_refused_before_anything_is_written(
        firmware: Firmware, device: QemuDevice) -> None:
    _enrol_keys(device, (identity.ENC_KIND_KEK, b"ward-3", KEK[::-1]))
    before = device.report()
    staging = _staging(device)
    envelope, ciphertext = encrypt_payload(example_app(2), 2, firmware.vendor_key,
                                           [SymmetricKey(KEK, b"ward-3")], alg="A256GCM")
    with pytest.raises(QemuError, match="KeyUnwrapError"):
        device.stage(envelope, ciphertext)
    assert device.report() == before
    assert _staging(device) == staging
    assert (before["state"], before["installed_version"]) == ("CONFIRMED", 1)
