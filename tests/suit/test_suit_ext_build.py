"""Building with the extensions: encrypted releases for a device group (AES-KW and ECDH-ES+AES-KW,
GCM and CTR), MAC-authenticated envelopes, the hospital's manifest over the vendor's, and the
release's SBOM bound to the manifest."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from ext_samples import sbom_document
from suit_samples import sample_description, write_images
from suture import keys
from suture.cose.encrypt import EcdhPrivateKey, EcdhRecipientKey
from suture.cose.mac0 import SymmetricKey
from suture.suit import (
    HospitalConditions,
    SbomError,
    SuitDependencyError,
    SuitDescriptionError,
    SuitDigestError,
    SuitEncryptionError,
    SuitError,
    SuitSignatureError,
    create_dependent_envelope,
    create_envelope,
    create_release,
    decode_envelope,
    decrypt_component,
    envelope_summary,
    hospital_conditions,
    sign_envelope,
    verify_envelope,
)
from suture.suit import codepoints as cp
from suture.suit.digest import digest_bytes
from suture.suit.sbom import check_release_sbom, diff_sboms, parse_sbom, sbom_summary

GROUP_KEK = SymmetricKey(bytes(range(32)), b"ward-3")


def _encrypted_description(alg: str, *, integrated: bool = False) -> dict[str, Any]:
    description = sample_description()
    description["components"][0]["encryption"] = alg
    if integrated:
        description["components"][1]["encryption"] = alg
    return description


@pytest.mark.parametrize("alg", ["A128GCM", "A256GCM", "A128CTR", "A256CTR"])
def test_an_encrypted_release_decrypts_for_every_recipient(tmp_path: Path, alg: str) -> None:
    write_images(tmp_path)
    vendor = keys.generate_private_key("ES256")
    device = ec.generate_private_key(ec.SECP256R1())
    recipients = [GROUP_KEK, EcdhRecipientKey(device.public_key(), b"pump-7")]
    release = create_release(_encrypted_description(alg, integrated=True), vendor,
                             base_dir=tmp_path, recipients=recipients)
    env = verify_envelope(release.envelope, vendor.public_key())
    uri = "https://updates.example/pump/app-7.bin"
    assert list(release.encrypted_payloads) == [uri]
    ciphertext = release.encrypted_payloads[uri]
    plaintext = (tmp_path / "app.bin").read_bytes()
    assert ciphertext != plaintext
    assert len(ciphertext) == len(plaintext) + (16 if "GCM" in alg else 0)
    # components: app, cfg, then the staging components that receive the ciphertexts
    assert env.manifest.components == [
        [b"app", b"\x00"], [b"cfg"], [b"app", b"\x00", b"encrypted"], [b"cfg", b"encrypted"]]
    app, _, app_staging, _ = env.manifest.component_info
    assert app.image_digest == digest_bytes(plaintext)  # the manifest's digest: the plaintext
    assert app_staging.image_digest == digest_bytes(ciphertext)
    assert app.parameters["source-component"] == 2
    assert app.encryption_info is not None
    assert [r.alg_name for r in app.encryption_info.recipients] == [
        {16: "A128KW", 32: "A256KW"}[len(GROUP_KEK.key)],
        "ECDH-ES+A128KW" if alg.startswith("A128") else "ECDH-ES+A256KW",
    ]
    install = [c.name for c in env.manifest.sequences()["install"].commands]
    assert install[:8] == [
        "directive-set-component-index", "directive-override-parameters", "directive-fetch",
        "condition-image-match", "directive-set-component-index",
        "directive-override-parameters", "directive-copy", "condition-image-match",
    ]
    for key in (GROUP_KEK, EcdhPrivateKey(device, b"pump-7")):
        out = decrypt_component(env, 0, [key], ciphertext=ciphertext)
        assert (out.plaintext, out.checked_against) == (plaintext, "manifest")
        # the integrated component's ciphertext travels in the envelope
        cfg_out = decrypt_component(env, 1, [key])
        assert cfg_out.plaintext == (tmp_path / "cfg.bin").read_bytes()
    stranger = EcdhPrivateKey(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(SuitEncryptionError, match="opens a recipient"):
        decrypt_component(env, 0, [stranger, SymmetricKey(b"x" * 32)], ciphertext=ciphertext)
    altered = bytearray(ciphertext)
    altered[0] ^= 0x80
    with pytest.raises(SuitEncryptionError, match="checked before decrypting"):
        decrypt_component(env, 0, [GROUP_KEK], ciphertext=bytes(altered))


def test_the_plaintext_digest_catches_a_wrong_key_distribution(tmp_path: Path) -> None:
    """CTR has no integrity: a CEK that is not the author's decrypts to garbage, which the
    manifest's plaintext digest refuses."""
    write_images(tmp_path)
    vendor = keys.generate_private_key("ES256")
    release = create_release(_encrypted_description("A128CTR"), vendor, base_dir=tmp_path,
                             recipients=[SymmetricKey(b"k" * 16)])
    env = verify_envelope(release.envelope, vendor.public_key())
    other = create_release(_encrypted_description("A128CTR"), vendor, base_dir=tmp_path,
                           recipients=[SymmetricKey(b"k" * 16)])
    (ciphertext,) = other.encrypted_payloads.values()
    staging = env.manifest.component_info[2]
    assert staging.image_digest is not None
    # skip the ciphertext check by building an envelope view without it
    from dataclasses import replace

    loose = replace(staging, image_digest=None, image_size=None)
    infos = list(env.manifest.component_info)
    infos[2] = loose
    unchecked = replace(env, manifest=replace(env.manifest, component_info=infos))
    with pytest.raises(SuitEncryptionError, match="decrypted image does not match its digest"):
        decrypt_component(unchecked, 0, [SymmetricKey(b"k" * 16)], ciphertext=ciphertext)


