"""Where MicroPython's source comes from: ``MICROPY_DIR`` when set (a checkout of the tag, e.g.
``git clone --depth 1 --branch v1.28.0 https://github.com/micropython/micropython``), else the
pinned tarball in ``../shared/deps/`` unpacked into the build folder once its SHA-256 matches
``SHA256SUMS``. No MicroPython source is kept in this repository."""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
from pathlib import Path

from suture.firmware.errors import FirmwareError

MICROPYTHON_VERSION = "1.28.0"
#: The MicroPython releases a firmware builds from (each pinned in ``SHA256SUMS``): the current
#: one, and the previous one, whose firmware is the source image of a loader delta.
MICROPYTHON_VERSIONS = ("1.27.0", "1.28.0")
TARBALL = f"micropython-{MICROPYTHON_VERSION}.tar.gz"
#: The commit each release's tag names (``../shared/deps/README.md``).
MICROPYTHON_COMMITS = {
    "1.27.0": "77427c8038f5f00c701ceac933fed969bc9143d6",
    "1.28.0": "2b0015629f67fd186f980079b2e696ad0bc7343c",
}
REPO_ROOT = Path(__file__).resolve().parents[3]


def shared_deps() -> Path:
    """The folder of pinned sources: ``SUTURE_DEPS_DIR``, else ``../shared/deps`` beside the
    repository."""
    env = os.environ.get("SUTURE_DEPS_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "deps"


def pinned_sha256(deps: Path, name: str) -> str:
    """The SHA-256 that ``SHA256SUMS`` pins for ``name``."""
    sums = deps / "SHA256SUMS"
    try:
        text = sums.read_text()
    except OSError as e:
        raise FirmwareError(f"cannot read {sums}: {e.strerror}") from None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == name:
            return parts[0].lower()
    raise FirmwareError(f"{sums} pins no hash for {name}")


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def micropython_tree(work: Path, version: str = MICROPYTHON_VERSION) -> Path:
    """A MicroPython source tree of ``version`` (one of ``MICROPYTHON_VERSIONS``): for the
    current version ``MICROPY_DIR`` when set, else the pinned tarball unpacked into ``work``
    (checked first; unpacked once, reused while its hash stamp matches)."""
    if version not in MICROPYTHON_VERSIONS:
        raise FirmwareError(f"MicroPython {version!r}: the firmware builds from "
                            f"{', '.join(MICROPYTHON_VERSIONS)}")
    env = os.environ.get("MICROPY_DIR")
    if env and version == MICROPYTHON_VERSION:
        tree = Path(env).resolve()
        if not (tree / "py" / "mkenv.mk").is_file():
            raise FirmwareError(f"MICROPY_DIR={env} is not a MicroPython source tree "
                                "(no py/mkenv.mk)")
        return tree
    deps = shared_deps()
    name = f"micropython-{version}.tar.gz"
    tarball = deps / name
    if not tarball.is_file():
        raise FirmwareError(
            f"no MicroPython source: {tarball} is missing. Set MICROPY_DIR to a checkout of "
            f"v{version} (git clone --depth 1 --branch v{version} "
            "https://github.com/micropython/micropython)"
        )
    want = pinned_sha256(deps, name)
    tree = work / f"micropython-{version}"
    stamp = work / f"micropython-{version}.sha256"
    if tree.is_dir() and stamp.is_file() and stamp.read_text().strip() == want:
        return tree
    got = _file_sha256(tarball)
    if got != want:
        raise FirmwareError(f"{tarball} has SHA-256 {got}, SHA256SUMS pins {want}: refusing it")
    if tree.exists():
        shutil.rmtree(tree)
    work.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball) as tar:
        tar.extractall(work, filter="tar")
    if not (tree / "py" / "mkenv.mk").is_file():
        raise FirmwareError(f"{tarball} did not unpack into {tree}")
    stamp.write_text(want + "\n")
    return tree


def version_env(tree: Path, version: str) -> dict[str, str]:
    """What MicroPython's ``py/makeversionhdr.py`` puts in the firmware (its banner,
    ``sys.version``), fixed: the release's tag and commit, whatever git repository the tree
    sits in (unpacked under this repository's build folder, ``git describe`` would name this
    repository's commit), and the date of the release's ``py/mpconfig.h`` as the build date,
    so that the same sources build the same bytes on any day."""
    return {
        "MICROPY_GIT_TAG": f"v{version}",
        "MICROPY_GIT_HASH": MICROPYTHON_COMMITS[version][:10],
        "SOURCE_DATE_EPOCH": str(int((tree / "py" / "mpconfig.h").stat().st_mtime)),
    }
