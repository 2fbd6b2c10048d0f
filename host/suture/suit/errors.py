"""The one exception family of ``suture.suit``: every failure is a :class:`SuitError`.

Messages say what is wrong and where, e.g.
``manifest key 2 (sequence-number): expected uint, got text``.
"""

from __future__ import annotations

from suture.errors import SutureError


class SuitError(SutureError):
    """Anything wrong with a SUIT envelope, manifest, description or request."""


class SuitDecodeError(SuitError):
    """The bytes are not well-formed CBOR, or not within the accepted subset."""


class SuitLimitError(SuitDecodeError):
    """An input exceeds a ceiling (size, nesting, number of items)."""


class SuitStructureError(SuitDecodeError):
    """Well-formed CBOR that is not a valid SUIT structure (wrong type, missing key...)."""


class SuitAuthenticationError(SuitError):
    """The envelope is not authenticated: no authentication block, or none verifies."""


class SuitDigestError(SuitAuthenticationError):
    """A digest does not match: the manifest's, or a severable member's."""


class SuitSignatureError(SuitAuthenticationError):
    """No COSE signature verifies with the given keys."""


class SuitDescriptionError(SuitError):
    """A description file (TOML/YAML/JSON) is unreadable or does not describe a valid update."""


class SuitSeverError(SuitError):
    """A member cannot be severed (absent, not severable, or unknown)."""


class SuitDependencyError(SuitAuthenticationError):
    """A dependency manifest (trust-domains) is missing, is not the one the dependent names,
    or nests too deep."""


class SuitEncryptionError(SuitError):
    """An encrypted payload cannot be encrypted or decrypted: no key opens a recipient, the
    tag does not verify, the decrypted image does not match its digest."""


class SuitReportError(SuitError):
    """A SUIT report is malformed or its COSE signature or MAC does not verify."""


class SuitReportAuthError(SuitReportError):
    """A signed or MACed SUIT report that does not authenticate: not a tagged COSE_Sign1 or
    COSE_Mac0, no key of the right kind, a detached payload, a signature or tag that does not
    verify (the report itself is not looked at)."""


class SbomError(SuitError):
    """A release's SBOM is missing, malformed, not CycloneDX, or not the one its manifest
    names."""
