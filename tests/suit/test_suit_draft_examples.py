"""The draft's example envelopes (tests/vectors/suit), handled as their README says."""

from __future__ import annotations

import hashlib
from pathlib import Path
from uuid import UUID

import cbor2
import pytest
from suture import keys
from suture.suit import (
    SuitAuthenticationError,
    decode_envelope,
    envelope_summary,
    sever_envelope,
    verify_envelope,
)

IMAGE_DIGEST = bytes.fromhex("00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210")
VENDOR = UUID("fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe")
CLASS = UUID("1492af14-2569-5e48-bf42-9b2d51f2ab45")


def _read(suit_vectors: Path, name: str) -> bytes:
    return (suit_vectors / f"{name}.cbor").read_bytes()


@pytest.mark.parametrize("name", ["draft-example0", "draft-example1", "draft-example2"])
def test_signed_examples_verify_and_decode(
    suit_vectors: Path, example_pubkey: keys.PublicKey, name: str
) -> None:
    env = verify_envelope(_read(suit_vectors, name), example_pubkey)
    assert env.verified
    assert env.tagged
    assert env.signer_key_ids == [keys.key_id(example_pubkey)]
    assert [b.alg for b in env.authentication.blocks] == [-7]
    manifest = env.manifest
    assert manifest.version == 1
    assert manifest.components == [[b"\x00"]]
    (info,) = manifest.component_info
    assert info.image_digest is not None
    assert info.image_digest.algorithm == -16
    assert info.image_digest.value == IMAGE_DIGEST
    assert info.image_size == 34768
    assert info.vendor_id == VENDOR
    assert info.class_id == CLASS
    names = [c.name for c in manifest.shared_sequence.commands] if manifest.shared_sequence else []
    assert names == [
        "directive-override-parameters",
        "condition-vendor-identifier",
        "condition-class-identifier",
    ]


def test_example0_fields(suit_vectors: Path, example_pubkey: keys.PublicKey) -> None:
    env = verify_envelope(_read(suit_vectors, "draft-example0"), example_pubkey)
    assert env.manifest.sequence_number == 0
    assert env.manifest.component_info[0].uri is None
    assert env.manifest.validate is not None
    (image_match,) = env.manifest.validate.commands
    assert (image_match.name, image_match.kind, image_match.argument) == (
        "condition-image-match",
        "condition",
        15,
    )
    assert env.manifest.invoke is not None
    assert env.manifest.invoke.commands[0].name == "directive-invoke"


def test_example1_fields(suit_vectors: Path, example_pubkey: keys.PublicKey) -> None:
    env = verify_envelope(_read(suit_vectors, "draft-example1"), example_pubkey)
    assert env.manifest.sequence_number == 1
    assert env.manifest.component_info[0].uri == "http://example.com/file.bin"
    assert env.manifest.install is not None
    assert [c.name for c in env.manifest.install.commands] == [
        "directive-override-parameters",
        "directive-fetch",
        "condition-image-match",
    ]
    assert env.manifest.severable_digests == {}


def test_example2_severable_members_present_and_matching(
    suit_vectors: Path, example_pubkey: keys.PublicKey
) -> None:
    data = _read(suit_vectors, "draft-example2")
    env = verify_envelope(data, example_pubkey)
    manifest = env.manifest
    assert manifest.sequence_number == 2
    assert manifest.reference_uri == "https://git.io/JJYoj"
    assert manifest.component_info[0].uri == "http://example.com/very/long/path/to/file/file.bin"
    assert set(env.severable_members) == {"install", "text"}
    assert env.severed == []
    for name, member in env.severable_members.items():
        digest = manifest.severable_digests[name]
        assert hashlib.sha256(cbor2.dumps(member)).digest() == digest.value
    assert manifest.text is not None
    text = manifest.text["en-US"]
    assert text.manifest["manifest-description"].startswith("## Example 2")
    assert text.components == [
        (
            [b"\x00"],
            {
                "vendor-domain": "arm.com",
                "component-description": (
                    "This component is a demonstration. The digest is a sample pattern, "
                    "not a real one."
                ),
            },
        )
    ]
    summary = envelope_summary(env)
    assert summary["severable"] == {
        "dependency-resolution": "absent",
        "payload-fetch": "absent",
        "candidate-verification": "absent",
        "install": "severable",
        "text": "severable",
    }


def test_example2_severed_verifies_with_digests_only(
    suit_vectors: Path, example_pubkey: keys.PublicKey
) -> None:
    env = verify_envelope(_read(suit_vectors, "draft-example2-severed"), example_pubkey)
    assert env.severed == ["install", "text"]
    assert env.severable_members == {}
    assert env.manifest.install is None
    assert env.manifest.text is None
    assert set(env.manifest.severable_digests) == {"install", "text"}
    assert env.manifest.component_info[0].uri is None


def test_severing_example2_gives_the_severed_example(
    suit_vectors: Path, example_pubkey: keys.PublicKey
) -> None:
    severed = sever_envelope(_read(suit_vectors, "draft-example2"), ["install", "text"])
    assert severed == _read(suit_vectors, "draft-example2-severed")
    assert verify_envelope(severed, example_pubkey).severed == ["install", "text"]


@pytest.mark.parametrize(
    "name",
    ["draft-example0-unsigned", "draft-example1-unsigned", "draft-example2-severed-unsigned"],
)
def test_unsigned_examples_are_rejected(
    suit_vectors: Path, example_pubkey: keys.PublicKey, name: str
) -> None:
    data = _read(suit_vectors, name)
    env = decode_envelope(data)  # well-formed: only authentication is missing
    assert env.authentication.blocks == []
    with pytest.raises(SuitAuthenticationError, match="no authentication block"):
        verify_envelope(data, example_pubkey)


def test_examples_reject_another_key(suit_vectors: Path) -> None:
    other = keys.generate_private_key("ES256").public_key()
    with pytest.raises(SuitAuthenticationError, match="does not verify"):
        verify_envelope(_read(suit_vectors, "draft-example0"), other)
