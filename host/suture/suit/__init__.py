"""SUIT envelopes (draft-ietf-suit-manifest, code points of draft -29 and later).

Pure library, no I/O beyond reading the files a description names:

- :func:`decode_envelope`: structure only, into :class:`Envelope`;
- :func:`verify_envelope`: digest, signature (COSE_Sign1: ES256, ESP256, EdDSA, Ed25519) and
  severable members;
- :func:`create_envelope` / :func:`create_unsigned_envelope` / :func:`sign_envelope`: build
  from a description (:func:`load_description`) and sign;
- :func:`sever_envelope`: remove severable members;
- :func:`envelope_summary`: a JSON-serialisable summary.

Every failure raises :class:`SuitError` (or a subclass); nothing else escapes on any input.
"""

from suture.suit.authentication import sign_envelope, verify_envelope
from suture.suit.builder import create_envelope, create_unsigned_envelope
from suture.suit.decoder import decode_envelope, decode_manifest
from suture.suit.description import UpdateDescription, load_description, parse_description
from suture.suit.errors import (
    SuitAuthenticationError,
    SuitDecodeError,
    SuitDescriptionError,
    SuitDigestError,
    SuitError,
    SuitLimitError,
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
    Digest,
    Envelope,
    LocalizedText,
    Manifest,
    Parameter,
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
    "Digest",
    "Envelope",
    "LocalizedText",
    "Manifest",
    "Parameter",
    "SuitAuthenticationError",
    "SuitDecodeError",
    "SuitDescriptionError",
    "SuitDigestError",
    "SuitError",
    "SuitLimitError",
    "SuitSeverError",
    "SuitSignatureError",
    "SuitStructureError",
    "UpdateDescription",
    "create_envelope",
    "create_unsigned_envelope",
    "decode_envelope",
    "decode_manifest",
    "envelope_summary",
    "load_description",
    "parse_description",
    "sever_envelope",
    "sign_envelope",
    "verify_envelope",
]