def test_encryption_needs_recipients_and_a_plain_create_refuses_lost_ciphertexts(
    tmp_path: Path,
) -> None:
    write_images(tmp_path)
    vendor = keys.generate_private_key("ES256")
    with pytest.raises(SuitEncryptionError, match="give the recipients"):
        create_release(_encrypted_description("A128GCM"), vendor, base_dir=tmp_path)
    with pytest.raises(SuitEncryptionError, match="give the recipients"):
        create_envelope(_encrypted_description("A128GCM"), vendor, base_dir=tmp_path)
    bad = sample_description()
    bad["components"][0]["encryption"] = "A128CBC"
    with pytest.raises(SuitDescriptionError, match="'A128CBC' is not one of A128GCM"):
        create_envelope(bad, vendor, base_dir=tmp_path)
    with pytest.raises(SuitEncryptionError, match="16, 24 or 32 bytes"):
        create_release(_encrypted_description("A128GCM"), vendor, base_dir=tmp_path,
                       recipients=[SymmetricKey(b"short")])


def test_mac0_signing_round_trip(tmp_path: Path) -> None:
    write_images(tmp_path)
    unsigned = create_release(sample_description(), SymmetricKey(b"s" * 32, b"grp"),
                              base_dir=tmp_path).envelope
    env = verify_envelope(unsigned, [SymmetricKey(b"s" * 32)])
    assert env.authentication.blocks[0].kind == "COSE_Mac0"
    assert env.authentication.blocks[0].kid == b"grp"
    with pytest.raises(SuitSignatureError, match="tag does not verify"):
        verify_envelope(unsigned, [SymmetricKey(b"t" * 32)])
    # a key with another kid is not even tried
    with pytest.raises(SuitSignatureError, match="none of the 1 given MAC keys has it"):
        verify_envelope(unsigned, [SymmetricKey(b"s" * 32, b"other")])
    # a Mac0 and a Sign1 side by side: either anchor suffices
    vendor = keys.generate_private_key("EdDSA")
    both = sign_envelope(unsigned, vendor, append=True)
    assert verify_envelope(both, vendor.public_key()).verified
    assert verify_envelope(both, [SymmetricKey(b"s" * 32)]).verified
    with pytest.raises(SuitError, match="cannot sign: HMAC 256/256 needs a key of at least 32"):
        sign_envelope(unsigned, SymmetricKey(b"s" * 31))


def _vendor_release(tmp_path: Path) -> tuple[bytes, keys.PrivateKey]:
    write_images(tmp_path)
    vendor = keys.generate_private_key("ES256")
    return create_envelope(sample_description(), vendor, base_dir=tmp_path), vendor


