"""Decode SUIT envelopes (draft-ietf-suit-manifest) into :mod:`suture.suit.model` objects.

Structure only: no digest or signature is checked here (see :mod:`suture.suit.authentication`).
Every failure is a :class:`~suture.suit.errors.SuitError` that names the offending key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import cbor2

from suture.cose import CoseError, decode_sign1
from suture.cose.encrypt import decode_encrypt
from suture.cose.mac0 import decode_mac0
from suture.suit import codepoints as cp
from suture.suit import limits
from suture.suit.cbor import (
    decode_bytes,
    describe,
    expect_array,
    expect_bool,
    expect_bstr,
    expect_int,
    expect_map,
    expect_tstr,
    expect_uint,
    expect_uuid,
)
from suture.suit.components import component_info, dependency_info
from suture.suit.errors import SuitDecodeError, SuitLimitError, SuitStructureError
from suture.suit.model import (
    AuthenticationBlock,
    AuthenticationWrapper,
    Command,
    CommandSequence,
    Digest,
    Envelope,
    LocalizedText,
    Manifest,
    Parameter,
)

_AUTH_BLOCK_KINDS = {
    cp.COSE_SIGN1_TAG: "COSE_Sign1",
    cp.COSE_SIGN_TAG: "COSE_Sign",
    cp.COSE_MAC_TAG: "COSE_Mac",
    cp.COSE_MAC0_TAG: "COSE_Mac0",
}


def decode_envelope(data: bytes) -> Envelope:
    """Decode a SUIT envelope (tag 107 or untagged). Checks structure only, not signatures."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise SuitDecodeError(f"envelope: expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > limits.MAX_ENVELOPE_BYTES:
        raise SuitLimitError(
            f"envelope: {len(data)} bytes is over the limit of {limits.MAX_ENVELOPE_BYTES} bytes"
        )
    item = decode_bytes(
        data, "envelope", max_bytes=limits.MAX_ENVELOPE_BYTES, allowed_tags=(cp.ENVELOPE_TAG,)
    )
    tagged = isinstance(item, cbor2.CBORTag)
    if tagged:
        item = item.value
    envelope = expect_map(item, "envelope")

    auth_bstr: bytes | None = None
    manifest_bstr: bytes | None = None
    members: dict[str, bytes] = {}
    payloads: dict[str, bytes] = {}
    extensions: dict[Any, Any] = {}
    for key, value in envelope.items():
        where = f"envelope {cp.label(cp.ENVELOPE_KEYS, key)}"
        if isinstance(key, str):
            payloads[key] = expect_bstr(value, f"envelope integrated payload {key!r}")
        elif isinstance(key, bool) or not isinstance(key, int):
            raise SuitStructureError(f"envelope: key of type {describe(key)} is not allowed")
        elif key == cp.ENVELOPE_AUTHENTICATION:
            auth_bstr = expect_bstr(value, where)
        elif key == cp.ENVELOPE_MANIFEST:
            manifest_bstr = expect_bstr(value, where)
        elif key in cp.SEVERABLE_BY_KEY:
            members[cp.SEVERABLE_BY_KEY[key]] = expect_bstr(value, where)
        else:
            extensions[key] = value
    if auth_bstr is None:
        raise SuitStructureError(
            "envelope: no key 2 (authentication-wrapper): an unauthenticated manifest is rejected"
        )
    if manifest_bstr is None:
        raise SuitStructureError("envelope: no key 3 (manifest)")

    authentication = decode_authentication(auth_bstr)
    manifest = decode_manifest(manifest_bstr, members)
    for name in members:
        if name not in manifest.severable_digests:
            raise SuitStructureError(
                f"envelope {cp.label(cp.ENVELOPE_KEYS, cp.SEVERABLE_MEMBERS[name])}: the manifest "
                f"has no digest for this severable member"
            )
    severed = [name for name in manifest.severable_digests if name not in members]
    kids = [block.kid for block in authentication.blocks if block.kid is not None]
    return Envelope(
        manifest=manifest,
        authentication=authentication,
        manifest_bstr=manifest_bstr,
        severable_members=members,
        severed=severed,
        integrated_payloads=payloads,
        tagged=tagged,
        signer_key_ids=kids,
        extensions=extensions,
    )


