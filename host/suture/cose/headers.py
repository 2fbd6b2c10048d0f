"""COSE header buckets (RFC 9052 section 3): decode, check and read the common labels.

Shared by COSE_Mac0 and COSE_Encrypt. Checks: the protected bucket is an empty bstr or a
serialized map; the unprotected bucket is a map; no label is in both; ``crit`` lists only
labels this implementation understands; ``alg`` is an int; ``kid`` is a bstr.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from suture.cose.cbor import CborError, describe, loads_bounded
from suture.cose.errors import CoseError

HEADER_ALG: Final = 1
HEADER_CRIT: Final = 2
HEADER_CONTENT_TYPE: Final = 3
HEADER_KID: Final = 4
HEADER_IV: Final = 5
HEADER_PARTIAL_IV: Final = 6
HEADER_EPHEMERAL_KEY: Final = -1

MAX_HEADER_BYTES: Final = 4096
MAX_HEADER_DEPTH: Final = 8


@dataclass(frozen=True)
class Headers:
    """Both buckets of one COSE layer and the labels read from them."""

    protected_bytes: bytes
    protected: Mapping[Any, Any]
    unprotected: Mapping[Any, Any]
    alg: int | None
    kid: bytes | None

    def get(self, label: int) -> Any:
        """A header parameter from either bucket (protected first)."""
        if label in self.protected:
            return self.protected[label]
        return self.unprotected.get(label)


def decode_headers(
    where: str,
    protected_bytes: object,
    unprotected: object,
    *,
    understood: Iterable[int],
    alg_protected: bool = True,
) -> Headers:
    """Decode and check one layer's headers; ``where`` names the layer in errors.

    ``alg_protected``: the algorithm must be in the protected bucket (RFC 9052 requires it for
    signatures and MACs); for non-AEAD content encryption (RFC 9459) and AES key wrap the
    protected bucket must be empty and ``alg`` is read from the unprotected one.
    """
    if not isinstance(protected_bytes, bytes):
        raise CoseError(f"{where} protected header: expected bstr, got {describe(protected_bytes)}")
    protected: Mapping[Any, Any] = {}
    if protected_bytes:
        try:
            decoded = loads_bounded(
                protected_bytes, max_bytes=MAX_HEADER_BYTES, max_depth=MAX_HEADER_DEPTH
            )
        except CborError as exc:
            raise CoseError(f"{where} protected header: {exc}") from None
        if not isinstance(decoded, Mapping):
            raise CoseError(f"{where} protected header: expected map, got {describe(decoded)}")
        protected = decoded
    if not isinstance(unprotected, Mapping):
        raise CoseError(f"{where} unprotected header: expected map, got {describe(unprotected)}")
    overlap = set(protected) & set(unprotected)
    if overlap:
        raise CoseError(f"{where}: header labels {sorted(map(repr, overlap))} in both buckets")
    crit = protected.get(HEADER_CRIT)
    if crit is not None:
        if not isinstance(crit, list | tuple) or not crit:
            raise CoseError(f"{where} protected header label 2 (crit): expected a non-empty array")
        known = frozenset(understood) | {HEADER_ALG, HEADER_CRIT, HEADER_KID}
        unknown = [label for label in crit if label not in known]
        if unknown:
            raise CoseError(f"{where}: critical header labels not understood: {unknown!r}")
    if HEADER_CRIT in unprotected:
        raise CoseError(f"{where}: label 2 (crit) must be in the protected header")
    alg = protected.get(HEADER_ALG)
    if alg is None and not alg_protected:
        alg = unprotected.get(HEADER_ALG)
    elif alg is None and HEADER_ALG in unprotected:
        raise CoseError(f"{where}: the algorithm (label 1) must be in the protected header")
    if alg is not None and (isinstance(alg, bool) or not isinstance(alg, int)):
        raise CoseError(f"{where} header label 1 (alg): expected int, got {describe(alg)}")
    kid = unprotected.get(HEADER_KID, protected.get(HEADER_KID))
    if kid is not None and not isinstance(kid, bytes):
        raise CoseError(f"{where} header label 4 (kid): expected bstr, got {describe(kid)}")
    return Headers(
        protected_bytes=protected_bytes,
        protected=protected,
        unprotected=unprotected,
        alg=alg,
        kid=kid,
    )
