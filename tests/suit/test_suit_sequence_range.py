"""The sequence number's range is u32 on every layer: the device's journal keeps it in 32 bits
(docs/formats/journal.md), so the host neither builds nor verifies an envelope whose number does
not fit (2^32 + 3 would be recorded as 3 and break anti-rollback)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cbor2
import pytest
import yaml
from suit_samples import sample_description, write_images
from suture import keys
from suture.cli import suit_cmd
from suture.cose import sign1
from suture.suit import (
    SuitDescriptionError,
    SuitLimitError,
    create_envelope,
    decode_envelope,
    limits,
    verify_envelope,
)
from suture.suit.digest import digest_wrapped, encode_digest
from suture.suit.encoder import encode_auth_wrapper, encode_envelope
from typer.testing import CliRunner

U32_MAX = 2**32 - 1


@pytest.fixture
def key() -> keys.PrivateKey:
    return keys.generate_private_key("ES256")


@pytest.fixture
def images(tmp_path: Path) -> Path:
    write_images(tmp_path)
    return tmp_path


def _description(seq: int) -> dict[str, Any]:
    d = sample_description()
    d["sequence-number"] = seq
    return d


def _signed_with_sequence(key: keys.PrivateKey, base: bytes, seq: int) -> bytes:
    """base with its manifest's sequence number replaced and signed again, below the builder."""
    outer = dict(cbor2.loads(base).value)
    manifest = dict(cbor2.loads(outer[3]))
    manifest[2] = seq
    manifest_bstr = cbor2.dumps(manifest)
    digest = encode_digest(digest_wrapped(manifest_bstr))
    auth = encode_auth_wrapper(digest, [sign1(None, key, detached_payload=digest)])
    members = {name: outer[k] for name, k in (("install", 20), ("text", 23)) if k in outer}
    payloads = {k: v for k, v in outer.items() if isinstance(k, str)}
    return encode_envelope(auth_wrapper=auth, manifest=manifest_bstr, members=members,
                           integrated_payloads=payloads)


def test_limit_is_u32() -> None:
    assert limits.MAX_SEQUENCE_NUMBER == U32_MAX


def test_u32_max_is_created_and_verified(key: keys.PrivateKey, images: Path) -> None:
    env = create_envelope(_description(U32_MAX), key, base_dir=images)
    assert verify_envelope(env, key.public_key()).manifest.sequence_number == U32_MAX


@pytest.mark.parametrize("seq", [2**32, 2**32 + 3, 2**64 - 1])
def test_create_refuses_beyond_u32(key: keys.PrivateKey, images: Path, seq: int) -> None:
    with pytest.raises(SuitDescriptionError, match=rf"sequence-number: {seq} .*4294967295"):
        create_envelope(_description(seq), key, base_dir=images)


@pytest.mark.parametrize("seq", [2**32, 2**32 + 3, 2**64 - 1])
def test_verify_refuses_beyond_u32(key: keys.PrivateKey, images: Path, seq: int) -> None:
    base = create_envelope(_description(7), key, base_dir=images)
    env = _signed_with_sequence(key, base, seq)
    with pytest.raises(SuitLimitError, match=rf"sequence-number\): {seq} .*4294967295"):
        verify_envelope(env, key.public_key())
    with pytest.raises(SuitLimitError):
        decode_envelope(env)
    # the same construction with the largest allowed number verifies
    ok = _signed_with_sequence(key, base, U32_MAX)
    assert verify_envelope(ok, key.public_key()).manifest.sequence_number == U32_MAX


def test_cli_create_and_verify_refuse_beyond_u32(key: keys.PrivateKey, images: Path) -> None:
    import typer

    app = typer.Typer()
    suit_cmd.register(app)
    runner = CliRunner()
    (images / "update.yaml").write_text(yaml.safe_dump(_description(2**32 + 3)))
    result = runner.invoke(app, ["suit", "create", str(images / "update.yaml"), "--unsigned",
                                 "--out", str(images / "o.suit")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "4294967299" in result.stderr
    assert not (images / "o.suit").exists()

    base = create_envelope(_description(7), key, base_dir=images)
    (images / "big.suit").write_bytes(_signed_with_sequence(key, base, 2**32 + 3))
    (images / "vendor.pub.pem").write_bytes(keys.public_key_pem(key.public_key()))
    result = runner.invoke(app, ["suit", "verify", str(images / "big.suit"), "--key",
                                 str(images / "vendor.pub.pem")])
    assert result.exit_code != 0
    assert "4294967299" in result.output + result.stderr