def decode_digest(value: object, where: str) -> Digest:
    """A SUIT_Digest ``[algorithm-id, bytes]`` (a third element, parameters, is not supported)."""
    items = expect_array(value, where)
    if len(items) != 2:
        raise SuitStructureError(f"{where}: SUIT_Digest must have 2 elements, got {len(items)}")
    alg = expect_int(items[0], f"{where} algorithm")
    digest = expect_bstr(items[1], f"{where} bytes")
    known = cp.DIGEST_ALGORITHMS.get(alg)
    if known is not None and len(digest) != known[1]:
        raise SuitStructureError(
            f"{where}: a {known[0]} digest is {known[1]} bytes, got {len(digest)}"
        )
    return Digest(alg, digest)


def decode_authentication(auth_bstr: bytes) -> AuthenticationWrapper:
    """``[bstr .cbor SUIT_Digest, * bstr .cbor SUIT_Authentication_Block]``."""
    where = "authentication-wrapper"
    items = expect_array(decode_bytes(auth_bstr, where), where)
    if not items:
        raise SuitStructureError(f"{where}: empty; it must start with the manifest digest")
    if len(items) - 1 > limits.MAX_AUTH_BLOCKS:
        raise SuitLimitError(
            f"{where}: {len(items) - 1} authentication blocks, "
            f"the limit is {limits.MAX_AUTH_BLOCKS}"
        )
    digest_encoded = expect_bstr(items[0], f"{where} item 0 (digest)")
    digest = decode_digest(decode_bytes(digest_encoded, f"{where} digest"), f"{where} digest")
    blocks = [
        _decode_auth_block(expect_bstr(raw, f"{where} item {i}"), f"{where} item {i}")
        for i, raw in enumerate(items[1:], start=1)
    ]
    return AuthenticationWrapper(digest=digest, digest_encoded=digest_encoded, blocks=blocks)


def _decode_auth_block(raw: bytes, where: str) -> AuthenticationBlock:
    item = decode_bytes(
        raw, where, max_bytes=limits.MAX_AUTH_BLOCK_BYTES, allowed_tags=cp.AUTH_BLOCK_TAGS
    )
    if not isinstance(item, cbor2.CBORTag):
        # An untagged COSE structure: only COSE_Sign1 (4 elements) is accepted untagged.
        body = expect_array(item, where)
        if len(body) != 4:
            raise SuitStructureError(
                f"{where}: an untagged authentication block must be a 4-element COSE_Sign1"
            )
        kind = "COSE_Sign1"
    else:
        kind = _AUTH_BLOCK_KINDS[item.tag]
    if kind == "COSE_Mac0":
        try:
            mac = decode_mac0(raw)
        except CoseError as exc:
            raise SuitStructureError(f"{where}: {exc}") from None
        return AuthenticationBlock(encoded=raw, kind=kind, alg=mac.alg, kid=mac.kid)
    if kind != "COSE_Sign1":
        expect_array(item.value, where)
        return AuthenticationBlock(encoded=raw, kind=kind, alg=None, kid=None)
    try:
        sign1 = decode_sign1(raw)
    except CoseError as exc:
        raise SuitStructureError(f"{where}: {exc}") from None
    return AuthenticationBlock(encoded=raw, kind=kind, alg=sign1.alg, kid=sign1.kid)


