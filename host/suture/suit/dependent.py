"""The hospital's manifest over the vendor's (draft-ietf-suit-trust-domains): a dependent
manifest, signed by the hospital's scheduler key, that depends on the vendor's signed envelope
(unchanged, integrated or by URI) and adds the hospital's own conditions and parameters.

A device that processes it verifies two signatures under two trust anchors: the hospital's
over this manifest, the vendor's over the dependency; and the hospital's conditions hold before
any section of the vendor's manifest runs (they are in the shared sequence):

- the vendor and class identifiers of the vendor's first component (the same device class);
- the device set: ``try-each`` over one option per device, each setting the device-identifier
  parameter and checking condition-device-identifier; no trailing nil, so a device outside the
  set fails the condition (an empty set: any device of the class);
- the window: suture-not-before (custom condition -257 over parameter -257) and
  condition-use-before (update-management, 4) over parameter use-before (4), unix seconds;
- the approvals: their SUIT_Digest in parameter -258 (suture-approvals-digest), signed, so
  the manifest names the exact approvals it was issued under (the device does not check it).

Each of the vendor's sections gets a section here that selects the dependency, checks its
integrity and processes it (the template of the trust-domains draft): dependency-resolution
fetches it (a no-op when integrated).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID

import cbor2

from suture.cose.mac0 import SymmetricKey
from suture.keys import PrivateKey
from suture.suit import codepoints as cp
from suture.suit import limits
from suture.suit.authentication import VerificationKey, sign_envelope, verify_envelope
from suture.suit.digest import digest_wrapped, encode_digest
from suture.suit.encoder import encode_auth_wrapper, encode_envelope
from suture.suit.errors import SuitDescriptionError
from suture.suit.model import Digest, Envelope

DEFAULT_DEPENDENCY_URI: Final = "#vendor.suit"
MAX_DEVICES: Final = 512
REPORT_ALL: Final = 15
REPORT_ON_FAILURE: Final = 2


@dataclass(frozen=True)
class HospitalConditions:
    """What the hospital adds to the vendor's manifest."""

    devices: tuple[UUID, ...] = ()
    not_before: int | None = None
    not_after: int | None = None
    approvals_digest: Digest | None = None

    def __post_init__(self) -> None:
        if len(self.devices) > MAX_DEVICES:
            raise SuitDescriptionError(
                f"devices: {len(self.devices)} devices, the limit is {MAX_DEVICES} per manifest"
            )
        if len(set(self.devices)) != len(self.devices):
            raise SuitDescriptionError("devices: a device is listed twice")
        for name, value in (("not-before", self.not_before), ("not-after", self.not_after)):
            if value is not None and (isinstance(value, bool) or not 0 <= value < 1 << 63):
                raise SuitDescriptionError(f"{name}: expected unix seconds, got {value!r}")
        if (
            self.not_before is not None
            and self.not_after is not None
            and self.not_after <= self.not_before
        ):
            raise SuitDescriptionError("not-after must be later than not-before")


def _check_sequence_number(sequence_number: int) -> None:
    if isinstance(sequence_number, bool) or not 0 <= sequence_number <= limits.MAX_SEQUENCE_NUMBER:
        raise SuitDescriptionError(
            f"sequence-number: expected 0 to {limits.MAX_SEQUENCE_NUMBER}, got {sequence_number!r}"
        )


def _dependency_steps(index: int, *, fetch: bool) -> list[Any]:
    steps: list[Any] = [cp.DIRECTIVE_SET_COMPONENT_INDEX, index]
    if fetch:
        steps += [cp.DIRECTIVE_FETCH, REPORT_ON_FAILURE]
    return [*steps, cp.CONDITION_DEPENDENCY_INTEGRITY, REPORT_ALL,
            cp.DIRECTIVE_PROCESS_DEPENDENCY, 0]


def create_dependent_envelope(
    vendor_envelope: bytes,
    vendor_keys: VerificationKey | Sequence[VerificationKey],
    key: PrivateKey | SymmetricKey,
    *,
    sequence_number: int,
    conditions: HospitalConditions,
    uri: str | None = None,
    kid: bytes | None = None,
) -> bytes:
    """The hospital's envelope over ``vendor_envelope`` (verified first with ``vendor_keys``).

    With ``uri`` None the vendor's envelope is integrated under ``#vendor.suit``; with a
    ``uri`` not starting with ``#`` it is left out and fetched from there (its digest and size
    are in the manifest); a ``#`` uri integrates it under that name.
    """
    _check_sequence_number(sequence_number)  # before the vendor's signature is checked
    return dependent_envelope_of(
        verify_envelope(vendor_envelope, vendor_keys), vendor_envelope, key,
        sequence_number=sequence_number, conditions=conditions, uri=uri, kid=kid)


