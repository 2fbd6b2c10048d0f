"""Biscuit tokens for direct download (biscuit-python 0.4, Ed25519 root key).

In the "scheduler as a service" mode the vendor gives each device a biscuit instead of a GNAP
token. Its authority block, signed with the vendor's root key, says who and what::

    device("pump-0017");
    release("app-1.4.0"); release("app-1.5.0");
    check if time($t), $t <= 2026-12-01T00:00:00Z;

Whoever holds it (the device, a gateway) can append a block that only narrows it, e.g. to one
release and a short expiry::

    check if request_release("app-1.5.0");
    check if time($t), $t <= 2026-11-23T22:00:00Z;

The repository authorizes each download with the request's facts and one policy
(:data:`POLICY`): the device in the URL is the token's device, the release asked for is one of
the token's releases, and every check of every block holds. Facts added by later blocks are not
trusted by the authorizer (biscuit's default scopes), so a block can never widen the rights.
Revocation ids of any block listed in the revocation file refuse the token.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from biscuit_auth import (
    Algorithm,
    AuthorizationError,
    AuthorizerBuilder,
    Biscuit,
    BiscuitBuilder,
    BiscuitValidationError,
    BlockBuilder,
    KeyPair,
    PrivateKey,
    PublicKey,
)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from suture.vendor_services.errors import VendorServicesError

# The repository's policy: facts from the request, rules over the authority block's facts.
POLICY = """
allow if device($d), request_device($d), release($r), request_release($r), operation("fetch");
deny if true;
"""
# Ceiling on a presented token (base64).
MAX_TOKEN = 16 * 1024


class BiscuitError(VendorServicesError, ValueError):
    """A biscuit that is malformed, not ours, or does not authorize the request."""


#: How long one authorization may run (datalog evaluation) before it is refused.
AUTHORIZE_TIME_BUDGET: Final = datetime.timedelta(milliseconds=250)


def generate_root_key(path: Path) -> None:
    """Write a new Ed25519 root private key (PKCS#8 PEM) to ``path``."""
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pem)
    path.chmod(0o600)


def load_root_key(path: Path) -> KeyPair:
    """The root key pair from a PEM file."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as e:
        raise BiscuitError(f"cannot load biscuit root key {path}: {e}") from e
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise BiscuitError("the biscuit root key must be Ed25519")
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    # The package's stubs lag its 0.4 API: from_bytes takes the algorithm.
    private_key_type: Any = PrivateKey
    algorithm: Any = Algorithm
    return KeyPair.from_private_key(private_key_type.from_bytes(raw, algorithm.Ed25519))


def issue(
    root: PrivateKey, *, device_id: str, releases: Iterable[str], expires: datetime.datetime
) -> Biscuit:
    """The authority block: the device, the releases it may fetch, and an expiry check."""
    releases = list(releases)
    if not device_id or not releases:
        raise BiscuitError("a device biscuit needs a device id and at least one release")
    builder = BiscuitBuilder(
        "device({device}); check if time($t), $t <= {expires};",
        {"device": device_id, "expires": _utc(expires)},
    )
    for release in releases:
        builder.add_code("release({release});", {"release": release})
    return builder.build(root)


def attenuate(
    token: Biscuit, *, release: str | None = None, expires: datetime.datetime | None = None,
    not_before: datetime.datetime | None = None,
) -> Biscuit:
    """Append a block that narrows the token to one release, an earlier expiry and/or a
    start (a window: ``not_before <= time <= expires``)."""
    if release is None and expires is None and not_before is None:
        raise BiscuitError("attenuate to a release, an expiry, a start, or any of them")
    block = BlockBuilder("")
    if release is not None:
        block.add_code("check if request_release({release});", {"release": release})
    if expires is not None:
        block.add_code("check if time($t), $t <= {expires};", {"expires": _utc(expires)})
    if not_before is not None:
        block.add_code("check if time($t), $t >= {start};", {"start": _utc(not_before)})
    return token.append(block)


def parse(data: str, root: PublicKey) -> Biscuit:
    """Deserialize and verify every block's signature against the vendor's root key."""
    if len(data) > MAX_TOKEN:
        raise BiscuitError("biscuit is too large")
    try:
        return Biscuit.from_base64(data, root)
    except (BiscuitValidationError, ValueError) as e:
        raise BiscuitError(f"biscuit does not verify against the vendor root key: {e}") from e


def authorize(
    token: Biscuit,
    *,
    device_id: str,
    release: str,
    now: datetime.datetime,
    revoked: frozenset[str] = frozenset(),
) -> None:
    """Authorize fetching ``release`` for ``device_id`` at ``now``; raises ``BiscuitError``."""
    # Revocation ids: one per block; any listed one refuses the token and all derived from it.
    hit = revoked.intersection(token.revocation_ids)
    if hit:
        raise BiscuitError(f"biscuit was revoked ({sorted(hit)[0][:16]}...)")
    authorizer = AuthorizerBuilder(
        "request_device({device}); request_release({release}); operation(\"fetch\");"
        " time({now});",
        {"device": device_id, "release": release, "now": _utc(now)},
    )
    authorizer.add_code(POLICY)
    # The library's default budget (1 ms) is missed on a loaded host: a refusal that says
    # nothing about the token. The facts and iterations stay bounded by the library's defaults.
    # (The package's type stubs omit limits() and set_limits(), which it has.)
    limits = authorizer.limits()  # type: ignore[attr-defined]
    limits.max_time = AUTHORIZE_TIME_BUDGET
    authorizer.set_limits(limits)  # type: ignore[attr-defined]
    try:
        authorizer.build(token).authorize()
    except AuthorizationError as e:
        raise BiscuitError(f"biscuit does not allow this download: {e}") from e


def load_revoked(path: Path) -> frozenset[str]:
    """Revocation ids, one hex string a line (``#`` comments allowed)."""
    if not path.exists():
        return frozenset()
    lines = (line.split("#", 1)[0].strip().lower() for line in path.read_text().splitlines())
    return frozenset(line for line in lines if line)


def revoke(path: Path, revocation_id: str) -> None:
    """Append a revocation id to the revocation file."""
    value = revocation_id.strip().lower()
    if not value or any(c not in "0123456789abcdef" for c in value):
        raise BiscuitError("a revocation id is a hex string")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(value + "\n")


def _utc(moment: datetime.datetime) -> datetime.datetime:
    if moment.tzinfo is None:
        raise BiscuitError("times must be timezone-aware")
    return moment.astimezone(datetime.UTC)