def decode_manifest(manifest_bstr: bytes, members: Mapping[str, bytes] | None = None) -> Manifest:
    """Decode the SUIT_Manifest held in the envelope's key 3; ``members`` supplies the severable
    members found in the envelope (dependency-resolution, payload-fetch, candidate-verification,
    install, text), decoded in their place."""
    members = members or {}
    manifest = expect_map(decode_bytes(manifest_bstr, "manifest"), "manifest")

    def where(key: int) -> str:
        return f"manifest {cp.label(cp.MANIFEST_KEYS, key)}"

    for required in (cp.MANIFEST_VERSION, cp.MANIFEST_SEQUENCE_NUMBER, cp.MANIFEST_COMMON):
        if required not in manifest:
            raise SuitStructureError(f"{where(required)}: missing")
    version = expect_uint(manifest[cp.MANIFEST_VERSION], where(cp.MANIFEST_VERSION))
    if version != cp.SUPPORTED_MANIFEST_VERSION:
        raise SuitStructureError(
            f"{where(cp.MANIFEST_VERSION)}: version {version} is not supported "
            f"(only {cp.SUPPORTED_MANIFEST_VERSION})"
        )
    sequence_number = expect_uint(
        manifest[cp.MANIFEST_SEQUENCE_NUMBER], where(cp.MANIFEST_SEQUENCE_NUMBER)
    )
    if sequence_number > limits.MAX_SEQUENCE_NUMBER:
        raise SuitLimitError(
            f"{where(cp.MANIFEST_SEQUENCE_NUMBER)}: {sequence_number} is over the limit of "
            f"{limits.MAX_SEQUENCE_NUMBER} (devices keep the sequence number in 32 bits)"
        )
    components, shared, dependencies = _decode_common(
        expect_bstr(manifest[cp.MANIFEST_COMMON], where(cp.MANIFEST_COMMON))
    )
    n_components = len(components) + sum(1 for i in dependencies if i >= len(components))

    reference_uri = None
    if cp.MANIFEST_REFERENCE_URI in manifest:
        reference_uri = expect_tstr(
            manifest[cp.MANIFEST_REFERENCE_URI], where(cp.MANIFEST_REFERENCE_URI)
        )
    manifest_component_id = None
    if cp.MANIFEST_COMPONENT_ID in manifest:
        manifest_component_id = _component_id(
            manifest[cp.MANIFEST_COMPONENT_ID], where(cp.MANIFEST_COMPONENT_ID)
        )

    def sequence(key: int) -> CommandSequence | None:
        if key not in manifest:
            return None
        raw = expect_bstr(manifest[key], where(key))
        return decode_sequence(raw, where(key), n_components)

    validate = sequence(cp.MANIFEST_VALIDATE)
    load = sequence(cp.MANIFEST_LOAD)
    invoke = sequence(cp.MANIFEST_INVOKE)
    uninstall = sequence(cp.MANIFEST_UNINSTALL)
    sbom_digest = None
    if cp.MANIFEST_SUTURE_SBOM in manifest:
        sbom_digest = decode_digest(
            manifest[cp.MANIFEST_SUTURE_SBOM], where(cp.MANIFEST_SUTURE_SBOM)
        )

    severable_digests: dict[str, Digest] = {}
    resolved: dict[str, bytes] = {}
    for name, key in cp.SEVERABLE_MEMBERS.items():
        if key not in manifest:
            continue
        value = manifest[key]
        if isinstance(value, bytes):
            resolved[name] = value
        elif isinstance(value, list | tuple):
            severable_digests[name] = decode_digest(value, where(key))
            if name in members:
                resolved[name] = members[name]
        else:
            raise SuitStructureError(
                f"{where(key)}: expected bstr or SUIT_Digest, got {describe(value)}"
            )
    severable: dict[str, CommandSequence] = {
        name: decode_sequence(raw, where(cp.SEVERABLE_MEMBERS[name]), n_components)
        for name, raw in resolved.items()
        if name != "text"
    }
    text = None
    if "text" in resolved:
        text = decode_text(resolved["text"], where(cp.MANIFEST_TEXT))

    known = set(cp.MANIFEST_KEYS)
    extensions = {k: v for k, v in manifest.items() if k not in known}
    for key in extensions:
        if isinstance(key, bool) or not isinstance(key, int):
            raise SuitStructureError(f"manifest: key of type {describe(key)} is not allowed")

    decoded = Manifest(
        version=version,
        sequence_number=sequence_number,
        components=components,
        shared_sequence=shared,
        reference_uri=reference_uri,
        manifest_component_id=manifest_component_id,
        validate=validate,
        load=load,
        invoke=invoke,
        payload_fetch=severable.get("payload-fetch"),
        install=severable.get("install"),
        text=text,
        severable_digests=severable_digests,
        component_info=[],
        encoded=manifest_bstr,
        extensions=extensions,
        dependencies=dependencies,
        dependency_resolution=severable.get("dependency-resolution"),
        candidate_verification=severable.get("candidate-verification"),
        uninstall=uninstall,
        sbom_digest=sbom_digest,
    )
    return replace(
        decoded,
        component_info=component_info(decoded),
        dependency_info=dependency_info(decoded),
    )


