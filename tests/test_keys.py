"""suture.keys: generation, PEM files, key ids, refusals with clear messages."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from suture import keys


@pytest.mark.parametrize(("alg", "cose", "raw_len"), [("ES256", -7, 65), ("EdDSA", -8, 32)])
def test_generate_write_load_round_trip(tmp_path: Path, alg: str, cose: int, raw_len: int) -> None:
    key = keys.generate_private_key(alg)
    private, public = keys.write_key_pair(key, tmp_path / "vendor.pem")
    assert private == tmp_path / "vendor.pem"
    assert public == tmp_path / "vendor.pub.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"BEGIN PRIVATE KEY" in private.read_bytes()
    assert b"BEGIN PUBLIC KEY" in public.read_bytes()

    loaded = keys.load_private_key(private)
    pub = keys.load_public_key(public)
    derived = keys.load_public_key(private)
    assert keys.public_key_bytes(pub) == keys.public_key_bytes(key.public_key())
    assert keys.public_key_bytes(derived) == keys.public_key_bytes(pub)
    assert keys.public_key_bytes(loaded.public_key()) == keys.public_key_bytes(pub)
    assert len(keys.public_key_bytes(pub)) == raw_len
    assert keys.cose_algorithm(loaded) == cose
    assert keys.cose_algorithm(pub) == cose


def test_p256_raw_public_key_is_uncompressed_sec1() -> None:
    pub = keys.generate_private_key("ES256").public_key()
    raw = keys.public_key_bytes(pub)
    assert raw[0] == 0x04
    numbers = pub.public_numbers()
    assert raw[1:33] == numbers.x.to_bytes(32, "big")
    assert raw[33:] == numbers.y.to_bytes(32, "big")


def test_key_id_is_sha256_of_der_spki(shared_vectors: Path) -> None:
    pub = keys.load_public_key(shared_vectors / "suit" / "draft-examples-pubkey.pem")
    der = pub.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert keys.key_id(pub) == hashlib.sha256(der).digest()
    assert len(keys.key_id(pub)) == 32
    other = keys.generate_private_key("ES256").public_key()
    assert keys.key_id(other) != keys.key_id(pub)


def test_write_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    out = tmp_path / "k.pem"
    first = keys.generate_private_key("EdDSA")
    keys.write_key_pair(first, out)
    before = out.read_bytes()
    with pytest.raises(keys.KeyFileError, match=r"k\.pem: already exists"):
        keys.write_key_pair(keys.generate_private_key("EdDSA"), out)
    assert out.read_bytes() == before
    keys.write_key_pair(keys.generate_private_key("EdDSA"), out, force=True)
    assert out.read_bytes() != before


def test_write_refuses_when_only_the_public_file_exists(tmp_path: Path) -> None:
    (tmp_path / "k.pub.pem").write_text("keep me")
    with pytest.raises(keys.KeyFileError, match=r"k\.pub\.pem: already exists"):
        keys.write_key_pair(keys.generate_private_key("ES256"), tmp_path / "k.pem")
    assert not (tmp_path / "k.pem").exists()
    assert (tmp_path / "k.pub.pem").read_text() == "keep me"


def test_public_key_path_naming(tmp_path: Path) -> None:
    assert keys.public_key_path(tmp_path / "vendor.pem") == tmp_path / "vendor.pub.pem"
    assert keys.public_key_path(tmp_path / "vendor") == tmp_path / "vendor.pub.pem"


def _pem_private(key: object) -> bytes:
    assert isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def test_refuses_other_curves_and_rsa(tmp_path: Path) -> None:
    p384 = tmp_path / "p384.pem"
    p384.write_bytes(_pem_private(ec.generate_private_key(ec.SECP384R1())))
    with pytest.raises(keys.KeyFileError, match=r"p384\.pem: EC key on curve secp384r1"):
        keys.load_private_key(p384)
    with pytest.raises(keys.KeyFileError, match="secp384r1"):
        keys.load_public_key(p384)
    rsa_file = tmp_path / "rsa.pem"
    rsa_file.write_bytes(_pem_private(rsa.generate_private_key(65537, 2048)))
    with pytest.raises(keys.KeyFileError, match="RSAPrivateKey is not supported"):
        keys.load_private_key(rsa_file)


def test_refuses_encrypted_garbage_missing_and_public_as_private(tmp_path: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    encrypted = tmp_path / "enc.pem"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(keys.KeyFileError, match="encrypted"):
        keys.load_private_key(encrypted)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n")
    with pytest.raises(keys.KeyFileError, match=r"garbage\.pem: not a valid PEM private key"):
        keys.load_private_key(garbage)
    with pytest.raises(keys.KeyFileError, match="no such key file"):
        keys.load_private_key(tmp_path / "missing.pem")
    with pytest.raises(keys.KeyFileError, match="is a directory"):
        keys.load_public_key(tmp_path)
    _, pub = keys.write_key_pair(key, tmp_path / "ok.pem")
    with pytest.raises(keys.KeyFileError, match="not a PEM private key"):
        keys.load_private_key(pub)
    (tmp_path / "text.pem").write_text("hello")
    with pytest.raises(keys.KeyFileError, match="not a PEM public key"):
        keys.load_public_key(tmp_path / "text.pem")


def test_unknown_algorithm_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported signing algorithm 'RS256'"):
        keys.generate_private_key("RS256")
