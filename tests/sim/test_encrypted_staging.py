"""Encrypted releases on the simulated board (loader/loader/encrypted.py): the loader decrypts
the ciphertext while it stages it, with the key-encryption key provisioned in NVM (`enc.keys`),
installs the plaintext the manifest's digest names, and refuses a release its keys do not open
before anything is written."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from suture.cose.encrypt import EcdhRecipientKey
from suture.cose.mac0 import SymmetricKey
from suture.formats import identity
from suture.keys import generate_private_key
from suture.sim.journal import State
from suture.sim.testing import Provisioned, encrypt_payload, example_app

KEK = bytes(range(16))
KEK256 = bytes(range(32, 64))


def provision_keys(p: Provisioned, *entries: tuple[int, bytes, bytes]) -> None:
    record = identity.encryption_keys(entries)
    r = p.device.run(["nvm-put", identity.ENC_KEYS, record.hex(), "1"])
    assert r.ok, r.stdout + r.stderr


def stage_encrypted(p: Provisioned, version: int, envelope: bytes, ciphertext: bytes):  # type: ignore[no-untyped-def]
    env = p.board.put_file(f"v{version}.suit", envelope)
    pay = p.board.put_file(f"v{version}.enc", ciphertext)
    return p.device.run(["stage", env, pay])


@pytest.mark.parametrize(("alg", "kek"), [("A128GCM", KEK), ("A256GCM", KEK256),
                                          ("A128CTR", KEK), ("A256CTR", KEK256)])
def test_an_encrypted_release_installs_its_plaintext(
    make_device: Callable[..., Provisioned], alg: str, kek: bytes
) -> None:
    p = make_device()
    provision_keys(p, (identity.ENC_KIND_KEK, b"other", KEK256[::-1]),
                   (identity.ENC_KIND_KEK, b"ward-3", kek))
    v2 = example_app(2, filler=9000)
    envelope, ciphertext = encrypt_payload(v2, 2, p.key, [SymmetricKey(kek, b"ward-3")],
                                           alg=alg)
    assert v2[:64] not in ciphertext
    r = stage_encrypted(p, 2, envelope, ciphertext)
    assert r.ok, r.stdout + r.stderr
    cur = p.board.current_record()
    assert cur is not None
    assert (cur.state, cur.size, cur.digest) == (State.STAGED, len(v2), hashlib.sha256(v2).digest())
    assert p.board.region_bytes("staging")[: len(v2)] == v2
    r = p.device.run(["boot"], ["report"])
    assert r.ok, r.stdout + r.stderr
    rep = r.report()
    assert (rep["state"], rep["installed_version"]) == ("TRIAL", 2)
    assert rep["installed_digest"] == hashlib.sha256(v2).hexdigest()


def test_ecdh_es_opens_with_the_devices_p256_key(make_device: Callable[..., Provisioned]) -> None:
    p = make_device()
    device_key = generate_private_key("ES256")
    scalar = device_key.private_numbers().private_value.to_bytes(32, "big")  # type: ignore[union-attr]
    provision_keys(p, (identity.ENC_KIND_ECDH, b"pump-7", scalar))
    v2 = example_app(2, filler=500)
    envelope, ciphertext = encrypt_payload(
        v2, 2, p.key, [EcdhRecipientKey(device_key.public_key(), b"pump-7")],  # type: ignore[arg-type]
        alg="A128CTR")
    r = stage_encrypted(p, 2, envelope, ciphertext)
    assert r.ok, r.stdout + r.stderr
    assert p.board.region_bytes("staging")[: len(v2)] == v2


@pytest.mark.parametrize("keys", ["wrong", "none"])
def test_a_release_no_provisioned_key_opens_is_refused_before_anything_is_written(
    make_device: Callable[..., Provisioned], keys: str
) -> None:
    p = make_device()
    if keys == "wrong":
        provision_keys(p, (identity.ENC_KIND_KEK, b"ward-3", KEK[::-1]))
    before = p.board.read_journal()
    staging = p.board.region_bytes("staging")
    envelope, ciphertext = encrypt_payload(example_app(2), 2, p.key,
                                           [SymmetricKey(KEK, b"ward-3")])
    r = stage_encrypted(p, 2, envelope, ciphertext)
    assert r.error is not None
    assert r.error[0] == "KeyUnwrapError", r.error
    assert p.board.read_journal() == before
    assert p.board.region_bytes("staging") == staging
    rep = p.device.run(["boot"], ["report"]).report()
    assert (rep["state"], rep["installed_version"]) == ("CONFIRMED", 1)


def test_a_ciphertext_that_is_not_the_signed_one_is_never_staged(
    make_device: Callable[..., Provisioned]
) -> None:
    p = make_device()
    provision_keys(p, (identity.ENC_KIND_KEK, b"ward-3", KEK))
    envelope, ciphertext = encrypt_payload(example_app(2), 2, p.key,
                                           [SymmetricKey(KEK, b"ward-3")])
    bad = bytearray(ciphertext)
    bad[100] ^= 1
    r = stage_encrypted(p, 2, envelope, bytes(bad))
    assert r.error is not None
    assert r.error[0] == "DigestError", r.error
    cur = p.board.current_record()
    assert cur is not None
    assert (cur.state, cur.progress) == (State.FAILED, 31)
    rep = p.device.run(["boot"], ["report"]).report()
    assert (rep["state"], rep["installed_version"]) == ("FAILED", 1)