def _component_id(value: object, where: str) -> list[bytes]:
    parts = expect_array(value, where)
    if not parts:
        raise SuitStructureError(f"{where}: a component identifier needs at least one element")
    if len(parts) > limits.MAX_COMPONENT_ID_ELEMENTS:
        raise SuitLimitError(
            f"{where}: {len(parts)} elements, the limit is {limits.MAX_COMPONENT_ID_ELEMENTS}"
        )
    return [expect_bstr(p, f"{where} element {i}") for i, p in enumerate(parts)]


def _decode_common(
    raw: bytes,
) -> tuple[list[list[bytes]], CommandSequence | None, dict[int, list[bytes] | None]]:
    base = f"manifest {cp.label(cp.MANIFEST_KEYS, cp.MANIFEST_COMMON)}"
    common = expect_map(decode_bytes(raw, base), base)

    def where(key: object) -> str:
        return f"common {cp.label(cp.COMMON_KEYS, key)}"

    for key in common:
        if key not in (cp.COMMON_DEPENDENCIES, cp.COMMON_COMPONENTS, cp.COMMON_SHARED_SEQUENCE):
            raise SuitStructureError(f"{where(key)}: unknown key")
    if cp.COMMON_COMPONENTS not in common:
        raise SuitStructureError(f"{where(cp.COMMON_COMPONENTS)}: missing")
    ids = expect_array(common[cp.COMMON_COMPONENTS], where(cp.COMMON_COMPONENTS))
    if not ids:
        raise SuitStructureError(f"{where(cp.COMMON_COMPONENTS)}: no components")
    if len(ids) > limits.MAX_COMPONENTS:
        raise SuitLimitError(
            f"{where(cp.COMMON_COMPONENTS)}: {len(ids)} components, "
            f"the limit is {limits.MAX_COMPONENTS}"
        )
    components = [
        _component_id(c, f"{where(cp.COMMON_COMPONENTS)} component {i}") for i, c in enumerate(ids)
    ]
    dependencies: dict[int, list[bytes] | None] = {}
    if cp.COMMON_DEPENDENCIES in common:
        dependencies = _decode_dependencies(
            common[cp.COMMON_DEPENDENCIES], where(cp.COMMON_DEPENDENCIES), len(components)
        )
    n_indices = len(components) + sum(1 for i in dependencies if i >= len(components))
    shared = None
    if cp.COMMON_SHARED_SEQUENCE in common:
        key = cp.COMMON_SHARED_SEQUENCE
        shared = decode_sequence(expect_bstr(common[key], where(key)), where(key), n_indices)
    return components, shared, dependencies


