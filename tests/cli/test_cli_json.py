"""What the --json of the offline commands prints (keygen, bundle, suit, image), `suture bundle
build|inspect` end to end, and `suit verify --json` on failure: a JSON error object on stdout,
the one line on stderr, the exit code."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from suture import keys
from suture.bundle import build_bundle_from_dir, parse_bundle
from suture.cli.main import app
from suture.image import parse_header
from typer.testing import CliRunner, Result

runner = CliRunner()


def cli(*args: str | Path) -> Result:
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def _app(folder: Path) -> Path:
    (folder / "lib").mkdir(parents=True)
    (folder / "main.py").write_text("def main():\n    print('pump')\n")
    (folder / "lib" / "pump.py").write_text("RATE = 5\n")
    (folder / "notes.txt").write_bytes(b"\x00\x01 data")
    return folder


def _description(folder: Path, bundle: Path, seq: int = 4) -> Path:
    toml = folder / "release.toml"
    toml.write_text(f'sequence-number = {seq}\n'
                    'vendor-id = "fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe"\n'
                    'class-id = "1492af14-2569-5e48-bf42-9b2d51f2ab45"\n\n'
                    '[[components]]\nid = ["app"]\n'
                    f'file = "{bundle.name}"\nuri = "https://updates.example/{bundle.name}"\n')
    return toml


def test_bundle_build_is_the_folders_canonical_bundle(tmp_path: Path) -> None:
    source = _app(tmp_path / "app")
    result = cli("bundle", "build", source, "--out", tmp_path / "a.bundle")
    assert result.exit_code == 0, result.output
    data = (tmp_path / "a.bundle").read_bytes()
    assert data == build_bundle_from_dir(source)
    digest = hashlib.sha256(data).hexdigest()
    assert result.stdout.strip() == f"wrote {tmp_path / 'a.bundle'} (3 files, {len(data)} " \
        f"bytes, sha256 {digest})"
    again = json.loads(cli("bundle", "build", source, "-o", tmp_path / "b.bundle",
                           "--json").stdout)
    assert again["sha256"] == digest  # the same folder, the same bytes
    assert [f["path"] for f in again["files"]] == ["lib/pump.py", "main.py", "notes.txt"]
    shown = json.loads(cli("bundle", "inspect", tmp_path / "a.bundle", "--json").stdout)
    assert shown == {**again, "bundle": str(tmp_path / "a.bundle")}
    assert "lib/pump.py" in cli("bundle", "inspect", tmp_path / "a.bundle").stdout


def test_bundle_build_compiles_with_mpy(tmp_path: Path) -> None:
    source = _app(tmp_path / "app")
    result = cli("bundle", "build", source, "--out", tmp_path / "a.bundle", "--mpy", "--json")
    assert result.exit_code == 0, result.output
    files = parse_bundle((tmp_path / "a.bundle").read_bytes())
    assert sorted(files) == ["lib/pump.mpy", "main.py", "notes.txt"]  # main.py stays source
    assert files["lib/pump.mpy"][:1] == b"M"  # MicroPython's .mpy header


@pytest.mark.parametrize(("make", "code", "message"), [
    (lambda d: None, 2, "no such folder"),
    (lambda d: d.mkdir(), 1, "holds no files"),
    (lambda d: (d.mkdir(), (d / ".hidden").write_text("x")), 1, "starting with '.'"),
    (lambda d: (d.mkdir(), (d / "bad name.py").write_text("x")), 1, "only [A-Za-z0-9._-/]"),
])
def test_bundle_build_refuses_in_one_line(tmp_path: Path, make: object, code: int,
                                          message: str) -> None:
    source = tmp_path / "app"
    make(source)  # type: ignore[operator]
    result = cli("bundle", "build", source, "--out", tmp_path / "x.bundle")
    assert result.exit_code == code, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr
    assert not (tmp_path / "x.bundle").exists()


def test_bundle_inspect_refuses_what_is_not_a_bundle(tmp_path: Path) -> None:
    (tmp_path / "x.bundle").write_bytes(b"SUTB\x02\x00\x00\x00")
    result = cli("bundle", "inspect", tmp_path / "x.bundle")
    assert result.exit_code == 1
    assert "not a version-1 bundle" in result.stderr


def test_a_release_from_bundle_build_verifies(tmp_path: Path) -> None:
    """bundle build, then suit create and sign: the envelope names the bundle's digest."""
    made = json.loads(cli("keygen", "--out", tmp_path / "vendor.pem", "--json").stdout)
    assert made["alg"] == "ES256"
    assert made["public_key"] == str(tmp_path / "vendor.pub.pem")
    cli("bundle", "build", _app(tmp_path / "app"), "--out", tmp_path / "app-4.bundle")
    toml = _description(tmp_path, tmp_path / "app-4.bundle")
    created = json.loads(cli("suit", "create", toml, "--unsigned", "--out",
                             tmp_path / "u.suit", "--json").stdout)
    assert created["signed"] is False
    signed = json.loads(cli("suit", "sign", tmp_path / "u.suit", "--key",
                            tmp_path / "vendor.pem", "--out", tmp_path / "app-4.suit",
                            "--json").stdout)
    assert signed["signer_key_id"] == made["key_id"]
    verdict = json.loads(cli("suit", "verify", tmp_path / "app-4.suit", "--key",
                             tmp_path / "vendor.pub.pem", "--json").stdout)
    assert verdict["valid"] is True
    digest = hashlib.sha256((tmp_path / "app-4.bundle").read_bytes()).hexdigest()
    assert verdict["components"][0]["image_digest"]["hex"] == digest


