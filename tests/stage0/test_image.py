"""Loader images on the host: sign, parse, verify, the CLI, and a fuzzed header parser."""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from suture.cli.main import app
from suture.image import (
    HEADER_SIZE,
    ImageFormatError,
    ImageVerifyError,
    parse_header,
    provision_record,
    sign_image,
    verify_image,
)
from suture.keys import PrivateKey, generate_private_key, key_id, write_key_pair
from typer.testing import CliRunner

BODY = bytes(range(256)) * 10


def _sign(key: PrivateKey, body: bytes = BODY, counter: int = 7) -> bytes:
    return sign_image(body, private_key=key, version=(1, 2, 3), security_counter=counter,
                      load_address=0x20200)


def test_sign_then_verify(signing_key: PrivateKey) -> None:
    image = _sign(signing_key)
    hdr = verify_image(image, signing_key.public_key())
    assert len(image) == HEADER_SIZE + len(BODY)
    assert hdr.version == (1, 2, 3)
    assert hdr.security_counter == 7
    assert hdr.load_address == 0x20200
    assert hdr.image_size == len(BODY)
    assert hdr.digest == hashlib.sha256(BODY).digest()
    assert hdr.key_id == key_id(signing_key.public_key())[:8]
    assert struct.unpack_from("<I", image, 0)[0] == 0x52444C53


def test_verify_refuses_tampering(signing_key: PrivateKey, other_key: PrivateKey) -> None:
    image = bytearray(_sign(signing_key))
    with pytest.raises(ImageVerifyError, match="signature"):
        verify_image(bytes(image), other_key.public_key())
    image[HEADER_SIZE + 3] ^= 1
    with pytest.raises(ImageVerifyError, match="digest"):
        verify_image(bytes(image), signing_key.public_key())
    with pytest.raises(ImageVerifyError, match="truncated"):
        verify_image(_sign(signing_key)[:-1], signing_key.public_key())
    raised = bytearray(_sign(signing_key))
    raised[12] = 99  # security counter: signed
    with pytest.raises(ImageVerifyError, match="signature"):
        verify_image(bytes(raised), signing_key.public_key())


def test_ed25519_key_refused() -> None:
    with pytest.raises(ValueError, match="P-256"):
        _sign(generate_private_key("EdDSA"))
    with pytest.raises(ValueError, match="P-256"):
        provision_record(generate_private_key("EdDSA").public_key())


def test_provision_record_layout(signing_key: PrivateKey) -> None:
    rec = provision_record(signing_key.public_key())
    assert len(rec) == 80
    nums = signing_key.public_key().public_numbers()
    assert rec[8:40] == nums.x.to_bytes(32, "big")
    assert rec[40:72] == nums.y.to_bytes(32, "big")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600) | st.binary(min_size=600, max_size=600).map(
    lambda b: struct.pack("<IHH", 0x52444C53, 1, 512) + b[8:24] + struct.pack("<I", 1) + b[28:68]
    + bytes(380) + b[448:]))
def test_parse_header_refuses_or_round_trips(data: bytes) -> None:
    try:
        hdr = parse_header(data)
    except ImageFormatError:
        return
    assert hdr.to_bytes() == data[:HEADER_SIZE]


@settings(max_examples=200, deadline=None)
@given(st.integers(0, HEADER_SIZE - 1), st.integers(1, 255))
def test_any_header_change_is_caught(signing_key: PrivateKey, pos: int, flip: int) -> None:
    image = bytearray(_sign(signing_key))
    image[pos] ^= flip
    with pytest.raises((ImageFormatError, ImageVerifyError)):
        verify_image(bytes(image), signing_key.public_key())