def _decode_dependencies(
    value: object, where: str, n_components: int
) -> dict[int, list[bytes] | None]:
    """SUIT_Dependencies: ``{+ component-index => {? 1 (prefix) => SUIT_Component_Identifier}}``.

    A dependency's index names an entry of the component list, or follows it: the draft's
    examples number their dependencies after the components. Indices past the component list
    must follow it without a gap.
    """
    entries = expect_map(value, where)
    if not entries:
        raise SuitStructureError(f"{where}: empty; leave the key out when there is none")
    if len(entries) > limits.MAX_DEPENDENCIES:
        raise SuitLimitError(
            f"{where}: {len(entries)} dependencies, the limit is {limits.MAX_DEPENDENCIES}"
        )
    out: dict[int, list[bytes] | None] = {}
    for index, metadata in entries.items():
        index = expect_uint(index, f"{where} component index")
        mwhere = f"{where} index {index}"
        meta = expect_map(metadata, mwhere)
        prefix = None
        for key, item in meta.items():
            if key == cp.DEPENDENCY_PREFIX:
                prefix = _component_id(item, f"{mwhere} key 1 (dependency-prefix)")
            else:
                raise SuitStructureError(f"{mwhere}: unknown key {key!r}")
        out[index] = prefix
    beyond = sorted(i for i in out if i >= n_components)
    if beyond != list(range(n_components, n_components + len(beyond))):
        raise SuitStructureError(
            f"{where}: indices {beyond} leave a gap after the {n_components} components"
        )
    return out


def decode_sequence(
    raw: bytes, where: str, n_components: int, *, depth: int = 0
) -> CommandSequence:
    """A SUIT_Command_Sequence: ``[+ (command-code, argument)]``."""
    if depth >= limits.MAX_SEQUENCE_DEPTH:
        raise SuitLimitError(
            f"{where}: command sequences nested deeper than {limits.MAX_SEQUENCE_DEPTH}"
        )
    items = expect_array(decode_bytes(raw, where), where)
    if not items:
        raise SuitStructureError(f"{where}: empty command sequence")
    if len(items) % 2:
        raise SuitStructureError(
            f"{where}: {len(items)} items; a command sequence holds (code, argument) pairs"
        )
    commands = []
    for i in range(0, len(items), 2):
        code = expect_int(items[i], f"{where} item {i} (command code)")
        cwhere = f"{where} command {i // 2} ({cp.command_name(code)})"
        commands.append(_decode_command(code, items[i + 1], cwhere, n_components, depth))
    return CommandSequence(commands=tuple(commands), encoded=raw)


def _decode_command(code: int, arg: object, where: str, n_components: int, depth: int) -> Command:
    name = cp.command_name(code)
    kind = (
        "condition"
        if code in cp.CONDITIONS
        else "directive"
        if code in cp.DIRECTIVES
        else "unknown"
    )
    argument: Any
    if code == cp.DIRECTIVE_SET_COMPONENT_INDEX:
        argument = _component_index(arg, where, n_components)
    elif code in (cp.DIRECTIVE_OVERRIDE_PARAMETERS, cp.DIRECTIVE_SET_PARAMETERS):
        argument = decode_parameters(arg, where)
    elif code == cp.DIRECTIVE_TRY_EACH:
        options = expect_array(arg, where)
        if not options:
            raise SuitStructureError(f"{where}: try-each needs at least one sequence")
        decoded: list[CommandSequence | None] = []
        for j, option in enumerate(options):
            owhere = f"{where} option {j}"
            if option is None and j == len(options) - 1:
                decoded.append(None)
                continue
            raw = expect_bstr(option, owhere)
            decoded.append(decode_sequence(raw, owhere, n_components, depth=depth + 1))
        argument = tuple(decoded)
    elif code == cp.DIRECTIVE_RUN_SEQUENCE:
        raw = expect_bstr(arg, where)
        argument = decode_sequence(raw, where, n_components, depth=depth + 1)
    elif kind == "unknown":
        argument = arg
    else:
        argument = expect_uint(arg, f"{where} reporting policy")
    return Command(code=code, name=name, kind=kind, argument=argument)


def _component_index(arg: object, where: str, n_components: int) -> int | bool | tuple[int, ...]:
    if arg is True:
        return True
    if isinstance(arg, list | tuple):
        if not arg:
            raise SuitStructureError(f"{where}: empty list of component indices")
        return tuple(_one_index(a, f"{where} item {i}", n_components) for i, a in enumerate(arg))
    return _one_index(arg, where, n_components)


def _one_index(arg: object, where: str, n_components: int) -> int:
    index = expect_uint(arg, where)
    if index >= n_components:
        raise SuitStructureError(
            f"{where}: component index {index} out of range ({n_components} components)"
        )
    return index