def test_the_hospitals_manifest_over_the_vendors(tmp_path: Path) -> None:
    vendor_env, vendor = _vendor_release(tmp_path)
    hospital = keys.generate_private_key("ES256")
    devices = (uuid.uuid4(), uuid.uuid4(), uuid.uuid4())
    conditions = HospitalConditions(
        devices=devices, not_before=1_767_229_200, not_after=1_767_236_400,
        approvals_digest=digest_bytes(b'{"approvals": ["qa", "biomed"]}'),
    )
    data = create_dependent_envelope(vendor_env, vendor.public_key(), hospital,
                                     sequence_number=12, conditions=conditions)
    env = verify_envelope(data, hospital.public_key(), dependency_keys=vendor.public_key())
    assert hospital_conditions(env) == conditions
    (dep,) = env.dependencies
    assert dep.source == "integrated"
    assert dep.envelope.manifest.encoded == decode_envelope(vendor_env).manifest.encoded
    assert dep.envelope.signer_key_ids == [keys.key_id(vendor.public_key())]
    assert env.manifest.sequence_number == 12
    # every section of the vendor's has one here that checks and processes the dependency
    vendor_sections = set(decode_envelope(vendor_env).manifest.sequences())
    ours = env.manifest.sequences()
    for name in vendor_sections - {"shared-sequence"}:
        names = [c.name for c in ours[name].commands]
        assert names[-2:] == ["condition-dependency-integrity", "directive-process-dependency"]
    shared = [c.name for c in ours["shared-sequence"].commands]
    assert "suture-condition-not-before" in shared
    assert "condition-use-before" in shared
    assert "directive-try-each" in shared
    summary = envelope_summary(env)
    assert summary["dependencies"][0]["envelope"]["sequence_number"] == 7
    # two trust anchors, each for its own manifest
    with pytest.raises(SuitSignatureError, match=r"^dependency 2 \(#vendor.suit\)"):
        verify_envelope(data, hospital.public_key(), dependency_keys=hospital.public_key())
    with pytest.raises(SuitSignatureError, match=r"^authentication block 1"):
        verify_envelope(data, vendor.public_key(), dependency_keys=vendor.public_key())
    # re-signing the vendor's manifest changes nothing (the digest is over the manifest) ...
    resigned = create_envelope(sample_description(), vendor, base_dir=tmp_path)
    assert resigned != vendor_env
    outer = dict(cbor2.loads(data).value)
    outer["#vendor.suit"] = resigned
    assert verify_envelope(cbor2.dumps(cbor2.CBORTag(107, outer)), hospital.public_key(),
                           dependency_keys=vendor.public_key()).verified
    # ... but another of the vendor's manifests cannot be swapped in
    other = create_envelope({**sample_description(), "sequence-number": 8}, vendor,
                            base_dir=tmp_path)
    outer["#vendor.suit"] = other
    with pytest.raises((SuitDigestError, SuitDependencyError)):
        verify_envelope(cbor2.dumps(cbor2.CBORTag(107, outer)), hospital.public_key(),
                        dependency_keys=vendor.public_key())


def test_the_hospitals_manifest_by_uri_and_its_refusals(tmp_path: Path) -> None:
    vendor_env, vendor = _vendor_release(tmp_path)
    hospital = keys.generate_private_key("EdDSA")
    uri = "https://sched.ward.example/releases/7/envelope"
    data = create_dependent_envelope(vendor_env, vendor.public_key(), hospital,
                                     sequence_number=1, conditions=HospitalConditions(),
                                     uri=uri)
    assert uri not in decode_envelope(data).integrated_payloads
    with pytest.raises(SuitDependencyError, match="not supplied"):
        verify_envelope(data, hospital.public_key(), dependency_keys=vendor.public_key())
    env = verify_envelope(data, hospital.public_key(), dependency_keys=vendor.public_key(),
                          dependencies={uri: vendor_env})
    assert env.dependencies[0].source == "supplied"
    resolution = [c.name for c in env.manifest.sequences()["dependency-resolution"].commands]
    assert "directive-fetch" in resolution
    # the vendor's envelope must verify before the hospital builds on it
    with pytest.raises(SuitSignatureError):
        create_dependent_envelope(vendor_env, hospital.public_key(), hospital,
                                  sequence_number=1, conditions=HospitalConditions())
    with pytest.raises(SuitDescriptionError, match="later than not-before"):
        HospitalConditions(not_before=10, not_after=10)
    with pytest.raises(SuitDescriptionError, match="listed twice"):
        HospitalConditions(devices=(uuid.UUID(int=1), uuid.UUID(int=1)))
    with pytest.raises(SuitDescriptionError, match="sequence-number"):
        create_dependent_envelope(vendor_env, vendor.public_key(), hospital,
                                  sequence_number=2**32, conditions=HospitalConditions())


