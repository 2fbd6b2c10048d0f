"""Where the QEMU firmware's AES comes from: Debian's source package of mbed TLS, pinned to
``2.28.3-1`` (bookworm). ``apt-get source --download-only`` fetches its upstream tarball and
checks it against the package's signed ``.dsc``; the tarball's SHA-256 is pinned here as well,
and it is unpacked into the build folder once. Only ``library/aes.c`` (and the
``platform_util.c`` it calls) is compiled, with the board's ``mbedtls_config.h``: MicroPython's
``cryptolib`` over it (``firmware/qemu/board/mpconfigboard.mk``).

``tools/install-system-deps.sh`` adds the ``deb-src`` entry apt needs (bookworm, main)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
from pathlib import Path

from suture.firmware.errors import FirmwareError

MBEDTLS_VERSION = "2.28.3"
#: The Debian source package's version (``apt-get source mbedtls=...``).
DEBIAN_VERSION = f"{MBEDTLS_VERSION}-1"
TARBALL = f"mbedtls_{MBEDTLS_VERSION}.orig.tar.gz"
TARBALL_SHA256 = "3b4953aa55a681e084d31892d9904cc5328d6b4958ea57b90ae4b4f94ae69a8d"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_tarball(downloads: Path) -> Path:
    """The pinned tarball in ``downloads``, fetched with ``apt-get source`` when missing;
    a tarball whose SHA-256 is not the pinned one is refused (and removed)."""
    tarball = downloads / TARBALL
    if not tarball.is_file():
        downloads.mkdir(parents=True, exist_ok=True)
        try:
            proc = subprocess.run(
                ["apt-get", "source", "--download-only", "-qq", f"mbedtls={DEBIAN_VERSION}"],
                cwd=downloads, capture_output=True, text=True, check=False)
        except OSError as e:
            raise FirmwareError(f"cannot run apt-get to fetch mbed TLS: {e.strerror}") from None
        if proc.returncode != 0 or not tarball.is_file():
            raise FirmwareError(
                f"apt-get source mbedtls={DEBIAN_VERSION} failed (exit {proc.returncode}): "
                f"{proc.stderr.strip()[-600:]}\nThe firmware's AES is built from Debian's "
                "source of mbed TLS: run tools/install-system-deps.sh, which adds the deb-src "
                "entry apt needs")
    got = _sha256(tarball)
    if got != TARBALL_SHA256:
        tarball.unlink()
        raise FirmwareError(f"{TARBALL} has SHA-256 {got}, pinned {TARBALL_SHA256}: "
                            "refusing it")
    return tarball


def mbedtls_tree(work: Path) -> Path:
    """mbed TLS's source tree, unpacked into ``work`` once (reused while its stamp names the
    pinned tarball)."""
    tree = work / f"mbedtls-{MBEDTLS_VERSION}"
    stamp = work / f"mbedtls-{MBEDTLS_VERSION}.sha256"
    if tree.is_dir() and stamp.is_file() and stamp.read_text().strip() == TARBALL_SHA256:
        return tree
    tarball = fetch_tarball(work / "debian-src")
    if tree.exists():
        shutil.rmtree(tree)
    unpack = work / f"mbedtls-{MBEDTLS_VERSION}.unpack"
    if unpack.exists():
        shutil.rmtree(unpack)
    unpack.mkdir(parents=True)
    with tarfile.open(tarball) as tar:
        tar.extractall(unpack, filter="tar")
    tops = [p for p in unpack.iterdir() if p.is_dir()]
    if len(tops) != 1 or not (tops[0] / "library" / "aes.c").is_file():
        raise FirmwareError(f"{tarball} did not unpack into one mbed TLS tree")
    tops[0].rename(tree)
    shutil.rmtree(unpack)
    stamp.write_text(TARBALL_SHA256 + "\n")
    return tree
