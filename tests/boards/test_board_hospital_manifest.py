"""`suture board provision --require-hospital-manifest` on the simulated board: the NVM record
trust.hospital is written, and the board then refuses a vendor's envelope that comes without
the hospital's manifest (`suture board update`: HospitalManifestRequired, code 84) and keeps
its application; a board provisioned without it installs the same release."""

from __future__ import annotations

from pathlib import Path

from board_cli import board_status, cli
from suture import keys
from suture.bundle import build_bundle
from suture.sim.testing import sign_payload


def test_a_board_that_requires_the_hospitals_manifest_refuses_the_vendors_alone(
        tmp_path: Path) -> None:
    vendor = keys.generate_private_key("ES256")
    _, public = keys.write_key_pair(vendor, tmp_path / "vendor.pem")
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "main.py").write_text("def main():\n    print('APP one')\n")
    payload = build_bundle({"main.py": b"def main():\n    print('APP two')\n"})
    (tmp_path / "app2.suit").write_bytes(sign_payload(payload, 2, vendor))
    (tmp_path / "app2.bundle").write_bytes(payload)
    for name, flags, want in (("strict", ["--require-hospital-manifest"], 1), ("plain", [], 0)):
        device = tmp_path / name
        code, out = cli("board", "provision", "sim", "--device", device, "--app", app_dir,
                         "--vendor-key", public, *flags)
        assert code == 0, out
        code, out = cli("board", "update", "sim", tmp_path / "app2.suit",
                         tmp_path / "app2.bundle", "--device", device)
        assert code == want, out
        status = board_status(device)
        if want:
            assert "HospitalManifestRequired" in out
            assert (status["state"], status["installed_version"]) == ("CONFIRMED", 1)
        else:
            assert status["installed_version"] == 2
