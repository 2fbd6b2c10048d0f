"""The protected release repository: the GNAP resource server, and direct biscuit downloads.

``GET /releases/`` lists what a token may fetch, ``GET /releases/{id}`` gives a release's
metadata and ``GET /releases/{id}/{artefact}`` (``envelope``, ``payload``, ``sbom``, ``notes``)
its files; ``GET /releases/{id}/deltas/{source}/envelope|patch`` the files of its delta from
the earlier release ``source`` (published with it: repository/deltas.py), under the same
access as the release's own files. Each request must carry ``Authorization: GNAP <token>``
and be signed with the key the token is bound to. Without a usable token the answer is ``401`` with
``WWW-Authenticate: GNAP as_uri="…"`` (RFC 9635 §9.1, RS-first discovery).

``GET /direct/{device}/releases/{id}/{artefact}`` serves a device presenting
``Authorization: Bearer <biscuit>`` (see :mod:`suture.vendor_services.biscuits`); a release
the vendor recalled is refused there whatever the biscuit says.

Refusals answer ``{"error": {"code": ..., "description": ...}}`` with the codes:
``invalid_token`` (401: none, unknown, expired, revoked or rotated away),
``invalid_signature`` (401: missing, wrong, stale, replayed, wrong key, other components),
``insufficient_access`` (403: another release or action), ``not_found`` (404).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from biscuit_auth import PublicKey
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from suture.vendor_services import biscuits
from suture.vendor_services.clock import Clock
from suture.vendor_services.errors import VendorServicesError
from suture.vendor_services.gnap.authorization import presented_token
from suture.vendor_services.gnap.errors import GnapError
from suture.vendor_services.gnap.rights import FETCH, covers
from suture.vendor_services.httpsig import (
    JwkError,
    NonceCache,
    NonceStore,
    SignatureError,
    load_jwk,
    verify_request,
)
from suture.vendor_services.repository.introspection import IntrospectionError, Introspector
from suture.vendor_services.repository.store import Artefact, ReleaseError, ReleaseStore
from suture.vendor_services.settings import VendorSettings


class RefusedError(VendorServicesError):
    """A request the repository does not serve."""

    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(description)
        self.status, self.code, self.description = status, code, description


class ResourceServer:
    """Checks a request's token and key proof for one release and action."""

    def __init__(
        self,
        settings: VendorSettings,
        store: ReleaseStore,
        introspector: Introspector,
        *,
        clock: Clock,
        biscuit_root: Callable[[], PublicKey | None],
        nonces: NonceStore | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.introspector = introspector
        self.clock = clock
        self.nonces: NonceStore = nonces if nonces is not None else NonceCache(clock)
        self.biscuit_root = biscuit_root
        self.served = 0

    def challenge(self) -> dict[str, str]:
        """RFC 9635 §9.1: tell the client which AS to ask, and which RS this is."""
        return {
            "WWW-Authenticate": (
                f'GNAP as_uri="{self.settings.grant_endpoint}", '
                f'referrer="{self.settings.releases_url}"'
            )
        }

    async def token_access(self, request: Request) -> list[dict[str, Any]]:
        """Introspect the presented token and verify the request's key proof; returns the
        token's access rights."""
        try:
            token = presented_token(request.headers)
        except GnapError as e:
            raise RefusedError(401, "invalid_token", e.description) from e
        if token is None:
            raise RefusedError(401, "invalid_token", "an access token is required")
        try:
            info = await self.introspector.introspect(token)
        except IntrospectionError as e:
            raise RefusedError(503, "introspection_failed", str(e)) from e
        # RFC 9767 §3.3: anything but an active token is refused.
        if info.get("active") is not True:
            raise RefusedError(401, "invalid_token", "the access token is not active")
        key = info.get("key")
        # RFC 9767 §3.3: "key" is required for a bound token; suture issues no bearer tokens.
        if not isinstance(key, dict) or key.get("proof") != "httpsig":
            raise RefusedError(401, "invalid_token", "the access token is not bound to a key")
        try:
            kid, public_key = load_jwk(key.get("jwk"))
            # RFC 9635 §7.3.1: the request is signed with the token's key, covering
            # @method, @target-uri and authorization (the token itself).
            verify_request(
                request.method,
                # RFC 9421 §2.2.2: the URI the client used, rebuilt from the public URL.
                self.settings.target_uri(request.url.path, request.url.query),
                request.headers,
                await request.body(),
                kid=kid, public_key=public_key, nonces=self.nonces, clock=self.clock,
                max_age=self.settings.signature_max_age_seconds,
            )
        except (SignatureError, JwkError) as e:
            raise RefusedError(401, "invalid_signature", str(e)) from e
        access = info.get("access")
        return access if isinstance(access, list) else []

    def require(self, access: list[dict[str, Any]], release_id: str) -> None:
        """RFC 9767 §3.3: the RS decides whether the token's rights cover this request."""
        if not covers(access, release_id, FETCH, self.settings.releases_url):
            raise RefusedError(403, "insufficient_access", f"token does not cover {release_id!r}")

    def authorize_biscuit(self, request: Request, device_id: str, release_id: str) -> None:
        """Direct download: verify the biscuit and run the Datalog policy."""
        root = self.biscuit_root()
        if root is None:
            raise RefusedError(404, "not_found", "direct download is not enabled")
        value = request.headers.get("authorization", "")
        scheme, _, data = value.partition(" ")
        if scheme != "Bearer" or not data:
            raise RefusedError(401, "invalid_token", "a biscuit is required (Bearer)")
        try:
            token = biscuits.parse(data.strip(), root)
            biscuits.authorize(
                token,
                device_id=device_id,
                release=release_id,
                now=datetime.datetime.fromtimestamp(self.clock(), datetime.UTC),
                revoked=biscuits.load_revoked(self.settings.revoked_biscuits_path),
            )
        except biscuits.BiscuitError as e:
            raise RefusedError(403, "insufficient_access", str(e)) from e

    def refuse_recalled(self, release_id: str) -> None:
        """Direct download: a device never gets a release the vendor recalled, whatever
        biscuit it holds (the biscuit outlives the recall until its window ends)."""
        try:
            recall = self.store.recall_of(release_id)
        except ReleaseError as e:
            raise RefusedError(404, "not_found", str(e)) from e
        if recall is not None:
            raise RefusedError(403, "insufficient_access",
                               f"release {release_id!r} was recalled by the vendor: "
                               f"{recall.get('reason', '')}")


def _refusal(rs: ResourceServer, e: RefusedError) -> Response:
    headers = rs.challenge() if e.status == 401 else {}
    return JSONResponse(
        {"error": {"code": e.code, "description": e.description}},
        status_code=e.status,
        headers=headers,
    )


def _file(rs: ResourceServer, find: Callable[[], Artefact]) -> Response:
    """The artefact ``find`` looks up in the store (a release's file or its delta's), or 404."""
    try:
        artefact = find()
    except (ReleaseError, KeyError) as e:
        raise RefusedError(404, "not_found", str(e)) from e
    rs.served += 1
    return FileResponse(
        artefact.path,
        media_type=artefact.media_type,
        headers={"Digest-SHA256": artefact.sha256, "Cache-Control": "no-store"},
    )


def create_rs_router(rs: ResourceServer) -> APIRouter:
    """The repository's routes, bound to ``rs``."""
    router = APIRouter(tags=["repository"])

    @router.get("/releases/")
    async def list_releases(request: Request) -> Response:
        try:
            access = await rs.token_access(request)
        except RefusedError as e:
            return _refusal(rs, e)
        where = rs.settings.releases_url
        releases = [r for r in rs.store.list() if covers(access, r, FETCH, where)]
        return JSONResponse({"releases": releases}, headers={"Cache-Control": "no-store"})

    @router.get("/releases/{release_id}")
    async def release(release_id: str, request: Request) -> Response:
        try:
            access = await rs.token_access(request)
            rs.require(access, release_id)
            try:
                meta = rs.store.metadata(release_id)
            except ReleaseError as e:
                raise RefusedError(404, "not_found", str(e)) from e
        except RefusedError as e:
            return _refusal(rs, e)
        return JSONResponse(meta, headers={"Cache-Control": "no-store"})

    @router.get("/releases/{release_id}/{artefact}")
    async def artefact(release_id: str, artefact: str, request: Request) -> Response:
        try:
            access = await rs.token_access(request)
            rs.require(access, release_id)
            return _file(rs, lambda: rs.store.artefact(release_id, artefact))
        except RefusedError as e:
            return _refusal(rs, e)

    @router.get("/releases/{release_id}/deltas/{source_id}/{artefact}")
    async def delta_artefact(release_id: str, source_id: str, artefact: str,
                             request: Request) -> Response:
        try:
            access = await rs.token_access(request)
            rs.require(access, release_id)
            return _file(rs, lambda: rs.store.delta_artefact(release_id, source_id, artefact))
        except RefusedError as e:
            return _refusal(rs, e)

    @router.get("/direct/{device_id}/releases/{release_id}/{artefact}")
    async def direct(device_id: str, release_id: str, artefact: str, request: Request) -> Response:
        try:
            rs.authorize_biscuit(request, device_id, release_id)
            rs.refuse_recalled(release_id)
            return _file(rs, lambda: rs.store.artefact(release_id, artefact))
        except RefusedError as e:
            return _refusal(rs, e)

    return router