def test_suit_verify_json_on_failure(tmp_path: Path) -> None:
    cli("keygen", "--out", tmp_path / "vendor.pem")
    cli("keygen", "--out", tmp_path / "other.pem")
    (tmp_path / "app.bin").write_bytes(b"firmware")
    toml = _description(tmp_path, tmp_path / "app.bin")
    cli("suit", "create", toml, "--key", tmp_path / "vendor.pem", "--out", tmp_path / "a.suit")
    result = cli("suit", "verify", tmp_path / "a.suit", "--key", tmp_path / "other.pub.pem",
                 "--json")
    assert result.exit_code == 1
    answer = json.loads(result.stdout)
    assert answer["valid"] is False
    assert answer["exit_code"] == 1
    assert answer["error_type"] == "SuitError"
    assert answer["error"].startswith(f"{tmp_path / 'a.suit'}: invalid: ")
    assert result.stderr.strip() == f"error: {answer['error']}"
    result = cli("suit", "verify", tmp_path / "missing.suit", "--key",
                 tmp_path / "other.pub.pem", "--json")
    assert result.exit_code == 2
    answer = json.loads(result.stdout)
    assert (answer["valid"], answer["exit_code"]) == (False, 2)
    assert "No such file" in answer["error"]


def test_image_commands_print_json(tmp_path: Path) -> None:
    key = keys.generate_private_key("ES256")
    private, public = keys.write_key_pair(key, tmp_path / "loader.pem")
    (tmp_path / "body.bin").write_bytes(bytes(range(256)) * 4)
    signed = json.loads(cli("image", "sign", tmp_path / "body.bin", "--key", private, "--out",
                            tmp_path / "loader.img", "--version", "1.2.3",
                            "--security-counter", "4", "--board", "qemu-mps2-an385",
                            "--json").stdout)
    assert (signed["load_address"], signed["body_bytes"]) == ("0x21020200", 1024)
    shown = json.loads(cli("image", "inspect", tmp_path / "loader.img", "--key", public,
                           "--json").stdout)
    assert (shown["version"], shown["security_counter"], shown["verified"]) == ("1.2.3", 4, True)
    assert parse_header((tmp_path / "loader.img").read_bytes()).load_address == 0x21020200
    record = json.loads(cli("image", "provision", "--key", public, "--out",
                            tmp_path / "key.bin", "--json").stdout)
    assert record["bytes"] == 80
    assert record["key_id"] == keys.key_id(key.public_key()).hex()
