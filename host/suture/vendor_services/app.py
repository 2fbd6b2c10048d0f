"""``create_app(settings)``: the vendor's services in one ASGI app.

The authorization server answers under ``/gnap``, the repository under ``/releases/`` and
``/direct/``. The repository is a separate party all the same: it has its own key, is
registered with the AS as a resource server, and introspects every token over HTTP (in
process, through an ASGI transport), signed like any RS would (RFC 9767 §3.2, §3.3).
"""

from __future__ import annotations

import httpx
from biscuit_auth import PublicKey
from fastapi import FastAPI

from suture.bounded_body import BodyLimitMiddleware
from suture.vendor_services import biscuits
from suture.vendor_services.bodylimit import refusal
from suture.vendor_services.clock import Clock, system_clock
from suture.vendor_services.gnap.authorization import AuthorizationServer
from suture.vendor_services.gnap.clients import RegisteredResourceServer, Registry
from suture.vendor_services.gnap.jsonbody import MAX_BODY
from suture.vendor_services.gnap.policies import PolicyStore
from suture.vendor_services.gnap.server import create_as_router
from suture.vendor_services.httpsig import SigningKey
from suture.vendor_services.repository.introspection import Introspector
from suture.vendor_services.repository.resource import ResourceServer, create_rs_router
from suture.vendor_services.repository.store import ReleaseStore
from suture.vendor_services.seen_nonces import SeenNonces
from suture.vendor_services.settings import VendorSettings
from suture.vendor_services.statedb import StateDb


def create_app(
    settings: VendorSettings, *, clock: Clock = system_clock, registry: Registry | None = None
) -> FastAPI:
    """The AS and the RS over ``settings.data_dir`` (grants, tokens and seen nonces in its
    ``state.db``). ``app.state.authorization`` and ``app.state.repository`` expose the two
    services."""
    app = FastAPI(
        title="suture vendor",
        description="GNAP authorization server and protected release repository.",
    )
    store = ReleaseStore(settings.releases_dir)
    registry = registry or Registry.load(settings.registry_path)
    state = StateDb(settings.state_path)
    authorization = AuthorizationServer(
        settings, registry, release_exists=store.exists, clock=clock, state=state,
        policies=PolicyStore.load(settings.policies_path), recall_of=store.recall_of,
    )
    rs_key = SigningKey.generate("EdDSA")
    registry.add_resource_server(
        RegisteredResourceServer(settings.rs_instance_id, rs_key.jwk()), persist=False
    )
    introspector = Introspector(
        endpoint=f"{settings.grant_endpoint}/introspect",
        key=rs_key,
        instance_id=settings.rs_instance_id,
        http=lambda: httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=settings.public_url
        ),
        clock=clock,
        cache_seconds=settings.introspection_cache_seconds,
        # Any revocation (here or by `suture vendor client remove`) or edit of clients.json
        # voids the cached answers.
        epoch=lambda: (authorization.store.revocation_epoch(), registry.stamp()),
    )

    def biscuit_root() -> PublicKey | None:
        path = settings.biscuit_root_path
        return biscuits.load_root_key(path).public_key if path.exists() else None

    repository = ResourceServer(
        settings, store, introspector, clock=clock, biscuit_root=biscuit_root,
        nonces=SeenNonces(state, "rs", clock),
    )
    app.add_middleware(BodyLimitMiddleware, limit_for=lambda scope: MAX_BODY, refusal=refusal)
    app.include_router(create_as_router(authorization))
    app.include_router(create_rs_router(repository))
    app.state.authorization = authorization
    app.state.repository = repository
    return app
