"""Building blocks for tests, the HIL plugin and the ward simulator: application bundles for the
example application, envelopes signed for a simulated device, and ready-provisioned devices."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suture import keys, suit
from suture.bundle import build_bundle
from suture.cose.encrypt import RecipientKey
from suture.keys import PrivateKey
from suture.sim.board import BoardGeometry
from suture.sim.device import DeviceIdentity, SimBoard, SimDevice
from suture.sim.errors import SimError

VENDOR_ID = uuid.UUID("fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe")
CLASS_ID = uuid.UUID("1492af14-2569-5e48-bf42-9b2d51f2ab45")


def example_app(version: int, *, filler: int = 0, migrations: str | None = None) -> bytes:
    """The bundle of a tiny application that prints its version when it boots.

    ``filler`` adds a data file of that many bytes; ``migrations`` the source of an
    ``nvm_migrations.py`` (a ``migrate(key, schema, value)`` function)."""
    files = {
        "main.py": (f"VERSION = {version}\n\ndef main():\n    print('APP', VERSION)\n").encode(),
        "lib/util.py": f"def version():\n    return {version}\n".encode(),
    }
    if filler:
        files["data/blob.bin"] = bytes((version + i) & 0xFF for i in range(filler))
    if migrations is not None:
        files["nvm_migrations.py"] = migrations.encode()
    return build_bundle(files)


def sign_payload(
    payload: bytes,
    sequence_number: int,
    key: PrivateKey,
    *,
    vendor_id: uuid.UUID = VENDOR_ID,
    class_id: uuid.UUID = CLASS_ID,
    uri: str = "https://updates.example/app.bundle",
    component: str = "app",
    sbom: bytes | None = None,
) -> bytes:
    """A signed SUIT envelope for ``payload`` as one component: ``["app"]`` (an application
    bundle) or ``["loader"]`` (a loader image); with ``sbom``, the manifest binds that
    CycloneDX SBOM (key -257)."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "app.bundle").write_bytes(payload)
        description: dict[str, object] = {
            "sequence-number": sequence_number,
            "vendor-id": str(vendor_id),
            "class-id": str(class_id),
            "components": [{"id": [component], "file": "app.bundle", "uri": uri}],
        }
        if sbom is not None:
            (Path(tmp) / "sbom.json").write_bytes(sbom)
            description["sbom"] = "sbom.json"
        return suit.create_envelope(description, key, base_dir=Path(tmp))


def encrypt_payload(
    payload: bytes,
    sequence_number: int,
    key: PrivateKey,
    recipients: Sequence[RecipientKey],
    *,
    alg: str = "A128GCM",
    uri: str = "https://updates.example/app.bundle",
    component: str = "app",
    sbom: bytes | None = None,
) -> tuple[bytes, bytes]:
    """A signed SUIT envelope for ``payload`` encrypted with ``alg`` (A128GCM, A256GCM,
    A128CTR, A256CTR) for ``recipients`` (key-encryption keys, device public keys), in the
    shape the device stages (docs/formats/suit-encryption.md), and the ciphertext to serve;
    with ``sbom``, the manifest binds that CycloneDX SBOM."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "app.bundle").write_bytes(payload)
        description: dict[str, object] = {
            "sequence-number": sequence_number,
            "vendor-id": str(VENDOR_ID),
            "class-id": str(CLASS_ID),
            "components": [{"id": [component], "file": "app.bundle", "uri": uri,
                            "encryption": alg}],
        }
        if sbom is not None:
            (Path(tmp) / "sbom.json").write_bytes(sbom)
            description["sbom"] = "sbom.json"
        release = suit.create_release(description, key, base_dir=Path(tmp),
                                      recipients=recipients)
    return release.envelope, release.encrypted_payloads[uri]


def identity_for(*public_keys: bytes, max_trial_boots: int = 3) -> DeviceIdentity:
    """The example vendor/class identity trusting ``public_keys`` (65-byte SEC1 points)."""
    return DeviceIdentity(
        vendor_id=VENDOR_ID.bytes,
        class_id=CLASS_ID.bytes,
        keys=tuple(public_keys),
        max_trial_boots=max_trial_boots,
    )


@dataclass
class Provisioned:
    """A simulated device with a first application installed and confirmed."""

    board: SimBoard
    device: SimDevice
    key: PrivateKey


def provision(
    workdir: Path,
    geometry: BoardGeometry,
    key: PrivateKey | None = None,
    *,
    version: int = 1,
    app: bytes | None = None,
    heapsize: int | None = None,
    lib: Path | None = None,
) -> Provisioned:
    """Create a device folder, provision ``app`` (default: example_app(version)) as confirmed."""
    key = key or keys.generate_private_key("ES256")
    ident = identity_for(keys.public_key_bytes(key.public_key()))
    board = SimBoard(workdir, geometry, ident, heapsize=heapsize)
    board.create()
    device = SimDevice(board, lib=lib)
    name = board.put_file("provision.bundle", app if app is not None else example_app(version))
    result = device.run(["provision", name, str(version)])
    if not result.ok:
        raise RuntimeError(f"provisioning failed: {result.stdout}{result.stderr}")
    return Provisioned(board, device, key)


def run_script(
    source: str,
    *args: str,
    micropypath: list[Path],
    cwd: Path,
    heapsize: str = "96K",
    timeout: float = 300,
) -> Any:
    """Run MicroPython ``source`` on the unix port with ``micropypath`` importable; the script
    prints one line ``RESULT <json>``, which is decoded and returned.

    Raises ``SimError`` with the process's output when no such line appears.
    """
    script = cwd / "script.py"
    script.write_text(source)
    env = dict(os.environ, MICROPYPATH=":".join(str(p) for p in micropypath))
    micropython = Path(sys.executable).parent / "micropython"
    proc = subprocess.run(
        [str(micropython), "-X", f"heapsize={heapsize}", str(script), *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout, check=False,
    )
    for line in proc.stdout.split("\n"):
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise SimError(f"no RESULT line (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


CHUNKED_STAGING = """
from loader import api
from loader.simcli import FileStream
with open(args[0], "rb") as f:
    env = f.read()
st = api.begin_staging(env)
off = st.offset
s = FileStream(args[1])
s.pos = off
buf = bytearray(700)
mv = memoryview(buf)
while True:
    n = s.readinto(buf)
    if not n:
        break
    st.write(mv[:n])
s.close()
st.finish(install=False)
out["offset"] = off
out["encrypted"] = getattr(st, "encrypted", False)
"""


def chunked_staging(board: SimBoard, envelope: bytes, payload: bytes) -> list[list[str]]:
    """Place ``envelope``, ``payload`` and a script on the board that stages them the agent's
    way (api.begin_staging, written in 700-byte pieces from the offset the loader gives, resumed
    from the journal's checkpoint after a cut). Returns the device action that runs it; its
    result holds ``offset`` (where the staging began) and ``encrypted``."""
    board.put_file("env.bin", envelope)
    board.put_file("payload.bin", payload)
    board.put_file("stage.py", CHUNKED_STAGING.encode())
    return [["exec", "stage.py", "env.bin", "payload.bin"]]