def test_the_sbom_is_bound_to_the_signed_manifest(tmp_path: Path) -> None:
    write_images(tmp_path)
    (tmp_path / "sbom.cdx.json").write_bytes(sbom_document())
    description = {**sample_description(), "sbom": "sbom.cdx.json"}
    vendor = keys.generate_private_key("ES256")
    data = create_envelope(description, vendor, base_dir=tmp_path)
    env = verify_envelope(data, vendor.public_key())
    sbom_bytes = (tmp_path / "sbom.cdx.json").read_bytes()
    assert env.manifest.sbom_digest == digest_bytes(sbom_bytes)
    assert cp.MANIFEST_SUTURE_SBOM in cbor2.loads(env.manifest.encoded)
    check = check_release_sbom(env.manifest, sbom_bytes)
    assert check.status == "bound"
    assert check.sbom is not None
    assert check.sbom.subject == "pump-app 2.4.1"
    assert check.sbom.licenses == ["BSD-3-Clause", "MIT"]
    # one byte of the SBOM changed: not the bound one
    altered = sbom_bytes.replace(b'"2.9"', b'"3.0"')
    with pytest.raises(SbomError, match="not the one the signed manifest names"):
        check_release_sbom(env.manifest, altered)
    # the digest changed in the manifest: the signature breaks
    outer = dict(cbor2.loads(data).value)
    manifest = dict(cbor2.loads(outer[3]))
    manifest[cp.MANIFEST_SUTURE_SBOM] = digest_bytes(altered).to_cbor()
    outer[3] = cbor2.dumps(manifest)
    with pytest.raises(SuitDigestError):
        verify_envelope(cbor2.dumps(cbor2.CBORTag(107, outer)), vendor.public_key())
    with pytest.raises(SbomError, match=r"names an SBOM .* but none was given"):
        check_release_sbom(env.manifest, None, allow_missing=True)


def test_an_sbom_less_release_only_under_the_test_policy(tmp_path: Path) -> None:
    write_images(tmp_path)
    vendor = keys.generate_private_key("ES256")
    env = verify_envelope(create_envelope(sample_description(), vendor, base_dir=tmp_path),
                          vendor.public_key())
    with pytest.raises(SbomError, match="none given; every release carries"):
        check_release_sbom(env.manifest, None)
    assert check_release_sbom(env.manifest, None, allow_missing=True).status == "missing-allowed"
    with pytest.raises(SbomError, match=r"names no SBOM .* not bound"):
        check_release_sbom(env.manifest, sbom_document())


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "empty"),
        (b"\xff\xfe", "not UTF-8"),
        (b"<bom/>", "not JSON"),
        (b"[]", "top level must be a JSON object"),
        (json.dumps({"bomFormat": "SPDX", "specVersion": "1.6"}).encode(), "expected 'CycloneDX'"),
        (json.dumps({"bomFormat": "CycloneDX", "specVersion": "9.9"}).encode(), "not supported"),
        (sbom_document([{"type": "nonsense", "name": "x"}]), r"not valid CycloneDX 1.6: 'nons"),
        (sbom_document([{"type": "library"}]), "not valid CycloneDX 1.6: 'name' is a required"),
        (sbom_document(serialNumber="not-a-urn"), "not valid CycloneDX 1.6"),
    ],
)
def test_malformed_sboms_are_refused_with_the_reason(data: bytes, match: str) -> None:
    with pytest.raises(SbomError, match=match):
        parse_sbom(data)


def test_a_description_with_a_malformed_sbom_builds_nothing(tmp_path: Path) -> None:
    write_images(tmp_path)
    (tmp_path / "sbom.json").write_bytes(sbom_document([{"type": "library"}]))
    vendor = keys.generate_private_key("ES256")
    with pytest.raises(SbomError, match="not valid CycloneDX"):
        create_envelope({**sample_description(), "sbom": "sbom.json"}, vendor, base_dir=tmp_path)
    with pytest.raises(SuitDescriptionError, match=r"SBOM file .* not found"):
        create_envelope({**sample_description(), "sbom": "nope.json"}, vendor, base_dir=tmp_path)


def test_sbom_diff_between_two_releases() -> None:
    old = parse_sbom(sbom_document())
    new = parse_sbom(sbom_document([
        {"type": "library", "name": "micropython", "version": "1.30.0",
         "purl": "pkg:github/micropython/micropython@v1.30.0",
         "licenses": [{"license": {"id": "MIT"}}]},
        {"type": "library", "name": "mbedtls", "version": "3.6.2",
         "licenses": [{"license": {"id": "Apache-2.0"}}]},
    ]))
    diff = diff_sboms(old, new)
    assert [c.name for c in diff.added] == ["mbedtls"]
    assert [c.name for c in diff.removed] == ["littlefs"]
    assert [(c.old.version, c.new.version) for c in diff.changed] == [("1.29.0", "1.30.0")]
    assert (diff.licenses_added, diff.licenses_removed) == (["Apache-2.0"], ["BSD-3-Clause"])
    assert diff_sboms(old, old).empty
    summary = sbom_summary(new)
    assert summary["licenses"] == ["Apache-2.0", "MIT"]
    assert summary["components"][1]["name"] == "mbedtls"
