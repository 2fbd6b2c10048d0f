"""Code points of draft-ietf-suit-manifest (draft -29 and later: install = 20, write = 18),
and of the extensions suture processes: draft-ietf-suit-trust-domains (dependencies),
draft-ietf-suit-firmware-encryption (encryption info), draft-ietf-suit-update-management
(use-before) and suture's own private-use labels (negative, ``suture-`` names).

Each table maps the integer label to the name the draft uses, without the ``suit-`` prefix.
Sources: draft-ietf-suit-manifest section 8.4 (CDDL) and the IANA "SUIT" registries; the
extension drafts' IANA sections.
"""

from __future__ import annotations

from typing import Final

# SUIT_Envelope_Tagged (draft section 8.2)
ENVELOPE_TAG: Final = 107

# SUIT_Envelope keys
ENVELOPE_DELEGATION: Final = 1
ENVELOPE_AUTHENTICATION: Final = 2
ENVELOPE_MANIFEST: Final = 3

# SUIT_Manifest keys
MANIFEST_VERSION: Final = 1
MANIFEST_SEQUENCE_NUMBER: Final = 2
MANIFEST_COMMON: Final = 3
MANIFEST_REFERENCE_URI: Final = 4
MANIFEST_COMPONENT_ID: Final = 5
MANIFEST_VALIDATE: Final = 7
MANIFEST_LOAD: Final = 8
MANIFEST_INVOKE: Final = 9
MANIFEST_PAYLOAD_FETCH: Final = 16
MANIFEST_INSTALL: Final = 20
MANIFEST_TEXT: Final = 23
# draft-ietf-suit-trust-domains
MANIFEST_DEPENDENCY_RESOLUTION: Final = 15
MANIFEST_CANDIDATE_VERIFICATION: Final = 18
MANIFEST_UNINSTALL: Final = 24
# suture (private use): SUIT_Digest of the release's CycloneDX SBOM
# (docs/formats/suit-extensions.md)
MANIFEST_SUTURE_SBOM: Final = -257

SUPPORTED_MANIFEST_VERSION: Final = 1

ENVELOPE_KEYS: Final = {
    ENVELOPE_DELEGATION: "delegation",
    ENVELOPE_AUTHENTICATION: "authentication-wrapper",
    ENVELOPE_MANIFEST: "manifest",
    MANIFEST_DEPENDENCY_RESOLUTION: "dependency-resolution",
    MANIFEST_PAYLOAD_FETCH: "payload-fetch",
    MANIFEST_CANDIDATE_VERIFICATION: "candidate-verification",
    MANIFEST_INSTALL: "install",
    MANIFEST_TEXT: "text",
}

MANIFEST_KEYS: Final = {
    MANIFEST_VERSION: "version",
    MANIFEST_SEQUENCE_NUMBER: "sequence-number",
    MANIFEST_COMMON: "common",
    MANIFEST_REFERENCE_URI: "reference-uri",
    MANIFEST_COMPONENT_ID: "manifest-component-id",
    MANIFEST_VALIDATE: "validate",
    MANIFEST_LOAD: "load",
    MANIFEST_INVOKE: "invoke",
    MANIFEST_PAYLOAD_FETCH: "payload-fetch",
    MANIFEST_INSTALL: "install",
    MANIFEST_TEXT: "text",
    MANIFEST_DEPENDENCY_RESOLUTION: "dependency-resolution",
    MANIFEST_CANDIDATE_VERIFICATION: "candidate-verification",
    MANIFEST_UNINSTALL: "uninstall",
    MANIFEST_SUTURE_SBOM: "suture-sbom",
}

# Severable members: in the manifest either inline or as a SUIT_Digest of the envelope member.
SEVERABLE_MEMBERS: Final = {
    "dependency-resolution": MANIFEST_DEPENDENCY_RESOLUTION,
    "payload-fetch": MANIFEST_PAYLOAD_FETCH,
    "candidate-verification": MANIFEST_CANDIDATE_VERIFICATION,
    "install": MANIFEST_INSTALL,
    "text": MANIFEST_TEXT,
}
SEVERABLE_BY_KEY: Final = {v: k for k, v in SEVERABLE_MEMBERS.items()}

# SUIT_Common keys
COMMON_DEPENDENCIES: Final = 1
COMMON_COMPONENTS: Final = 2
COMMON_SHARED_SEQUENCE: Final = 4
# SUIT_Dependency_Metadata keys (trust-domains)
DEPENDENCY_PREFIX: Final = 1
COMMON_KEYS: Final = {
    COMMON_DEPENDENCIES: "dependencies",
    COMMON_COMPONENTS: "components",
    COMMON_SHARED_SEQUENCE: "shared-sequence",
}

