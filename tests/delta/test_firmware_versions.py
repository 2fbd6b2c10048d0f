"""The firmware builds from either pinned MicroPython release (the pair of a loader delta):
each version's tarball is checked against its own line of SHA256SUMS and unpacked into its own
folder; MICROPY_DIR stands for the current release only; another version is refused."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest
from suture.firmware.build import firmware_folder
from suture.firmware.errors import FirmwareError
from suture.firmware.source import (
    MICROPYTHON_VERSION,
    MICROPYTHON_VERSIONS,
    micropython_tree,
    version_env,
)


def _tarball(deps: Path, version: str, *, pin: bytes | None = None) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = f"# MicroPython {version}\n".encode()
        info = tarfile.TarInfo(f"micropython-{version}/py/mkenv.mk")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    name = f"micropython-{version}.tar.gz"
    (deps / name).write_bytes(buf.getvalue())
    digest = hashlib.sha256(pin if pin is not None else buf.getvalue()).hexdigest()
    with (deps / "SHA256SUMS").open("a") as f:
        f.write(f"{digest}  {name}\n")


def test_each_version_unpacks_from_its_own_pinned_tarball(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deps = tmp_path / "deps"
    deps.mkdir()
    for version in MICROPYTHON_VERSIONS:
        _tarball(deps, version)
    monkeypatch.setenv("SUTURE_DEPS_DIR", str(deps))
    # a checkout of the current release stands for it, not for the previous one
    checkout = tmp_path / "checkout"
    (checkout / "py").mkdir(parents=True)
    (checkout / "py" / "mkenv.mk").write_text("")
    monkeypatch.setenv("MICROPY_DIR", str(checkout))
    assert micropython_tree(tmp_path / "work") == checkout.resolve()
    old = micropython_tree(tmp_path / "work", "1.27.0")
    assert old == tmp_path / "work" / "micropython-1.27.0"
    assert (old / "py" / "mkenv.mk").read_text() == "# MicroPython 1.27.0\n"
    monkeypatch.delenv("MICROPY_DIR")
    new = micropython_tree(tmp_path / "work", MICROPYTHON_VERSION)
    assert (new / "py" / "mkenv.mk").read_text() == f"# MicroPython {MICROPYTHON_VERSION}\n"


def test_a_tarball_that_is_not_the_pinned_one_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deps = tmp_path / "deps"
    deps.mkdir()
    _tarball(deps, "1.27.0", pin=b"another tarball")
    monkeypatch.setenv("SUTURE_DEPS_DIR", str(deps))
    with pytest.raises(FirmwareError, match="refusing"):
        micropython_tree(tmp_path / "work", "1.27.0")
    assert not (tmp_path / "work" / "micropython-1.27.0").exists()


def test_an_unknown_version_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FirmwareError, match=r"1\.26\.0"):
        micropython_tree(tmp_path, "1.26.0")
    assert not tmp_path.joinpath("micropython-1.26.0").exists()


def test_the_previous_release_builds_beside_the_current_one() -> None:
    root = Path("build/firmware")
    assert firmware_folder(root, "qemu-mps2-an385") == root / "qemu-mps2-an385"
    assert firmware_folder(root, "qemu-mps2-an385", "1.27.0") == (
        root / "qemu-mps2-an385-micropython-1.27.0")


def test_the_firmware_names_the_release_not_the_enclosing_repository(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deps = tmp_path / "deps"
    deps.mkdir()
    _tarball(deps, "1.27.0")
    monkeypatch.setenv("SUTURE_DEPS_DIR", str(deps))
    tree = micropython_tree(tmp_path / "work", "1.27.0")
    (tree / "py" / "mpconfig.h").write_text("")
    os.utime(tree / "py" / "mpconfig.h", (1765291456, 1765291456))
    assert version_env(tree, "1.27.0") == {
        "MICROPY_GIT_TAG": "v1.27.0", "MICROPY_GIT_HASH": "77427c8038",
        "SOURCE_DATE_EPOCH": "1765291456"}
