"""create -> sign -> verify -> inspect, for ES256 and EdDSA; tampering with any byte fails."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any
from uuid import UUID

import cbor2
import pytest
from suit_samples import CLASS_ID, VENDOR_ID
from suture import keys
from suture.suit import (
    SuitAuthenticationError,
    SuitDigestError,
    SuitError,
    SuitSeverError,
    SuitSignatureError,
    create_envelope,
    create_unsigned_envelope,
    decode_envelope,
    envelope_summary,
    sever_envelope,
    sign_envelope,
    verify_envelope,
)


def test_round_trip(
    tmp_path: Path, description: dict[str, Any], signing_key: keys.PrivateKey
) -> None:
    data = create_envelope(description, signing_key, base_dir=tmp_path)
    env = verify_envelope(data, signing_key.public_key())
    assert env.verified
    assert env.signer_key_ids == [keys.key_id(signing_key.public_key())]
    assert env.authentication.blocks[0].alg == keys.cose_algorithm(signing_key)
    manifest = env.manifest
    assert manifest.sequence_number == 7
    assert manifest.reference_uri == "https://updates.example/pump/7"
    assert manifest.components == [[b"app", b"\x00"], [b"cfg"]]
    app, cfg = manifest.component_info
    app_image = (tmp_path / "app.bin").read_bytes()
    assert app.image_digest is not None
    assert app.image_digest.value == hashlib.sha256(app_image).digest()
    assert app.image_size == len(app_image)
    assert app.uri == "https://updates.example/pump/app-7.bin"
    assert app.vendor_id == UUID(VENDOR_ID)
    assert app.class_id == UUID(CLASS_ID)
    assert cfg.uri == "#636667"
    assert cfg.parameters["component-slot"] == 1
    assert env.integrated_payloads == {"#636667": (tmp_path / "cfg.bin").read_bytes()}
    assert set(env.severable_members) == {"install", "text"}
    assert manifest.text is not None
    assert manifest.text["en-US"].manifest == {
        "manifest-description": "Infusion pump firmware 2.4.1"
    }
    assert manifest.text["en-US"].components == [
        ([b"app", b"\x00"], {"component-version": "2.4.1", "vendor-name": "Example Medical"})
    ]
    assert manifest.invoke is not None
    assert [c.name for c in manifest.invoke.commands] == [
        "directive-set-component-index",
        "directive-invoke",
    ]

    summary = envelope_summary(env)
    assert json.loads(json.dumps(summary)) == summary
    assert summary["sequence_number"] == 7
    assert summary["signer_key_id"] == keys.key_id(signing_key.public_key()).hex()
    assert summary["components"][0]["image_digest"]["hex"] == hashlib.sha256(app_image).hexdigest()
    assert summary["components"][0]["image_size"] == len(app_image)
    assert summary["components"][0]["uri"] == "https://updates.example/pump/app-7.bin"
    assert summary["severed"] == []


def test_es256_envelope_has_the_draft_examples_shape(
    tmp_path: Path, description: dict[str, Any]
) -> None:
    """What a small ES256 verifier on the device expects: the layout of the draft examples."""
    key = keys.generate_private_key("ES256")
    data = create_envelope(description, key, base_dir=tmp_path)
    outer = cbor2.loads(data)
    assert outer.tag == 107
    assert list(outer.value)[:2] == [2, 3]
    auth = cbor2.loads(outer.value[2])
    assert len(auth) == 2
    digest = cbor2.loads(auth[0])
    assert digest[0] == -16
    assert digest[1] == hashlib.sha256(cbor2.dumps(outer.value[3])).digest()
    sign1 = cbor2.loads(auth[1])
    assert sign1.tag == 18
    protected, unprotected, payload, signature = sign1.value
    assert cbor2.loads(protected) == {1: -7}
    assert dict(unprotected) == {}
    assert payload is None
    assert len(signature) == 64


def test_unsigned_then_signed(tmp_path: Path, description: dict[str, Any]) -> None:
    unsigned = create_unsigned_envelope(description, base_dir=tmp_path)
    key = keys.generate_private_key("ES256")
    with pytest.raises(SuitAuthenticationError, match="no authentication block"):
        verify_envelope(unsigned, key.public_key())
    signed = sign_envelope(unsigned, key)
    assert verify_envelope(signed, key.public_key()).verified
    assert decode_envelope(signed).manifest_bstr == decode_envelope(unsigned).manifest_bstr


def test_two_signers_and_key_rollover(tmp_path: Path, description: dict[str, Any]) -> None:
    old = keys.generate_private_key("ES256")
    new = keys.generate_private_key("EdDSA")
    data = create_envelope(description, old, base_dir=tmp_path)
    both = sign_envelope(data, new, append=True, kid=keys.key_id(new.public_key()))
    env = decode_envelope(both)
    assert [b.alg for b in env.authentication.blocks] == [-7, -8]
    assert env.signer_key_ids == [keys.key_id(new.public_key())]
    assert verify_envelope(both, old.public_key()).signer_key_ids == [keys.key_id(old.public_key())]
    assert verify_envelope(both, new.public_key()).signer_key_ids == [keys.key_id(new.public_key())]
    assert len(verify_envelope(both, [old.public_key(), new.public_key()]).signer_key_ids) == 2
    replaced = sign_envelope(both, new)
    with pytest.raises(SuitSignatureError):
        verify_envelope(replaced, old.public_key())


def test_sever_keeps_the_signature_valid(tmp_path: Path, description: dict[str, Any]) -> None:
    key = keys.generate_private_key("ES256")
    data = create_envelope(description, key, base_dir=tmp_path)
    severed = sever_envelope(data, ["text"])
    env = verify_envelope(severed, key.public_key())
    assert env.severed == ["text"]
    assert set(env.severable_members) == {"install"}
    assert len(severed) < len(data)
    assert sever_envelope(severed, ["text"]) == severed  # already severed: nothing to do
    both = sever_envelope(severed, ["install"])
    assert verify_envelope(both, key.public_key()).severed == ["install", "text"]


def test_sever_refusals(tmp_path: Path, description: dict[str, Any], suit_vectors: Path) -> None:
    key = keys.generate_private_key("ES256")
    data = create_envelope(description, key, base_dir=tmp_path)
    with pytest.raises(SuitSeverError, match="cannot sever 'manifest'"):
        sever_envelope(data, ["manifest"])
    with pytest.raises(SuitSeverError, match="manifest has no payload-fetch"):
        sever_envelope(data, ["payload-fetch"])
    inline = (suit_vectors / "draft-example1.cbor").read_bytes()
    with pytest.raises(SuitSeverError, match="'install': it is inline in the manifest"):
        sever_envelope(inline, ["install"])


def _regions(data: bytes) -> dict[str, tuple[int, int]]:
    """Byte ranges in the envelope of the manifest, the signature and each severable member."""
    env = decode_envelope(data)
    regions = {"manifest": _find(data, env.manifest_bstr)}
    block = env.authentication.blocks[0].encoded
    signature = cbor2.loads(block).value[3]
    regions["signature"] = _find(data, signature)
    regions["manifest digest"] = _find(data, env.authentication.digest.value)
    for name, member in env.severable_members.items():
        regions[name] = _find(data, member)
    return regions


def _find(data: bytes, part: bytes) -> tuple[int, int]:
    start = data.index(part)
    assert data.count(part) == 1
    return start, start + len(part)


def test_tampering_with_any_byte_fails(
    tmp_path: Path,
    description: dict[str, Any],
    signing_key: keys.PrivateKey,
    figures: Any,
) -> None:
    data = create_envelope(description, signing_key, base_dir=tmp_path)
    pub = signing_key.public_key()
    regions = _regions(data)
    assert set(regions) == {"manifest", "signature", "manifest digest", "install", "text"}
    tried = 0
    for name, (start, end) in regions.items():
        for i in range(start, end):
            for flip in (0x01, 0x80):
                tampered = bytearray(data)
                tampered[i] ^= flip
                with pytest.raises(SuitError):
                    verify_envelope(bytes(tampered), pub)
                tried += 1
        # The failure names the right check for a change that keeps the structure intact.
        if name in ("install", "text"):
            tampered = bytearray(data)
            tampered[end - 1] ^= 0x01
            with pytest.raises(
                SuitDigestError, match=re.escape(f"({name}): does not match its digest")
            ):
                verify_envelope(bytes(tampered), pub)
    figures(f"tampered envelopes rejected ({keys.key_alg_name(signing_key)})", tried)


@pytest.mark.parametrize(("alg_name", "alg"), [("ES256", -9), ("EdDSA", -19)])
def test_fully_specified_algorithms_verify(
    tmp_path: Path, description: dict[str, Any], alg_name: str, alg: int
) -> None:
    key = keys.generate_private_key(alg_name)
    data = create_envelope(description, key, base_dir=tmp_path, alg=alg)
    env = verify_envelope(data, key.public_key())
    assert env.authentication.blocks[0].alg == alg
    assert envelope_summary(env)["authentication"][0]["alg"] == (
        "ESP256" if alg == -9 else "Ed25519"
    )
