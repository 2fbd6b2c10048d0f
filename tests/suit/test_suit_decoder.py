"""The decoder's refusals: each names what is wrong and where; limits hold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cbor2
import pytest
from suit_samples import envelope_bytes, example_manifest
from suture import cose, keys
from suture.suit import (
    MAX_DEPTH,
    MAX_ENVELOPE_BYTES,
    SuitAuthenticationError,
    SuitDecodeError,
    SuitDigestError,
    SuitError,
    SuitLimitError,
    SuitSignatureError,
    SuitStructureError,
    decode_envelope,
    limits,
    verify_envelope,
)
from suture.suit.digest import digest_wrapped, encode_digest


def _with(**changes: Any) -> bytes:
    manifest = example_manifest()
    for key, value in changes.items():
        code = int(key[1:])
        if value is None:
            manifest.pop(code)
        else:
            manifest[code] = value
    return envelope_bytes(manifest)


def _common(common: dict[int, Any]) -> bytes:
    return _with(k3=cbor2.dumps(common))


def _shared(sequence: list[Any]) -> bytes:
    return _common({2: [[b"\x00"], [b"\x01"]], 4: cbor2.dumps(sequence)})


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        (
            _with(k2="7"),
            SuitStructureError,
            r"manifest key 2 \(sequence-number\): expected uint, got text",
        ),
        (_with(k2=-1), SuitStructureError, r"key 2 \(sequence-number\): expected uint, got nint"),
        (_with(k1=2), SuitStructureError, "version 2 is not supported"),
        (_with(k3=None), SuitStructureError, r"manifest key 3 \(common\): missing"),
        (_with(k3={2: []}), SuitStructureError, r"key 3 \(common\): expected bstr, got map"),
        (_with(k4=5), SuitStructureError, r"key 4 \(reference-uri\): expected text, got uint"),
        (_with(k7=[3, 15]), SuitStructureError, r"key 7 \(validate\): expected bstr, got array"),
        (_with(k7=cbor2.dumps([3])), SuitStructureError, r"validate\): 1 items; .* pairs"),
        (_with(k7=cbor2.dumps([])), SuitStructureError, "empty command sequence"),
        (
            _with(k7=cbor2.dumps([3, "x"])),
            SuitStructureError,
            r"condition-image-match\) reporting policy: expected uint",
        ),
        (_with(k20=5), SuitStructureError, r"key 20 \(install\): expected bstr or SUIT_Digest"),
        (_with(k20=[-16, b"short"]), SuitStructureError, "a sha-256 digest is 32 bytes, got 5"),
        (_with(k20=[-16]), SuitStructureError, "SUIT_Digest must have 2 elements"),
        (
            _with(k23=cbor2.dumps({1: "no language"})),
            SuitStructureError,
            r"key 23 \(text\) language tag: expected text, got uint",
        ),
        (
            envelope_bytes({**example_manifest(), "x": 1}),
            SuitStructureError,
            "manifest: key of type text is not allowed",
        ),
        (_common({2: []}), SuitStructureError, r"common key 2 \(components\): no components"),
        (_common({4: b""}), SuitStructureError, r"common key 2 \(components\): missing"),
        (_common({2: [[]]}), SuitStructureError, "needs at least one element"),
        (_common({2: [["text"]]}), SuitStructureError, "component 0 element 0: expected bstr"),
        (
            _common({1: {}, 2: [[b"\x00"]]}),
            SuitStructureError,
            r"common key 1 \(dependencies\): empty; leave the key out",
        ),
        (
            _common({1: {2: {}}, 2: [[b"\x00"]]}),
            SuitStructureError,
            r"indices \[2\] leave a gap after the 1 components",
        ),
        (
            _common({1: {1: {2: 1}}, 2: [[b"\x00"]]}),
            SuitStructureError,
            r"dependencies\) index 1: unknown key 2",
        ),
        (
            _common({1: {1: {1: []}}, 2: [[b"\x00"]]}),
            SuitStructureError,
            r"dependency-prefix\): a component identifier needs at least one element",
        ),
        (
            _common({1: {1: []}, 2: [[b"\x00"]]}),
            SuitStructureError,
            r"dependencies\) index 1: expected map, got array",
        ),
        (_common({2: [[b"\x00"]], 9: 1}), SuitStructureError, r"common key 9: unknown key"),
        (_shared([12, 2]), SuitStructureError, "component index 2 out of range .2 components"),
        (_shared([12, []]), SuitStructureError, "empty list of component indices"),
        (
            _shared([20, {1: b"abc"}]),
            SuitStructureError,
            r"parameter 1 \(vendor-identifier\): expected a 16-byte UUID, got 3 bytes",
        ),
        (
            _shared([20, {14: "big"}]),
            SuitStructureError,
            r"parameter 14 \(image-size\): expected uint, got text",
        ),
        (
            _shared([20, {3: cbor2.dumps([-16, b"x" * 31])}]),
            SuitStructureError,
            "sha-256 digest is 32 bytes",
        ),
        (
            _shared([20, {21: b"uri"}]),
            SuitStructureError,
            r"parameter 21 \(uri\): expected text, got bstr",
        ),
        (
            _shared([20, {12: 1}]),
            SuitStructureError,
            r"parameter 12 \(strict-order\): expected bool",
        ),
        (_shared([20, [1]]), SuitStructureError, r"directive-override-parameters\): expected map"),
        (_shared([15, []]), SuitStructureError, "try-each needs at least one sequence"),
        (_shared([15, [None, b""]]), SuitStructureError, r"option 0: expected bstr, got null"),
        (_shared([32, [1]]), SuitStructureError, r"directive-run-sequence\): expected bstr"),
        (_shared(["x", 1]), SuitStructureError, r"item 0 \(command code\): expected int, got text"),
    ],
)
def test_structure_errors_name_the_key(data: bytes, error: type[SuitError], match: str) -> None:
    with pytest.raises(error, match=match):
        decode_envelope(data)


def test_unknown_manifest_keys_and_commands_are_kept() -> None:
    env = decode_envelope(_with(k99="extension"))
    assert env.manifest.extensions == {99: "extension"}
    env = decode_envelope(_shared([12, True, 99, {"any": 1}, 15, [cbor2.dumps([3, 15]), None]]))
    assert env.manifest.shared_sequence is not None
    select, unknown, try_each = env.manifest.shared_sequence.commands
    assert select.argument is True
    assert (unknown.name, unknown.kind) == ("unknown-command-99", "unknown")
    assert try_each.argument[1] is None
    assert try_each.argument[0].commands[0].name == "condition-image-match"


def test_set_component_index_list_and_parameters_per_component() -> None:
    digest = cbor2.dumps([-16, b"\x01" * 32])
    env = decode_envelope(
        _shared([12, [0, 1], 20, {14: 5}, 12, 1, 20, {3: digest, 21: "https://x"}, 19, {14: 9}])
    )
    first, second = env.manifest.component_info
    assert (first.image_size, first.uri, first.image_digest) == (5, None, None)
    assert second.image_size == 5  # set-parameters does not replace a value already set
    assert second.uri == "https://x"
    assert second.image_digest is not None
    assert second.image_digest.value == b"\x01" * 32


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        (b"", SuitDecodeError, "truncated"),
        (cbor2.dumps([1, 2]), SuitStructureError, "envelope: expected map, got array"),
        (cbor2.dumps(cbor2.CBORTag(6, {})), SuitDecodeError, "CBOR tag 6 is not accepted"),
        (cbor2.dumps({}) + b"\x00", SuitDecodeError, "1 trailing bytes"),
        (b"\xbf\xff", SuitDecodeError, "indefinite-length items are not accepted"),
        (b"\xa2\x01\x40\x01\x40", SuitDecodeError, "Duplicate map key"),
        (b"\x5b" + b"\xff" * 8, SuitDecodeError, "only 0 bytes remain"),
        (b"\x9b" + b"\x7f" + b"\xff" * 7, SuitDecodeError, "array of .* entries, but only 0"),
        (b"\xf8\x20", SuitDecodeError, "simple value 32 is not accepted"),
        (b"\xfc", SuitDecodeError, "reserved additional information"),
        (cbor2.dumps({3: b""}), SuitStructureError, "no key 2 .authentication-wrapper."),
        (cbor2.dumps({2: cbor2.dumps([])}), SuitStructureError, r"no key 3 \(manifest\)"),
        (
            cbor2.dumps({2: cbor2.dumps([]), 3: b""}),
            SuitStructureError,
            "authentication-wrapper: empty",
        ),
        (
            cbor2.dumps({2: b"", 3: b""}),
            SuitDecodeError,
            "authentication-wrapper: offset 0: truncated",
        ),
        (
            cbor2.dumps({2: [], 3: b""}),
            SuitStructureError,
            r"envelope key 2 \(authentication-wrapper\): expected bstr, got array",
        ),
        (cbor2.dumps({1.5: b""}), SuitStructureError, "envelope: key of type float"),
    ],
)
def test_envelope_level_errors(data: bytes, error: type[SuitError], match: str) -> None:
    with pytest.raises(error, match=match):
        decode_envelope(data)


def test_integrated_payload_and_member_checks() -> None:
    with pytest.raises(SuitStructureError, match="integrated payload '#a': expected bstr"):
        decode_envelope(envelope_bytes(example_manifest(), extra={"#a": 5}))
    with pytest.raises(SuitStructureError, match=r"key 20 \(install\): the manifest has no digest"):
        decode_envelope(envelope_bytes(example_manifest(), extra={20: cbor2.dumps([3, 15])}))


def test_not_bytes_and_too_big() -> None:
    with pytest.raises(SuitDecodeError, match="expected bytes, got str"):
        decode_envelope("text")  # type: ignore[arg-type]
    with pytest.raises(SuitLimitError, match="over the limit"):
        decode_envelope(b"\x00" * (MAX_ENVELOPE_BYTES + 1))


def test_nesting_limits() -> None:
    deep = b"\x81" * (MAX_DEPTH + 1) + b"\x00"
    with pytest.raises(SuitLimitError, match="nesting deeper than"):
        decode_envelope(deep)
    nested: Any = 0
    for _ in range(MAX_DEPTH):
        nested = [nested]
    with pytest.raises(SuitLimitError, match=r"manifest: offset \d+: nesting deeper than"):
        decode_envelope(_with(k99=nested))
    sequence = cbor2.dumps([3, 15])
    for _ in range(limits.MAX_SEQUENCE_DEPTH + 1):
        sequence = cbor2.dumps([32, sequence])
    with pytest.raises(SuitLimitError, match="command sequences nested deeper than"):
        decode_envelope(_with(k7=sequence))
    components = [[bytes([i % 256, i // 256])] for i in range(limits.MAX_COMPONENTS + 1)]
    with pytest.raises(SuitLimitError, match="components, the limit is"):
        decode_envelope(_common({2: components}))


def test_digest_mismatch_and_unsupported_digest() -> None:
    key = keys.generate_private_key("ES256")
    manifest = cbor2.dumps(example_manifest())
    digest = encode_digest(digest_wrapped(manifest))
    block = cose.sign1(None, key, detached_payload=digest)
    good = cbor2.dumps(cbor2.CBORTag(107, {2: cbor2.dumps([digest, block]), 3: manifest}))
    assert verify_envelope(good, key.public_key()).verified
    other = cbor2.dumps({**example_manifest(), 2: 1})
    swapped = cbor2.dumps(cbor2.CBORTag(107, {2: cbor2.dumps([digest, block]), 3: other}))
    with pytest.raises(SuitDigestError, match="does not match the manifest"):
        verify_envelope(swapped, key.public_key())
    odd = cbor2.dumps([-99, b"x"])
    strange = cbor2.dumps(
        cbor2.CBORTag(
            107, {2: cbor2.dumps([odd, cose.sign1(None, key, detached_payload=odd)]), 3: manifest}
        )
    )
    with pytest.raises(SuitAuthenticationError, match="algorithm -99 is not supported"):
        verify_envelope(strange, key.public_key())


def test_attached_payload_must_be_the_digest() -> None:
    key = keys.generate_private_key("EdDSA")
    manifest = cbor2.dumps(example_manifest())
    digest = encode_digest(digest_wrapped(manifest))
    attached = cose.sign1(digest, key)
    ok = envelope_bytes(manifest, blocks=[attached], encode_manifest=False)
    assert verify_envelope(ok, key.public_key()).verified
    wrong = cose.sign1(b"something else", key)
    bad = envelope_bytes(manifest, blocks=[wrong], encode_manifest=False)
    with pytest.raises(SuitSignatureError, match="attached payload is not the manifest digest"):
        verify_envelope(bad, key.public_key())


def test_unsupported_blocks_are_reported_not_trusted() -> None:
    key = keys.generate_private_key("ES256")
    mac = cbor2.dumps(cbor2.CBORTag(97, [cbor2.dumps({1: 5}), {}, None, b"tag", []]))
    data = envelope_bytes(example_manifest(), blocks=[mac])
    env = decode_envelope(data)
    assert env.authentication.blocks[0].kind == "COSE_Mac"
    with pytest.raises(
        SuitSignatureError, match=r"block 1 \(COSE_Mac\): not supported \(only COSE_Sign1 and"
    ):
        verify_envelope(data, key.public_key())
    mac0 = cbor2.dumps(cbor2.CBORTag(17, [cbor2.dumps({1: 5}), {}, None, b"tag"]))
    data = envelope_bytes(example_manifest(), blocks=[mac0])
    assert decode_envelope(data).authentication.blocks[0].kind == "COSE_Mac0"
    with pytest.raises(SuitSignatureError, match=r"block 1 \(COSE_Mac0\): no symmetric"):
        verify_envelope(data, key.public_key())
    too_many = envelope_bytes(example_manifest(), blocks=[mac0] * (limits.MAX_AUTH_BLOCKS + 1))
    with pytest.raises(SuitLimitError, match="authentication blocks, the limit is"):
        decode_envelope(too_many)


def test_no_keys_is_an_error(suit_vectors: Path) -> None:
    with pytest.raises(SuitError, match="no public key given"):
        verify_envelope((suit_vectors / "draft-example0.cbor").read_bytes(), [])