def dependent_envelope_of(
    vendor: Envelope,
    vendor_envelope: bytes,
    key: PrivateKey | SymmetricKey,
    *,
    sequence_number: int,
    conditions: HospitalConditions,
    uri: str | None = None,
    kid: bytes | None = None,
) -> bytes:
    """``create_dependent_envelope`` for a vendor's envelope the caller verified already
    (``vendor`` is ``vendor_envelope`` decoded: the scheduler verified it when it imported the
    release; the device verifies it again under its own vendor anchors)."""
    _check_sequence_number(sequence_number)
    first = vendor.manifest.component_info[0]
    if first.vendor_id is None or first.class_id is None:
        raise SuitDescriptionError(
            "the vendor's manifest sets no vendor and class identifier for its first component"
        )
    dependency_uri = uri or DEFAULT_DEPENDENCY_URI
    integrated = dependency_uri.startswith("#")
    components = [list(c) for c in vendor.manifest.components]
    dep_index = len(components)

    params: dict[int, Any] = {
        cp.PARAMETER_VENDOR_IDENTIFIER: first.vendor_id.bytes,
        cp.PARAMETER_CLASS_IDENTIFIER: first.class_id.bytes,
    }
    if conditions.not_after is not None:
        params[cp.PARAMETER_USE_BEFORE] = conditions.not_after
    if conditions.not_before is not None:
        params[cp.PARAMETER_SUTURE_NOT_BEFORE] = conditions.not_before
    if conditions.approvals_digest is not None:
        params[cp.PARAMETER_SUTURE_APPROVALS_DIGEST] = encode_digest(conditions.approvals_digest)
    shared: list[Any] = []
    if len(components) > 1:
        shared += [cp.DIRECTIVE_SET_COMPONENT_INDEX, 0]
    shared += [
        cp.DIRECTIVE_OVERRIDE_PARAMETERS, params,
        cp.CONDITION_VENDOR_IDENTIFIER, REPORT_ALL,
        cp.CONDITION_CLASS_IDENTIFIER, REPORT_ALL,
    ]
    if conditions.not_before is not None:
        shared += [cp.CONDITION_SUTURE_NOT_BEFORE, REPORT_ALL]
    if conditions.not_after is not None:
        shared += [cp.CONDITION_USE_BEFORE, REPORT_ALL]
    if conditions.devices:
        options = [
            cbor2.dumps([
                cp.DIRECTIVE_OVERRIDE_PARAMETERS, {cp.PARAMETER_DEVICE_IDENTIFIER: device.bytes},
                cp.CONDITION_DEVICE_IDENTIFIER, REPORT_ON_FAILURE,
            ])
            for device in conditions.devices
        ]
        shared += [cp.DIRECTIVE_TRY_EACH, options]
    shared += [
        cp.DIRECTIVE_SET_COMPONENT_INDEX, dep_index,
        cp.DIRECTIVE_OVERRIDE_PARAMETERS, {
            cp.PARAMETER_IMAGE_DIGEST: encode_digest(vendor.authentication.digest),
            cp.PARAMETER_IMAGE_SIZE: len(vendor_envelope),
            cp.PARAMETER_URI: dependency_uri,
        },
    ]
    common = {
        cp.COMMON_DEPENDENCIES: {dep_index: {}},
        cp.COMMON_COMPONENTS: components,
        cp.COMMON_SHARED_SEQUENCE: cbor2.dumps(shared),
    }
    manifest: dict[int, Any] = {
        cp.MANIFEST_VERSION: cp.SUPPORTED_MANIFEST_VERSION,
        cp.MANIFEST_SEQUENCE_NUMBER: sequence_number,
        cp.MANIFEST_COMMON: cbor2.dumps(common),
        cp.MANIFEST_DEPENDENCY_RESOLUTION: cbor2.dumps(
            _dependency_steps(dep_index, fetch=not integrated)
        ),
    }
    vendor_sections = vendor.manifest.sequences()
    for name, section in (
        ("payload-fetch", cp.MANIFEST_PAYLOAD_FETCH),
        ("install", cp.MANIFEST_INSTALL),
        ("validate", cp.MANIFEST_VALIDATE),
        ("load", cp.MANIFEST_LOAD),
        ("invoke", cp.MANIFEST_INVOKE),
    ):
        if name in vendor_sections or name == "validate":
            manifest[section] = cbor2.dumps(_dependency_steps(dep_index, fetch=False))
    manifest_bstr = cbor2.dumps(manifest)
    unsigned = encode_envelope(
        auth_wrapper=encode_auth_wrapper(encode_digest(digest_wrapped(manifest_bstr)), []),
        manifest=manifest_bstr,
        integrated_payloads={dependency_uri: vendor_envelope} if integrated else None,
    )
    return sign_envelope(unsigned, key, kid=kid)


def hospital_conditions(envelope: Envelope) -> HospitalConditions:
    """The hospital's conditions read back from its manifest's shared sequence."""
    shared = envelope.manifest.shared_sequence
    params = envelope.manifest.component_info[0].parameters if envelope.manifest.components else {}
    devices: list[UUID] = []
    if shared is not None:
        for command in shared.commands:
            if command.code != cp.DIRECTIVE_TRY_EACH:
                continue
            for option in command.argument:
                if option is None:
                    continue
                for inner in option.commands:
                    for p in inner.parameters:
                        if p.code == cp.PARAMETER_DEVICE_IDENTIFIER:
                            devices.append(p.value)
    approvals = params.get("suture-approvals-digest")
    not_before = params.get("suture-not-before")
    not_after = params.get("use-before")
    return HospitalConditions(
        devices=tuple(devices),
        not_before=not_before if isinstance(not_before, int) else None,
        not_after=not_after if isinstance(not_after, int) else None,
        approvals_digest=approvals if isinstance(approvals, Digest) else None,
    )

