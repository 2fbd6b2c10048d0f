"""Sign and verify HTTP requests as GNAP requires (RFC 9635 §7.3.1 over RFC 9421 and RFC 9530).

The cryptography and the signature base come from the ``http-message-signatures`` package;
this module adds GNAP's rules on top:

- covered components: ``@method`` and ``@target-uri`` always, ``authorization`` whenever the
  request carries an access token, ``content-digest`` whenever it has a body (§7.3.1);
- signature parameters: ``tag="gnap"``, ``created``, ``keyid`` and a ``nonce`` (§7.3.1);
- on verification, the ``created`` window against an injectable clock and the nonce replay
  cache, checked only after the signature itself verified (so a forger cannot burn nonces).
"""

from __future__ import annotations

import datetime
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    InvalidSignature,
    algorithms,
)
from http_message_signatures.exceptions import HTTPMessageSignaturesException

from suture.vendor_services.clock import Clock, system_clock
from suture.vendor_services.errors import VendorServicesError
from suture.vendor_services.httpsig.jwk import PublicKey, SigningKey
from suture.vendor_services.httpsig.nonces import NonceStore

GNAP_TAG = "gnap"
LABEL = "sig"
# RFC 9635 §7.3.1: "created" must be "sufficiently close to the current time".
DEFAULT_MAX_AGE = 60.0
DEFAULT_SKEW = 5.0
# Ceiling on the signature fields we parse at all.
MAX_SIGNATURE_FIELD = 4096


class SignatureError(VendorServicesError, ValueError):
    """A request whose signature is missing, malformed, stale, replayed or does not verify."""


