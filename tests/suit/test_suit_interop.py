"""Interop with pycose: suture's envelopes verify with pycose, pycose's signatures with suture."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import cbor2
import pytest
from pycose.algorithms import EdDSA, Es256
from pycose.headers import Algorithm
from pycose.keys import CoseKey
from pycose.messages import Sign1Message
from suture import keys
from suture.suit import (
    SuitSignatureError,
    create_envelope,
    create_unsigned_envelope,
    verify_envelope,
)


def _pycose_sign1(encoded: bytes) -> Any:
    # pycose 1.1.0's CoseMessage.decode expects cbor2 < 6 container types (list, dict).
    item = cbor2.loads(encoded)
    assert item.tag == 18
    protected, unprotected, payload, signature = item.value
    return Sign1Message.from_cose_obj(
        [protected, dict(unprotected), payload, signature], allow_unknown_attributes=True
    )


def _auth(envelope: bytes) -> tuple[Any, list[bytes]]:
    outer = cbor2.loads(envelope)
    return outer.value, list(cbor2.loads(outer.value[2]))


def test_pycose_verifies_suture_envelopes(
    tmp_path: Path, description: dict[str, Any], signing_key: keys.PrivateKey
) -> None:
    envelope = create_envelope(description, signing_key, base_dir=tmp_path)
    outer, auth = _auth(envelope)
    # The digest, recomputed with hashlib over the bstr-wrapped manifest.
    assert cbor2.loads(auth[0]) == [-16, hashlib.sha256(cbor2.dumps(outer[3])).digest()]
    message = _pycose_sign1(auth[1])
    message.key = CoseKey.from_pem_public_key(
        keys.public_key_pem(signing_key.public_key()).decode()
    )
    assert message.payload is None
    assert message.verify_signature(detached_payload=auth[0])
    assert not message.verify_signature(detached_payload=auth[0][:-1] + b"\x00")


def test_pycose_verifies_the_draft_examples(suit_vectors: Path) -> None:
    pem = (suit_vectors / "draft-examples-pubkey.pem").read_text()
    for name in ("draft-example0", "draft-example1", "draft-example2", "draft-example2-severed"):
        _, auth = _auth((suit_vectors / f"{name}.cbor").read_bytes())
        message = _pycose_sign1(auth[1])
        message.key = CoseKey.from_pem_public_key(pem)
        assert message.verify_signature(detached_payload=auth[0]), name


def _envelope_signed_by_pycose(unsigned: bytes, key: keys.PrivateKey) -> bytes:
    outer, auth = _auth(unsigned)
    alg = Es256 if keys.cose_algorithm(key) == -7 else EdDSA
    message = Sign1Message(phdr={Algorithm: alg}, payload=None)
    message.key = CoseKey.from_pem_private_key(keys.private_key_pem(key).decode())
    block = message.encode(detached_payload=auth[0])
    rebuilt = dict(outer)
    rebuilt[2] = cbor2.dumps([auth[0], block])
    return cbor2.dumps(cbor2.CBORTag(107, rebuilt))


def test_suture_verifies_envelopes_signed_by_pycose(
    tmp_path: Path, description: dict[str, Any], signing_key: keys.PrivateKey
) -> None:
    unsigned = create_unsigned_envelope(description, base_dir=tmp_path)
    signed = _envelope_signed_by_pycose(unsigned, signing_key)
    env = verify_envelope(signed, signing_key.public_key())
    assert env.signer_key_ids == [keys.key_id(signing_key.public_key())]
    other = keys.generate_private_key(keys.key_alg_name(signing_key)).public_key()
    with pytest.raises(SuitSignatureError):
        verify_envelope(signed, other)


def test_suture_verifies_a_pycose_signature_with_the_draft_key(suit_vectors: Path) -> None:
    """Re-sign the draft's unsigned example 0 with pycose and the draft's private key."""
    key = keys.load_private_key(suit_vectors / "draft-examples-privkey.pem")
    unsigned = (suit_vectors / "draft-example0-unsigned.cbor").read_bytes()
    signed = _envelope_signed_by_pycose(unsigned, key)
    pub = keys.load_public_key(suit_vectors / "draft-examples-pubkey.pem")
    assert verify_envelope(signed, pub).manifest.sequence_number == 0
