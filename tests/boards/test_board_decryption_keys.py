"""`suture board provision --kek/--decryption-key` on the simulated board: the keys that open
encrypted releases go into the NVM record enc.keys; a provisioned board takes new keys (a
rotation) without losing its identity; `suture board update` with an encrypted release then
installs on the board whose keys open it and is refused (KeyUnwrapError) where they do not."""

from __future__ import annotations

import json
from pathlib import Path

from board_cli import board_status, cli
from suture import keys
from suture.bundle import build_bundle
from suture.cose.mac0 import SymmetricKey
from suture.sim.testing import encrypt_payload


def test_provisioned_keys_open_encrypted_releases_and_rotate(tmp_path: Path) -> None:
    vendor = keys.generate_private_key("ES256")
    _, public = keys.write_key_pair(vendor, tmp_path / "vendor.pem")
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "main.py").write_text("def main():\n    print('APP one')\n")
    old, new = tmp_path / "old.kek", tmp_path / "new.kek"
    old.write_bytes(bytes(range(16)))
    new.write_bytes(bytes(range(32)))
    device = tmp_path / "dev"
    code, out = cli("board", "provision", "sim", "--device", device, "--app", app_dir,
                     "--vendor-key", public, "--kek", f"{old}#ward-3", "--json")
    assert code == 0, out
    assert json.loads(out)["decryption_keys"] == 1
    device_id = board_status(device)["device_id"]

    payload = build_bundle({"main.py": b"def main():\n    print('APP two')\n"})
    envelope, ciphertext = encrypt_payload(payload, 2, vendor,
                                           [SymmetricKey(new.read_bytes(), b"ward-4")])
    (tmp_path / "app2.suit").write_bytes(envelope)
    (tmp_path / "app2.enc").write_bytes(ciphertext)
    code, out = cli("board", "update", "sim", tmp_path / "app2.suit", tmp_path / "app2.enc",
                     "--device", device)
    assert code == 1
    assert "KeyUnwrapError" in out
    status = board_status(device)
    assert (status["state"], status["installed_version"]) == ("CONFIRMED", 1)

    # the rotation: the group's new KEK, the old one kept; the identity stays
    code, out = cli("board", "provision", "sim", "--device", device, "--app", app_dir,
                     "--vendor-key", public, "--kek", f"{new}#ward-4",
                     "--kek", f"{old}#ward-3")
    assert code == 0, out
    assert "already provisioned" in out
    assert board_status(device)["device_id"] == device_id
    code, out = cli("board", "update", "sim", tmp_path / "app2.suit", tmp_path / "app2.enc",
                     "--device", device)
    assert code == 0, out
    assert "installed version 2" in " ".join(out.split())

    bad = tmp_path / "short.kek"
    bad.write_bytes(b"x" * 20)
    code, out = cli("board", "provision", "sim", "--device", device, "--app", app_dir,
                     "--vendor-key", public, "--kek", str(bad))
    assert code == 2
    assert "16 (A128KW) or 32 (A256KW) bytes" in out
