"""The one exception family of ``suture.cose``: COSE messages and the CBOR beneath them."""

from __future__ import annotations

from suture.errors import SutureError


class CoseError(SutureError):
    """A COSE message is malformed, uses an unsupported algorithm, or does not verify."""