def test_cli_sign_inspect_provision(signing_key: PrivateKey, tmp_path: Path) -> None:
    private, public = write_key_pair(signing_key, tmp_path / "loader.pem")
    body = tmp_path / "body.bin"
    body.write_bytes(os.urandom(3000))
    out = tmp_path / "image.bin"
    runner = CliRunner()
    res = runner.invoke(app, ["image", "sign", str(body), "--key", str(private), "--out",
                              str(out), "--version", "2.0.1", "--security-counter", "5",
                              "--load-address", "0x00020200"])
    assert res.exit_code == 0, res.output
    verify_image(out.read_bytes(), signing_key.public_key())
    res = runner.invoke(app, ["image", "inspect", str(out), "--key", str(public)])
    assert res.exit_code == 0, res.output
    assert "2.0.1" in res.output
    assert "verified" in res.output
    res = runner.invoke(app, ["image", "provision", "--key", str(public), "--out",
                              str(tmp_path / "key.bin")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "key.bin").read_bytes() == provision_record(signing_key.public_key())


def test_cli_errors_are_one_line(signing_key: PrivateKey, other_key: PrivateKey,
                                 tmp_path: Path) -> None:
    private, _ = write_key_pair(signing_key, tmp_path / "a.pem")
    _, other_public = write_key_pair(other_key, tmp_path / "b.pem")
    runner = CliRunner()
    res = runner.invoke(app, ["image", "sign", str(tmp_path / "missing.bin"), "--key",
                              str(private), "--out", str(tmp_path / "x.bin"), "--version",
                              "1.0.0", "--security-counter", "1", "--load-address", "0"])
    assert res.exit_code == 2  # a missing input file
    assert "error:" in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "x.bin").exists()
    res = runner.invoke(app, ["image", "sign", str(private), "--key", str(private), "--out",
                              str(tmp_path / "x.bin"), "--version", "one", "--security-counter",
                              "1", "--load-address", "0"])
    assert res.exit_code == 2
    assert not (tmp_path / "x.bin").exists()
    image = tmp_path / "i.bin"
    image.write_bytes(_sign(signing_key))
    res = runner.invoke(app, ["image", "inspect", str(image), "--key", str(other_public)])
    assert res.exit_code == 1
    assert "signature does not verify" in res.output
    image.write_bytes(b"not an image")
    res = runner.invoke(app, ["image", "inspect", str(image)])
    assert res.exit_code == 1
    assert "shorter than" in res.output


@pytest.mark.parametrize(("text", "address"), [
    ("0x00020200", 0x20200), ("20200", 0x20200), ("0X21020200", 0x21020200),
    ("21020200", 0x21020200), ("ffffffff", 0xFFFFFFFF),
])
def test_cli_load_address_is_hexadecimal(signing_key: PrivateKey, tmp_path: Path, text: str,
                                         address: int) -> None:
    private, _ = write_key_pair(signing_key, tmp_path / "loader.pem")
    body = tmp_path / "body.bin"
    body.write_bytes(BODY)
    out = tmp_path / "image.bin"
    res = CliRunner().invoke(app, ["image", "sign", str(body), "--key", str(private), "--out",
                                   str(out), "--version", "1.0.0", "--security-counter", "1",
                                   "--load-address", text])
    assert res.exit_code == 0, res.output
    assert parse_header(out.read_bytes()).load_address == address


@pytest.mark.parametrize("text", ["0x", "0x100000000", "12g4", "-20200", "0o777"])
def test_cli_load_address_refuses_what_is_not_a_32_bit_hex_address(
        signing_key: PrivateKey, tmp_path: Path, text: str) -> None:
    private, _ = write_key_pair(signing_key, tmp_path / "loader.pem")
    body = tmp_path / "body.bin"
    body.write_bytes(BODY)
    res = CliRunner().invoke(app, ["image", "sign", str(body), "--key", str(private), "--out",
                                   str(tmp_path / "x.bin"), "--version", "1.0.0",
                                   "--security-counter", "1", f"--load-address={text}"])
    assert res.exit_code == 2, res.output
    assert "hexadecimal" in res.output
    assert not (tmp_path / "x.bin").exists()


def test_cli_load_address_is_checked_against_the_boards_flash_map(
        signing_key: PrivateKey, tmp_path: Path) -> None:
    private, _ = write_key_pair(signing_key, tmp_path / "loader.pem")
    body = tmp_path / "body.bin"
    body.write_bytes(BODY)
    out = tmp_path / "image.bin"
    base = ["image", "sign", str(body), "--key", str(private), "--out", str(out), "--version",
            "1.0.0", "--security-counter", "1", "--board", "qemu-mps2-an385"]
    runner = CliRunner()
    res = runner.invoke(app, [*base, "--load-address", "20200"])  # the slot's offset, not address
    assert res.exit_code == 2
    assert "is not where qemu-mps2-an385 runs a loader image: 0x21020200" in res.output
    assert not out.exists()
    res = runner.invoke(app, [*base, "--load-address", "0x21020200", "--json"])
    assert res.exit_code == 0, res.output
    assert parse_header(out.read_bytes()).load_address == 0x21020200
    res = runner.invoke(app, base)  # the board's address by default
    assert res.exit_code == 0, res.output
    assert parse_header(out.read_bytes()).load_address == 0x21020200
    assert "load address 0x21020200" in res.output
    res = runner.invoke(app, [*base[:-2], "--board", "pyboard-stm32f405", "--load-address",
                              "08020200"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, [*base[:-2], "--board", "esp32-s3", "--load-address", "0"])
    assert res.exit_code == 2
    assert "no loader region" in res.output
    res = runner.invoke(app, [*base[:-2], "--board", "no-such-board"])
    assert res.exit_code == 2
    assert "no board named 'no-such-board'" in res.output
    assert "Traceback" not in res.output
    res = runner.invoke(app, base[:-2])
    assert res.exit_code == 2
    assert "--load-address ADDRESS or --board NAME" in res.output