# Conditions
CONDITION_VENDOR_IDENTIFIER: Final = 1
CONDITION_CLASS_IDENTIFIER: Final = 2
CONDITION_IMAGE_MATCH: Final = 3
CONDITION_USE_BEFORE: Final = 4  # update-management
CONDITION_COMPONENT_SLOT: Final = 5
CONDITION_CHECK_CONTENT: Final = 6
CONDITION_ABORT: Final = 14
CONDITION_DEVICE_IDENTIFIER: Final = 24
CONDITION_DEPENDENCY_INTEGRITY: Final = 7  # trust-domains
CONDITION_IS_DEPENDENCY: Final = 8  # trust-domains
CONDITION_SUTURE_NOT_BEFORE: Final = -257  # suture (custom): now >= parameter suture-not-before
# suture (custom): the device holds the delta's source image (parameters suture-delta-source-*),
# checked before anything is written (docs/formats/delta.md)
CONDITION_SUTURE_DELTA_SOURCE: Final = -258

CONDITIONS: Final = {
    CONDITION_VENDOR_IDENTIFIER: "condition-vendor-identifier",
    CONDITION_CLASS_IDENTIFIER: "condition-class-identifier",
    CONDITION_IMAGE_MATCH: "condition-image-match",
    CONDITION_USE_BEFORE: "condition-use-before",
    CONDITION_DEPENDENCY_INTEGRITY: "condition-dependency-integrity",
    CONDITION_IS_DEPENDENCY: "condition-is-dependency",
    CONDITION_SUTURE_NOT_BEFORE: "suture-condition-not-before",
    CONDITION_SUTURE_DELTA_SOURCE: "suture-condition-delta-source",
    CONDITION_COMPONENT_SLOT: "condition-component-slot",
    CONDITION_CHECK_CONTENT: "condition-check-content",
    CONDITION_ABORT: "condition-abort",
    CONDITION_DEVICE_IDENTIFIER: "condition-device-identifier",
}

# Directives
DIRECTIVE_SET_COMPONENT_INDEX: Final = 12
DIRECTIVE_TRY_EACH: Final = 15
DIRECTIVE_WRITE: Final = 18
DIRECTIVE_SET_PARAMETERS: Final = 19
DIRECTIVE_OVERRIDE_PARAMETERS: Final = 20
DIRECTIVE_FETCH: Final = 21
DIRECTIVE_COPY: Final = 22
DIRECTIVE_INVOKE: Final = 23
DIRECTIVE_SWAP: Final = 31
DIRECTIVE_RUN_SEQUENCE: Final = 32
DIRECTIVE_PROCESS_DEPENDENCY: Final = 11  # trust-domains
DIRECTIVE_UNLINK: Final = 33  # trust-domains

DIRECTIVES: Final = {
    DIRECTIVE_SET_COMPONENT_INDEX: "directive-set-component-index",
    DIRECTIVE_TRY_EACH: "directive-try-each",
    DIRECTIVE_WRITE: "directive-write",
    DIRECTIVE_SET_PARAMETERS: "directive-set-parameters",
    DIRECTIVE_OVERRIDE_PARAMETERS: "directive-override-parameters",
    DIRECTIVE_FETCH: "directive-fetch",
    DIRECTIVE_COPY: "directive-copy",
    DIRECTIVE_INVOKE: "directive-invoke",
    DIRECTIVE_SWAP: "directive-swap",
    DIRECTIVE_RUN_SEQUENCE: "directive-run-sequence",
    DIRECTIVE_PROCESS_DEPENDENCY: "directive-process-dependency",
    DIRECTIVE_UNLINK: "directive-unlink",
}

# Parameters
PARAMETER_VENDOR_IDENTIFIER: Final = 1
PARAMETER_CLASS_IDENTIFIER: Final = 2
PARAMETER_IMAGE_DIGEST: Final = 3
PARAMETER_USE_BEFORE: Final = 4  # update-management: unix seconds
PARAMETER_COMPONENT_SLOT: Final = 5
PARAMETER_STRICT_ORDER: Final = 12
PARAMETER_SOFT_FAILURE: Final = 13
PARAMETER_IMAGE_SIZE: Final = 14
PARAMETER_CONTENT: Final = 18
PARAMETER_URI: Final = 21
PARAMETER_SOURCE_COMPONENT: Final = 22
PARAMETER_INVOKE_ARGS: Final = 23
PARAMETER_DEVICE_IDENTIFIER: Final = 24
PARAMETER_ENCRYPTION_INFO: Final = 19  # firmware-encryption: bstr .cbor SUIT_Encryption_Info
# suture (custom, negative): unix seconds before which the manifest must not be applied, and
# the SUIT_Digest of the approvals a hospital's manifest was issued under.
PARAMETER_SUTURE_NOT_BEFORE: Final = -257
PARAMETER_SUTURE_APPROVALS_DIGEST: Final = -258
# suture (custom): the payload is a delta patch (docs/formats/delta.md): the SUIT_Digest and size
# of the one source image it applies to, and of the patch itself (the image digest and size stay
# the target's)
PARAMETER_SUTURE_DELTA_SOURCE_DIGEST: Final = -259
PARAMETER_SUTURE_DELTA_SOURCE_SIZE: Final = -260
PARAMETER_SUTURE_DELTA_DIGEST: Final = -261
PARAMETER_SUTURE_DELTA_SIZE: Final = -262

