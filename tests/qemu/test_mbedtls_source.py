"""The mbed TLS source the QEMU firmware's AES is built from (suture.firmware.mbedtls): Debian's
source package, pinned by version and by the tarball's SHA-256. (The fetch through apt itself
runs in every firmware build: tests/qemu/conftest.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from suture.firmware.errors import FirmwareError
from suture.firmware.mbedtls import MBEDTLS_VERSION, TARBALL, TARBALL_SHA256, mbedtls_tree


def test_a_tarball_that_is_not_the_pinned_one_is_refused_and_removed(tmp_path: Path) -> None:
    downloads = tmp_path / "debian-src"
    downloads.mkdir()
    (downloads / TARBALL).write_bytes(b"not mbed TLS")
    with pytest.raises(FirmwareError, match="refusing it"):
        mbedtls_tree(tmp_path)
    assert not (downloads / TARBALL).exists()
    assert not (tmp_path / f"mbedtls-{MBEDTLS_VERSION}").exists()


def test_an_unpacked_tree_is_reused_while_its_stamp_names_the_pinned_tarball(
        tmp_path: Path) -> None:
    tree = tmp_path / f"mbedtls-{MBEDTLS_VERSION}"
    tree.mkdir()
    stamp = tmp_path / f"mbedtls-{MBEDTLS_VERSION}.sha256"
    stamp.write_text(TARBALL_SHA256 + "\n")
    assert mbedtls_tree(tmp_path) == tree
    # a stamp of another tarball: unpacked again, from a tarball that must pass the check
    stamp.write_text("0" * 64 + "\n")
    (tmp_path / "debian-src").mkdir()
    (tmp_path / "debian-src" / TARBALL).write_bytes(b"tampered")
    with pytest.raises(FirmwareError, match="refusing it"):
        mbedtls_tree(tmp_path)