def _algorithm(key: PublicKey | ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> Any:
    # RFC 9421 §3.3.4 (ecdsa-p256-sha256) and §3.3.6 (ed25519); the key decides, never ``alg``.
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return algorithms.ED25519
    return algorithms.ECDSA_P256_SHA256


@dataclass
class _Message:
    """The view of a request the package reads: method, absolute URL and header lines."""

    method: str
    url: str
    headers: Any


class _OneKey(HTTPSignatureKeyResolver):
    def __init__(self, kid: str, public: PublicKey | None = None, private: Any = None) -> None:
        self.kid, self.public, self.private = kid, public, private

    def resolve_public_key(self, key_id: str) -> Any:
        # RFC 9635 §7.3.1: the keyid names the key the token or grant is bound to; any other
        # keyid is "wrong key" and resolves to nothing.
        return self.public if secrets.compare_digest(key_id, self.kid) else None

    def resolve_private_key(self, key_id: str) -> Any:
        return self.private


def sign_request(
    key: SigningKey,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None = None,
    *,
    clock: Clock = system_clock,
    nonce: str | None = None,
    components: Iterable[str] | None = None,
) -> dict[str, str]:
    """Return ``headers`` plus ``Content-Digest`` (with a body), ``Signature-Input`` and
    ``Signature``. ``components`` overrides GNAP's covered set (tests of refusals use it)."""
    out = dict(headers)
    covered = ["@method", "@target-uri"]
    if any(name.lower() == "authorization" for name in out):
        covered.append("authorization")
    if body:
        covered.append("content-digest")
    message = _Message(method.upper(), url, out)
    signer = HTTPMessageSigner(
        signature_algorithm=_algorithm(key.private_key),
        key_resolver=_OneKey(key.kid, private=key.private_key),
    )
    try:
        signer.sign(
            message,
            key_id=key.kid,
            created=datetime.datetime.fromtimestamp(int(clock()), tz=datetime.UTC),
            nonce=nonce or secrets.token_urlsafe(18),
            label=LABEL,
            tag=GNAP_TAG,
            include_alg=False,
            covered_component_ids=tuple(components if components is not None else covered),
            body=body if body else None,
        )
    except HTTPMessageSignaturesException as e:
        raise SignatureError(f"cannot sign request: {e}") from e
    return out


@dataclass(frozen=True)
class VerifiedRequest:
    """What a verified signature proved."""

    keyid: str
    created: int
    nonce: str
    covered: tuple[str, ...] = field(default=())


class _ClockedVerifier(HTTPMessageVerifier):
    """The package's verifier with ``created`` checked against an injected clock."""

    def __init__(self, *, clock: Clock, max_age: float, skew: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._clock, self._max_age, self._skew = clock, max_age, skew

    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        now = self._clock()
        created = sig_input.params.get("created")
        # RFC 9635 §7.3.1: "created" is required, and must be close to the current time.
        if type(created) is not int:
            raise InvalidSignature('signature is missing its "created" parameter')
        if created > now + self._skew:
            raise InvalidSignature('signature "created" is in the future')
        if created < now - self._max_age:
            raise InvalidSignature('signature "created" is too old')
        expires = sig_input.params.get("expires")
        if expires is not None and (type(expires) is not int or expires < now - self._skew):
            raise InvalidSignature('signature "expires" has passed')


def verify_request(
    method: str,
    url: str,
    headers: Any,
    body: bytes,
    *,
    kid: str,
    public_key: PublicKey,
    nonces: NonceStore,
    clock: Clock = system_clock,
    max_age: float = DEFAULT_MAX_AGE,
    skew: float = DEFAULT_SKEW,
) -> VerifiedRequest:
    """Verify the ``tag="gnap"`` signature of a request against the expected key.

    ``headers`` is anything with ``items()`` yielding every header line (Starlette's
    ``Headers``, a dict). Raises ``SignatureError`` naming the first failed check.
    """
    lines = list(headers.items())
    names = {name.lower() for name, _ in lines}
    for name in ("signature", "signature-input"):
        if name not in names:
            raise SignatureError("request is not signed (no Signature / Signature-Input)")
    if sum(len(v) for n, v in lines if n.lower() in ("signature", "signature-input")) > (
        2 * MAX_SIGNATURE_FIELD
    ):
        raise SignatureError("signature fields are too long")
    # RFC 9635 §7.3.1: the covered components GNAP requires.
    required = ["@method", "@target-uri"]
    if "authorization" in names:
        required.append("authorization")
    if body:
        required.append("content-digest")
    # RFC 9530: a Content-Digest that is present is checked even against an empty body, so a
    # signed request cannot be replayed with its body stripped.
    check_body = bool(body) or "content-digest" in names
    verifier = _ClockedVerifier(
        clock=clock,
        max_age=max_age,
        skew=skew,
        signature_algorithm=_algorithm(public_key),
        key_resolver=_OneKey(kid, public=public_key),
    )
    message = _Message(method.upper(), url, headers)
    try:
        # RFC 9635 §7.3.1: the signature is selected by tag="gnap"; RFC 9530 §2: with a body,
        # the signed Content-Digest must match the bytes received.
        results = verifier.verify(
            message,
            max_age=None,
            expect_tag=GNAP_TAG,
            require_components=tuple(required),
            body=body if check_body else None,
        )
    except HTTPMessageSignaturesException as e:
        raise SignatureError(f"signature does not verify: {e}") from e
    if len(results) != 1:
        raise SignatureError("exactly one gnap signature is expected")
    params = results[0].parameters
    nonce = params.get("nonce")
    created = params.get("created")
    if not isinstance(nonce, str) or not nonce:
        # suture requires the nonce RFC 9635 §7.3.1 recommends: it is what stops a replay.
        raise SignatureError("signature has no nonce")
    assert isinstance(created, int)
    # RFC 9635 §7.3.1: a nonce must be unique within the window; remembered past its end.
    if not nonces.check_and_remember(kid, nonce, created + max_age + skew):
        raise SignatureError("nonce was already used (replayed request)")
    return VerifiedRequest(kid, created, nonce, tuple(results[0].covered_components))