PARAMETERS: Final = {
    PARAMETER_VENDOR_IDENTIFIER: "vendor-identifier",
    PARAMETER_CLASS_IDENTIFIER: "class-identifier",
    PARAMETER_IMAGE_DIGEST: "image-digest",
    PARAMETER_COMPONENT_SLOT: "component-slot",
    PARAMETER_STRICT_ORDER: "strict-order",
    PARAMETER_SOFT_FAILURE: "soft-failure",
    PARAMETER_IMAGE_SIZE: "image-size",
    PARAMETER_CONTENT: "content",
    PARAMETER_URI: "uri",
    PARAMETER_SOURCE_COMPONENT: "source-component",
    PARAMETER_INVOKE_ARGS: "invoke-args",
    PARAMETER_DEVICE_IDENTIFIER: "device-identifier",
    PARAMETER_USE_BEFORE: "use-before",
    PARAMETER_ENCRYPTION_INFO: "encryption-info",
    PARAMETER_SUTURE_NOT_BEFORE: "suture-not-before",
    PARAMETER_SUTURE_APPROVALS_DIGEST: "suture-approvals-digest",
    PARAMETER_SUTURE_DELTA_SOURCE_DIGEST: "suture-delta-source-digest",
    PARAMETER_SUTURE_DELTA_SOURCE_SIZE: "suture-delta-source-size",
    PARAMETER_SUTURE_DELTA_DIGEST: "suture-delta-digest",
    PARAMETER_SUTURE_DELTA_SIZE: "suture-delta-size",
}

# Reporting policy bits (draft section 8.4.7): the argument of most conditions and directives.
REPORT_RECORD_ON_SUCCESS: Final = 1
REPORT_RECORD_ON_FAILURE: Final = 2
REPORT_SYSINFO_ON_SUCCESS: Final = 4
REPORT_SYSINFO_ON_FAILURE: Final = 8

# SUIT_Text keys (per language)
TEXT_KEYS: Final = {
    1: "manifest-description",
    2: "update-description",
    3: "manifest-json-source",
    4: "manifest-yaml-source",
}
TEXT_COMPONENT_KEYS: Final = {
    1: "vendor-name",
    2: "model-name",
    3: "vendor-domain",
    4: "model-info",
    5: "component-description",
    6: "component-version",
}

# Digest algorithms (COSE algorithm ids) and their output sizes.
DIGEST_SHA256: Final = -16
DIGEST_SHA384: Final = -43
DIGEST_SHA512: Final = -44
DIGEST_ALGORITHMS: Final = {
    DIGEST_SHA256: ("sha-256", 32),
    DIGEST_SHA384: ("sha-384", 48),
    DIGEST_SHA512: ("sha-512", 64),
}

# Tags of SUIT_Authentication_Block (COSE_Sign_Tagged, COSE_Sign1_Tagged, COSE_Mac_Tagged,
# COSE_Mac0_Tagged).
COSE_SIGN_TAG: Final = 98
COSE_SIGN1_TAG: Final = 18
COSE_MAC_TAG: Final = 97
COSE_MAC0_TAG: Final = 17
COSE_ENCRYPT_TAG: Final = 96  # SUIT_Encryption_Info
AUTH_BLOCK_TAGS: Final = frozenset({COSE_SIGN_TAG, COSE_SIGN1_TAG, COSE_MAC_TAG, COSE_MAC0_TAG})


def label(table: dict[int, str], key: object) -> str:
    """``key 2 (sequence-number)`` style text for error messages."""
    name = table.get(key) if isinstance(key, int) and not isinstance(key, bool) else None
    return f"key {key!r} ({name})" if name else f"key {key!r}"


def command_name(code: int) -> str:
    """The draft's name for a command code, or ``unknown-command-N``."""
    return CONDITIONS.get(code) or DIRECTIVES.get(code) or f"unknown-command-{code}"


def parameter_name(code: object) -> str:
    """The draft's name for a parameter code; ``custom-N`` for negative ones."""
    if isinstance(code, int) and not isinstance(code, bool):
        if code in PARAMETERS:
            return PARAMETERS[code]
        if code < 0:
            return f"custom{code}"
    return f"unknown-parameter-{code!r}"
