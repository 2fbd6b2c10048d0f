"""The extension drafts' published examples on the host (tests/vectors/suit-ext): every encrypted
payload decrypts to its published plaintext with the published keys and with no other; the
COSE_Mac0 manifests verify with the HMAC key and with no other; the trust-domains examples and
the encryption draft's dependency example verify with the right trust anchors and fail with
the wrong ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from ext_samples import CEK_CTR, CEK_GCM, PAYLOADS, PLAINTEXT, published_keys
from suture import keys
from suture.cose import CoseError
from suture.cose.encrypt import (
    A128CTR,
    A128GCM,
    EcdhPrivateKey,
    decode_encrypt,
    decrypt_detached,
    unwrap_cek,
)
from suture.cose.mac0 import SymmetricKey
from suture.suit import (
    SuitDependencyError,
    SuitDigestError,
    SuitEncryptionError,
    SuitSignatureError,
    decode_envelope,
    decrypt_component,
    envelope_summary,
    verify_envelope,
)

MAC_MANIFESTS = ("enc-manifest-aes-kw", "enc-manifest-aes-kw-slot", "enc-manifest-aes-kw-content")
DEPENDENT_URI = "http://example.com/dependent.suit"


@pytest.fixture(scope="module")
def pk(ext_vectors: Path) -> dict[str, Any]:
    return published_keys(ext_vectors)


def _read(folder: Path, name: str) -> bytes:
    return (folder / name).read_bytes()


@pytest.mark.parametrize("name", PAYLOADS)
def test_every_encrypted_payload_decrypts_to_the_published_plaintext(
    ext_vectors: Path, pk: dict[str, Any], name: str
) -> None:
    info = decode_encrypt(_read(ext_vectors, f"enc-encryption-info-{name}.cbor"))
    ciphertext = _read(ext_vectors, f"enc-encrypted-payload-{name}.bin")
    assert info.content_alg == (A128GCM if name.endswith("gcm") else A128CTR)
    key = pk["kek"] if name.startswith("aes-kw") else pk["ecdh"]
    cek, recipient = unwrap_cek(info, [key])
    assert cek == (CEK_GCM if name.endswith("gcm") else CEK_CTR)
    assert recipient.kid == (b"kid-1" if name.startswith("aes-kw") else None)
    assert decrypt_detached(info, ciphertext, [key]) == PLAINTEXT
    # both kinds of key given at once: the one that fits is used
    assert decrypt_detached(info, ciphertext, [pk["ecdh"], pk["kek"]]) == PLAINTEXT


@pytest.mark.parametrize("name", PAYLOADS)
def test_encrypted_payloads_refuse_other_keys(ext_vectors: Path, name: str) -> None:
    info = _read(ext_vectors, f"enc-encryption-info-{name}.cbor")
    ciphertext = _read(ext_vectors, f"enc-encrypted-payload-{name}.bin")
    wrong = [
        SymmetricKey(b"b" * 16, b"kid-1"),
        EcdhPrivateKey(ec.generate_private_key(ec.SECP256R1())),
    ]
    with pytest.raises(CoseError, match="none of the 2 given keys opens a recipient"):
        decrypt_detached(info, ciphertext, wrong)


def test_an_altered_gcm_ciphertext_is_refused_and_ctr_has_no_integrity(
    ext_vectors: Path, pk: dict[str, Any]
) -> None:
    gcm = _read(ext_vectors, "enc-encryption-info-aes-kw-aes-gcm.cbor")
    data = bytearray(_read(ext_vectors, "enc-encrypted-payload-aes-kw-aes-gcm.bin"))
    data[3] ^= 1
    with pytest.raises(CoseError, match="authentication tag does not verify"):
        decrypt_detached(gcm, bytes(data), [pk["kek"]])
    ctr = _read(ext_vectors, "enc-encryption-info-aes-kw-aes-ctr.cbor")
    data = bytearray(_read(ext_vectors, "enc-encrypted-payload-aes-kw-aes-ctr.bin"))
    data[3] ^= 1
    altered = decrypt_detached(ctr, bytes(data), [pk["kek"]])
    assert altered != PLAINTEXT
    assert len(altered) == len(PLAINTEXT)


@pytest.mark.parametrize("name", MAC_MANIFESTS)
def test_mac0_manifests_verify_with_the_hmac_key_only(
    ext_vectors: Path, pk: dict[str, Any], name: str, example_pubkey: keys.PublicKey
) -> None:
    data = _read(ext_vectors, f"{name}.cbor")
    env = verify_envelope(data, [pk["hmac"]])
    assert env.verified
    assert env.signer_key_ids == [pk["hmac"].key_id]
    assert envelope_summary(env)["authentication"] == [
        {"kind": "COSE_Mac0", "alg": "HMAC 256/256", "kid": None}
    ]
    with pytest.raises(SuitSignatureError, match="tag does not verify"):
        verify_envelope(data, [SymmetricKey(b"a" * 31 + b"b")])
    with pytest.raises(SuitSignatureError, match=r"no symmetric .MAC. key was given"):
        verify_envelope(data, [example_pubkey])
    with pytest.raises(SuitSignatureError, match=r"needs a key of at least 32|does not verify"):
        verify_envelope(data, [SymmetricKey(b"a" * 16)])
    # the tag covers the manifest digest: a manifest byte changed fails on the digest first
    outer = dict(cbor2.loads(data).value)
    manifest = bytearray(outer[3])
    manifest[-1] ^= 1
    outer[3] = bytes(manifest)
    with pytest.raises(SuitDigestError):
        verify_envelope(cbor2.dumps(cbor2.CBORTag(107, outer)), [pk["hmac"]])


@pytest.mark.parametrize(
    ("name", "ciphertext"),
    [
        ("enc-manifest-aes-kw", "enc-encrypted-payload-aes-kw-aes-gcm.bin"),
        ("enc-manifest-aes-kw-slot", "enc-encrypted-payload-aes-kw-aes-gcm.bin"),
        ("enc-manifest-aes-kw-content", None),
        ("enc-manifest-es-ecdh-content", None),
    ],
)
def test_manifests_decrypt_their_payload(
    ext_vectors: Path, pk: dict[str, Any], example_pubkey: keys.PublicKey, name: str,
    ciphertext: str | None,
) -> None:
    anchor = pk["hmac"] if "aes-kw" in name else example_pubkey
    env = verify_envelope(_read(ext_vectors, f"{name}.cbor"), [anchor])
    info = env.manifest.component_info[0]
    assert info.encryption_info is not None
    given = _read(ext_vectors, ciphertext) if ciphertext else None
    out = decrypt_component(env, 0, [pk["kek"], pk["ecdh"]], ciphertext=given)
    assert out.plaintext == PLAINTEXT
    wrong = SymmetricKey(b"c" * 16)
    with pytest.raises(SuitEncryptionError, match="opens a recipient"):
        decrypt_component(env, 0, [wrong], ciphertext=given)
    if ciphertext:
        # the source component's size (46) is checked before anything is decrypted
        with pytest.raises(SuitEncryptionError, match="ciphertext is 45 bytes"):
            decrypt_component(env, 0, [pk["kek"]], ciphertext=given[:-1] if given else None)


def test_dependency_example_two_signers_two_anchors(
    ext_vectors: Path, pk: dict[str, Any], example_pubkey: keys.PublicKey
) -> None:
    data = _read(ext_vectors, "enc-manifest-es-ecdh-dependency.cbor")
    distributor = keys.load_public_key(ext_vectors / "enc-dependent-signer-pubkey.pem")
    env = verify_envelope(data, [distributor], dependency_keys=[example_pubkey])
    (dep,) = env.dependencies
    assert (dep.source, dep.info.index, dep.info.uri, dep.info.size) == (
        "integrated", 1, "#dependency-manifest", 247)
    assert dep.info.prefix == [b"dependency-manifest.suit"]
    assert dep.envelope.signer_key_ids == [keys.key_id(example_pubkey)]
    assert env.signer_key_ids == [keys.key_id(distributor)]
    # the plaintext's digest is the dependency's (the author's), the key distribution the
    # dependent's (the distributor's)
    out = decrypt_component(env, 0, [pk["ecdh"]])
    assert (out.plaintext, out.checked_against) == (PLAINTEXT, "dependency 1")
    with pytest.raises(SuitSignatureError, match=r"^authentication block 1"):
        verify_envelope(data, [example_pubkey])
    with pytest.raises(SuitSignatureError, match=r"^dependency 1 \(#dependency-manifest\):"):
        verify_envelope(data, [distributor])
    with pytest.raises(SuitSignatureError, match=r"^dependency 1"):
        verify_envelope(data, [distributor], dependency_keys=[distributor])


def test_trust_domains_examples(ext_vectors: Path, example_pubkey: keys.PublicKey) -> None:
    dependent = _read(ext_vectors, "td-example0-dependent.cbor")
    assert verify_envelope(dependent, example_pubkey).dependencies == []
    integrated = verify_envelope(_read(ext_vectors, "td-example2-integrated.cbor"),
                                 example_pubkey)
    (dep,) = integrated.dependencies
    assert (dep.source, dep.info.uri) == ("integrated", "#dependent.suit")
    assert dep.envelope.manifest.manifest_component_id == [b"dependent.suit"]
    process = _read(ext_vectors, "td-example1-process.cbor")
    with pytest.raises(SuitDependencyError, match="not integrated in the envelope and not"):
        verify_envelope(process, example_pubkey)
    env = verify_envelope(process, example_pubkey, dependencies={DEPENDENT_URI: dependent})
    (dep,) = env.dependencies
    assert (dep.source, dep.info.digest.value.hex()[:8] if dep.info.digest else None) == (
        "supplied", "0f02caf6")
    sections = env.manifest.sequences()
    assert "dependency-resolution" in sections
    assert [c.name for c in sections["install"].commands][:4] == [
        "directive-set-component-index", "directive-override-parameters",
        "condition-dependency-integrity", "directive-process-dependency",
    ]
    other = keys.generate_private_key("ES256").public_key()
    with pytest.raises(SuitSignatureError, match=r"^dependency 1 \(http"):
        verify_envelope(process, example_pubkey, dependency_keys=[other],
                        dependencies={DEPENDENT_URI: dependent})
    with pytest.raises(SuitSignatureError, match=r"^authentication block 1"):
        verify_envelope(process, other, dependency_keys=[example_pubkey],
                        dependencies={DEPENDENT_URI: dependent})


def test_a_dependency_that_is_not_the_named_one_is_refused(
    ext_vectors: Path, example_pubkey: keys.PublicKey
) -> None:
    process = _read(ext_vectors, "td-example1-process.cbor")
    wrong_size = _read(ext_vectors, "td-example2-integrated.cbor")
    with pytest.raises(SuitDependencyError, match="519 bytes, the dependent says 190"):
        verify_envelope(process, example_pubkey, dependencies={DEPENDENT_URI: wrong_size})
    integrated = cbor2.loads(_read(ext_vectors, "td-example2-integrated.cbor")).value
    swapped = dict(integrated)
    dependent = cbor2.loads(integrated["#dependent.suit"]).value
    dependent_manifest = bytearray(dependent[3])
    dependent_manifest[-4] ^= 1  # 'hello world' becomes 'hello wnrld': still a valid manifest
    forged = cbor2.dumps(cbor2.CBORTag(107, {**dict(dependent), 3: bytes(dependent_manifest)}))
    swapped["#dependent.suit"] = forged
    with pytest.raises(SuitDigestError, match=r"^dependency 1 \(#dependent.suit\): "):
        verify_envelope(cbor2.dumps(cbor2.CBORTag(107, swapped)), example_pubkey)


def test_decoding_names_the_extension_structures(ext_vectors: Path) -> None:
    env = decode_envelope(_read(ext_vectors, "enc-manifest-aes-kw.cbor"))
    summary = envelope_summary(env)
    (encrypted, staging) = summary["components"]
    assert encrypted["encryption"] == {
        "content_alg": "A128GCM",
        "iv": "f14aab9d81d51f7ad943fe87",
        "recipients": [{"alg": "A128KW", "kid": b"kid-1".hex()}],
    }
    assert staging["uri"] == "coaps://example.com/encrypted-firmware"
    assert staging["image_size"] == 46
    deps = envelope_summary(decode_envelope(_read(ext_vectors, "td-example1-process.cbor")))
    assert deps["dependencies"][0]["uri"] == DEPENDENT_URI
    assert deps["dependencies"][0]["verified"] is False
