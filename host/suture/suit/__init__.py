"""SUIT envelopes (draft-ietf-suit-manifest, code points of draft -29 and later).

Pure library, no I/O beyond reading the files a description names:

- :func:`decode_envelope`: structure only, into :class:`Envelope`;
- :func:`verify_envelope`: digest, signature (COSE_Sign1: ES256, ESP256, EdDSA, Ed25519) or MAC
  (COSE_Mac0: HMAC 256/256, 384/384, 512/512), severable members, and dependency manifests
  (draft-ietf-suit-trust-domains) under their own trust anchors;
- :func:`create_envelope` / :func:`create_unsigned_envelope` / :func:`sign_envelope`: build
  from a description (:func:`load_description`) and sign; :func:`create_release` also
  encrypts components (draft-ietf-suit-firmware-encryption) and binds the SBOM;
- :func:`create_dependent_envelope`: the hospital's manifest over the vendor's;
- :func:`decrypt_component`: a verified envelope's encrypted payload, checked;
- :func:`sever_envelope`: remove severable members;
- :func:`envelope_summary`: a JSON-serialisable summary;
- :mod:`suture.suit.report`: SUIT reports; :mod:`suture.suit.sbom`: the release's SBOM.

Every failure raises :class:`SuitError` (or a subclass); nothing else escapes on any input.
"""

from suture.cose.encrypt import EcdhPrivateKey, EcdhRecipientKey
from suture.cose.mac0 import SymmetricKey
from suture.suit.authentication import VerificationKey, sign_envelope, verify_envelope
from suture.suit.builder import (
    Release,
    create_envelope,
    create_release,
    create_unsigned_envelope,
    create_unsigned_release,
)
from suture.suit.decoder import decode_envelope, decode_manifest
from suture.suit.dependent import (
    HospitalConditions,
    create_dependent_envelope,
    dependent_envelope_of,
    hospital_conditions,
)
from suture.suit.description import UpdateDescription, load_description, parse_description
from suture.suit.encryption import DecryptedPayload, decrypt_component
from suture.suit.errors import (
    SbomError,
    SuitAuthenticationError,
    SuitDecodeError,
    SuitDependencyError,
    SuitDescriptionError,
    SuitDigestError,
    SuitEncryptionError,
    SuitError,
    SuitLimitError,
    SuitReportError,
    SuitSeverError,
    SuitSignatureError,
    SuitStructureError,
)
from suture.suit.inspect import envelope_summary
from suture.suit.limits import (
    MAX_DEPTH,
    MAX_ENVELOPE_BYTES,
    MAX_MANIFEST_BYTES,
    MAX_SEQUENCE_NUMBER,
)
from suture.suit.model import (
    AuthenticationBlock,
    AuthenticationWrapper,
    Command,
    CommandSequence,
    ComponentInfo,
    DependencyInfo,
    Digest,
    Envelope,
    LocalizedText,
    Manifest,
    Parameter,
    VerifiedDependency,
)
from suture.suit.severing import sever_envelope

__all__ = [
    "MAX_DEPTH",
    "MAX_ENVELOPE_BYTES",
    "MAX_MANIFEST_BYTES",
    "MAX_SEQUENCE_NUMBER",
    "AuthenticationBlock",
    "AuthenticationWrapper",
    "Command",
    "CommandSequence",
    "ComponentInfo",
    "DecryptedPayload",
    "DependencyInfo",
    "Digest",
    "EcdhPrivateKey",
    "EcdhRecipientKey",
    "Envelope",
    "HospitalConditions",
    "LocalizedText",
    "Manifest",
    "Parameter",
    "Release",
    "SbomError",
    "SuitAuthenticationError",
    "SuitDecodeError",
    "SuitDependencyError",
    "SuitDescriptionError",
    "SuitDigestError",
    "SuitEncryptionError",
    "SuitError",
    "SuitLimitError",
    "SuitReportError",
    "SuitSeverError",
    "SuitSignatureError",
    "SuitStructureError",
    "SymmetricKey",
    "UpdateDescription",
    "VerificationKey",
    "VerifiedDependency",
    "create_dependent_envelope",
    "create_envelope",
    "create_release",
    "create_unsigned_envelope",
    "create_unsigned_release",
    "decode_envelope",
    "decode_manifest",
    "decrypt_component",
    "dependent_envelope_of",
    "envelope_summary",
    "hospital_conditions",
    "load_description",
    "parse_description",
    "sever_envelope",
    "sign_envelope",
    "verify_envelope",
]