def decode_parameters(arg: object, where: str) -> tuple[Parameter, ...]:
    """A SUIT_Parameters map, each value checked against its parameter's type."""
    params = expect_map(arg, where)
    out = []
    for code, value in params.items():
        code = expect_int(code, f"{where} parameter key")
        name = cp.parameter_name(code)
        out.append(
            Parameter(
                code, name, _parameter_value(code, value, f"{where} parameter {code} ({name})")
            )
        )
    return tuple(out)


def _parameter_value(code: int, value: object, where: str) -> Any:
    if code in (
        cp.PARAMETER_VENDOR_IDENTIFIER,
        cp.PARAMETER_CLASS_IDENTIFIER,
        cp.PARAMETER_DEVICE_IDENTIFIER,
    ):
        return expect_uuid(value, where)
    if code == cp.PARAMETER_IMAGE_DIGEST:
        return decode_digest(decode_bytes(expect_bstr(value, where), where), where)
    if code in (
        cp.PARAMETER_IMAGE_SIZE,
        cp.PARAMETER_COMPONENT_SLOT,
        cp.PARAMETER_SOURCE_COMPONENT,
    ):
        return expect_uint(value, where)
    if code in (
        cp.PARAMETER_USE_BEFORE,
        cp.PARAMETER_SUTURE_NOT_BEFORE,
        cp.PARAMETER_SUTURE_DELTA_SOURCE_SIZE,
        cp.PARAMETER_SUTURE_DELTA_SIZE,
    ):
        return expect_uint(value, where)
    if code in (
        cp.PARAMETER_SUTURE_APPROVALS_DIGEST,
        cp.PARAMETER_SUTURE_DELTA_SOURCE_DIGEST,
        cp.PARAMETER_SUTURE_DELTA_DIGEST,
    ):
        return decode_digest(decode_bytes(expect_bstr(value, where), where), where)
    if code == cp.PARAMETER_ENCRYPTION_INFO:
        raw = expect_bstr(value, where)
        try:
            return decode_encrypt(raw)
        except CoseError as exc:
            raise SuitStructureError(f"{where}: {exc}") from None
    if code in (cp.PARAMETER_STRICT_ORDER, cp.PARAMETER_SOFT_FAILURE):
        return expect_bool(value, where)
    if code in (cp.PARAMETER_CONTENT, cp.PARAMETER_INVOKE_ARGS):
        return expect_bstr(value, where)
    if code == cp.PARAMETER_URI:
        return expect_tstr(value, where)
    return value


def decode_text(raw: bytes, where: str) -> dict[str, LocalizedText]:
    """SUIT_Text_Map: ``{language tag => {text key => tstr, component id => {key => tstr}}}``."""
    text_map = expect_map(decode_bytes(raw, where), where)
    out: dict[str, LocalizedText] = {}
    for lang, entries in text_map.items():
        lang = expect_tstr(lang, f"{where} language tag")
        lwhere = f"{where} language {lang!r}"
        manifest_text: dict[str, str] = {}
        component_text: list[tuple[list[bytes], dict[str, str]]] = []
        for key, value in expect_map(entries, lwhere).items():
            if isinstance(key, list | tuple):
                cid = _component_id(key, f"{lwhere} component key")
                fields = {}
                for ckey, cvalue in expect_map(value, f"{lwhere} component {cid!r}").items():
                    ckey = expect_int(ckey, f"{lwhere} component text key")
                    cname = cp.TEXT_COMPONENT_KEYS.get(ckey, f"key-{ckey}")
                    fields[cname] = expect_tstr(cvalue, f"{lwhere} component text {cname}")
                component_text.append((cid, fields))
            else:
                key = expect_int(key, f"{lwhere} text key")
                tname = cp.TEXT_KEYS.get(key, f"key-{key}")
                manifest_text[tname] = expect_tstr(value, f"{lwhere} text {tname}")
        out[lang] = LocalizedText(manifest=manifest_text, components=component_text)
    return out
