"""HTTP Message Signatures glue: round trips, each refusal, JWKs, the nonce cache, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from suture.vendor_services.clock import ManualClock
from suture.vendor_services.gnap.errors import GnapError
from suture.vendor_services.gnap.rights import validate_access
from suture.vendor_services.httpsig import (
    JwkError,
    NonceCache,
    SignatureError,
    SigningKey,
    load_jwk,
    public_jwk,
    sign_request,
    verify_request,
)

URL = "https://vendor.example/gnap"


@pytest.fixture(params=["EdDSA", "ES256"])
def key(request: pytest.FixtureRequest) -> SigningKey:
    return SigningKey.generate(request.param)


def verify(key: SigningKey, headers: dict[str, str], body: bytes, clock: ManualClock,
           nonces: NonceCache | None = None, method: str = "POST", url: str = URL) -> None:
    verify_request(method, url, headers, body, kid=key.kid, public_key=key.public_key,
                   nonces=nonces if nonces is not None else NonceCache(clock), clock=clock)


def test_round_trip_covers_what_gnap_requires(key: SigningKey) -> None:
    clock = ManualClock()
    body = b'{"a": 1}'
    headers = sign_request(key, "POST", URL, {"Authorization": "GNAP t"}, body, clock=clock)
    assert 'tag="gnap"' in headers["Signature-Input"]
    assert headers["Content-Digest"].startswith("sha-256=:")
    result = verify_request("POST", URL, headers, body, kid=key.kid, public_key=key.public_key,
                            nonces=NonceCache(clock), clock=clock)
    assert result.covered[:4] == (
        '"@method"', '"@target-uri"', '"authorization"', '"content-digest"',
    )
    assert result.created == int(clock())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"method": "PUT"}, "does not verify"),
        ({"url": URL + "/other"}, "does not verify"),
        ({"body": b'{"a": 2}'}, "Content-Digest"),
        ({"body": b""}, "Content-Digest"),
        ({"drop": "Signature"}, "not signed"),
        ({"drop": "Content-Digest"}, "does not verify"),
        ({"set": ("Authorization", "GNAP other")}, "does not verify"),
        ({"set": ("Signature-Input", 'sig=("@method");tag="gnap"')}, "does not verify"),
    ],
)
def test_changes_after_signing_are_refused(
    key: SigningKey, change: dict[str, object], message: str
) -> None:
    clock = ManualClock()
    body = b'{"a": 1}'
    headers = sign_request(key, "POST", URL, {"Authorization": "GNAP t"}, body, clock=clock)
    if "drop" in change:
        del headers[str(change["drop"])]
    if "set" in change:
        name, value = change["set"]  # type: ignore[misc]
        headers[name] = value
    with pytest.raises(SignatureError, match=message):
        verify_request(
            str(change.get("method", "POST")), str(change.get("url", URL)), headers,
            change.get("body", body), kid=key.kid, public_key=key.public_key,  # type: ignore[arg-type]
            nonces=NonceCache(clock), clock=clock,
        )


def test_window_and_replay(key: SigningKey) -> None:
    clock = ManualClock()
    nonces = NonceCache(clock)
    headers = sign_request(key, "GET", URL, {}, clock=clock)
    verify(key, headers, b"", clock, nonces, method="GET")
    with pytest.raises(SignatureError, match="replayed"):
        verify(key, headers, b"", clock, nonces, method="GET")
    stale = sign_request(key, "GET", URL, {}, clock=clock)
    clock.advance(70)
    with pytest.raises(SignatureError, match="too old"):
        verify(key, stale, b"", clock, nonces, method="GET")
    # Nonces are forgotten once their window has passed: memory stays bounded.
    fresh = sign_request(key, "GET", URL, {}, clock=clock)
    verify(key, fresh, b"", clock, nonces, method="GET")
    assert len(nonces) == 1


def test_nonce_is_not_spent_by_a_forgery(key: SigningKey) -> None:
    clock = ManualClock()
    nonces = NonceCache(clock)
    other = SigningKey(key.kid, SigningKey.generate("EdDSA").private_key)
    forged = sign_request(other, "GET", URL, {}, clock=clock, nonce="n-1")
    with pytest.raises(SignatureError):
        verify(key, forged, b"", clock, nonces, method="GET")
    genuine = sign_request(key, "GET", URL, {}, clock=clock, nonce="n-1")
    verify(key, genuine, b"", clock, nonces, method="GET")


def test_jwk_round_trip_and_refusals(key: SigningKey) -> None:
    jwk = key.jwk()
    kid, public = load_jwk(jwk)
    assert kid == key.kid
    assert public_jwk(public, kid) == jwk
    without_kid = {k: v for k, v in jwk.items() if k != "kid"}
    assert load_jwk(without_kid)[0] == public_jwk(public)["kid"]  # RFC 7638 thumbprint
    for bad in (
        None, [], {"kty": "RSA"}, {**jwk, "x": "AAAA"}, {**jwk, "crv": "P-384"},
        {**jwk, "kid": ""}, {**jwk, "x": "!" * 43},
    ):
        with pytest.raises(JwkError):
            load_jwk(bad)


def test_point_not_on_the_curve_is_refused() -> None:
    jwk = SigningKey.generate("ES256").jwk()
    jwk["y"] = jwk["x"]
    with pytest.raises(JwkError):
        load_jwk(jwk)


def test_pem_round_trip(key: SigningKey) -> None:
    again = SigningKey.from_pem(key.to_pem())
    assert again.kid == key.kid
    with pytest.raises(JwkError):
        SigningKey.from_pem(b"not a key")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    signature_input=st.text(max_size=300),
    signature=st.text(max_size=300),
    digest=st.text(max_size=100),
    body=st.binary(max_size=64),
)
def test_fuzz_signature_headers_only_raise_signature_error(
    signature_input: str, signature: str, digest: str, body: bytes
) -> None:
    key = SigningKey.generate("EdDSA")
    clock = ManualClock()
    headers = {"Signature-Input": signature_input, "Signature": signature, "Content-Digest": digest}
    with pytest.raises(SignatureError):
        verify(key, headers, body, clock)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(access=json_values)
def test_fuzz_access_rights_only_raise_gnap_errors(access: object) -> None:
    code = "accepted"
    try:
        validate_access(access)
    except GnapError as e:
        code = e.code
    assert code in ("accepted", "invalid_request")


# RFC 9421 Appendix B.1.4 (test-key-ed25519) and B.2.6 (a request signed with it): an
# independent vector for the signature base the package builds and the keys this module loads.
RFC9421_ED25519_PRIVATE = (
    b"-----BEGIN PRIVATE KEY-----\n"
    b"MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n"
    b"-----END PRIVATE KEY-----\n"
)
RFC9421_ED25519_X = "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs"
B26_INPUT = ('sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length")'
             ';created=1618884473;keyid="test-key-ed25519"')
B26_SIGNATURE = ("sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQ"
                 "v5lIp5WPpBKRCw==:")


def test_rfc9421_b26_ed25519_vector() -> None:
    import datetime
    from dataclasses import dataclass

    from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms

    key = SigningKey.from_pem(RFC9421_ED25519_PRIVATE, kid="test-key-ed25519")
    assert key.jwk()["x"] == RFC9421_ED25519_X

    @dataclass
    class Request:
        method: str
        url: str
        headers: dict[str, str]

    request = Request("POST", "http://example.com/foo?param=Value&Pet=dog", {
        "Host": "example.com", "Date": "Tue, 20 Apr 2021 02:07:55 GMT",
        "Content-Type": "application/json", "Content-Length": "18",
    })
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={},
                                        private_keys={key.kid: key.private_key}),
    )
    signer.sign(
        request, key_id=key.kid, label="sig-b26", include_alg=False,
        created=datetime.datetime.fromtimestamp(1618884473, tz=datetime.UTC),
        covered_component_ids=("date", "@method", "@path", "@authority", "content-type",
                               "content-length"),
    )
    assert request.headers["Signature-Input"] == B26_INPUT
    assert request.headers["Signature"] == B26_SIGNATURE
